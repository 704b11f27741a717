/**
 * The CLI's logger: one line per event on stderr, filtered by level. It is callable (a plain
 * `(line) => void` at info level, lines starting with "warning:" go out as warnings) and has one
 * method per level, so library code can take either shape.
 */
import { LOG_LEVELS, type LogLevel } from '../config/config.ts';

export { LOG_LEVELS, type LogLevel };

export interface Logger {
  (line: string): void;
  error(line: string): void;
  warn(line: string): void;
  info(line: string): void;
  debug(line: string): void;
  readonly level: LogLevel;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Prefix on every line, e.g. the interface name. */
  prefix?: string;
  /** Where lines go (default: process.stderr). */
  write?: (text: string) => void;
  /** Timestamp source (default: new Date().toISOString()). Return '' for none. */
  time?: () => string;
}

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const max = LOG_LEVELS.indexOf(level);
  const write = opts.write ?? ((t: string) => void process.stderr.write(t));
  const time = opts.time ?? (() => new Date().toISOString());
  const prefix = opts.prefix ? `${opts.prefix}: ` : '';
  const emit = (lvl: LogLevel, line: string): void => {
    if (LOG_LEVELS.indexOf(lvl) > max) return;
    const t = time();
    // One event, one line: fold any embedded newlines.
    write(`${t ? `${t} ` : ''}${lvl} ${prefix}${line.replace(/\s*\n\s*/g, ' ')}\n`);
  };
  const log = ((line: string) => emit(/^warning\b/i.test(line) ? 'warn' : 'info', line)) as Logger;
  Object.assign(log, {
    error: (l: string) => emit('error', l),
    warn: (l: string) => emit('warn', l),
    info: (l: string) => emit('info', l),
    debug: (l: string) => emit('debug', l),
    level,
  });
  return log;
}
