/**
 * Linux constants the fast path passes to system calls: ioctl request numbers, flag bits, socket
 * option levels and names, poll events, errno values. Values are the x86-64 / arm64 ones (the
 * generic Linux ABI); test/sys/layout.test.ts checks every one of them against the system's C
 * headers when a C compiler is present.
 */

// --- open(2) ---
export const O_RDWR = 0x2;
export const O_NONBLOCK = 0x800;
export const O_CLOEXEC = 0x80000;

// --- TUN (linux/if_tun.h) ---
/** _IOW('T', 202, int): attach the fd to a TUN/TAP interface (struct ifreq). */
export const TUNSETIFF = 0x400454ca;
/** _IOR('T', 210, unsigned int): read back name and flags (struct ifreq). */
export const TUNGETIFF = 0x800454d2;
/** _IOW('T', 208, unsigned int): offload flags, passed BY VALUE. */
export const TUNSETOFFLOAD = 0x400454d0;
/** _IOR('T', 215, int): size of the virtio header in front of each packet (int out). */
export const TUNGETVNETHDRSZ = 0x800454d7;
/** _IOW('T', 216, int): set that size (int in). */
export const TUNSETVNETHDRSZ = 0x400454d8;

export const IFF_TUN = 0x0001;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_MULTI_QUEUE = 0x0100;

export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;

/** IFNAMSIZ: interface names are at most 15 bytes plus NUL. */
export const IFNAMSIZ = 16;

// --- sockets ---
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const SOCK_DGRAM = 2;
export const SOCK_NONBLOCK = 0x800;
export const SOCK_CLOEXEC = 0x80000;

export const SOL_SOCKET = 1;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
/** Like SO_SNDBUF/SO_RCVBUF but past net.core.[wr]mem_max (needs CAP_NET_ADMIN). */
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;

export const IPPROTO_IP = 0;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_UDP = 17;
/** Option level for UDP options (SOL_UDP = IPPROTO_UDP). */
export const SOL_UDP = 17;
export const IPV6_V6ONLY = 26;
export const IP_MTU_DISCOVER = 10;
export const IPV6_MTU_DISCOVER = 23;
export const IP_PMTUDISC_DO = 2;

/** cmsg / setsockopt: segment size for UDP GSO (u16 in a cmsg, int in setsockopt). */
export const UDP_SEGMENT = 103;
/** setsockopt int 1 enables GRO; cmsg of the same level/type carries the segment size (int). */
export const UDP_GRO = 104;

export const MSG_DONTWAIT = 0x40;
export const MSG_TRUNC = 0x20;
export const MSG_CTRUNC = 0x08;
export const MSG_WAITFORONE = 0x10000;

// --- poll(2), eventfd(2) ---
export const POLLIN = 0x001;
export const POLLOUT = 0x004;
export const POLLERR = 0x008;
export const POLLHUP = 0x010;
export const POLLNVAL = 0x020;

export const EFD_SEMAPHORE = 0x1;
export const EFD_NONBLOCK = 0x800;
export const EFD_CLOEXEC = 0x80000;

// --- errno ---
export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const EACCES = 13;
export const EFAULT = 14;
export const EBADFD = 77;
export const EBUSY = 16;
export const ENODEV = 19;
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const ENOPROTOOPT = 92;
export const EOPNOTSUPP = 95;
export const ENXIO = 6;
export const EEXIST = 17;
export const EAFNOSUPPORT = 97;
export const EADDRINUSE = 98;
export const EADDRNOTAVAIL = 99;
export const ENETUNREACH = 101;
export const ENOBUFS = 105;
export const ECONNREFUSED = 111;
export const EHOSTUNREACH = 113;

const ERRNO_NAMES: Record<number, string> = {
  [EPERM]: 'EPERM', [ENOENT]: 'ENOENT', [EINTR]: 'EINTR', [EIO]: 'EIO', [EBADF]: 'EBADF',
  [EAGAIN]: 'EAGAIN', [EACCES]: 'EACCES', [EFAULT]: 'EFAULT', [EBADFD]: 'EBADFD', [EBUSY]: 'EBUSY', [ENODEV]: 'ENODEV',
  [EINVAL]: 'EINVAL', [EMSGSIZE]: 'EMSGSIZE', [ENOPROTOOPT]: 'ENOPROTOOPT', [EOPNOTSUPP]: 'EOPNOTSUPP',
  [EADDRINUSE]: 'EADDRINUSE', [EADDRNOTAVAIL]: 'EADDRNOTAVAIL', [EAFNOSUPPORT]: 'EAFNOSUPPORT', [ENXIO]: 'ENXIO',
  [EEXIST]: 'EEXIST', [ENETUNREACH]: 'ENETUNREACH', [ENOBUFS]: 'ENOBUFS',
  [ECONNREFUSED]: 'ECONNREFUSED', [EHOSTUNREACH]: 'EHOSTUNREACH',
};

/** "EAGAIN" for 11, "errno 42" for what has no name here. For messages, not the hot path. */
export function errnoName(e: number): string {
  return ERRNO_NAMES[e] ?? `errno ${e}`;
}
