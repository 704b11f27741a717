/**
 * A strict JSON parser for config files that reports errors by line and column and rejects
 * duplicate keys (JSON.parse silently keeps the last one, which hides typos in hand-edited
 * configs). Objects are created with a null prototype so a "__proto__" key is an ordinary key
 * (and then an unknown one for the schema). Not for the hot path: config and control only.
 *
 * With `{ jsonc: true }` it reads JSON with comments as VS Code's .jsonc does: `// line` and
 * `/* block *\/` comments, and a trailing comma before `]` or `}`. Everything else stays strict.
 */

export class JsonSyntaxError extends Error {
  override name = 'JsonSyntaxError';
  constructor(
    readonly line: number,
    readonly column: number,
    readonly reason: string,
  ) {
    super(`line ${line}, column ${column}: ${reason}`);
  }
}

/** 1-based line and column of a character offset. */
export function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

const NUMBER_RE = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
// A JSON string body: unescaped chars except " \ and control chars, or a valid escape.
const STRING_RE = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;

export interface JsonParseOptions {
  /** JSON with comments: // and /* *\/ comments, trailing commas (default false: plain JSON). */
  jsonc?: boolean;
}

export function parseJson(text: string, opts: JsonParseOptions = {}): unknown {
  const jsonc = opts.jsonc === true;
  let pos = 0;
  if (text.charCodeAt(0) === 0xfeff) pos = 1; // BOM

  const fail = (reason: string, at = pos): never => {
    const { line, column } = lineColumn(text, at);
    throw new JsonSyntaxError(line, column, reason);
  };
  const describe = (at: number): string => {
    if (at >= text.length) return 'end of input';
    const ch = text[at]!;
    return /[\u0000-\u001f]/.test(ch) ? `control character U+${ch.charCodeAt(0).toString(16).padStart(4, '0')}` : `'${ch}'`;
  };
  const ws = (): void => {
    while (pos < text.length) {
      const c = text.charCodeAt(pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) pos++;
      else if (c === 0x2f && (text[pos + 1] === '/' || text[pos + 1] === '*')) {
        if (!jsonc) fail('comments are not allowed in JSON (name the file .jsonc to use them)');
        if (text[pos + 1] === '/') {
          const nl = text.indexOf('\n', pos);
          pos = nl < 0 ? text.length : nl + 1;
        } else {
          const end = text.indexOf('*/', pos + 2);
          if (end < 0) fail('unterminated /* comment');
          pos = end + 2;
        }
      } else break;
    }
  };
  const str = (): string => {
    STRING_RE.lastIndex = pos;
    const m = STRING_RE.exec(text);
    if (!m) {
      // Find where the string goes wrong, for a precise column.
      let i = pos + 1;
      while (i < text.length) {
        const ch = text[i]!;
        if (ch === '"') break;
        if (ch === '\\') {
          if (!/^\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/.test(text.slice(i, i + 6))) fail('invalid escape in string', i);
          i += text[i + 1] === 'u' ? 6 : 2;
          continue;
        }
        if (ch.charCodeAt(0) < 0x20) fail(ch === '\n' ? 'unterminated string' : `${describe(i)} in string`, i);
        i++;
      }
      return fail('unterminated string');
    }
    pos += m[0].length;
    return JSON.parse(m[0]) as string;
  };
  const value = (depth: number): unknown => {
    if (depth > 64) fail('nesting too deep');
    ws();
    const c = text[pos];
    if (c === '{') {
      pos++;
      const obj: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
      ws();
      if (text[pos] === '}') {
        pos++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[pos] !== '"') fail(`expected a double-quoted property name, found ${describe(pos)}`);
        const keyAt = pos;
        const key = str();
        if (Object.prototype.hasOwnProperty.call(obj, key)) fail(`duplicate key "${key}"`, keyAt);
        ws();
        if (text[pos] !== ':') fail(`expected ':' after property name, found ${describe(pos)}`);
        pos++;
        obj[key] = value(depth + 1);
        ws();
        if (text[pos] === ',') {
          pos++;
          ws();
          if (text[pos] === '}') {
            if (!jsonc) fail("trailing comma before '}'");
            pos++;
            return obj;
          }
          continue;
        }
        if (text[pos] === '}') {
          pos++;
          return obj;
        }
        fail(`expected ',' or '}' after property value, found ${describe(pos)}`);
      }
    }
    if (c === '[') {
      pos++;
      const arr: unknown[] = [];
      ws();
      if (text[pos] === ']') {
        pos++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[pos] === ',') {
          pos++;
          ws();
          if (text[pos] === ']') {
            if (!jsonc) fail("trailing comma before ']'");
            pos++;
            return arr;
          }
          continue;
        }
        if (text[pos] === ']') {
          pos++;
          return arr;
        }
        fail(`expected ',' or ']' after array element, found ${describe(pos)}`);
      }
    }
    if (c === '"') return str();
    if (text.startsWith('true', pos)) {
      pos += 4;
      return true;
    }
    if (text.startsWith('false', pos)) {
      pos += 5;
      return false;
    }
    if (text.startsWith('null', pos)) {
      pos += 4;
      return null;
    }
    NUMBER_RE.lastIndex = pos;
    const m = c === '-' || (c !== undefined && c >= '0' && c <= '9') ? NUMBER_RE.exec(text) : null;
    if (m) {
      pos += m[0].length;
      return Number(m[0]);
    }
    return fail(`unexpected ${describe(pos)}, expected a value`);
  };

  const v = value(0);
  ws();
  if (pos < text.length) fail(`unexpected ${describe(pos)} after the end of the JSON value`);
  return v;
}
