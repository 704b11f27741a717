/**
 * The config's `routes` and `rules` lines, checked with the route-table parsers (ip route /
 * ip rule syntax). Returns a result instead of throwing so the config can name the path.
 */
import { parseRule, type RuleSpec } from '../route/rules.ts';
import type { RouteSpec } from '../route/types.ts';
import { parseRoutes, RouteTextError } from '../route/text/iproute2.ts';

export type ParsedRouteLine = RouteSpec;
export type ParsedRuleLine = RuleSpec;

export type LineResult<T> = { ok: true; value: T } | { ok: false; error: string };

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e)).replace(/\s*\n[\s\S]*$/, '');

export function checkRuleLine(text: string): LineResult<ParsedRuleLine> {
  if (text.includes('\n')) return { ok: false, error: 'one rule per string (no newlines)' };
  try {
    return { ok: true, value: parseRule(text) };
  } catch (e) {
    return { ok: false, error: errText(e) };
  }
}

export function checkRouteLine(text: string): LineResult<ParsedRouteLine> {
  if (/[\r\n]/.test(text)) return { ok: false, error: 'one route per string (no newlines)' };
  let parsed: ReturnType<typeof parseRoutes>;
  try {
    parsed = parseRoutes(text);
  } catch (e) {
    // A single line: "line 1: " adds nothing to the path.
    const reason = e instanceof RouteTextError ? e.reason : errText(e);
    return { ok: false, error: reason };
  }
  if (parsed.length !== 1) return { ok: false, error: 'empty route line' };
  return { ok: true, value: parsed[0]!.spec };
}
