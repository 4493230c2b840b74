import { hostname } from 'node:os';
import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { LogLevel } from '../config.ts';

/** A line sink: stdout / stderr in production, an array in tests. */
export type LineSink = (line: string) => void;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  /** Fields merged into every line (e.g. the current request's trace id), called per line. */
  mixin?: () => Record<string, unknown>;
}

/** A pino destination that hands each line (without its newline) to a LineSink. */
function sinkStream(sink: LineSink): DestinationStream {
  return {
    write(chunk: string) {
      sink(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk);
    },
  };
}

/**
 * The operational log (not decisions; those go to the decision log): JSON lines in pino's
 * format — numeric `level` (20 debug, 30 info, 40 warn, 50 error), `time` in epoch
 * milliseconds, `pid`, `hostname`, `msg` — so pino-pretty, Loki's and Datadog's pino
 * parsers read it as is. stderr by default, through a write that survives a closed stderr.
 */
export function createLogger(level: LogLevel, sink?: LineSink, options: LoggerOptions = {}): Logger {
  // stderr through a guarded write: a closed stderr (EPIPE) must never stop the gateway.
  const destination = sinkStream(sink ?? ((line) => safeStderrWrite(line + '\n')));
  const log: PinoLogger = pino(
    {
      level,
      base: { pid: process.pid, hostname: hostname() },
      // `errorFields` already shapes `err` (and trims the stack); pino's serializer would re-wrap it.
      serializers: { err: (e: unknown) => (e instanceof Error ? errorFields(e)['err'] : e) },
      ...(options.mixin ? { mixin: options.mixin } : {}),
    },
    destination,
  );
  return {
    debug: (msg, fields) => log.debug(fields ?? {}, msg),
    info: (msg, fields) => log.info(fields ?? {}, msg),
    warn: (msg, fields) => log.warn(fields ?? {}, msg),
    error: (msg, fields) => log.error(fields ?? {}, msg),
  };
}

/** Serializes an error for the log (pino's `err` shape): type, message and a short stack, never request data. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? err.cause.message : undefined;
    return {
      err: {
        type: err.name,
        message: err.message,
        ...(cause !== undefined ? { cause } : {}),
        stack: err.stack?.split('\n').slice(0, 6).join('\n'),
      },
    };
  }
  return { err: { type: typeof err, message: String(err) } };
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
