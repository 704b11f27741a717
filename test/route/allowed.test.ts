/**
 * AllowedSources (the AllowedIPs-style source check, value = peer index) against the way the
 * pipeline checked sources before it existed: a Router whose main table held every peer's
 * prefixes as `dev <peer name>`, looked up with lookupTable('main', ...), its route's first
 * nexthop's device mapped back to the peer's index. Random peers and prefixes (nested, shared
 * between peers, both families, past the IPv4 switch to DIR-24-8), random addresses in and out
 * of them; a brute-force longest match as a third opinion.
 */
import { describe, expect, it } from 'vitest';
import { AllowedSources } from '../../src/route/allowed.ts';
import { Router } from '../../src/route/router.ts';
import type { Family, Prefix } from '../../src/wire/address-text.ts';
import { addressGen, keyOf, matches, randomPrefix, rng } from './helpers.ts';

/** The old source check: route the source through a main table of `dev <peer>` routes. */
class OldCheck {
  private readonly router = new Router();
  private readonly peerOfDev: number[] = [];
  constructor(peers: number) {
    for (let i = 0; i < peers; i++) this.peerOfDev[this.router.devIndex(`peer${i}`)] = i;
  }
  add(prefix: Prefix, peer: number): void {
    this.router.add({ prefix, dev: `peer${peer}` });
  }
  lookup(buf: Uint8Array, off: number, family: Family): number {
    const id = this.router.lookupTable('main', buf, off, family);
    if (id < 0) return -1;
    const nh = this.router.nexthopsOf(id)[0];
    return nh === undefined || nh.devIndex < 0 ? -1 : (this.peerOfDev[nh.devIndex] ?? -1);
  }
}

function run(seed: number, peers: number, count4: number, count6: number, defaults: boolean): { in: number; out: number; shared: number } {
  const rand = rng(seed);
  const gen4 = addressGen(rand, 4, 8);
  const gen6 = addressGen(rand, 6, 8);
  const old = new OldCheck(peers);
  const now = new AllowedSources();
  /** First peer of each prefix (the brute force's view). */
  const owner = new Map<string, { p: Prefix; peer: number }>();
  const added: Prefix[] = [];
  let shared = 0;
  const add = (family: Family) => {
    // now and then a prefix another peer already has
    let p = added.length > 0 && rand() < 0.05 ? added[Math.floor(rand() * added.length)]! : randomPrefix(rand, family === 4 ? gen4 : gen6, family);
    // a default route (every source allowed) only where asked, so "no peer" answers happen too
    while (p.length < 4 && !defaults) p = randomPrefix(rand, family === 4 ? gen4 : gen6, family);
    const peer = Math.floor(rand() * peers);
    if (owner.has(keyOf(p)) && owner.get(keyOf(p))!.peer !== peer) shared++;
    if (!owner.has(keyOf(p))) owner.set(keyOf(p), { p, peer });
    try {
      old.add(p, peer);
    } catch {
      /* the router refuses nothing here: same prefix, same metric is an append */
    }
    expect(now.add(p, peer)).toBe(!added.includes(p) && owner.get(keyOf(p))!.peer === peer && owner.get(keyOf(p))!.p === p);
    added.push(p);
  };
  for (let i = 0; i < count4; i++) add(4);
  for (let i = 0; i < count6; i++) add(6);
  expect(now.size).toBe(owner.size);

  const brute = (a: Uint8Array, family: Family): number => {
    let best = -1;
    let len = -1;
    for (const { p, peer } of owner.values()) {
      if (p.family === family && p.length > len && matches(p, a)) {
        best = peer;
        len = p.length;
      }
    }
    return best;
  };
  let inside = 0;
  let outside = 0;
  for (let i = 0; i < 3000; i++) {
    const family: Family = rand() < 0.5 ? 4 : 6;
    const w = family === 4 ? 4 : 16;
    const a = rand() < 0.8 ? (family === 4 ? gen4() : gen6()) : Uint8Array.from({ length: w }, () => Math.floor(rand() * 256));
    const buf = new Uint8Array(w + 9);
    const off = 1 + Math.floor(rand() * 8);
    buf.set(a, off);
    const want = old.lookup(buf, off, family);
    const got = now.lookup(buf, off, family);
    if (got !== want || (i % 10 === 0 && brute(a, family) !== want)) {
      throw new Error(`seed ${seed}: ${Buffer.from(a).toString('hex')} allowed ${got} old ${want} brute ${brute(a, family)}`);
    }
    if (want >= 0) inside++;
    else outside++;
  }
  return { in: inside, out: outside, shared };
}

describe('AllowedSources', () => {
  it('answers like the old three-hop check (main table, nexthop dev, peer by name): random prefixes and addresses', () => {
    let inside = 0;
    let outside = 0;
    let shared = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const r = run(seed * 7331, 1 + seed * 3, 400, 400, seed % 3 === 0);
      inside += r.in;
      outside += r.out;
      shared += r.shared;
    }
    // both outcomes, and prefixes two peers named, were exercised
    expect(inside).toBeGreaterThan(3000);
    expect(outside).toBeGreaterThan(1000);
    expect(shared).toBeGreaterThan(20);
  });

  it('past 16384 IPv4 prefixes (the switch to DIR-24-8) still the same answers', () => {
    const r = run(99, 12, 17000, 100, false);
    expect(r.in).toBeGreaterThan(500);
  });

  it('no prefixes: no peer; host bits and bad lengths are refused like routes are', () => {
    const a = new AllowedSources();
    expect(a.lookup(new Uint8Array(4), 0, 4)).toBe(-1);
    expect(a.lookup(new Uint8Array(16), 0, 6)).toBe(-1);
    expect(() => a.add({ family: 4, bytes: Uint8Array.of(10, 0, 0, 1), length: 8 }, 0)).toThrow(/host bits set in 10.0.0.1\/8/);
    expect(() => a.add({ family: 4, bytes: Uint8Array.of(10, 0, 0, 0), length: 33 }, 0)).toThrow(/invalid prefix length 33/);
    expect(() => a.add({ family: 6, bytes: new Uint8Array(16), length: 0 }, -1)).toThrow(/invalid peer index/);
    expect(a.size).toBe(0);
  });
});
