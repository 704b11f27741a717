/**
 * The zod building blocks every part of the config schema uses (schema.ts, mobility.ts), so each
 * kind of value fails with the same one-line wording: "expected an integer 1-3600, got string
 * \"x\"", "5000 is out of range (1-3600)", "expected an array of prefixes, got an object".
 */
import { z } from 'zod';

/** "nothing", "null", "an array", "an object", or the type and JSON of a primitive. */
export const typeName = (v: unknown): string =>
  v === undefined ? 'nothing' : v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;

export const intIn = (min: number, max: number) =>
  z
    .number({ error: (i) => `expected an integer ${min}-${max}, got ${typeName(i.input)}` })
    .int({ error: (i) => `expected an integer ${min}-${max}, got ${typeName(i.input)}` })
    .min(min, { error: (i) => `${String(i.input)} is out of range (${min}-${max})` })
    .max(max, { error: (i) => `${String(i.input)} is out of range (${min}-${max})` });

export const str = (what: string) => z.string({ error: (i) => `expected ${what}, got ${typeName(i.input)}` });

const article = (w: string): string => (/^[aeiou]/i.test(w) ? `an ${w}` : `a ${w}`);

/** An array of strings: "expected an array of <plural>" (default plural: what + s / es). */
export const strList = (what: string, plural = /(s|x)$/.test(what) ? `${what}es` : `${what}s`) =>
  z.array(str(article(what)), {
    error: (i) => `expected an array of ${plural}, got ${typeName(i.input)}`,
  });

export const bool = () => z.boolean({ error: (i) => `expected true or false, got ${typeName(i.input)}` });

/** A strict object: unknown keys are errors (schema.ts turns them into "did you mean"). */
export const obj = <T extends z.core.$ZodLooseShape>(shape: T) =>
  z.strictObject(shape, { error: (i) => `expected an object, got ${typeName(i.input)}` });

export const list = <T extends z.ZodType>(item: T, what: string) =>
  z.array(item, { error: (i) => `expected an array of ${what}, got ${typeName(i.input)}` });
