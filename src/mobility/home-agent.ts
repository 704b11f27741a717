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
 * Driving it: `handleUpdate()` for every BINDING_UPDATE datagram the endpoint receives, and
 * `expire()` at the time it returns (or once a second). Hooks (RegistrarHooks) install, move and
 * remove the node's route; the endpoint reads `cache` for the care-of and bicasting.
 */
import type { Prefix } from '../wire/address-text.ts';
import { BindingStatus, type BindingUpdate } from '../wire/binding.ts';
import type { MobilityIo } from './io.ts';
import { BindingRegistrar, inPrefixes, type RegistrarHooks, type RegistrarOptions } from './registrar.ts';

export interface HomeAgentOptions extends RegistrarOptions {
  homePrefixes: readonly Prefix[];
}

export class HomeAgent extends BindingRegistrar {
  readonly homePrefixes: readonly Prefix[];

  constructor(opts: HomeAgentOptions, io: MobilityIo, hooks: RegistrarHooks = {}) {
    super(opts, io, hooks);
    this.homePrefixes = opts.homePrefixes;
  }

  protected admit(node: number, bu: BindingUpdate): BindingStatus {
    if (!bu.homeRegistration) return BindingStatus.AdministrativelyProhibited;
    const fam = bu.homeFamily;
    if (!inPrefixes(this.homePrefixes, fam, bu.buf, bu.homeOffset)) return BindingStatus.NotHomeSubnet;
    if (!this.nodes.homeEquals(node, fam, bu.buf, bu.homeOffset)) return BindingStatus.NotHomeAgentForThisNode;
    return BindingStatus.Accepted;
  }
}
