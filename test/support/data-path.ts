/**
 * The data path an endpoint started by a test should report (snapshot.dataplane, the start log
 * line): the portable path when the test runs with IPFERRY_NO_FFI=1 (test/portable/*), the fast
 * path where the FFI loads (this machine: Linux + koffi), else the portable path with a reason.
 */
import { sysLibc } from '../../src/sys/libc.ts';

export function expectedDataPath(): RegExp {
  const off = process.env.IPFERRY_NO_FFI;
  if (off !== undefined && off !== '' && off !== '0') return /^portable \(disabled by IPFERRY_NO_FFI\)$/;
  return sysLibc() !== null ? /^fast \(vnet TUN, UDP GSO\/GRO, worker\)$/ : /^portable \(.+\)$/;
}
