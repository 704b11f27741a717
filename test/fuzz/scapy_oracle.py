#!/usr/bin/python3
"""
The independent side of the differential fuzz (test/fuzz/differential.ts): scapy decodes every
packet of a file and prints one JSON line per packet with the IPv4 / IPv6 header fields, whether
the packet is structurally valid by the RFC rules (RFC 791 / RFC 8200, evaluated here on scapy's
fields), whether the header checksum verifies, and the ICMP / ICMPv6 message fields and checksum.

Input: a file of records [u32 big-endian length][bytes]. Output (stdout): JSON lines, in order.
Nothing here shares code with ipferry; checksums are scapy's (scapy.utils.checksum, in6_chksum).

    /usr/bin/python3 test/fuzz/scapy_oracle.py PACKETS.bin
"""
import json
import socket
import struct
import sys

from scapy.layers.inet import ICMP, IP
from scapy.layers.inet6 import IPv6, in6_chksum
from scapy.utils import checksum


def icmp4(p, raw, hl, total):
    """ICMP fields as scapy dissects the message raw[hl:total] (only called for a valid header)."""
    if total - hl < 8:
        return None
    if ICMP not in p:
        return {"undissected": True}  # scapy could not dissect it (e.g. a short timestamp message)
    m = p[ICMP]
    out = {"type": m.type, "code": m.code, "chksum": m.chksum, "sumOk": checksum(raw[hl:total]) == 0}
    if m.type in (0, 8):
        out["id"] = m.id
        out["seq"] = m.seq
    elif m.type == 3 and m.code == 4:
        out["mtu"] = m.nexthopmtu
    elif m.type == 12:
        out["ptr"] = m.ptr
    return out


def icmp6(p, raw, total):
    """ICMPv6 fields from the bytes right behind the fixed header (next header 58 only)."""
    msg = raw[40:total]
    if len(msg) < 8:
        return None
    m = p.payload
    fields = {f.name for f in getattr(m, "fields_desc", [])}
    if not {"type", "code", "cksum"} <= fields:
        return {"undissected": True}  # scapy left it raw, or a class without the common header
    t = m.type
    out = {"type": t, "code": m.code, "chksum": m.cksum, "sumOk": in6_chksum(58, p, msg) == 0}
    if t in (128, 129):
        out["id"] = m.id
        out["seq"] = m.seq
    elif t == 2:
        out["mtu"] = m.mtu
    elif t == 4:
        out["ptr"] = m.ptr
    return out


def one(raw):
    n = len(raw)
    if n == 0:
        return {"n": 0}
    ver = raw[0] >> 4
    if ver == 4 and n >= 20:
        p = IP(raw)
        hl = p.ihl * 4
        ok = p.version == 4 and p.ihl >= 5 and hl <= n and p.len >= hl and p.len <= n
        d = {
            "n": n, "v": 4, "ok": ok, "ihl": p.ihl, "tos": p.tos, "len": p.len, "id": p.id,
            "flags": int(p.flags), "frag": p.frag, "ttl": p.ttl, "proto": p.proto, "chksum": p.chksum,
            "src": p.src, "dst": p.dst,
            "sumOk": hl >= 20 and hl <= n and checksum(raw[:hl]) == 0,
        }
        if ok and p.proto == 1 and p.frag == 0:
            d["icmp"] = icmp4(p, raw, hl, p.len)
        return d
    if ver == 6 and n >= 40:
        p = IPv6(raw)
        ok = p.version == 6 and 40 + p.plen <= n
        d = {
            "n": n, "v": 6, "ok": ok, "tc": p.tc, "fl": p.fl, "plen": p.plen, "nh": p.nh, "hlim": p.hlim,
            "src": socket.inet_pton(socket.AF_INET6, p.src).hex(),
            "dst": socket.inet_pton(socket.AF_INET6, p.dst).hex(),
        }
        if ok and p.nh == 58:
            d["icmp"] = icmp6(p, raw, 40 + p.plen)
        return d
    return {"n": n, "v": ver, "ok": False}


def main():
    data = open(sys.argv[1], "rb").read()
    out = sys.stdout
    i = 0
    while i < len(data):
        (n,) = struct.unpack_from(">I", data, i)
        raw = data[i + 4 : i + 4 + n]
        i += 4 + n
        try:
            d = one(raw)
        except Exception as e:  # noqa: BLE001 - report, do not stop: the TS side counts these
            d = {"n": len(raw), "error": "%s: %s" % (type(e).__name__, e)}
        out.write(json.dumps(d, separators=(",", ":")))
        out.write("\n")


main()
