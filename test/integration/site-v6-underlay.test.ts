/** Site to site with the Linux kernel on both ends, endpoints peering over IPv6 (see site-suite.ts). */
import { siteSuite } from './site-suite.ts';

siteSuite(6);
