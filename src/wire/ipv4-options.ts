/**
 * IPv4 header options (RFC 791 section 3.1): a walker that allocates nothing, per-option
 * validation as Linux's ip_options_compile() does it for received packets, and the copy of the
 * options that fragments must carry (the "copied" flag, bit 7 of the option type).
 *
 * Recognised: EOL (0), NOP (1), record route (7), timestamp (68, RFC 791), loose source route
 * (131), strict source route (137), router alert (148, RFC 2113). Any other type is walked as
 * type-length-value and accepted when its length is sane (Linux ignores unknown options on
 * receive).
 *
 * All functions take (buf, off, end): the options area is buf[off, end) (end = header end).
 */
import { DropReason } from '../base/drop-reason.ts';

export const IPV4_OPT_EOL = 0;
export const IPV4_OPT_NOP = 1;
export const IPV4_OPT_RR = 7;
export const IPV4_OPT_TS = 68;
export const IPV4_OPT_LSRR = 131;
export const IPV4_OPT_SSRR = 137;
export const IPV4_OPT_RA = 148;

/** Timestamp option flag values (low nibble of byte 3). */
export const IPV4_TS_ONLY = 0;
export const IPV4_TS_AND_ADDR = 1;
export const IPV4_TS_PRESPEC = 3;

/** Maximum options area: IHL 15 -> 60-byte header -> 40 bytes of options. */
export const IPV4_MAX_OPTIONS = 40;

/** Bit 7 of the type: the option must be copied into every fragment. */
export function optionCopied(type: number): boolean {
  return (type & 0x80) !== 0;
}

/** Option class (bits 6-5): 0 control, 2 debugging and measurement. */
export function optionClass(type: number): number {
  return (type >> 5) & 3;
}

/** Option number (bits 4-0). */
export function optionNumber(type: number): number {
  return type & 0x1f;
}

/**
 * Length in bytes of the option at buf[off] (1 for EOL/NOP, else its length byte), or -1 when the
 * length byte is missing, below 2, or runs past `end`.
 */
export function optionLength(buf: Uint8Array, off: number, end: number): number {
  if (off >= end) return -1;
  const t = buf[off]!;
  if (t === IPV4_OPT_EOL || t === IPV4_OPT_NOP) return 1;
  if (off + 1 >= end) return -1;
  const l = buf[off + 1]!;
  if (l < 2 || off + l > end) return -1;
  return l;
}

/**
 * Offset of the option after the one at buf[off]: `end` after EOL (the rest is padding) or after
 * the last option, or -1 when the option at `off` is malformed (bad length). Loop shape:
 *   for (let o = off; o < end && o >= 0; o = nextOption(buf, o, end)) { ... buf[o] ... }
 */
export function nextOption(buf: Uint8Array, off: number, end: number): number {
  if (off >= end) return end;
  if (buf[off] === IPV4_OPT_EOL) return end;
  const l = optionLength(buf, off, end);
  return l < 0 ? -1 : off + l;
}

/**
 * A reusable cursor over an options area (no allocation per packet: keep one per pipeline stage).
 *   c.reset(buf, off, end); while (c.next()) { c.type, c.offset, c.length } ; c.error
 * next() stops at EOL, at the end, or at the first malformed option (error = BadOptionLength,
 * errorOffset = offset of the bad byte relative to `buf`).
 */
export class Ipv4OptionCursor {
  buf: Uint8Array = EMPTY;
  /** Offset of the current option (valid after next() returned true). */
  offset = 0;
  /** Type byte of the current option. */
  type = 0;
  /** Total length of the current option (1 for NOP). */
  length = 0;
  /** None, or why the walk stopped early. */
  error: DropReason = DropReason.None;
  /** Offset in `buf` of the byte that made the walk fail (for ICMP parameter problem). */
  errorOffset = -1;
  private pos = 0;
  private end = 0;

  reset(buf: Uint8Array, off: number, end: number): this {
    this.buf = buf;
    this.pos = off;
    this.end = end;
    this.offset = off;
    this.type = 0;
    this.length = 0;
    this.error = DropReason.None;
    this.errorOffset = -1;
    return this;
  }

  next(): boolean {
    const p = this.pos;
    if (p >= this.end || this.error !== DropReason.None) return false;
    const t = this.buf[p]!;
    if (t === IPV4_OPT_EOL) {
      this.pos = this.end;
      return false;
    }
    const l = optionLength(this.buf, p, this.end);
    if (l < 0) {
      this.error = DropReason.BadOptionLength;
      this.errorOffset = p + 1;
      this.pos = this.end;
      return false;
    }
    this.offset = p;
    this.type = t;
    this.length = l;
    this.pos = p + l;
    return true;
  }

  /** True when the current option must be copied into fragments. */
  get copied(): boolean {
    return (this.type & 0x80) !== 0;
  }
}

const EMPTY = new Uint8Array(0);

/** Offset (relative to buf) of the byte that made the last failed validateOptions() call fail. */
export let lastOptionErrorOffset = -1;

/**
 * Validate an options area the way Linux's ip_options_compile() does on receive: TLV lengths,
 * pointers of record route / source route / timestamp, timestamp flags and overflow, router
 * alert length, and at most one RR, one TS and one source route. Returns None, BadOptionLength
 * (a length byte is wrong) or BadOption (a pointer, flag or duplicate is wrong), and sets
 * lastOptionErrorOffset to the offending byte (the ICMP parameter-problem pointer is that minus
 * the header offset). Never throws, allocates nothing.
 */
export function validateOptions(buf: Uint8Array, off: number, end: number): DropReason {
  let seen = 0; // bit 0 RR, bit 1 TS, bit 2 source route
  let p = off;
  while (p < end) {
    const t = buf[p]!;
    if (t === IPV4_OPT_EOL) break;
    if (t === IPV4_OPT_NOP) {
      p++;
      continue;
    }
    if (p + 1 >= end) return fail(DropReason.BadOptionLength, p);
    const l = buf[p + 1]!;
    if (l < 2 || p + l > end) return fail(DropReason.BadOptionLength, p + 1);
    switch (t) {
      case IPV4_OPT_RR:
      case IPV4_OPT_LSRR:
      case IPV4_OPT_SSRR: {
        const bit = t === IPV4_OPT_RR ? 1 : 4;
        if (seen & bit) return fail(DropReason.BadOption, p);
        seen |= bit;
        if (l < 3) return fail(DropReason.BadOptionLength, p + 1);
        const ptr = buf[p + 2]!;
        if (ptr < 4) return fail(DropReason.BadOption, p + 2);
        // A pointer inside the option must leave room for a whole address; past it means full.
        if (ptr <= l && ptr + 3 > l) return fail(DropReason.BadOption, p + 2);
        break;
      }
      case IPV4_OPT_TS: {
        if (seen & 2) return fail(DropReason.BadOption, p);
        seen |= 2;
        if (l < 4) return fail(DropReason.BadOptionLength, p + 1);
        const ptr = buf[p + 2]!;
        if (ptr < 5) return fail(DropReason.BadOption, p + 2);
        const flag = buf[p + 3]! & 0x0f;
        if (flag !== IPV4_TS_ONLY && flag !== IPV4_TS_AND_ADDR && flag !== IPV4_TS_PRESPEC) {
          return fail(DropReason.BadOption, p + 3);
        }
        if (ptr <= l) {
          const need = flag === IPV4_TS_ONLY ? 3 : 7;
          if (ptr + need > l) return fail(DropReason.BadOption, p + 2);
        } else if ((buf[p + 3]! & 0xf0) === 0xf0) {
          // Full and the overflow counter would wrap: RFC 791 says the datagram is in error.
          return fail(DropReason.BadOption, p + 3);
        }
        break;
      }
      case IPV4_OPT_RA:
        if (l < 4) return fail(DropReason.BadOptionLength, p + 1);
        break;
      default:
        break;
    }
    p += l;
  }
  return DropReason.None;
}

function fail(r: DropReason, at: number): DropReason {
  lastOptionErrorOffset = at;
  return r;
}

/** Find the first option of `type` in buf[off, end); its offset or -1 (stops at a bad length). */
export function findOption(buf: Uint8Array, off: number, end: number, type: number): number {
  let p = off;
  while (p < end) {
    const t = buf[p]!;
    if (t === IPV4_OPT_EOL) return -1;
    if (t === type) return p;
    const l = optionLength(buf, p, end);
    if (l < 0) return -1;
    p += l;
  }
  return -1;
}

/** Bytes copyOptionsForFragment() would write (a multiple of 4, at most 40). */
export function copiedOptionsLength(src: Uint8Array, optOff: number, optLen: number): number {
  const end = optOff + optLen;
  let n = 0;
  let p = optOff;
  while (p < end) {
    const t = src[p]!;
    if (t === IPV4_OPT_EOL) break;
    const l = optionLength(src, p, end);
    if (l < 0) break;
    if (t & 0x80) n += l;
    p += l;
  }
  return (n + 3) & ~3;
}

/**
 * Write the options that every fragment after the first must carry (RFC 791: copied flag set;
 * LSRR, SSRR, and anything else with bit 7) to dst[dstOff...], dropping NOP/EOL and
 * non-copied options, padded with zero bytes (EOL) to a multiple of 4. Returns the bytes written
 * (0 when nothing is copied). Stops at the first malformed option (check() rejects those first).
 * dst must have room for copiedOptionsLength() bytes (at most 40).
 */
export function copyOptionsForFragment(
  src: Uint8Array,
  optOff: number,
  optLen: number,
  dst: Uint8Array,
  dstOff: number,
): number {
  const end = optOff + optLen;
  let w = dstOff;
  let p = optOff;
  while (p < end) {
    const t = src[p]!;
    if (t === IPV4_OPT_EOL) break;
    const l = optionLength(src, p, end);
    if (l < 0) break;
    if (t & 0x80) {
      for (let i = 0; i < l; i++) dst[w + i] = src[p + i]!;
      w += l;
    }
    p += l;
  }
  while ((w - dstOff) & 3) dst[w++] = 0;
  return w - dstOff;
}

/** Name of an option type for describe(). */
export function optionName(type: number): string {
  switch (type) {
    case IPV4_OPT_EOL:
      return 'EOL';
    case IPV4_OPT_NOP:
      return 'NOP';
    case IPV4_OPT_RR:
      return 'RR';
    case IPV4_OPT_TS:
      return 'TS';
    case IPV4_OPT_LSRR:
      return 'LSRR';
    case IPV4_OPT_SSRR:
      return 'SSRR';
    case IPV4_OPT_RA:
      return 'RA';
    default:
      return `unknown-${type}`;
  }
}

/** tcpdump-ish text of an options area: "NOP,RR{10.0.0.1,},RA value 0". Never throws. */
export function describeOptions(buf: Uint8Array, off: number, end: number): string {
  const parts: string[] = [];
  let p = off;
  while (p < end) {
    const t = buf[p]!;
    if (t === IPV4_OPT_EOL) {
      parts.push('EOL');
      break;
    }
    const l = optionLength(buf, p, end);
    if (l < 0) {
      parts.push(`${optionName(t)} [bad length]`);
      break;
    }
    let s = optionName(t);
    if (t === IPV4_OPT_RR || t === IPV4_OPT_LSRR || t === IPV4_OPT_SSRR) {
      const addrs: string[] = [];
      const ptr = buf[p + 2]!;
      for (let a = 3; a + 4 <= l; a += 4) {
        const q = p + a;
        const mark = a + 1 === ptr ? '#' : '';
        addrs.push(`${buf[q]}.${buf[q + 1]}.${buf[q + 2]}.${buf[q + 3]}${mark}`);
      }
      s += `{${addrs.join(' ')}}`;
    } else if (t === IPV4_OPT_TS && l >= 4) {
      s += `{ptr ${buf[p + 2]}, oflw ${buf[p + 3]! >> 4}, flag ${buf[p + 3]! & 15}}`;
    } else if (t === IPV4_OPT_RA && l >= 4) {
      s += ` value ${(buf[p + 2]! << 8) | buf[p + 3]!}`;
    } else if (t !== IPV4_OPT_NOP) {
      s += ` len ${l}`;
    }
    parts.push(s);
    p += l;
  }
  return parts.join(',');
}
