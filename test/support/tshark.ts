/**
 * tshark as an independent oracle: dissect a pcap with every checksum check on and IPv4/IPv6
 * reassembly on, and report every packet that is malformed, has a bad checksum, carries an
 * expert item of severity error (or warning, if asked), or is a fragment that never reassembled.
 *
 *   const v = tsharkVerdicts('out.pcap', { decodeUdpAsIp: [6080] });
 *   if (!v.available) return ctx.skip(v.skipReason);
 *   expect(v.problems).toEqual([]);
 *
 * Preferences used (tshark 4.0): ip.check_checksum, udp.check_checksum, tcp.check_checksum,
 * ip.defragment, ipv6.defragment. ICMP and ICMPv6 have no preference: their dissectors always
 * verify the checksum (expert group Checksum, severity Warning), which is why the checksum
 * *group* counts as a problem regardless of severity. `-2` (two passes) so that every fragment
 * knows the frame its datagram was reassembled in.
 *
 * Tunnels: `-d udp.port==N,ip` hands the UDP payload to the "ip" dissector, which dispatches on
 * the version nibble (IPv4 or IPv6), i.e. exactly GUE variant 1. tshark 4.0 has no GUE dissector,
 * so a GUE variant-0 control message on that port is reported as "Bogus IP version (2)": leave
 * control messages out of such pcaps or pass `ignore: [/Bogus IP version/]`.
 * Note: a zero UDP checksum over IPv6 is reported ("Illegal checksum value (0)", RFC 8200).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writePcap, LINKTYPE_RAW, type PcapInput } from './pcap.ts';

export const SEVERITY = { comment: 0x00100000, chat: 0x00200000, note: 0x00400000, warning: 0x00600000, error: 0x00800000 } as const;
export type Severity = keyof typeof SEVERITY;
const GROUP_NAMES: Record<number, string> = {
  0x01000000: 'checksum', 0x02000000: 'sequence', 0x03000000: 'response', 0x04000000: 'request',
  0x05000000: 'undecoded', 0x06000000: 'reassemble', 0x07000000: 'malformed', 0x08000000: 'debug',
  0x09000000: 'protocol', 0x0a000000: 'security', 0x0b000000: 'comment', 0x0c000000: 'decryption',
  0x0d000000: 'assumption', 0x0e000000: 'deprecated',
};

export interface TsharkOptions {
  /** UDP ports whose payload is a raw IPv4/IPv6 packet (GUE variant 1, IP-in-UDP). */
  decodeUdpAsIp?: number[];
  /** Lowest expert severity that counts as a problem (default 'error'). Checksum and malformed
   *  items always count. */
  failOn?: Severity;
  /** Expert messages matching any of these are not problems. */
  ignore?: RegExp[];
  /** A fragment whose datagram tshark never reassembled is a problem (default true). Only the
   *  outermost IP header is looked at, so ICMP errors quoting a fragment are not affected. */
  requireReassembly?: boolean;
  /** More tshark arguments (e.g. ['-o', 'tcp.analyze_sequence_numbers:FALSE']). */
  extraArgs?: string[];
  timeoutMs?: number;
}

export interface TsharkExpert {
  message: string;
  severity: Severity | string;
  group: string;
}

export interface TsharkPacket {
  frame: number;
  /** e.g. "raw:ip:udp:ip:ipv6:udp:data" */
  protocols: string;
  info: string;
  expert: TsharkExpert[];
  malformed: boolean;
  /** outermost IP header is a fragment (MF set or offset != 0, or an IPv6 fragment header) */
  fragment: boolean;
  /** frame number the datagram was reassembled in (this frame for the last one), 0 if never */
  reassembledIn: number;
  /** problems found in this packet, "frame N: ..." form */
  problems: string[];
}

export interface TsharkVerdict {
  /** false when tshark is missing: the caller should skip with skipReason */
  available: boolean;
  skipReason?: string;
  /** available and no problems */
  ok: boolean;
  problems: string[];
  perPacket: TsharkPacket[];
}

let cachedVersion: string | null | undefined;

/** "4.0.17" or null when tshark is not installed. */
export function tsharkVersion(): string | null {
  if (cachedVersion !== undefined) return cachedVersion;
  try {
    const out = execFileSync('tshark', ['--version'], { encoding: 'utf8', timeout: 20000, stdio: ['ignore', 'pipe', 'ignore'] });
    cachedVersion = /TShark \(Wireshark\) (\S+)/.exec(out)?.[1] ?? 'unknown';
  } catch {
    cachedVersion = null;
  }
  return cachedVersion;
}

export function tsharkAvailable(): boolean {
  return tsharkVersion() !== null;
}

export const TSHARK_MISSING = 'tshark not installed (apt-get install tshark); oracle check skipped';

/** The fixed tshark arguments for a checksum-validating, reassembling dissection. */
export function tsharkBaseArgs(opts: TsharkOptions = {}): string[] {
  const args = [
    '-n', '-2',
    '-o', 'ip.check_checksum:TRUE',
    '-o', 'udp.check_checksum:TRUE',
    '-o', 'tcp.check_checksum:TRUE',
    '-o', 'ip.defragment:TRUE',
    '-o', 'ipv6.defragment:TRUE',
  ];
  for (const port of opts.decodeUdpAsIp ?? []) args.push('-d', `udp.port==${port},ip`);
  if (opts.extraArgs) args.push(...opts.extraArgs);
  return args;
}

function runTshark(args: string[], timeoutMs: number): string {
  try {
    return execFileSync('tshark', args, {
      encoding: 'utf8', timeout: timeoutMs, maxBuffer: 512 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    const stderr = (err.stderr ?? '').split('\n').filter((l) => l && !l.includes('could be dangerous')).join(' ');
    throw new Error(`tshark ${args.join(' ')} failed: ${stderr || err.message}`);
  }
}

/**
 * Extract fields per frame (tshark -T fields -e ...). Each row holds, per field, all occurrences
 * (outermost first). Throws when tshark is missing or rejects the arguments.
 */
export function tsharkFields(pcapPath: string, fields: string[], opts: TsharkOptions = {}): string[][][] {
  return fieldsImpl(pcapPath, fields, opts, false);
}

/** Field names this tshark rejected (e.g. renamed in another version): dropped, values empty. */
const unknownFields = new Set<string>();

function fieldsImpl(pcapPath: string, fields: string[], opts: TsharkOptions, tolerateUnknown: boolean): string[][][] {
  const use = fields.filter((f) => !unknownFields.has(f));
  const args = ['-r', pcapPath, ...tsharkBaseArgs(opts), '-T', 'json'];
  for (const f of use) args.push('-e', f);
  let out: string;
  try {
    out = runTshark(args, opts.timeoutMs ?? 120000);
  } catch (e) {
    const msg = (e as Error).message;
    const bad = /Some fields aren't valid:(.*)$/.exec(msg)?.[1]?.trim().split(/\s+/).filter((f) => use.includes(f)) ?? [];
    if (!tolerateUnknown || bad.length === 0) throw e;
    for (const f of bad) unknownFields.add(f);
    return fieldsImpl(pcapPath, fields, opts, tolerateUnknown);
  }
  const docs = JSON.parse(out || '[]') as { _source: { layers: Record<string, string[]> } }[];
  return docs.map((d) => fields.map((f) => d._source.layers[f] ?? []));
}

const FIELDS = [
  'frame.number', 'frame.protocols', '_ws.col.Info',
  '_ws.expert.message', '_ws.expert.severity', '_ws.expert.group', '_ws.malformed',
  'ip.flags.mf', 'ip.frag_offset', 'ip.reassembled_in', 'ip.reassembled.length',
  'ipv6.fraghdr.more', 'ipv6.fraghdr.offset', 'ipv6.reassembled.in', 'ipv6.reassembled.length',
  // spellings other tshark versions may use; whichever this tshark rejects is dropped
  'ip.reassembled.in', 'ipv6.reassembled_in',
];

function severityName(v: number): string {
  for (const [k, s] of Object.entries(SEVERITY)) if (s === v) return k;
  return `0x${v.toString(16)}`;
}

/** Dissect `pcapPath` and collect every problem; see the file comment. */
export function tsharkVerdicts(pcapPath: string, opts: TsharkOptions = {}): TsharkVerdict {
  if (!tsharkAvailable()) return { available: false, skipReason: TSHARK_MISSING, ok: false, problems: [TSHARK_MISSING], perPacket: [] };
  const threshold = SEVERITY[opts.failOn ?? 'error'];
  const ignore = opts.ignore ?? [];
  const requireReassembly = opts.requireReassembly ?? true;
  const rows = fieldsImpl(pcapPath, FIELDS, opts, true);
  const problems: string[] = [];
  const perPacket: TsharkPacket[] = rows.map((r) => {
    const [num, protos, info, msgs, sevs, groups, malformed, mf, off, rinA, rlen, mf6, off6, rin6A, rlen6, rinB, rin6B] = r as string[][] & { length: 17 };
    const rin = rinA!.length ? rinA : rinB;
    const rin6 = rin6A!.length ? rin6A : rin6B;
    const frame = Number(num![0]);
    const expert: TsharkExpert[] = msgs!.map((m, i) => ({
      message: m,
      severity: severityName(Number(sevs![i])),
      group: GROUP_NAMES[Number(groups![i])] ?? `0x${Number(groups![i]).toString(16)}`,
    }));
    const pkt: TsharkPacket = {
      frame,
      protocols: protos![0] ?? '',
      info: info![0] ?? '',
      expert,
      malformed: malformed!.length > 0,
      fragment: false,
      reassembledIn: 0,
      problems: [],
    };
    msgs!.forEach((m, i) => {
      const sev = Number(sevs![i]);
      const grp = Number(groups![i]);
      if (ignore.some((re) => re.test(m))) return;
      if (grp === 0x01000000 || grp === 0x07000000 || sev >= threshold) {
        pkt.problems.push(`frame ${frame}: ${expert[i]!.group}/${expert[i]!.severity}: ${m} [${pkt.protocols}] ${pkt.info}`);
      }
    });
    if (pkt.malformed && !pkt.problems.some((p) => p.includes('Malformed'))) {
      pkt.problems.push(`frame ${frame}: malformed: ${malformed!.join(', ')} [${pkt.protocols}]`);
    }
    // outermost IP header: which family comes first in the protocol stack
    const stack = pkt.protocols.split(':');
    const firstIp = stack.find((p) => p === 'ip' || p === 'ipv6');
    if (firstIp === 'ip') {
      pkt.fragment = mf![0] === '1' || (off![0] !== undefined && off![0] !== '0');
      pkt.reassembledIn = rin![0] ? Number(rin![0]) : rlen!.length ? frame : 0;
    } else if (firstIp === 'ipv6' && stack[stack.indexOf('ipv6') + 1] === 'ipv6.fraghdr') {
      pkt.fragment = true;
      pkt.reassembledIn = rin6![0] ? Number(rin6![0]) : rlen6!.length ? frame : 0;
    }
    // a one-fragment "atomic fragment" (offset 0, M=0) is complete on its own
    const atomic6 = firstIp === 'ipv6' && pkt.fragment && mf6![0] === '0' && off6![0] === '0';
    if (requireReassembly && pkt.fragment && !pkt.reassembledIn && !atomic6) {
      pkt.problems.push(`frame ${frame}: fragment never reassembled [${pkt.protocols}] ${pkt.info}`);
    }
    problems.push(...pkt.problems);
    return pkt;
  });
  return { available: true, ok: problems.length === 0, problems, perPacket };
}

/** Write `packets` (raw IP) to a temporary pcap and run tsharkVerdicts on it. */
export function tsharkCheckPackets(packets: readonly PcapInput[], opts: TsharkOptions = {}, linktype = LINKTYPE_RAW): TsharkVerdict {
  if (!tsharkAvailable()) return { available: false, skipReason: TSHARK_MISSING, ok: false, problems: [TSHARK_MISSING], perPacket: [] };
  const dir = mkdtempSync(join(tmpdir(), 'ipferry-tshark-'));
  try {
    const file = join(dir, 'packets.pcap');
    writePcap(file, packets, linktype);
    return tsharkVerdicts(file, opts);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
