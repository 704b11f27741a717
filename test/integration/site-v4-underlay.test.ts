/** Site to site with the Linux kernel on both ends, endpoints peering over IPv4 (see site-suite.ts). */
import { siteSuite } from './site-suite.ts';

siteSuite(4);
