#!/usr/bin/python3
"""Bounded packet floods for the soak (bench/soak/soak.ts), sent with scapy from inside a namespace.

  flood.py MODE COUNT SRC DST [DPORT] [SEED]

MODE
  garbage     UDP datagrams to DST:DPORT from SRC (an address that is no peer) with random bytes
              of random length (0..1472): not GUE, GUE-looking, control-looking
  gue-frag    UDP to DST:DPORT from SRC carrying GUE variant 1 (a bare inner IPv4 packet) that is
              a fragment (MF set, random offset and id): from no peer, so dropped before any
              reassembly
  outer-frag  first fragments (MF set) of UDP datagrams to DST:DPORT that never complete: the
              kernel's reassembly queue, not ours
  inner-frag  first fragments of UDP datagrams (IPv4 or IPv6 by DST) that never complete, from SRC
              to DST through the tunnel: the endpoint's own stack keeps them until they time out

COUNT packets at most; the caller also bounds the time. Prints one line: the packets sent.
"""
import random
import sys

from scapy.all import IP, IPv6, IPv6ExtHdrFragment, UDP, Raw, conf, send  # noqa: E402

conf.verb = 0


def main() -> None:
    mode, count, src, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    dport = int(sys.argv[5]) if len(sys.argv) > 5 else 6080
    rnd = random.Random(int(sys.argv[6]) if len(sys.argv) > 6 else 1)
    count = max(0, min(count, 100_000))
    pkts = []
    for i in range(count):
        if mode == 'garbage':
            n = rnd.randrange(0, 1473)
            body = bytes(rnd.getrandbits(8) for _ in range(n))
            if n >= 4 and i % 3 == 1:
                body = bytes([0x00 | (body[0] & 0x3F)]) + body[1:]  # variant 0: GUE header-looking
            elif n >= 4 and i % 3 == 2:
                body = bytes([0x80]) + body[1:]  # C bit: control-looking
            pkts.append(IP(src=src, dst=dst) / UDP(sport=rnd.randrange(1024, 65536), dport=dport) / Raw(body))
        elif mode == 'gue-frag':
            inner = IP(src='192.168.10.%d' % rnd.randrange(1, 255), dst='192.168.20.20', id=rnd.randrange(65536),
                       flags='MF', frag=rnd.randrange(0, 8000)) / Raw(bytes(rnd.getrandbits(8) for _ in range(256)))
            pkts.append(IP(src=src, dst=dst) / UDP(sport=dport, dport=dport) / Raw(bytes(inner)))
        elif mode == 'outer-frag':
            pkts.append(IP(src=src, dst=dst, id=rnd.randrange(65536), flags='MF', frag=0, proto=17)
                        / Raw(bytes(UDP(sport=dport, dport=dport, len=3000)) + bytes(rnd.getrandbits(8) for _ in range(1000))))
        elif mode == 'inner-frag':
            payload = bytes(UDP(sport=rnd.randrange(1024, 65536), dport=9, len=3000)) + bytes(rnd.getrandbits(8) for _ in range(1000))
            if ':' in dst:
                pkts.append(IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(nh=17, offset=0, m=1, id=rnd.getrandbits(32)) / Raw(payload))
            else:
                pkts.append(IP(src=src, dst=dst, id=rnd.randrange(65536), flags='MF', frag=0, proto=17) / Raw(payload))
        else:
            print('unknown mode ' + mode, file=sys.stderr)
            sys.exit(2)
    send(pkts, inter=0)
    print(len(pkts))


if __name__ == '__main__':
    main()
