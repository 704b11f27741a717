/**
 * The library events of mobility (Endpoint 'binding' and 'handover'), plain JSON-safe data.
 */

/** A binding changed at a home agent or a route-optimising correspondent. */
export interface BindingEvent {
  role: 'home-agent' | 'correspondent';
  /** The mobile node's name and home address. */
  node: string;
  home: string;
  /**
   * added / moved / removed (home agent and correspondent); direct: the correspondent validated
   * the path and sends to the care-of itself; via-home-agent: it stopped doing so.
   */
  change: 'added' | 'moved' | 'removed' | 'direct' | 'via-home-agent';
  /** Care-of address:port as observed (null when removed). */
  careOf: string | null;
  /** The care-of before a move. */
  previous: string | null;
  /** removed: expired / deregistered / removed; via-home-agent: why. */
  reason: string | null;
  /** The observed care-of differs from the one the node claimed (a NAT is in between). */
  nat: boolean;
  /** Seconds granted. */
  lifetime: number;
  /** Epoch ms. */
  at: number;
}

/** A mobile node's point of attachment changed (or a home agent saw one of its nodes move). */
export interface HandoverEvent {
  role: 'mobile-node' | 'home-agent';
  node: string;
  /** Care-of address:port before and after; null = at home. */
  from: string | null;
  to: string | null;
  /**
   * Mobile node: ms from noticing the change to the home agent's ack (the binding points at the
   * new care-of: traffic flows again). Home agent: null.
   */
  gapMs: number | null;
  /** Epoch ms the node noticed the change (mobile node), else null. */
  detectedAt: number | null;
  /** How it was noticed: netlink (ip monitor), poll, send-error, refresh-request, rebind, start. */
  detection: string | null;
  /** Epoch ms of the ack (mobile node) / the update (home agent). */
  at: number;
  nat: boolean;
}
