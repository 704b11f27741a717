/**
 * YAML config files, read with the `yaml` package (eemeli/yaml: YAML 1.2, no dependencies, keeps
 * source positions) into the same plain value the JSON parser returns, so one schema checks both.
 *
 * Strict where a hand-edited file would otherwise surprise: YAML 1.2 core schema (`yes`/`no`/`on`
 * stay strings, no sexagesimal numbers), duplicate keys, unknown tags, anchors without a target,
 * non-scalar keys and a second document are errors. Every error is a JsonSyntaxError-like
 * YamlSyntaxError with a 1-based line and column.
 */
import { isScalar, parseDocument, visit, type Document } from 'yaml';
import { lineColumn } from './json-parse.ts';

export class YamlSyntaxError extends Error {
  override name = 'YamlSyntaxError';
  constructor(
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super(`line ${line}, column ${column}: ${reason}`);
  }
}

/** The library's message as one lower-case clause, without its advice about other APIs. */
function reasonOf(code: string, message: string, text: string, at: number): string {
  if (code === 'DUPLICATE_KEY') {
    const key = /^[^\s:#]+|^"[^"]*"|^'[^']*'/.exec(text.slice(at))?.[0];
    return key ? `duplicate key ${key.replace(/^'|'$/g, '"').replace(/^(?!")(.*)$/, '"$1"')}` : 'duplicate key';
  }
  if (code === 'MULTIPLE_DOCS') return 'a config is one YAML document (found a second one)';
  const m = message.split('\n')[0]!.replace(/;.*$/, '').replace(/ at line \d+, column \d+:?.*$/, '');
  return m.charAt(0).toLowerCase() + m.slice(1);
}

export function parseYaml(text: string): unknown {
  const doc: Document.Parsed = parseDocument(text, {
    version: '1.2',
    schema: 'core',
    uniqueKeys: true,
    strict: true,
    merge: false,
    prettyErrors: false,
  });
  const fail = (at: number, reason: string): never => {
    const { line, column } = lineColumn(text, at);
    throw new YamlSyntaxError(line, column, `YAML syntax error: ${reason}`);
  };
  const first = doc.errors[0] ?? doc.warnings[0];
  if (first !== undefined) fail(first.pos[0], reasonOf(first.code, first.message, text, first.pos[0]));
  visit(doc, {
    Pair(_, pair) {
      const k = pair.key;
      if (k !== null && !isScalar(k)) fail((k as { range?: [number] }).range?.[0] ?? 0, 'keys must be plain names');
    },
    Alias(_, node) {
      if (node.resolve(doc) === undefined) fail(node.range?.[0] ?? 0, `alias *${node.source} has no anchor &${node.source} before it`);
    },
  });
  return doc.toJS({ maxAliasCount: 100 });
}
