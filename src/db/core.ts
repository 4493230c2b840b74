import { type Client, type InStatement, type InValue, type ResultSet, type Transaction } from '@libsql/client';

/** The database layer's shared parts: options, the Db interface, errors, busy retries, the writer queue. */

/** What the database layer tells the operational log (the gateway's logger). */
export interface DbLogger {
  info(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface DbOptions {
  url: string;
  authToken?: string | undefined;
  syncUrl?: string | undefined;
  /** Longest a write waits for the database's write lock (GATE_DB_WRITE_TIMEOUT_MS); then it is `unavailable`. */
  writeTimeoutMs?: number | undefined;
  /** How often the file's identity is compared with the path (embedded files). */
  identityCheckMs?: number | undefined;
  logger?: DbLogger | undefined;
  /** Called once per write that had to wait for another process's lock (`gate_db_busy_total`). */
  onBusy?: (() => void) | undefined;
}

/** Without the gateway's logger (tools, tests): the operational log's JSON lines on stderr. */
export const stderrLogger: DbLogger = {
  info: (msg, fields = {}) => writeStderr('info', msg, fields),
  error: (msg, fields = {}) => writeStderr('error', msg, fields),
};
export function writeStderr(level: string, msg: string, fields: Record<string, unknown>): void {
  try {
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + '\n');
  } catch {
    // stderr closed: nothing to tell
  }
}

/** GATE_DB_WRITE_TIMEOUT_MS's default. */
export const DEFAULT_WRITE_TIMEOUT_MS = 5000;

/**
 * The database cannot take this operation now: its write lock stayed held by another
 * process past the write timeout, or its file was deleted or replaced under the
 * gateway. Answered `503 unavailable` (the `SQLITE_` code makes the gate and the
 * native handlers treat it as the database being unavailable); never a lost write.
 */
export class DatabaseUnavailableError extends Error {
  constructor(
    message: string,
    readonly code: 'SQLITE_BUSY' | 'SQLITE_CANTOPEN',
  ) {
    super(message);
    this.name = 'DatabaseUnavailableError';
  }
}

/** Whether the database can take writes right now (for `readyz`). */
export type WriteHealth = { ok: true } | { ok: false; reason: string };

/** How often an embedded replica syncs from its primary, in seconds. */
export const REPLICA_SYNC_INTERVAL_S = 1;

/**
 * Embedded files never wait for a lock inside SQLite: the driver's busy handler
 * sleeps *synchronously*, on the event loop, so one write waiting for another
 * process's lock froze every request (issue #9 fault 4). Connections fail at once
 * with SQLITE_BUSY instead, and `write()` retries asynchronously (WAL: readers are
 * never blocked by a writer, so reads need no wait at all).
 */
export const BUSY_TIMEOUT_MS = 0;

/**
 * The database handle the gateway uses. Every write goes through `write()`, which
 * opens the transaction in "write" mode (BEGIN IMMEDIATE: the write lock is taken
 * up front), waits for another process's lock asynchronously up to the write
 * timeout, checks foreign keys are on for the connection, rolls back on any error,
 * and commits only when the callback returns.
 */
export interface Db {
  /** The client for reads (replaced when a replaced database file is reopened: read it per use). */
  readonly client: Client;
  readonly isFile: boolean;
  /** A read on the client; a write statement is run through `write()` (its own transaction, in the queue). */
  execute(stmt: InStatement): Promise<ResultSet>;
  /**
   * One row of a hot-path read (the decision's role lookup, the token lookup). On an
   * embedded file this is a cached prepared statement on a dedicated read-only
   * connection (@libsql/client prepares every statement on every call, ~100 µs; a
   * prepared libSQL statement is ~7 µs), whose rows are reused only while
   * `PRAGMA data_version` says nothing was committed since; elsewhere it is the
   * client. Either way every call sees every committed change.
   */
  readOne(sql: string, args: Record<string, InValue>): Promise<Record<string, unknown> | undefined>;
  /** Hot-path read cache counters (embedded files only). */
  readonly readStats: { hits: number; misses: number; versionReads: number } | undefined;
  write<T>(fn: (tx: Transaction) => Promise<T>, options?: { timeoutMs?: number }): Promise<T>;
  /**
   * Can the database take a write now? The file is still the one at the path, and the
   * write lock can be had within a second (or this process is writing). For `readyz`.
   */
  writeHealth(): Promise<WriteHealth>;
  /** Writes that had to wait for another process's lock (`gate_db_busy_total`). */
  readonly stats: { busy: number };
  close(): void;
}


/** Runs `fn` until it does not fail with SQLITE_BUSY, sleeping between tries (never blocking), until `deadline`. */
export async function retryBusy<T>(fn: () => Promise<T> | T, deadline: number, onBusy?: () => void): Promise<T> {
  let delay = 2;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (!isBusy(err)) throw err;
      onBusy?.();
      if (Date.now() + delay > deadline) {
        throw new DatabaseUnavailableError('the database is locked by another process', 'SQLITE_BUSY');
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 50);
    }
  }
}

export function isBusy(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? '');
  return code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED';
}

/** A FIFO lock: `acquire()` resolves with the function that releases it. */
export function createQueue() {
  let tail: Promise<void> = Promise.resolve();
  return {
    acquire(): Promise<() => void> {
      let release!: () => void;
      const next = new Promise<void>((resolve) => (release = resolve));
      const ready = tail.then(() => release);
      tail = tail.then(() => next);
      return ready;
    },
  };
}

/** Statements that only read (and PRAGMAs, which must not run inside a transaction). */
export const READ_ONLY = /^\s*(SELECT|PRAGMA|EXPLAIN)\b/i;

/**
 * Runs `fn` in an open write transaction and ends it: commits when `fn` returns (after
 * `beforeCommit`, which may still refuse), rolls back on any error, always closes it.
 * `checkForeignKeys` refuses a connection without foreign keys (a per-connection setting
 * that cannot be switched on inside a transaction; libSQL enables it by default).
 */
export async function inWriteTransaction<T>(
  tx: Transaction,
  fn: (tx: Transaction) => Promise<T>,
  opts: { checkForeignKeys: boolean; beforeCommit?: () => void },
): Promise<T> {
  try {
    if (opts.checkForeignKeys) {
      const fk = await tx.execute('PRAGMA foreign_keys');
      if (Number(fk.rows[0]?.[0]) !== 1) throw new Error('foreign_keys is off on this connection');
    }
    const result = await fn(tx);
    opts.beforeCommit?.();
    await tx.commit();
    return result;
  } catch (err) {
    await tx.rollback().catch(() => undefined);
    throw err;
  } finally {
    tx.close();
  }
}
