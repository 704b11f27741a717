/**
 * A host made of a userspace stack on one end of an in-memory link: what a site's machine is in
 * the in-process mode of the example and in tests. `link` is the other end, handed to an
 * endpoint as its device. The host sends everything to the link (its default route), fragmenting
 * to the link MTU, and takes what arrives for its addresses.
 */
import { MemoryDevice } from '../device/memory-device.ts';
import { DropCounters, DropReason } from '../base/drop-reason.ts';
import { Fragmenter } from '../frag/fragment.ts';
import { PacketPools, type PacketBuffer } from '../base/pool.ts';
import { parseAddress } from '../wire/address-text.ts';
import { ipVersion } from '../wire/ip.ts';
import { LocalStack } from './local-stack.ts';

export interface UserspaceHostOptions {
  /** The host's addresses, e.g. ["192.168.10.10", "fd00:10::10"]. */
  addresses: string[];
  /** Link MTU (default 1400). */
  mtu?: number;
  name?: string;
}

export class UserspaceHost {
  readonly stack: LocalStack;
  /** The host's own end of the link. */
  readonly device: MemoryDevice;
  /** The other end: give it to an endpoint as its device. */
  readonly link: MemoryDevice;
  readonly pools = new PacketPools({ small: { slots: 2048 }, large: { slots: 32 } });
  readonly drops = new DropCounters();
  private readonly fragmenter: Fragmenter;

  constructor(opts: UserspaceHostOptions) {
    const mtu = opts.mtu ?? 1400;
    const name = opts.name ?? 'host';
    [this.device, this.link] = MemoryDevice.pair(
      { name: `${name}-eth`, mtu, pool: this.pools.small, queueLimit: 4096 },
      { name: `${name}-link`, mtu, queueLimit: 4096 },
    );
    this.fragmenter = new Fragmenter({ pool: this.pools, drops: this.drops });
    this.stack = new LocalStack({
      pools: this.pools,
      addresses: opts.addresses.map((a) => parseAddress(a)),
      output: (p) => this.output(p),
      drops: this.drops,
    });
    this.device.start((batch, count) => {
      for (let i = 0; i < count; i++) {
        const p = batch[i]!;
        if (this.stack.isLocal(p.buf, p.offset)) this.stack.input(p);
        else {
          this.drops.count(DropReason.NotForUs);
          p.release();
        }
      }
    });
  }

  private output(p: PacketBuffer): void {
    const mtu = this.device.mtu;
    if (p.length <= mtu) {
      this.device.write(p);
      p.release();
      return;
    }
    const v4 = ipVersion(p.buf, p.offset) === 4;
    const f = this.fragmenter;
    const r = v4 ? f.fragmentV4(p.buf, p.offset, p.length, mtu) : f.fragmentV6(p.buf, p.offset, p.length, mtu);
    p.release();
    if (r !== DropReason.None) {
      this.drops.count(r);
      return;
    }
    for (let i = 0; i < f.count; i++) {
      this.device.write(f.out[i]!);
      f.out[i]!.release();
    }
    f.count = 0;
  }

  ping(address: string, size = 56, timeoutMs = 2000): Promise<number> {
    return this.stack.ping(address, size, timeoutMs);
  }

  async close(): Promise<void> {
    this.stack.close();
    await this.device.close();
    await this.link.close();
  }
}
