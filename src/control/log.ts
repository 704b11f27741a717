/**
 * The CLI's logger: one line per event on stderr, filtered by level, as text or JSON.
 *
 *   text  2026-12-08T10:00:00.000Z warn ferry0: peer shanghai (203.0.113.20:6080): control message failed authentication, ...
 *   json  {"time":"2026-12-08T10:00:00.000Z","level":"warn","interface":"ferry0","event":"auth-failure","msg":"...","peer":"shanghai","from":"203.0.113.20:6080","count":1}
 *
 * JSON is one object per line with time, level, interface, event and msg first, then the
 * event's fields (log-event.ts names the events): what journald (`journalctl -o cat`) and Loki
 * (`| json`) filter on. Level and format can change while running (a reload).
 *
 * It is callable (a plain `(line) => void` at info level, lines starting with "warning:" go out
 * as warnings), has one method per level and event() for named events, so library code can take
 * any of these shapes.
 *
 * Why no logging library: what is needed is a level filter and two line formats; pino or winston
 * would add transports and worker threads for a handful of lines a second, and pino's JSON
 * (numeric levels, "pid"/"hostname") reads worse in journald than these named fields.
 */
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../config/config.ts';
import { lineEvent, type LogEvent } from '../endpoint/log-event.ts';

export { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel };

export interface Logger {
  (line: string): void;
  error(line: string): void;
  warn(line: string): void;
  info(line: string): void;
  debug(line: string): void;
  /** A named event with fields (log-event.ts). */
  event(e: LogEvent): void;
  readonly level: LogLevel;
  readonly format: LogFormat;
  setLevel(level: LogLevel): void;
  setFormat(format: LogFormat): void;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: LogFormat;
  /** Prefix on every text line (the interface name); the "interface" field in JSON. */
  prefix?: string;
  /** Where lines go (default: process.stderr). */
  write?: (text: string) => void;
  /** Timestamp source (default: new Date().toISOString()). Return '' for none. */
  time?: () => string;
}

/** Field names a JSON line has of its own (an event's fields of the same name are left out). */
const RESERVED = new Set(['time', 'level', 'interface', 'event', 'msg']);

export function createLogger(opts: LoggerOptions = {}): Logger {
  let level = opts.level ?? 'info';
  let max = LOG_LEVELS.indexOf(level);
  let format = opts.format ?? 'text';
  const write = opts.write ?? ((t: string) => void process.stderr.write(t));
  const time = opts.time ?? (() => new Date().toISOString());
  const prefix = opts.prefix ? `${opts.prefix}: ` : '';
  const emit = (e: LogEvent): void => {
    if (LOG_LEVELS.indexOf(e.level) > max) return;
    const t = time();
    // One event, one line: fold any embedded newlines.
    const msg = e.msg.replace(/\s*\n\s*/g, ' ');
    if (format === 'text') {
      write(`${t ? `${t} ` : ''}${e.level} ${prefix}${msg}\n`);
      return;
    }
    const o: Record<string, unknown> = {};
    if (t) o.time = t;
    o.level = e.level;
    if (opts.prefix) o.interface = opts.prefix;
    o.event = e.event;
    o.msg = msg;
    for (const [k, v] of Object.entries(e.fields ?? {})) if (!RESERVED.has(k)) o[k] = v;
    write(`${JSON.stringify(o)}\n`);
  };
  const line = (lvl: LogLevel) => (l: string) => emit({ ...lineEvent(l), level: lvl });
  const log = ((l: string) => emit(lineEvent(l))) as Logger;
  Object.assign(log, {
    error: line('error'),
    warn: line('warn'),
    info: line('info'),
    debug: line('debug'),
    event: emit,
    setLevel: (l: LogLevel) => {
      level = l;
      max = LOG_LEVELS.indexOf(l);
    },
    setFormat: (f: LogFormat) => {
      format = f;
    },
  });
  Object.defineProperty(log, 'level', { get: () => level });
  Object.defineProperty(log, 'format', { get: () => format });
  return log;
}
