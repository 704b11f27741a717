/**
 * One schema, three formats: JSON, JSON with comments (.jsonc) and YAML (.yaml/.yml), chosen by
 * the file name. Every bad config of the JSON table, written as YAML and as JSONC, gives the same
 * one-line error; syntax errors give line and column in every format.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ConfigError, configFormat, findConfigFile, loadConfig } from '../../src/config/config.ts';
import { parseJson } from '../../src/config/json-parse.ts';
import { BAD_CONFIGS, base } from '../control/bad-configs.ts';

const dir = mkdtempSync(join(tmpdir(), 'ipferry-formats-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function errorOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('no error');
}

const write = (name: string, text: string): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};

// The JSON syntax cases are about JSON itself; the rest are about the config's meaning.
const SEMANTIC = BAD_CONFIGS.filter((c) => !c.name.startsWith('json-'));

describe('format by extension', () => {
  it.each([
    ['a.json', 'json'],
    ['a.JSONC', 'jsonc'],
    ['a.yaml', 'yaml'],
    ['a.yml', 'yaml'],
    ['a.conf', 'json'],
    ['noext', 'json'],
  ] as const)('%s is %s', (f, fmt) => expect(configFormat(f)).toBe(fmt));

  it('the same config in the three formats gives the same Config', () => {
    const json = base();
    json.peers[0].key = 'base64:c2l0ZS10by1zaXRlIGV4YW1wbGUga2V5IC0gY2hhbmdlIG1lIQ==';
    json.control = { path: 'ctl.sock', group: 'nogroup', mode: '0660' };
    const a = loadConfig(write('same.json', JSON.stringify(json)));
    const b = loadConfig(write('same.yaml', `# the same, in YAML\n${stringify(json)}`));
    const c = loadConfig(write('same.jsonc', `// the same, with comments\n${JSON.stringify(json, null, 2).replace('{', '{ /* interface first */')}`));
    for (const x of [b, c]) expect({ ...x, source: '' }).toEqual({ ...a, source: '' });
  });
});

describe('YAML: the JSON table of bad configs gives the same messages', () => {
  it.each(SEMANTIC)('$name', ({ name, text, message }) => {
    const f = write(`${name}.yaml`, stringify(JSON.parse(text)));
    expect(errorOf(() => loadConfig(f))).toBe(`${f}: ${message}`);
  });
});

describe('JSONC: the same table with comments and trailing commas', () => {
  it.each(SEMANTIC)('$name', ({ name, text, message }) => {
    const jsonc = `// ${name}\n${JSON.stringify(JSON.parse(text), null, 2).replace(/\n(\s*)"interface"/, '\n$1/* the TUN */ "interface"').replace(/\n}$/, ',\n}')}`;
    const f = write(`${name}.jsonc`, jsonc);
    expect(errorOf(() => loadConfig(f))).toBe(`${f}: ${message}`);
  });
});

describe('syntax errors name line and column', () => {
  it.each([
    ['dup.yaml', 'interface:\n  name: x\n  name: y\n', 'line 3, column 3: YAML syntax error: duplicate key "name"'],
    ['tab.yaml', 'interface:\n\tname: x\n', 'line 2, column 1: YAML syntax error: tabs are not allowed as indentation'],
    ['flow.yaml', 'peers: [1, 2\nlog: info\n', 'line 2, column 1: YAML syntax error: flow sequence in block collection must be sufficiently indented and end with a ]'],
    ['two.yaml', 'interface: { name: a }\n---\nlog: info\n', 'line 2, column 1: YAML syntax error: a config is one YAML document (found a second one)'],
    ['tag.yml', 'interface:\n  name: !secret x\n', 'line 2, column 9: YAML syntax error: unresolved tag: !secret'],
    ['alias.yaml', 'interface:\n  name: *nothing\n', 'line 2, column 9: YAML syntax error: alias *nothing has no anchor &nothing before it'],
    ['key.yaml', 'interface:\n  ? [a]\n  : x\n', 'line 2, column 5: YAML syntax error: keys must be plain names'],
    ['comment.json', '{\n  // no comments in JSON\n  "interface": { "name": "x" }\n}\n', 'line 2, column 3: JSON syntax error: comments are not allowed in JSON (name the file .jsonc to use them)'],
    ['open.jsonc', '{ "interface": { "name": "x" } /* never closed\n}\n', 'line 1, column 32: JSON syntax error: unterminated /* comment'],
    ['comma.jsonc', '{ "interface": { "name": "x" },, }\n', "line 1, column 32: JSON syntax error: expected a double-quoted property name, found ','"],
  ])('%s', (name, text, message) => {
    const f = write(name, text);
    expect(errorOf(() => loadConfig(f))).toBe(`${f}: ${message}`);
  });

  it('YAML numbers where text is wanted: the message says to quote them', () => {
    const f = write('num.yaml', 'interface: { name: x }\ncontrol: { mode: 0660 }\n');
    expect(errorOf(() => loadConfig(f))).toBe(`${f}: control.mode: expected an octal mode as a string, e.g. "0660", got number 660 (quote it in YAML to keep it text)`);
  });

  it('YAML 1.2: yes/no/on stay strings (no implicit booleans)', () => {
    const f = write('yes.yaml', 'interface: { name: x }\nhub: yes\n');
    expect(errorOf(() => loadConfig(f))).toBe(`${f}: hub: expected true or false, got string "yes"`);
  });
});

describe('JSONC parser', () => {
  it('comments anywhere whitespace may be, trailing commas; strings keep // and /*', () => {
    expect(parseJson('/*a*/{"a"/*b*/://c\n[1,2,],"u":"http://x/*y*/",}//end', { jsonc: true })).toEqual({ a: [1, 2], u: 'http://x/*y*/' });
  });
  it('plain JSON refuses both', () => {
    expect(() => parseJson('[1,]')).toThrow("trailing comma before ']'");
    expect(() => parseJson('[1]//x')).toThrow('comments are not allowed');
  });
});

describe('findConfigFile: a name without extension', () => {
  it('finds NAME.yaml beside it, and in the config directory', () => {
    const etc = mkdtempSync(join(dir, 'etc-'));
    writeFileSync(join(etc, 'ferry9.yaml'), 'interface: { name: ferry9 }\n');
    expect(findConfigFile(join(etc, 'ferry9'))).toBe(join(etc, 'ferry9.yaml'));
    expect(findConfigFile('ferry9', etc)).toBe(join(etc, 'ferry9.yaml'));
    writeFileSync(join(etc, 'ferry9.json'), '{}');
    expect(errorOf(() => findConfigFile('ferry9', etc))).toBe(`ferry9: several configs match (${join(etc, 'ferry9.json')}, ${join(etc, 'ferry9.yaml')}): name one`);
    expect(errorOf(() => findConfigFile('nosuch', etc))).toBe(`nosuch: no such file (nor nosuch.{json,jsonc,yaml,yml} or ${join(etc, 'nosuch')}.{json,jsonc,yaml,yml})`);
    expect(findConfigFile('x.json', etc)).toBe('x.json'); // an extension: taken as given (loadConfig says if missing)
  });

  it('the example configs exist as the README shows them', () => {
    expect(readFileSync('examples/beijing.json', 'utf8')).toContain('"shanghai"');
  });
});
