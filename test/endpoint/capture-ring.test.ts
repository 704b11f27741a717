/**
 * The capture ring: records come out in order and intact across many wrap-arounds, with the
 * writer and the reader as separate views of one SharedArrayBuffer (as across the worker
 * boundary); a full ring drops and counts instead of growing, and takes records again once the
 * reader caught up.
 */
import { describe, expect, it } from 'vitest';
import { CAPTURE_IN, CAPTURE_OUT, CaptureRing, REC_HEADER } from '../../src/endpoint/capture-ring.ts';

function packet(seq: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (seq * 31 + i) & 0xff;
  if (len >= 4) new DataView(b.buffer).setUint32(0, seq);
  return b;
}

describe('CaptureRing', () => {
  it('in order and intact across wrap-arounds, writer and reader on one SharedArrayBuffer', () => {
    const reader = new CaptureRing(4096);
    const writer = new CaptureRing(reader.buffer);
    const addr = Uint8Array.of(192, 0, 2, 7);
    let next = 0;
    let seen = 0;
    const check = (): void => {
      reader.drain((r) => {
        const want = packet(seen, Math.min(r.originalLength, 300));
        expect(r.originalLength).toBe(40 + (seen % 500));
        expect(r.capturedLength).toBe(Math.min(r.originalLength, 300));
        expect(Buffer.from(r.bytes.subarray(r.dataOffset, r.dataOffset + r.capturedLength)).equals(Buffer.from(want))).toBe(true);
        expect(r.direction).toBe(seen % 2 === 0 ? CAPTURE_IN : CAPTURE_OUT);
        expect(r.family).toBe(4);
        expect(r.port).toBe(6080 + (seen % 7));
        expect([...r.bytes.subarray(r.addressOffset, r.addressOffset + 4)]).toEqual([192, 0, 2, 7]);
        expect(r.timeUs).toBe(1_000_000 + seen);
        seen++;
      });
    };
    // 2000 records of 40..539 bytes (snaplen 300) through 4 KiB: hundreds of wrap-arounds
    while (next < 2000) {
      for (let k = 0; k < 5 && next < 2000; k++) {
        const len = 40 + (next % 500);
        const ok = writer.write(next % 2 === 0 ? CAPTURE_IN : CAPTURE_OUT, packet(next, len), 0, len, 300, 4, addr, 6080 + (next % 7), 1_000_000 + next);
        expect(ok).toBe(true);
        next++;
      }
      check();
    }
    expect(seen).toBe(2000);
    expect(writer.drops).toBe(0);
    expect(reader.packets).toBe(2000);
  });

  it('a reader that does not keep up: the ring drops and counts, then takes records again', () => {
    const ring = new CaptureRing(4096);
    const p = packet(1, 200);
    const per = (REC_HEADER + 200 + 7) & ~7;
    let ok = 0;
    for (let i = 0; i < 100; i++) if (ring.write(CAPTURE_IN, p, 0, 200, 65535, 0, null, 0, i)) ok++;
    expect(ok).toBe(Math.floor((4096 - 1) / per));
    expect(ring.drops).toBe(100 - ok);
    let drained = 0;
    ring.drain(() => drained++);
    expect(drained).toBe(ok);
    expect(ring.write(CAPTURE_IN, p, 0, 200, 65535, 0, null, 0, 0)).toBe(true);
    expect(ring.drops).toBe(100 - ok);
  });
});
