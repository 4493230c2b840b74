import { statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createClient,
  LibsqlError,
  type Client,
  type InArgs,
  type InStatement,
  type InValue,
  type ResultSet,
  type Row,
  type Transaction,
} from '@libsql/client';
import Database from 'libsql';

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
const stderrLogger: DbLogger = {
  info: (msg, fields = {}) => writeStderr('info', msg, fields),
  error: (msg, fields = {}) => writeStderr('error', msg, fields),
};
function writeStderr(level: string, msg: string, fields: Record<string, unknown>): void {
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
  readonly readStats: { hits: number; misses: number } | undefined;
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

/** Turns `file:./data/gate.db` into a filesystem path (or undefined for memory / remote URLs). */
export function filePathOf(url: string): string | undefined {
  if (!url.startsWith('file:')) return undefined;
  const rest = url.slice('file:'.length).split('?')[0]!;
  if (rest === ':memory:' || rest === '') return undefined;
  if (rest.startsWith('//')) return fileURLToPath(url.split('?')[0]!);
  return rest;
}

export async function openDb(options: DbOptions): Promise<Db> {
  const path = filePathOf(options.url);
  if (path !== undefined) await mkdir(dirname(path), { recursive: true });
  const open = async (): Promise<Client> => {
    const client = createClient({
      url: options.url,
      ...(options.authToken ? { authToken: options.authToken } : {}),
      // An embedded replica pulls from its primary every second: access changes made through other
      // instances reach this one within that bound (README: "Scaling out").
      ...(options.syncUrl ? { syncUrl: options.syncUrl, syncInterval: REPLICA_SYNC_INTERVAL_S } : {}),
      // Applied by the client to every pooled connection it opens (busy_timeout is per connection).
      timeout: BUSY_TIMEOUT_MS,
      intMode: 'number',
    });
    if (path !== undefined) {
      try {
        // WAL is a property of the file, so setting it once holds for every connection.
        await retryBusy(() => client.execute('PRAGMA journal_mode = WAL'), Date.now() + (options.writeTimeoutMs ?? DEFAULT_WRITE_TIMEOUT_MS));
        await client.execute('PRAGMA synchronous = NORMAL');
      } catch (err) {
        client.close();
        throw err;
      }
    }
    return client;
  };
  const client = await open();
  const isFile = options.url.startsWith('file:');
  // An embedded replica syncs through the client's own connection; read and write it through the client too.
  if (path === undefined || options.syncUrl) return createDb(client, isFile);
  return createFileDb(path, client, open, options);
}

/** Runs `fn` until it does not fail with SQLITE_BUSY, sleeping between tries (never blocking), until `deadline`. */
async function retryBusy<T>(fn: () => Promise<T> | T, deadline: number, onBusy?: () => void): Promise<T> {
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

function isBusy(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? '');
  return code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_') || code === 'SQLITE_LOCKED';
}

interface PreparedReader {
  get(sql: string, args: Record<string, InValue>): Record<string, unknown> | undefined;
  /** Rows served from the cache, and rows read from the database. */
  readonly stats: { hits: number; misses: number };
  close(): void;
}

/** Most cached rows kept between two commits; past it the cache starts over. */
const READ_CACHE_MAX = 50_000;

/**
 * Prepared statements on a dedicated query_only connection, with the rows they
 * returned cached *only until the database changes*: every read first asks
 * `PRAGMA data_version`, which changes whenever any other connection — in this
 * process or another one sharing the file — commits (https://sqlite.org/pragma.html#pragma_data_version).
 * A changed version empties the cache, so a removal, downgrade or token
 * deactivation is seen by the very next read, as without a cache.
 */
function createPreparedReader(path: string): PreparedReader {
  const conn = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  conn.exec('PRAGMA query_only = ON');
  const statements = new Map<string, { stmt: ReturnType<typeof conn.prepare>; rows: Map<string, Record<string, unknown> | undefined> }>();
  // (libsql's pluck() still returns a row object, so the column is read by name.)
  const version = conn.prepare('PRAGMA data_version');
  let seen: unknown;
  const stats = { hits: 0, misses: 0 };
  return {
    stats,
    get(sql, args) {
      const v = (version.get() as { data_version: unknown }).data_version;
      if (v !== seen) {
        for (const s of statements.values()) s.rows.clear();
        seen = v;
      }
      let entry = statements.get(sql);
      if (!entry) {
        entry = { stmt: conn.prepare(sql), rows: new Map() };
        statements.set(sql, entry);
      }
      const key = argsKey(args);
      const cached = entry.rows.get(key);
      if (cached !== undefined || entry.rows.has(key)) {
        stats.hits++;
        return cached;
      }
      stats.misses++;
      const row = entry.stmt.get(args) as Record<string, unknown> | undefined;
      if (entry.rows.size >= READ_CACHE_MAX) entry.rows.clear();
      entry.rows.set(key, row);
      return row;
    },
    close: () => {
      statements.clear();
      if (conn.open) conn.close();
    },
  };
}

/** A cache key that tells every value apart by type (null is not "null", a blob is not its text). */
function argsKey(args: Record<string, InValue>): string {
  let key = '';
  for (const name in args) {
    const v = args[name];
    let tagged: string;
    if (v === null || v === undefined) tagged = 'z';
    else if (typeof v === 'string') tagged = 's' + v;
    else if (v instanceof Uint8Array) tagged = 'x' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
    else if (v instanceof ArrayBuffer) tagged = 'x' + Buffer.from(v).toString('hex');
    else tagged = typeof v + ':' + String(v);
    key += '\0' + name + '\0' + tagged;
  }
  return key;
}

/** A FIFO lock: `acquire()` resolves with the function that releases it. */
function createQueue() {
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

/** A database behind a client only (remote libSQL, memory, embedded replicas): writes through the client. */
export function createDb(client: Client, isFile: boolean, reader?: PreparedReader): Db {
  const stats = { busy: 0 };
  const writeQueue = createQueue();
  return {
    client,
    isFile,
    execute: (stmt) => client.execute(stmt),
    readStats: reader?.stats,
    stats,
    readOne: reader
      ? async (sql, args) => reader.get(sql, args)
      : async (sql, args) => (await client.execute({ sql, args })).rows[0] as Record<string, unknown> | undefined,
    async writeHealth() {
      try {
        await client.execute('SELECT 1');
        return { ok: true };
      } catch (err) {
        return { ok: false, reason: (err as Error).message };
      }
    },
    async write<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      // One writer at a time in this process. An embedded file's busy timeout waits
      // *synchronously*: a second BEGIN IMMEDIATE issued while this process's own open
      // transaction waits for its next microtask would block the event loop until the
      // timeout and fail (SQLITE_BUSY). Queueing here leaves the busy timeout for writers
      // in other processes only.
      const release = await writeQueue.acquire();
      const tx = await client.transaction('write').catch((err: unknown) => {
        release();
        throw err;
      });
      try {
        if (isFile) {
          // foreign_keys is per connection and cannot be switched on inside a transaction;
          // libSQL enables it by default, and we refuse to write on a connection without it.
          const fk = await tx.execute('PRAGMA foreign_keys');
          if (Number(fk.rows[0]?.[0]) !== 1) throw new Error('foreign_keys is off on this connection');
        }
        const result = await fn(tx);
        await tx.commit();
        return result;
      } catch (err) {
        await tx.rollback().catch(() => undefined);
        throw err;
      } finally {
        tx.close();
        release();
      }
    },
    close: () => {
      reader?.close();
      client.close();
    },
  };
}

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
function createFileDb(path: string, firstClient: Client, reopenClient: () => Promise<Client>, options: DbOptions): Db {
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
    execute: async (stmt) => currentClient().execute(stmt),
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
        const tx = new ConnectionTransaction(conn);
        try {
          // foreign_keys is per connection and cannot be switched on inside a transaction;
          // libSQL enables it by default, and we refuse to write on a connection without it.
          const fk = await tx.execute('PRAGMA foreign_keys');
          if (Number(fk.rows[0]?.[0]) !== 1) throw new Error('foreign_keys is off on this connection');
          const result = await fn(tx);
          // The file may have gone while the callback ran: never acknowledge a write into an unlinked file.
          if (!checkIdentity()) throw unavailable();
          await tx.commit();
          return result;
        } catch (err) {
          await tx.rollback().catch(() => undefined);
          throw err;
        } finally {
          tx.close();
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

/** SQLite's base result code name for a libsql error (`SQLITE_CONSTRAINT_UNIQUE` → `SQLITE_CONSTRAINT`). */
function mapError(err: unknown): unknown {
  const e = err as { code?: unknown; rawCode?: number; message?: string; name?: string };
  if (e?.name !== 'SqliteError' || typeof e.code !== 'string') return err;
  const base = e.code.split('_').slice(0, 2).join('_');
  return new LibsqlError(String(e.message), base, e.code, e.rawCode, err instanceof Error ? err : undefined);
}

/** Rows shaped as @libsql/client shapes them: by index (non-enumerable) and by column name. */
function rowOf(values: unknown[], columns: string[]): Row {
  const row: Record<string | number, unknown> = {};
  Object.defineProperty(row, 'length', { value: values.length });
  for (let i = 0; i < values.length; i++) {
    let v = values[i];
    if (typeof v === 'bigint') {
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
        throw new RangeError('Received integer which cannot be safely represented as a JavaScript number');
      }
      v = Number(v);
    } else if (v instanceof Buffer) v = v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength);
    Object.defineProperty(row, i, { value: v });
    const column = columns[i]!;
    if (!Object.hasOwn(row, column)) Object.defineProperty(row, column, { value: v, enumerable: true, configurable: true, writable: true });
  }
  return row as unknown as Row;
}

function argsOf(args: InArgs | undefined): unknown[] | Record<string, unknown> {
  const conv = (v: InValue | undefined): unknown => {
    if (typeof v === 'boolean') return v ? 1 : 0;
    if (v instanceof ArrayBuffer) return Buffer.from(v);
    if (v instanceof Date) return v.valueOf();
    if (v === undefined) throw new TypeError('undefined cannot be passed as argument to the database');
    return v;
  };
  if (args === undefined) return [];
  if (Array.isArray(args)) return args.map(conv);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(args)) out[/^[:@$]/.test(k) ? k.slice(1) : k] = conv(v);
  return out;
}

/**
 * A write transaction on a dedicated libsql connection, with the part of
 * @libsql/client's `Transaction` the gateway uses (execute, batch, executeMultiple,
 * commit, rollback, close) and the same row shapes and error codes.
 */
class ConnectionTransaction implements Transaction {
  #conn: InstanceType<typeof Database>;
  #done = false;
  constructor(conn: InstanceType<typeof Database>) {
    this.#conn = conn;
  }
  get closed(): boolean {
    return this.#done;
  }
  async execute(stmt: InStatement): Promise<ResultSet> {
    if (this.#done) throw new LibsqlError('The transaction is closed', 'TRANSACTION_CLOSED');
    const sql = typeof stmt === 'string' ? stmt : stmt.sql;
    const args = argsOf(typeof stmt === 'string' ? undefined : stmt.args);
    try {
      const prepared = this.#conn.prepare(sql);
      prepared.safeIntegers(true);
      let returnsData = true;
      try {
        prepared.raw(true);
      } catch {
        returnsData = false;
      }
      if (returnsData) {
        const columns = (prepared.columns() as { name: string; type?: string | null }[]).map((c) => c.name);
        const columnTypes = (prepared.columns() as { name: string; type?: string | null }[]).map((c) => c.type ?? '');
        const rows = (prepared.all(args) as unknown[][]).map((r) => rowOf(r, columns));
        return resultSet(columns, columnTypes, rows, 0, undefined);
      }
      const info = prepared.run(args) as { changes: number; lastInsertRowid: number | bigint };
      return resultSet([], [], [], info.changes, BigInt(info.lastInsertRowid));
    } catch (err) {
      throw mapError(err);
    }
  }
  async batch(stmts: InStatement[]): Promise<ResultSet[]> {
    const out: ResultSet[] = [];
    for (const s of stmts) out.push(await this.execute(s));
    return out;
  }
  async executeMultiple(sql: string): Promise<void> {
    try {
      this.#conn.exec(sql);
    } catch (err) {
      throw mapError(err);
    }
  }
  async commit(): Promise<void> {
    if (this.#done) return;
    try {
      this.#conn.exec('COMMIT');
    } catch (err) {
      throw mapError(err);
    }
    this.#done = true;
  }
  async rollback(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    if (this.#conn.open && this.#conn.inTransaction) this.#conn.exec('ROLLBACK');
  }
  close(): void {
    if (!this.#done && this.#conn.open && this.#conn.inTransaction) {
      try {
        this.#conn.exec('ROLLBACK');
      } catch {
        // the connection is unusable; the next write finds out
      }
    }
    this.#done = true;
  }
}

function resultSet(columns: string[], columnTypes: string[], rows: Row[], rowsAffected: number, lastInsertRowid: bigint | undefined): ResultSet {
  return {
    columns,
    columnTypes,
    rows,
    rowsAffected,
    lastInsertRowid,
    toJSON: () => ({ columns, columnTypes, rows: rows.map((r) => Array.from(r as unknown as ArrayLike<unknown>)), rowsAffected, lastInsertRowid: lastInsertRowid?.toString() ?? null }),
  };
}

