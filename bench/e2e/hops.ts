/**
 * Per-hop latency inside the gateways of a tunnel: tcpdump -tt on `-i any` in a gateway while
 * pinging through it. Per ICMP echo on the tunnel's TUN device, the matching underlay datagram on
 * the veth: kernel -> TUN (the echo leaves the kernel on the TUN) to the datagram out on the
 * veth is the endpoint's TUN -> UDP time; the datagram in on the veth to the echo written onto
 * the TUN is its UDP -> TUN time. Works for any TUN-over-UDP tunnel (ipferry, OpenVPN).
 */
import { spawn } from 'node:child_process';
import type { SiteTopology } from '../../examples/site-topology.ts';

/** Which lines belong to one tunnel: its TUN device, the underlay veth and the UDP port. */
export interface HopFilter {
  tun: string;
  wan: string;
  port: number;
}

/** Delays in microseconds: TUN -> UDP (out) and UDP -> TUN (in), one per matched echo. */
export interface HopDelays {
  out: number[];
  in: number[];
}

/** The longest delay still matched (20 ms): a packet later than that is not this echo's. */
const MATCH_WINDOW_US = 20_000;

/**
 * Match tcpdump -tt -n (`-i any`) lines. Encapsulated packets show on the veth as UDP with no
 * inner header, so they are matched by time: the nearest datagram out after an echo left on the
 * TUN, the nearest datagram in before an echo arrived on the TUN.
 */
export function hopDelays(lines: readonly string[], f: HopFilter): HopDelays {
  const tun: { t: number; dir: string }[] = [];
  const wan: { t: number; dir: string }[] = [];
  const port = new RegExp(`\\.${f.port}\\b`);
  for (const l of lines) {
    const m = /^(?<sec>\d+)\.(?<usec>\d{6}) (?<dev>\S+)\s+(?<dir>In|Out)\s+IP (?<src>\S+) > (?<dst>\S+): (?<what>.*)$/.exec(l);
    if (!m) continue;
    const g = m.groups!;
    // integer microseconds: exact, where the float 1796518254.552445 is not
    const t = Number(g.sec) * 1e6 + Number(g.usec);
    if (g.dev === f.tun && /ICMP echo/.test(g.what!)) tun.push({ t, dir: g.dir! });
    // any datagram on the port: tcpdump may decode it as something else (6081 prints as Geneve)
    else if (g.dev === f.wan && !/^ICMP/.test(g.what!) && port.test(`${g.src} ${g.dst}`)) wan.push({ t, dir: g.dir! });
  }
  const out: number[] = [];
  const inn: number[] = [];
  for (const e of tun) {
    if (e.dir === 'Out') {
      const w = wan.find((x) => x.dir === 'Out' && x.t >= e.t && x.t - e.t < MATCH_WINDOW_US);
      if (w) out.push(w.t - e.t);
    } else {
      let best: number | null = null;
      for (const x of wan) if (x.dir === 'In' && x.t <= e.t && e.t - x.t < MATCH_WINDOW_US) best = x.t;
      if (best !== null) inn.push(e.t - best);
    }
  }
  return { out, in: inn };
}

/**
 * tcpdump -tt -i any in a namespace until stop() (at most `maxPackets`, killed after 60 s);
 * `ready` resolves once it listens (its "listening on" line, or after 3 s).
 */
export function captureHops(
  topo: SiteTopology,
  ns: string,
  filter: string,
  maxPackets = 4000,
): { ready: Promise<void>; stop: () => Promise<string[]> } {
  const child = topo.spawn(ns, ['tcpdump', '-i', 'any', '-tt', '-n', '-l', '-c', String(maxPackets), filter]);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const closed = new Promise<void>((r) => child.once('close', () => r()));
  const ready = new Promise<void>((resolve) => {
    const t = setTimeout(resolve, 3000);
    child.stderr?.on('data', (d: Buffer) => {
      if (/listening on/.test(d.toString())) {
        clearTimeout(t);
        resolve();
      }
    });
    void closed.then(() => {
      clearTimeout(t);
      resolve();
    });
  });
  return {
    ready,
    stop: async () => {
      await new Promise((r) => setTimeout(r, 300)); // the last packets through tcpdump's buffer
      child.kill('SIGINT');
      await closed;
      clearTimeout(timer);
      return out.split('\n');
    },
  };
}
