/**
 * Log events: what an endpoint tells its operator, one event per line, each with a name and
 * structured fields beside the sentence, so a text log reads well and a JSON log
 * (`--log-format json`, for journald and Loki) can be filtered by event and field.
 *
 *   start, stop, reload, reload-failed        the service life cycle
 *   peer-up, peer-down, keepalive-lost         liveness
 *   endpoint-resolved                          a peer's DNS name now has another address
 *   kernel-route                               a route through the TUN added or removed
 *   auth-failure, unknown-source,
 *   source-not-allowed, frag-needed            from the data plane (rate-limited there)
 *   drop                                       each drop reason, at debug level only
 *   events-suppressed                          the data plane's line budget held some back
 *   log                                        anything else (warnings, setup notes)
 *
 * The endpoint words the data plane's events here (it knows the peers by name).
 */
import type { DataPlaneEvent } from './dataplane.ts';

export type EventLevel = 'error' | 'warn' | 'info' | 'debug';

export type EventFields = Record<string, string | number | boolean | null>;

export interface LogEvent {
  level: EventLevel;
  /** The event's name (see above). */
  event: string;
  /** The line as a person reads it. */
  msg: string;
  /** Structured fields for JSON logs (the sentence says the same). */
  fields?: EventFields;
}

export type EventSink = (e: LogEvent) => void;

/**
 * An event sink over a plain line logger (what Endpoint's `log` option takes): warnings as
 * "warning: ..." lines, errors as "error: ...", debug events dropped.
 */
export function lineSink(log: (line: string) => void): EventSink {
  return (e) => {
    if (e.level === 'debug') return;
    if (e.level === 'warn' && !/^warning\b/i.test(e.msg)) log(`warning: ${e.msg}`);
    else if (e.level === 'error' && !/^error\b/i.test(e.msg)) log(`error: ${e.msg}`);
    else log(e.msg);
  };
}

/** A plain line as an event (lines starting with "warning:" are warnings). */
export function lineEvent(line: string): LogEvent {
  return { level: /^warning\b/i.test(line) ? 'warn' : /^error\b/i.test(line) ? 'error' : 'info', event: 'log', msg: line };
}

/** What the endpoint knows of a peer to word an event. */
export interface PeerNaming {
  /** Peer index -> name (undefined for a removed peer). */
  name(index: number): string | undefined;
  /** A peer whose endpoint has this host but another port ("[v6]" or "a.b.c.d", no port): name and endpoint text. */
  sameHost(host: string, port: number): { name: string; endpoint: string } | undefined;
}

/** The host part of "a.b.c.d:port" / "[v6]:port", and the port. */
function splitHostPort(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(text.slice(i + 1)) };
}

/** " (12 times in the last 10 s)" for a line standing for more than one occurrence. */
function repeatText(e: DataPlaneEvent): string {
  if (e.count <= 1) return '';
  return ` (${e.count} times in the last ${Math.max(1, Math.round(e.periodMs / 1000))} s)`;
}

/** A data-plane event as a log event. */
export function describeDataPlaneEvent(e: DataPlaneEvent, peers: PeerNaming): LogEvent {
  const name = e.peer >= 0 ? (peers.name(e.peer) ?? `#${e.peer}`) : null;
  const fields: EventFields = { count: e.count };
  if (e.periodMs > 0) fields.periodMs = e.periodMs;
  if (name !== null) fields.peer = name;
  for (const k of ['from', 'src', 'dst', 'mtu', 'size', 'reason'] as const) {
    const v = e[k];
    if (v !== undefined) fields[k] = v;
  }
  const again = repeatText(e);
  switch (e.event) {
    case 'auth-failure':
      return {
        level: 'warn',
        event: e.event,
        fields,
        msg: `peer ${name} (${e.from}): control message failed authentication, dropped (is the same key set on both ends?)${again}`,
      };
    case 'unknown-source': {
      const { host, port } = splitHostPort(e.from ?? '');
      const near = e.from === undefined ? undefined : peers.sameHost(host, port);
      if (near !== undefined) fields.nearPeer = near.name;
      const hint = near === undefined ? '' : `; peer ${near.name} is ${near.endpoint}: is it sending from another port (NAT)?`;
      return { level: 'warn', event: e.event, fields, msg: `datagram from unknown source ${e.from}, dropped: no peer has this endpoint${hint}${again}` };
    }
    case 'source-not-allowed':
      return {
        level: 'warn',
        event: e.event,
        fields,
        msg: `peer ${name} sent a packet from ${e.src}, outside its routes: dropped (add the prefix to the peer's routes here if it belongs there)${again}`,
      };
    case 'frag-needed': {
      const v6 = (e.src ?? '').includes(':');
      return {
        level: 'info',
        event: e.event,
        fields,
        msg: `packet ${e.src} > ${e.dst} of ${e.size} bytes too big for peer ${name} (mtu ${e.mtu}): sent ICMP${v6 ? 'v6 packet too big' : ' fragmentation needed'} to ${e.src}${again}`,
      };
    }
    case 'drop':
      return { level: 'debug', event: e.event, fields, msg: `drop: ${e.reason}${name !== null ? ` (peer ${name})` : ''}${again}` };
    case 'events-suppressed':
      return {
        level: 'warn',
        event: e.event,
        fields,
        msg: `${e.count} more data-plane events not logged in the last ${Math.max(1, Math.round(e.periodMs / 1000))} s (log rate limit)`,
      };
    default:
      return { level: 'info', event: String((e as { event: unknown }).event), fields, msg: `${String((e as { event: unknown }).event)}${again}` };
  }
}
