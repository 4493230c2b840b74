import type { LogLevel } from '../config.ts';
import { LOG_LEVELS } from '../config.ts';

/** A line sink: stdout / stderr in production, an array in tests. */
export type LineSink = (line: string) => void;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** JSON-lines operational log (not decisions; those go to the decision log). */
export function createLogger(level: LogLevel, sink: LineSink = (l) => safeStderrWrite(l + '\n')): Logger {
  const min = LOG_LEVELS.indexOf(level);
  const log = (lvl: LogLevel) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (LOG_LEVELS.indexOf(lvl) < min) return;
    sink(JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...fields }));
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** Serializes an error for the log: message and stack, never request data. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof Error) return { error: err.message, error_name: err.name, stack: err.stack?.split('\n').slice(0, 6).join('\n') };
  return { error: String(err) };
}

let stderrGuarded = false;
/** Writes to stderr; a closed stderr (EPIPE) is ignored instead of crashing the process. */
export function safeStderrWrite(text: string): void {
  if (!stderrGuarded) {
    stderrGuarded = true;
    process.stderr.on('error', () => undefined);
  }
  try {
    process.stderr.write(text);
  } catch {
    // stderr gone: nothing left to tell.
  }
}
