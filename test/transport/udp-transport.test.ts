import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { DropReason } from '../../src/base/drop-reason.ts';
import { PacketPools, type PacketBuffer } from '../../src/base/pool.ts';
import { DEFAULT_PORT, TransportError, UdpTransport, type RecvInfo } from '../../src/transport/udp-transport.ts';
import {
  ControlMessage,
  CTYPE_KEEPALIVE,
  emitKeepalive,
  gueClassify,
  GueKind,
} from '../../src/wire/gue.ts';
import { verifyControl } from '../../src/tunnel/control.ts';
import { ReplayWindow } from '../../src/tunnel/replay.ts';

const ipv4 = Buffer.from('4500001c1c46400040010000c0a80a0ac0a814140800f7ff00000000', 'hex');
const ipv6 = Buffer.from(
  '6000000000083a40fd000010000000000000000000000010fd0000200000000000000000000000208000000000000000',
  'hex',
);

interface Got {
  bytes: Buffer;
  tag: number;
  address: string;
  port: number;
}

/** A transport whose handler records (copies) and releases everything it receives. */
function node(pools: PacketPools, address: string, opts: { ipv6Only?: boolean } = {}) {
  const got: Got[] = [];
  let waiters: (() => void)[] = [];
  const t = new UdpTransport({
    address,
    port: 0,
    pools,
    ipv6Only: opts.ipv6Only,
    onBatch(batch: PacketBuffer[], count: number, from: RecvInfo) {
      for (let i = 0; i < count; i++) {
        const p = batch[i]!;
        got.push({ bytes: Buffer.from(p.bytes()), tag: p.tag, address: from.addresses[i]!, port: from.ports[i]! });
        p.release();
      }
      const w = waiters;
      waiters = [];
      for (const f of w) f();
    },
  });
  /** Wait (bounded) until `n` datagrams have arrived. */
  async function waitFor(n: number, ms = 2000): Promise<void> {
    const deadline = Date.now() + ms;
    while (got.length < n && Date.now() < deadline) {
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 50);
      });
    }
  }
  return { t, got, waitFor };
}

function packet(pools: PacketPools, bytes: Uint8Array): PacketBuffer {
  const p = pools.acquire(bytes.length)!;
  p.fill(bytes);
  return p;
}

const open: UdpTransport[] = [];
const raw: dgram.Socket[] = [];
afterEach(async () => {
  for (const t of open.splice(0)) await t.close();
  for (const s of raw.splice(0)) s.close();
});

async function hasIpv6Loopback(): Promise<boolean> {
  const s = dgram.createSocket('udp6');
  try {
    await new Promise<void>((res, rej) => {
      s.once('error', rej);
      s.bind(0, '::1', () => res());
    });
    return true;
  } catch {
    return false;
  } finally {
    s.close();
  }
}

describe('UdpTransport', () => {
  it('documents 6080 (IANA gue) as the default port', () => {
    expect(DEFAULT_PORT).toBe(6080);
    const t = new UdpTransport({ pools: new PacketPools(), onBatch() {} });
    expect(t.listenText).toBe('[::]:6080');
    expect(t.dualStack).toBe(true);
  });

  for (const family of [4, 6] as const) {
    it(`exchanges data and keepalives between two transports on ${family === 4 ? '127.0.0.1' : '::1'}`, async (ctx) => {
      const lo = family === 4 ? '127.0.0.1' : '::1';
      if (family === 6 && !(await hasIpv6Loopback())) ctx.skip();
      const pools = new PacketPools({ small: { slots: 64 }, large: { slots: 4 } });
      const a = node(pools, lo);
      const b = node(pools, lo);
      open.push(a.t, b.t);
      await a.t.start();
      await b.t.start();
      expect(a.t.family).toBe(family);
      a.t.setPeer(3, lo, b.t.localAddress.port);
      b.t.setPeer(7, lo, a.t.localAddress.port);

      // data: variant 1, both inner families over the same socket
      expect(a.t.send(packet(pools, ipv4), 3)).toBe(DropReason.None);
      expect(a.t.send(packet(pools, ipv6), 3)).toBe(DropReason.None);
      // a big one goes through a large slot
      const big = Buffer.alloc(9000, 0x45);
      expect(a.t.send(packet(pools, big), 3)).toBe(DropReason.None);
      // control: a keyed keepalive
      const key = Buffer.from('psk');
      const ka = pools.acquire(64)!;
      ka.length = emitKeepalive(ka.buf, ka.offset, { senderId: 1, counter: 42, timestampMs: Date.now(), interval: 25, epoch: 9 }, key);
      expect(b.t.send(ka, 7)).toBe(DropReason.None);

      await b.waitFor(3);
      await a.waitFor(1);
      expect(b.got.map((g) => g.tag)).toEqual([7, 7, 7]);
      expect(b.got[0]!.bytes).toEqual(ipv4);
      expect(b.got[1]!.bytes).toEqual(ipv6);
      expect(b.got[2]!.bytes).toEqual(big);
      expect(gueClassify(b.got[0]!.bytes, 0, ipv4.length)).toBe(GueKind.Ipv4);
      expect(gueClassify(b.got[1]!.bytes, 0, ipv6.length)).toBe(GueKind.Ipv6);
      expect(b.got[0]!.address).toBe(lo);
      expect(b.got[0]!.port).toBe(a.t.localAddress.port);

      const k = a.got[0]!;
      expect(k.tag).toBe(3);
      expect(gueClassify(k.bytes, 0, k.bytes.length)).toBe(GueKind.Control);
      const replay = new ReplayWindow();
      expect(verifyControl(k.bytes, 0, k.bytes.length, key, replay, k.tag)).toBe(DropReason.None);
      expect(verifyControl(k.bytes, 0, k.bytes.length, key, replay, k.tag)).toBe(DropReason.ReplayedMessage);
      expect(new ControlMessage(k.bytes).ctype).toBe(CTYPE_KEEPALIVE);

      expect(a.t.stats.txPackets).toBe(3);
      expect(a.t.stats.txBytes).toBe(ipv4.length + ipv6.length + big.length);
      expect(b.t.stats.rxPackets).toBe(3);
      expect(b.t.stats.rxUnknown).toBe(0);
      await a.t.close();
      await b.t.close();
      expect(pools.live).toBe(0);
    });
  }

  it('serves IPv4 and IPv6 peers on one dual-stack socket (listen ::)', async (ctx) => {
    if (!(await hasIpv6Loopback())) ctx.skip();
    const pools = new PacketPools({ small: { slots: 16 }, large: { slots: 1 } });
    const a = node(pools, '::');
    const c = node(pools, '::1');
    open.push(c.t);
    await c.t.start();
    const b = node(pools, '127.0.0.1');
    open.push(a.t, b.t);
    await a.t.start();
    await b.t.start();
    a.t.setPeer(0, '127.0.0.1', b.t.localAddress.port);
    b.t.setPeer(0, '127.0.0.1', a.t.localAddress.port);
    expect(a.t.peerEndpoint(0)).toEqual({ address: '::ffff:127.0.0.1', port: b.t.localAddress.port });
    expect(b.t.send(packet(pools, ipv4), 0)).toBe(DropReason.None);
    await a.waitFor(1);
    expect(a.got[0]!.tag).toBe(0);
    expect(a.got[0]!.address).toBe('::ffff:127.0.0.1');
    expect(a.t.send(packet(pools, ipv6), 0)).toBe(DropReason.None);
    await b.waitFor(1);
    expect(b.got[0]!.bytes).toEqual(ipv6);
    // and an IPv6 peer on the same socket
    a.t.setPeer(1, '::1', c.t.localAddress.port);
    c.t.setPeer(0, '::1', a.t.localAddress.port);
    expect(a.t.send(packet(pools, ipv4), 1)).toBe(DropReason.None);
    expect(c.t.send(packet(pools, ipv6), 0)).toBe(DropReason.None);
    await c.waitFor(1);
    await a.waitFor(2);
    expect(c.got[0]!.tag).toBe(0);
    expect(a.got[1]!.tag).toBe(1);
    await a.t.close();
    await b.t.close();
    await c.t.close();
    expect(pools.live).toBe(0);
  });

  it('delivers datagrams from unknown senders with tag -1 and counts them', async () => {
    const pools = new PacketPools({ small: { slots: 16 }, large: { slots: 1 } });
    const a = node(pools, '127.0.0.1');
    open.push(a.t);
    await a.t.start();
    const stranger = dgram.createSocket('udp4');
    raw.push(stranger);
    await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', () => r()));
    // a peer on the same address but another port is still a stranger
    a.t.setPeer(0, '127.0.0.1', stranger.address().port === 65535 ? 65534 : stranger.address().port + 1);
    stranger.send(ipv4, a.t.localAddress.port, '127.0.0.1');
    await a.waitFor(1);
    expect(a.got[0]!.tag).toBe(-1);
    expect(a.got[0]!.port).toBe(stranger.address().port);
    expect(a.t.stats.rxUnknown).toBe(1);
    expect(a.t.lookupPeer('127.0.0.1', stranger.address().port)).toBe(-1);
    // once it is made a peer it is known
    a.t.setPeer(0, '127.0.0.1', stranger.address().port);
    stranger.send(ipv4, a.t.localAddress.port, '127.0.0.1');
    await a.waitFor(2);
    expect(a.got[1]!.tag).toBe(0);
    await a.t.close();
    expect(pools.live).toBe(0);
  });

  it('moves a peer: the old endpoint becomes unknown', () => {
    const t = new UdpTransport({ address: '127.0.0.1', pools: new PacketPools(), onBatch() {} });
    t.setPeer(1, '127.0.0.1', 1000);
    expect(t.lookupPeer('127.0.0.1', 1000)).toBe(1);
    t.setPeer(1, '127.0.0.1', 2000);
    expect(t.lookupPeer('127.0.0.1', 1000)).toBe(-1);
    expect(t.lookupPeer('127.0.0.1', 2000)).toBe(1);
    t.removePeer(1);
    expect(t.lookupPeer('127.0.0.1', 2000)).toBe(-1);
  });

  it('releases the slot and reports why when a send cannot happen', async () => {
    const pools = new PacketPools({ small: { slots: 8 }, large: { slots: 1 } });
    const a = node(pools, '127.0.0.1');
    // not started
    expect(a.t.send(packet(pools, ipv4), 0)).toBe(DropReason.UnknownPeer);
    a.t.setPeer(0, '127.0.0.1', 9);
    expect(a.t.send(packet(pools, ipv4), 0)).toBe(DropReason.NoSocket);
    open.push(a.t);
    await a.t.start();
    expect(a.t.send(packet(pools, ipv4), 5)).toBe(DropReason.UnknownPeer);
    await a.t.close();
    expect(a.t.send(packet(pools, ipv4), 0)).toBe(DropReason.NoSocket);
    expect(a.t.stats.txDropped).toBe(4);
    expect(pools.live).toBe(0);
  });

  it('holds sent slots until completion and frees everything on close, even mid-flight', async () => {
    const pools = new PacketPools({ small: { slots: 256 }, large: { slots: 1 } });
    const a = node(pools, '127.0.0.1');
    const b = node(pools, '127.0.0.1');
    open.push(a.t, b.t);
    await a.t.start();
    await b.t.start();
    a.t.setPeer(0, '127.0.0.1', b.t.localAddress.port);
    for (let i = 0; i < 200; i++) expect(a.t.send(packet(pools, ipv4), 0)).toBe(DropReason.None);
    expect(a.t.inFlight).toBe(200);
    // close both right away: in-flight sends and undelivered receives are released
    await a.t.close();
    await b.t.close();
    expect(a.t.inFlight).toBe(0);
    expect(pools.live).toBe(0);
  });

  it('a full in-flight ring drops and releases instead of growing', async () => {
    const pools = new PacketPools({ small: { slots: 16 }, large: { slots: 1 } });
    const a = new UdpTransport({
      address: '127.0.0.1',
      port: 0,
      pools,
      maxInFlight: 4,
      onBatch(batch, count) {
        for (let i = 0; i < count; i++) batch[i]!.release();
      },
    });
    open.push(a);
    await a.start();
    a.setPeer(0, '127.0.0.1', a.localAddress.port);
    const r: DropReason[] = [];
    for (let i = 0; i < 6; i++) r.push(a.send(packet(pools, ipv4), 0));
    expect(r).toEqual([0, 0, 0, 0, DropReason.SendFailed, DropReason.SendFailed].map(Number));
    expect(pools.live).toBe(4);
    await new Promise((res) => setTimeout(res, 20));
    expect(a.inFlight).toBe(0);
    expect(a.stats.txPackets).toBe(4);
    expect(a.stats.txDropped).toBe(2);
    await a.close();
    expect(pools.live).toBe(0);
  });

  it('counts kernel send errors and synchronous throws, keeping the in-flight ring in order', async () => {
    const pools = new PacketPools({ small: { slots: 16 }, large: { slots: 2 } });
    const got: number[] = [];
    const a = new UdpTransport({
      address: '127.0.0.1',
      port: 0,
      pools,
      onBatch(batch, count) {
        for (let i = 0; i < count; i++) {
          got.push(batch[i]!.length);
          batch[i]!.release();
        }
      },
    });
    open.push(a);
    await a.start();
    a.setPeer(0, '127.0.0.1', a.localAddress.port);
    const tooBig = pools.acquire(65600)!;
    tooBig.length = 65600; // above the 65507-byte UDP/IPv4 maximum: EMSGSIZE from the kernel
    expect(a.send(tooBig, 0)).toBe(DropReason.None);
    expect(a.send(packet(pools, ipv4), 0)).toBe(DropReason.None);
    // port 0 makes dgram throw synchronously: undone at once
    expect(a.sendTo(packet(pools, ipv4), '127.0.0.1', 0)).toBe(DropReason.SendFailed);
    expect(a.inFlight).toBe(2);
    expect(a.send(packet(pools, ipv6), 0)).toBe(DropReason.None);
    const deadline = Date.now() + 2000;
    while (got.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual([ipv4.length, ipv6.length]);
    expect(a.inFlight).toBe(0);
    expect(a.stats.txErrors).toBe(2);
    expect(a.stats.txPackets).toBe(2);
    await a.close();
    expect(pools.live).toBe(0);
  });

  it('says "port in use" in one line', async () => {
    const pools = new PacketPools({ small: { slots: 4 }, large: { slots: 1 } });
    const a = new UdpTransport({ address: '127.0.0.1', port: 0, pools, onBatch() {} });
    open.push(a);
    await a.start();
    const port = a.localAddress.port;
    const b = new UdpTransport({ address: '127.0.0.1', port, pools, onBatch() {} });
    const err = await b.start().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TransportError);
    expect((err as Error).message).toBe(`listen 127.0.0.1:${port}: port in use`);
    expect((err as TransportError).code).toBe('EADDRINUSE');
    expect(b.isRunning).toBe(false);
  });

  it('says "address not available" for an address this host does not have', async () => {
    const pools = new PacketPools({ small: { slots: 4 }, large: { slots: 1 } });
    // TEST-NET-1, an address no test here assigns in the root namespace
    const t = new UdpTransport({ address: '192.0.2.254', port: 6080, pools, onBatch() {} });
    try {
      await expect(t.start()).rejects.toThrow('listen 192.0.2.254:6080: address not available on this host');
    } finally {
      await t.close();
    }
  });

  it('rejects bad listen and peer addresses with one line', () => {
    const pools = new PacketPools({ small: { slots: 4 }, large: { slots: 1 } });
    expect(() => new UdpTransport({ address: 'example.com', pools, onBatch() {} })).toThrow(
      'listen example.com: not an IPv4 or IPv6 address',
    );
    expect(() => new UdpTransport({ address: '::1', port: 70000, pools, onBatch() {} })).toThrow(
      'listen [::1]:70000: port out of range (0-65535)',
    );
    const v4 = new UdpTransport({ address: '0.0.0.0', pools, onBatch() {} });
    expect(() => v4.setPeer(0, 'fd00::2', 6080)).toThrow(
      'peer endpoint [fd00::2]:6080: IPv6 peer but listen 0.0.0.0:6080 is IPv4',
    );
    const v6 = new UdpTransport({ address: 'fd00::1', pools, onBatch() {} });
    expect(() => v6.setPeer(0, '192.0.2.1', 6080)).toThrow(
      'peer endpoint 192.0.2.1:6080: IPv4 peer but listen [fd00::1]:6080 is IPv6 only (listen on :: to carry both)',
    );
    const v6only = new UdpTransport({ address: '::', ipv6Only: true, pools, onBatch() {} });
    expect(() => v6only.setPeer(0, '192.0.2.1', 6080)).toThrow('IPv4 peer but listen [::]:6080 is IPv6 only');
    const dual = new UdpTransport({ address: '::', pools, onBatch() {} });
    dual.setPeer(0, '192.0.2.1', 6080);
    expect(dual.peerEndpoint(0)).toEqual({ address: '::ffff:192.0.2.1', port: 6080 });
    expect(() => v6.setPeer(0, 'FD00:0:0::2', 0)).toThrow('port out of range');
    v6.setPeer(0, 'FD00:0:0::2', 6080);
    expect(v6.peerEndpoint(0)).toEqual({ address: 'fd00::2', port: 6080 });
    expect(v6.lookupPeer('fd00::2', 6080)).toBe(0);
  });

  it('counts datagrams it cannot buffer when the pool is exhausted', async () => {
    const pools = new PacketPools({ small: { slots: 2 }, large: { slots: 1 } });
    const held: PacketBuffer[] = [];
    const a = new UdpTransport({
      address: '127.0.0.1',
      port: 0,
      pools,
      onBatch(batch, count) {
        for (let i = 0; i < count; i++) held.push(batch[i]!);
      },
    });
    open.push(a);
    await a.start();
    const s = dgram.createSocket('udp4');
    raw.push(s);
    for (let i = 0; i < 4; i++) s.send(ipv4, a.localAddress.port, '127.0.0.1');
    const deadline = Date.now() + 2000;
    while (a.stats.rxPackets + a.stats.rxNoBuffer < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(a.stats.rxPackets).toBe(2);
    expect(a.stats.rxNoBuffer).toBe(2);
    for (const p of held) p.release();
    await a.close();
    expect(pools.live).toBe(0);
  });
});
