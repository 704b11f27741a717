/**
 * Struct layouts and constants of src/sys: the x86-64 figures written down in NOTES.md, then
 * every offset and constant against the system's C headers (compiled with gcc here: an oracle
 * independent of our code), then koffi's own C ABI layout of the same structs.
 */
import { describe, expect, it } from 'vitest';
import * as L from '../../src/sys/linux.ts';
import * as M from '../../src/sys/msg.ts';
import * as S from '../../src/sys/sockaddr.ts';
import * as I from '../../src/sys/ifreq.ts';
import * as V from '../../src/sys/virtio-net-hdr.ts';
import * as P from '../../src/sys/poll.ts';
import { cValues, C_ORACLE_MISSING } from './c-oracle.ts';

/** C expression -> our value. */
const PAIRS: [string, number][] = [
  ['sizeof(struct iovec)', M.IOVEC_SIZE],
  ['offsetof(struct iovec, iov_base)', M.IOV_BASE],
  ['offsetof(struct iovec, iov_len)', M.IOV_LEN],
  ['sizeof(struct msghdr)', M.MSGHDR_SIZE],
  ['offsetof(struct msghdr, msg_name)', M.MSG_NAME],
  ['offsetof(struct msghdr, msg_namelen)', M.MSG_NAMELEN],
  ['offsetof(struct msghdr, msg_iov)', M.MSG_IOV],
  ['offsetof(struct msghdr, msg_iovlen)', M.MSG_IOVLEN],
  ['offsetof(struct msghdr, msg_control)', M.MSG_CONTROL],
  ['offsetof(struct msghdr, msg_controllen)', M.MSG_CONTROLLEN],
  ['offsetof(struct msghdr, msg_flags)', M.MSG_FLAGS],
  ['sizeof(struct mmsghdr)', M.MMSGHDR_SIZE],
  ['offsetof(struct mmsghdr, msg_len)', M.MMSG_LEN],
  ['sizeof(struct cmsghdr)', M.CMSGHDR_SIZE],
  ['offsetof(struct cmsghdr, cmsg_len)', M.CMSG_LEN_FIELD],
  ['offsetof(struct cmsghdr, cmsg_level)', M.CMSG_LEVEL],
  ['offsetof(struct cmsghdr, cmsg_type)', M.CMSG_TYPE],
  ['CMSG_LEN(2)', M.cmsgLen(2)],
  ['CMSG_LEN(4)', M.cmsgLen(4)],
  ['CMSG_SPACE(2)', M.cmsgSpace(2)],
  ['CMSG_SPACE(4)', M.cmsgSpace(4)],
  ['CMSG_SPACE(9)', M.cmsgSpace(9)],
  ['sizeof(struct sockaddr_in)', S.SOCKADDR_IN_SIZE],
  ['offsetof(struct sockaddr_in, sin_family)', S.SIN_FAMILY],
  ['offsetof(struct sockaddr_in, sin_port)', S.SIN_PORT],
  ['offsetof(struct sockaddr_in, sin_addr)', S.SIN_ADDR],
  ['sizeof(struct sockaddr_in6)', S.SOCKADDR_IN6_SIZE],
  ['offsetof(struct sockaddr_in6, sin6_family)', S.SIN6_FAMILY],
  ['offsetof(struct sockaddr_in6, sin6_port)', S.SIN6_PORT],
  ['offsetof(struct sockaddr_in6, sin6_flowinfo)', S.SIN6_FLOWINFO],
  ['offsetof(struct sockaddr_in6, sin6_addr)', S.SIN6_ADDR],
  ['offsetof(struct sockaddr_in6, sin6_scope_id)', S.SIN6_SCOPE_ID],
  ['sizeof(struct ifreq)', I.IFREQ_SIZE],
  ['offsetof(struct ifreq, ifr_name)', I.IFR_NAME],
  ['offsetof(struct ifreq, ifr_flags)', I.IFR_FLAGS],
  ['offsetof(struct ifreq, ifr_mtu)', I.IFR_MTU],
  ['sizeof(struct virtio_net_hdr)', V.VNET_HDR_LEN],
  ['offsetof(struct virtio_net_hdr, flags)', V.VNET_FLAGS],
  ['offsetof(struct virtio_net_hdr, gso_type)', V.VNET_GSO_TYPE],
  ['offsetof(struct virtio_net_hdr, hdr_len)', V.VNET_HDR_LEN_FIELD],
  ['offsetof(struct virtio_net_hdr, gso_size)', V.VNET_GSO_SIZE],
  ['offsetof(struct virtio_net_hdr, csum_start)', V.VNET_CSUM_START],
  ['offsetof(struct virtio_net_hdr, csum_offset)', V.VNET_CSUM_OFFSET],
  ['VIRTIO_NET_HDR_F_NEEDS_CSUM', V.VIRTIO_NET_HDR_F_NEEDS_CSUM],
  ['VIRTIO_NET_HDR_F_DATA_VALID', V.VIRTIO_NET_HDR_F_DATA_VALID],
  ['VIRTIO_NET_HDR_GSO_NONE', V.VIRTIO_NET_HDR_GSO_NONE],
  ['VIRTIO_NET_HDR_GSO_TCPV4', V.VIRTIO_NET_HDR_GSO_TCPV4],
  ['VIRTIO_NET_HDR_GSO_UDP', V.VIRTIO_NET_HDR_GSO_UDP],
  ['VIRTIO_NET_HDR_GSO_TCPV6', V.VIRTIO_NET_HDR_GSO_TCPV6],
  ['VIRTIO_NET_HDR_GSO_ECN', V.VIRTIO_NET_HDR_GSO_ECN],
  ['sizeof(struct pollfd)', P.POLLFD_SIZE],
  ['offsetof(struct pollfd, fd)', P.POLLFD_FD],
  ['offsetof(struct pollfd, events)', P.POLLFD_EVENTS],
  ['offsetof(struct pollfd, revents)', P.POLLFD_REVENTS],
  ['O_RDWR', L.O_RDWR], ['O_NONBLOCK', L.O_NONBLOCK], ['O_CLOEXEC', L.O_CLOEXEC],
  ['TUNSETIFF', L.TUNSETIFF], ['TUNGETIFF', L.TUNGETIFF], ['TUNSETOFFLOAD', L.TUNSETOFFLOAD],
  ['TUNGETVNETHDRSZ', L.TUNGETVNETHDRSZ], ['TUNSETVNETHDRSZ', L.TUNSETVNETHDRSZ],
  ['IFF_TUN', L.IFF_TUN], ['IFF_NO_PI', L.IFF_NO_PI], ['IFF_VNET_HDR', L.IFF_VNET_HDR],
  ['IFF_MULTI_QUEUE', L.IFF_MULTI_QUEUE], ['IFNAMSIZ', L.IFNAMSIZ],
  ['TUN_F_CSUM', L.TUN_F_CSUM], ['TUN_F_TSO4', L.TUN_F_TSO4], ['TUN_F_TSO6', L.TUN_F_TSO6],
  ['TUN_F_TSO_ECN', L.TUN_F_TSO_ECN],
  ['AF_INET', L.AF_INET], ['AF_INET6', L.AF_INET6], ['SOCK_DGRAM', L.SOCK_DGRAM],
  ['SOCK_NONBLOCK', L.SOCK_NONBLOCK], ['SOCK_CLOEXEC', L.SOCK_CLOEXEC],
  ['SOL_SOCKET', L.SOL_SOCKET], ['SO_REUSEADDR', L.SO_REUSEADDR], ['SO_SNDBUF', L.SO_SNDBUF],
  ['SO_RCVBUF', L.SO_RCVBUF], ['SO_SNDBUFFORCE', L.SO_SNDBUFFORCE], ['SO_RCVBUFFORCE', L.SO_RCVBUFFORCE],
  ['IPPROTO_IP', L.IPPROTO_IP], ['IPPROTO_IPV6', L.IPPROTO_IPV6], ['IPPROTO_UDP', L.IPPROTO_UDP],
  ['IPPROTO_UDP', L.SOL_UDP], ['IPV6_V6ONLY', L.IPV6_V6ONLY], ['IP_MTU_DISCOVER', L.IP_MTU_DISCOVER],
  ['IPV6_MTU_DISCOVER', L.IPV6_MTU_DISCOVER], ['IP_PMTUDISC_DO', L.IP_PMTUDISC_DO],
  ['UDP_SEGMENT', L.UDP_SEGMENT], ['UDP_GRO', L.UDP_GRO],
  ['MSG_DONTWAIT', L.MSG_DONTWAIT], ['MSG_TRUNC', L.MSG_TRUNC], ['MSG_CTRUNC', L.MSG_CTRUNC],
  ['MSG_WAITFORONE', L.MSG_WAITFORONE],
  ['POLLIN', L.POLLIN], ['POLLOUT', L.POLLOUT], ['POLLERR', L.POLLERR], ['POLLHUP', L.POLLHUP],
  ['POLLNVAL', L.POLLNVAL],
  ['EFD_SEMAPHORE', L.EFD_SEMAPHORE], ['EFD_NONBLOCK', L.EFD_NONBLOCK], ['EFD_CLOEXEC', L.EFD_CLOEXEC],
  ['EPERM', L.EPERM], ['ENOENT', L.ENOENT], ['EINTR', L.EINTR], ['EIO', L.EIO], ['EBADF', L.EBADF],
  ['EAGAIN', L.EAGAIN], ['EACCES', L.EACCES], ['EFAULT', L.EFAULT], ['EBUSY', L.EBUSY],
  ['ENODEV', L.ENODEV], ['EINVAL', L.EINVAL], ['EMSGSIZE', L.EMSGSIZE], ['ENOPROTOOPT', L.ENOPROTOOPT],
  ['EOPNOTSUPP', L.EOPNOTSUPP], ['EADDRINUSE', L.EADDRINUSE], ['ENETUNREACH', L.ENETUNREACH],
  ['ENOBUFS', L.ENOBUFS], ['ECONNREFUSED', L.ECONNREFUSED], ['EHOSTUNREACH', L.EHOSTUNREACH],
];

describe('sys struct layouts', () => {
  it('match the x86-64 figures in NOTES.md', () => {
    expect([P.POLLFD_SIZE, P.POLLFD_REVENTS]).toEqual([8, 6]);
    expect([M.MSGHDR_SIZE, M.MSG_IOV, M.MSG_IOVLEN, M.MSG_CONTROL, M.MSG_CONTROLLEN]).toEqual([56, 16, 24, 32, 40]);
    expect([M.MMSGHDR_SIZE, M.MMSG_LEN]).toEqual([64, 56]);
    expect(M.IOVEC_SIZE).toBe(16);
    expect([I.IFREQ_SIZE, I.IFR_FLAGS]).toEqual([40, 16]);
    expect(V.VNET_HDR_LEN).toBe(10);
    expect([L.TUNSETIFF, L.TUNSETOFFLOAD]).toEqual([0x400454ca, 0x400454d0]);
    expect(L.IFF_TUN | L.IFF_NO_PI | L.IFF_VNET_HDR).toBe(0x5001);
    expect(L.TUN_F_CSUM | L.TUN_F_TSO4 | L.TUN_F_TSO6).toBe(7);
    expect(L.AF_INET | L.SOCK_DGRAM | L.SOCK_NONBLOCK | L.SOCK_CLOEXEC).toBe(0x80802);
    expect([L.SOL_UDP, L.UDP_SEGMENT, L.UDP_GRO, L.SO_SNDBUFFORCE, L.SO_RCVBUFFORCE]).toEqual([17, 103, 104, 32, 33]);
  });

  it('match the C headers of this system (gcc as the oracle)', (ctx) => {
    if (process.arch !== 'x64' && process.arch !== 'arm64') return ctx.skip(`layouts are for x64/arm64 (this is ${process.arch})`);
    const c = cValues(PAIRS.map(([e]) => e));
    if (!c) return ctx.skip(C_ORACLE_MISSING);
    const mismatches = PAIRS.filter(([e, v]) => c.get(e) !== v).map(([e, v]) => `${e}: C ${c.get(e)}, ours ${v}`);
    expect(mismatches).toEqual([]);
  });

  it('match koffi\'s C ABI layout of the same structs', async () => {
    const { default: koffi } = await import('koffi');
    const iovec = koffi.struct({ base: 'void *', len: 'size_t' });
    const msghdr = koffi.struct({
      name: 'void *', namelen: 'uint32_t', iov: 'void *', iovlen: 'size_t',
      control: 'void *', controllen: 'size_t', flags: 'int',
    });
    const mmsghdr = koffi.struct({ hdr: msghdr, len: 'unsigned int' });
    const pollfd = koffi.struct({ fd: 'int', events: 'short', revents: 'short' });
    expect([koffi.sizeof(iovec), koffi.offsetof(iovec, 'len')]).toEqual([M.IOVEC_SIZE, M.IOV_LEN]);
    expect([
      koffi.sizeof(msghdr), koffi.offsetof(msghdr, 'iov'), koffi.offsetof(msghdr, 'iovlen'),
      koffi.offsetof(msghdr, 'control'), koffi.offsetof(msghdr, 'controllen'), koffi.offsetof(msghdr, 'flags'),
    ]).toEqual([M.MSGHDR_SIZE, M.MSG_IOV, M.MSG_IOVLEN, M.MSG_CONTROL, M.MSG_CONTROLLEN, M.MSG_FLAGS]);
    expect([koffi.sizeof(mmsghdr), koffi.offsetof(mmsghdr, 'len')]).toEqual([M.MMSGHDR_SIZE, M.MMSG_LEN]);
    expect([koffi.sizeof(pollfd), koffi.offsetof(pollfd, 'revents')]).toEqual([P.POLLFD_SIZE, P.POLLFD_REVENTS]);
  });

  it('writes sockaddrs and ifreqs byte for byte', () => {
    const b = new Uint8Array(64);
    expect(S.writeSockaddrIn(b, 4, 0x7f000001, 0x1234)).toBe(16);
    expect([...b.subarray(4, 20)]).toEqual([2, 0, 0x12, 0x34, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect([S.sockaddrFamily(b, 4), S.sockaddrPort(b, 4), S.sockaddrInAddr(b, 4)]).toEqual([2, 0x1234, 0x7f000001]);
    const a6 = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
    expect(S.writeSockaddrIn6(b, 0, a6, 0, 443, 7)).toBe(28);
    expect([...b.subarray(0, 8)]).toEqual([10, 0, 1, 187, 0, 0, 0, 0]);
    expect([...b.subarray(8, 24)]).toEqual([...a6]);
    expect([...b.subarray(24, 28)]).toEqual([7, 0, 0, 0]);

    const r = new Uint8Array(40).fill(0xee);
    expect(I.writeIfreq(r, 0, 'ipf0', 0x5001)).toBe(true);
    expect([...r.subarray(0, 6)]).toEqual([0x69, 0x70, 0x66, 0x30, 0, 0]);
    expect([r[16], r[17], r[39]]).toEqual([0x01, 0x50, 0]);
    expect([I.ifreqName(r, 0), I.ifreqFlags(r, 0)]).toEqual(['ipf0', 0x5001]);
    expect(I.writeIfreq(r, 0, 'sixteen-chars-xx', 1)).toBe(false);
    expect(I.writeIfreq(r, 0, 'a/b', 1)).toBe(false);
  });

  it('reads and writes the virtio header little-endian', () => {
    const b = new Uint8Array(12);
    const h = new V.VnetHdr(b, 2);
    h.set(V.VIRTIO_NET_HDR_F_NEEDS_CSUM, V.VIRTIO_NET_HDR_GSO_TCPV4, 52, 1348, 20, 16);
    expect([...b.subarray(2, 12)]).toEqual([1, 1, 52, 0, 0x44, 0x05, 20, 0, 16, 0]);
    expect(h.describe()).toBe('vnet flags 1 gso tcpv4 hdr_len 52 gso_size 1348 csum 20+16');
    h.writePlain(1400);
    expect([h.flags, h.gsoType, h.hdrLen, h.gsoSize, h.csumStart, h.csumOffset]).toEqual([0, 0, 1400, 0, 0, 0]);
  });
});
