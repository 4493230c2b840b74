import { statSync } from 'node:fs';
import type { Client, Transaction } from '@libsql/client';
import Database from 'libsql';
import { BUSY_TIMEOUT_MS, createQueue, inWriteTransaction, DatabaseUnavailableError, DEFAULT_WRITE_TIMEOUT_MS, READ_ONLY, retryBusy, stderrLogger, type Db, type DbLogger, type DbOptions, type WriteHealth } from './core.ts';
import { ConnectionTransaction } from './connection-transaction.ts';
import { createPreparedReader, type PreparedReader } from './prepared-reader.ts';

/** A FIFO lock whose waiters give up at a deadline (a write's timeout covers its wait in the queue too). */
function createDeadlineQueue() {
  const queue = createQueue();
  let held = false;
  return {
    get held() {
      return held;
    },
    async acquire(deadline: number): Promise<() => void> {
      const pending = queue.acquire();
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), Math.max(0, deadline - Date.now()));
      });
      const first = await Promise.race([pending, timedOut]);
      clearTimeout(timer);
      if (first === 'timeout') {
        // Our turn comes later: pass it straight on.
        void pending.then((release) => release());
        throw new DatabaseUnavailableError('the database is busy with other writes', 'SQLITE_BUSY');
      }
      held = true;
      return () => {
        held = false;
        first();
      };
    },
  };
}

interface FileIdentity {
  dev: number;
  ino: number;
}

/** The identity of the file at `path` now, or undefined when there is none. */
function identityAt(path: string): FileIdentity | undefined {
  try {
    const st = statSync(path);
    return { dev: st.dev, ino: st.ino };
  } catch {
    return undefined;
  }
}

/**
 * Is the file at `path` a gateway database one can reopen? A zero-byte file, garbage,
 * or a database without the migrations table is not (the gateway would otherwise
 * serve an empty membership table as "nobody has access").
 */
function isGatewayDatabase(path: string): boolean {
  let conn: InstanceType<typeof Database> | undefined;
  try {
    conn = new Database(path, { timeout: BUSY_TIMEOUT_MS });
    conn.exec('PRAGMA query_only = ON');
    const row = conn.prepare("SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'").get() as { n: number } | undefined;
    return Number(row?.n ?? 0) > 0;
  } catch {
    return false;
  } finally {
    try {
      conn?.close();
    } catch {
      // nothing to do
    }
  }
}

/**
 * An embedded database file. Beyond `createDb`:
 *
 * - Writes run on a dedicated connection whose `BEGIN IMMEDIATE` fails at once when
 *   another process holds the write lock, and are retried asynchronously until the
 *   write timeout (a failed prepared BEGIN through @libsql/client leaves its pooled
 *   connection unable to write, so the lock is taken here, with exec).
 * - The open file's identity (device and inode) is compared with the path before
 *   every write and every `identityCheckMs`: a file deleted or replaced under the
 *   gateway makes reads and writes `unavailable` (never a write acknowledged into an
 *   unlinked file), logs an error, and closes the old connections; when a gateway
 *   database is back at the path it is reopened.
 */
export function createFileDb(path: string, firstClient: Client, reopenClient: () => Promise<Client>, options: DbOptions): Db {
  const logger: DbLogger = options.logger ?? stderrLogger;
  const writeTimeoutMs = options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS;
  const stats = { busy: 0 };
  const queue = createDeadlineQueue();

  let client: Client | undefined = firstClient;
  let reader: PreparedReader | undefined = createPreparedReader(path);
  let writer: InstanceType<typeof Database> | undefined = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  let identity: FileIdentity | undefined = identityAt(path);
  let lost: string | undefined;
  let closed = false;
  let reopening: Promise<void> | undefined;

  const closeConnections = () => {
    reader?.close();
    reader = undefined;
    try {
      if (writer?.open) writer.close();
    } catch {
      // already unusable
    }
    writer = undefined;
    client?.close();
    client = undefined;
  };

  /** Compares the open file with the path; on a mismatch, stops using it. True when the file is still ours. */
  const checkIdentity = (): boolean => {
    if (lost !== undefined || closed) return lost === undefined && !closed;
    const now = identityAt(path);
    if (now !== undefined && identity !== undefined && now.dev === identity.dev && now.ino === identity.ino) return true;
    lost = now === undefined ? 'the database file was deleted' : 'the database file was replaced';
    logger.error('database file lost; reads and writes answer 503 until a valid database is back', { path, reason: lost });
    // Closing now also removes the old file's -wal/-shm, so they are never applied to a new file at the path.
    closeConnections();
    return false;
  };

  const tryReopen = async (): Promise<void> => {
    if (closed || lost === undefined) return;
    const now = identityAt(path);
    if (now === undefined || !isGatewayDatabase(path)) return;
    try {
      const next = await reopenClient();
      client = next;
      reader = createPreparedReader(path);
      writer = new Database(path, { timeout: BUSY_TIMEOUT_MS });
      identity = identityAt(path);
      const was = lost;
      lost = undefined;
      logger.info('database reopened', { path, was });
    } catch (err) {
      closeConnections();
      logger.error('database reopen failed', { path, error: (err as Error).message });
    }
  };

  const watch = setInterval(() => {
    if (checkIdentity()) return;
    reopening ??= tryReopen().finally(() => (reopening = undefined));
  }, options.identityCheckMs ?? 1000);
  watch.unref();

  const unavailable = () => new DatabaseUnavailableError(lost ?? 'the database is closed', 'SQLITE_CANTOPEN');
  const currentClient = (): Client => {
    if (client === undefined || lost !== undefined) throw unavailable();
    return client;
  };

  const db: Db = {
    get client() {
      return currentClient();
    },
    isFile: true,
    // A write passed to execute() goes through write() too: queued behind this process's own
    // writes and waiting for another process's lock asynchronously, like every other write.
    execute: async (stmt) =>
      READ_ONLY.test(typeof stmt === 'string' ? stmt : stmt.sql) ? currentClient().execute(stmt) : db.write((tx) => tx.execute(stmt)),
    get readStats() {
      return reader?.stats;
    },
    stats,
    async readOne(sql, args) {
      if (reader === undefined || lost !== undefined) throw unavailable();
      const r = reader;
      // WAL readers do not wait for writers; a rare SQLITE_BUSY (recovery, checkpoint restart) is retried, asynchronously.
      return retryBusy(() => r.get(sql, args), Date.now() + 1000);
    },
    async write<T>(fn: (tx: Transaction) => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
      const deadline = Date.now() + (opts.timeoutMs ?? writeTimeoutMs);
      // One writer at a time in this process; waiting here counts against the same deadline.
      const release = await queue.acquire(deadline);
      try {
        if (!checkIdentity() || writer === undefined) throw unavailable();
        const conn = writer;
        let waited = false;
        await retryBusy(
          () => conn.exec('BEGIN IMMEDIATE'),
          deadline,
          () => {
            if (!waited) {
              stats.busy++;
              options.onBusy?.();
            }
            waited = true;
          },
        );
        try {
          // The file may go while the callback runs: never acknowledge a write into an unlinked file.
          return await inWriteTransaction(new ConnectionTransaction(conn), fn, {
            checkForeignKeys: true,
            beforeCommit: () => {
              if (!checkIdentity()) throw unavailable();
            },
          });
        } finally {
          // Our own commit (or a rollback after a partial write): the next read looks again.
          reader?.invalidate();
        }
      } finally {
        release();
      }
    },
    async writeHealth(): Promise<WriteHealth> {
      if (!checkIdentity()) return { ok: false, reason: lost ?? 'closed' };
      // This process is writing: the database takes writes.
      if (queue.held) return { ok: true };
      try {
        await db.write(async () => undefined, { timeoutMs: Math.min(1000, writeTimeoutMs) });
        return { ok: true };
      } catch (err) {
        if (err instanceof DatabaseUnavailableError) return { ok: false, reason: err.message };
        return { ok: false, reason: (err as Error).message };
      }
    },
    close() {
      closed = true;
      clearInterval(watch);
      closeConnections();
    },
  };
  return db;
}
