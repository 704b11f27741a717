/**
 * Home agent role: home registrations (H set) from the configured mobile nodes, for home
 * addresses inside the home prefixes. Everything else of the update path (authentication,
 * replay, rate, sequence, cap, cache, acks, hooks) is BindingRegistrar's.
 *
 * Rejections, RFC 6275 status codes:
 *  - 132 not home subnet: the home address is outside every home prefix;
 *  - 133 not home agent for this node: inside, but not the address configured for this node;
 *  - 129 administratively prohibited: a correspondent registration (H clear) sent here;
 *  - 135 / 130 (sequence, cache full) come from the registrar.
 * Unknown nodes and bad MACs are not answered (no key to sign with; no reflection).
 *
 * Refresh requests (ctype 133, RFC 6275 6.1.2): a node's keepalive that authenticates with its
 * key but comes from an address the node has no binding at (we restarted and lost the cache, or
 * the node moved without noticing) gets a signed BINDING_REFRESH_REQUEST back, within the node's
 * update rate, and the node re-registers at once. Keepalives have their own replay window (the
 * node's keepalives and updates share one counter, but either kind may arrive first).
 *
 * Driving it: `handleUpdate()` for every BINDING_UPDATE datagram the endpoint receives,
 * `handleKeepalive()` for a keepalive of no known peer's address, and `expire()` at the time it
 * returns (or once a second). Hooks (RegistrarHooks) install, move and remove the node's route;
 * the endpoint reads `cache` for the care-of and bicasting.
 */
import { DropReason } from '../base/drop-reason.ts';
import { ReplayVerdict, ReplayWindow } from '../tunnel/replay.ts';
import type { Prefix } from '../wire/address-text.ts';
import { BindingStatus, emitRefreshRequest, refreshRequestLength, type BindingUpdate, type SocketAddress } from '../wire/binding.ts';
import { ControlMessage, CTYPE_KEEPALIVE } from '../wire/gue.ts';
import { MobilityVerdict, sameSocketAddress, type MobilityIo } from './io.ts';
import { BindingRegistrar, inPrefixes, type RegistrarHooks, type RegistrarOptions } from './registrar.ts';
import { MobilityCounter as C } from './stats.ts';

export interface HomeAgentOptions extends RegistrarOptions {
  homePrefixes: readonly Prefix[];
}

export class HomeAgent extends BindingRegistrar {
  readonly homePrefixes: readonly Prefix[];
  private readonly keepaliveReplay: ReplayWindow;
  private readonly ka = new ControlMessage(Buffer.alloc(0), 0, 0);
  private readonly brrOut = Buffer.alloc(refreshRequestLength({ homeFamily: 6, home: new Uint8Array(16) }));

  constructor(opts: HomeAgentOptions, io: MobilityIo, hooks: RegistrarHooks = {}) {
    super(opts, io, hooks);
    this.homePrefixes = opts.homePrefixes;
    this.keepaliveReplay = new ReplayWindow(this.nodes.count, this.freshnessMs);
  }

  /**
   * A keepalive datagram from `from`, an address that is no bound node's care-of: if a node's key
   * authenticates it (fresh), ask that node to register (a refresh request, within its rate).
   */
  handleKeepalive(buf: Buffer, off: number, len: number, from: SocketAddress): MobilityVerdict {
    const st = this.stats;
    const m = this.ka.wrap(buf, off, len);
    if (m.check() !== DropReason.None || m.ctype !== CTYPE_KEEPALIVE || !m.hasMac) {
      st.inc(C.NKeepalivesDropped);
      return MobilityVerdict.DropInvalid;
    }
    const node = this.nodes.authenticate(buf, off, len, m.senderId);
    if (node < 0) {
      st.inc(C.NKeepalivesDropped);
      return MobilityVerdict.DropAuth;
    }
    const now = this.io.clock.now();
    const v = this.keepaliveReplay.check(node, m.epoch, m.counterHi, m.counterLo, now);
    if (v !== ReplayVerdict.Fresh) {
      st.inc(C.NKeepalivesDropped);
      return v === ReplayVerdict.Stale ? MobilityVerdict.DropStale : MobilityVerdict.DropReplay;
    }
    this.keepaliveReplay.accept(node, m.epoch, m.counterHi, m.counterLo);
    const slot = this.cache.slotOf(node);
    if (slot >= 0 && sameSocketAddress(this.cache.careOf(slot), from)) return MobilityVerdict.Accepted;
    st.inc(C.NKeepalivesUnbound);
    if (!this.rate.take(node, now)) return MobilityVerdict.DropRate;
    this.sendRefreshRequest(node, from);
    return MobilityVerdict.Accepted;
  }

  /** Ask `node` (at `to`) to send a binding update now. */
  sendRefreshRequest(node: number, to: SocketAddress): void {
    const home = this.nodes.home(node);
    const n = emitRefreshRequest(
      this.brrOut, 0, { senderId: this.senderId, counter: this.counter.next() },
      { homeFamily: this.nodes.homeFamily[node] as 4 | 6, home }, this.nodes.keys[node]!,
    );
    this.stats.inc(C.NBindRqsSent);
    this.io.sender.send(this.brrOut, 0, n, to);
  }

  protected admit(node: number, bu: BindingUpdate): BindingStatus {
    if (!bu.homeRegistration) return BindingStatus.AdministrativelyProhibited;
    const fam = bu.homeFamily;
    if (!inPrefixes(this.homePrefixes, fam, bu.buf, bu.homeOffset)) return BindingStatus.NotHomeSubnet;
    if (!this.nodes.homeEquals(node, fam, bu.buf, bu.homeOffset)) return BindingStatus.NotHomeAgentForThisNode;
    return BindingStatus.Accepted;
  }
}
