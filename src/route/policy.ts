/**
 * Tables and policy rules: routing tables by number and name (like /etc/iproute2/rt_tables:
 * main 254, local 255, default 253; unknown names get numbers from 10000), each created on first
 * use, and the `ip rule` list in priority order in front of them (rules.ts compiles and matches
 * one rule). Starts with Linux's three default rules: 0 lookup local, 32766 main, 32767 default.
 */
import { compileRule, parseRule } from './rules.ts';
import type { Rule, RuleSpec } from './rules.ts';
import { RouteTable } from './table.ts';
import { RouteError } from './types.ts';

export const TABLE_MAIN = 254;
export const TABLE_LOCAL = 255;
export const TABLE_DEFAULT = 253;

/** A rule that looks its table up for every packet (no selectors, no `not`). */
function unconditionalLookup(r: Rule): boolean {
  return (
    r.action === 'lookup' &&
    r.family === 0 &&
    !r.not &&
    r.from === null &&
    r.to === null &&
    r.ipproto < 0 &&
    r.sportLo < 0 &&
    r.dportLo < 0
  );
}

export class Policy {
  /** Tables that exist, by id. */
  readonly tables = new Map<number, RouteTable>();
  private readonly tableIds = new Map<string, number>([
    ['main', TABLE_MAIN],
    ['local', TABLE_LOCAL],
    ['default', TABLE_DEFAULT],
    ['unspec', 0],
  ]);
  private nextTableId = 10000;
  /** The rules in priority order; replaced (never changed in place) on every change. */
  rules: readonly Rule[] = [];
  /** Every rule looks a table up for every packet (the defaults): batch lookups work per table. */
  simple = true;
  /** Called after the rule list was replaced. */
  onChange: (() => void) | null = null;

  constructor() {
    this.addRule({ priority: 0, table: 'local' });
    this.addRule({ priority: 32766, table: 'main' });
    this.addRule({ priority: 32767, table: 'default' });
  }

  // ---------------------------------------------------------------- tables

  /** Table id for a name or number; unknown names get a new id when `create`. */
  tableId(t: string | number, create = true): number {
    if (typeof t === 'number') {
      if (!Number.isInteger(t) || t < 0 || t > 0xffffffff) throw new RouteError(`invalid table ${t}`);
      return t;
    }
    if (/^\d{1,10}$/.test(t)) return this.tableId(Number(t));
    const id = this.tableIds.get(t);
    if (id !== undefined) return id;
    if (!create) throw new RouteError(`unknown table ${t}`);
    if (!/^[A-Za-z_][\w.-]*$/.test(t)) throw new RouteError(`invalid table name ${t}`);
    return this.defineTable(t, this.nextTableId++);
  }

  /** Name a table (like a line of /etc/iproute2/rt_tables). */
  defineTable(name: string, id: number): number {
    const old = this.tableIds.get(name);
    if (old !== undefined && old !== id) throw new RouteError(`table ${name} is already ${old}`);
    this.tableIds.set(name, id);
    return id;
  }

  tableName(id: number): string {
    for (const [n, i] of this.tableIds) if (i === id && n !== 'unspec') return n;
    return String(id);
  }

  /** The table object (created on first use). */
  table(t: string | number = 'main'): RouteTable {
    const id = this.tableId(t);
    let tab = this.tables.get(id);
    if (!tab) {
      tab = new RouteTable(id, this.tableName(id));
      this.tables.set(id, tab);
      for (const r of this.rules) if (r.action === 'lookup' && r.table === id) r.tableRef = tab;
    }
    return tab;
  }

  /** An existing table by name or number, or undefined (never creates one). */
  find(t: string | number): RouteTable | undefined {
    return this.tables.get(this.tableId(t, false));
  }

  // ---------------------------------------------------------------- rules

  /** Add a policy rule (object or `ip rule` text). Returns its priority. */
  addRule(spec: RuleSpec | string): number {
    const s = typeof spec === 'string' ? parseRule(spec) : spec;
    let prio = s.priority;
    if (prio === undefined) {
      // Like ip rule: one below the lowest priority above 0.
      const above = this.rules.filter((r) => r.priority > 0).map((r) => r.priority);
      prio = Math.max(0, (above.length ? Math.min(...above) : 32766) - 1);
    }
    const rule = compileRule(s, prio, (t) => this.tableId(t));
    if (rule.action === 'lookup') {
      rule.tableRef = this.tables.get(rule.table) ?? null;
    }
    // Stable: after existing rules of the same priority.
    let at = this.rules.length;
    while (at > 0 && this.rules[at - 1]!.priority > prio) at--;
    this.rules = [...this.rules.slice(0, at), rule, ...this.rules.slice(at)];
    this.simple = this.rules.every(unconditionalLookup);
    this.onChange?.();
    return prio;
  }

  /**
   * Replace the whole rule list at once (a config reload): Linux's three default rules, then
   * `specs` in order, as if added one by one. Lookups see the old list or the new one, never a
   * list in between; a spec that does not compile throws and leaves the old list in place.
   */
  replaceRules(specs: readonly (RuleSpec | string)[]): void {
    const old = this.rules;
    const oldSimple = this.simple;
    const onChange = this.onChange;
    this.onChange = null;
    try {
      this.rules = [];
      this.addRule({ priority: 0, table: 'local' });
      this.addRule({ priority: 32766, table: 'main' });
      this.addRule({ priority: 32767, table: 'default' });
      for (const s of specs) this.addRule(s);
    } catch (e) {
      this.rules = old;
      this.simple = oldSimple;
      throw e;
    } finally {
      this.onChange = onChange;
    }
    this.onChange?.();
  }

  /** Remove the first rule with this priority. */
  removeRule(priority: number): boolean {
    const i = this.rules.findIndex((r) => r.priority === priority);
    if (i < 0) return false;
    this.rules = this.rules.filter((_, j) => j !== i);
    this.simple = this.rules.every(unconditionalLookup);
    this.onChange?.();
    return true;
  }
}
