import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Client, type InStatement, type InValue, type ResultSet, type Transaction } from '@libsql/client';
import Database from 'libsql';

export interface DbOptions {
  url: string;
  authToken?: string | undefined;
  syncUrl?: string | undefined;
}

/** How often an embedded replica syncs from its primary, in seconds. */
export const REPLICA_SYNC_INTERVAL_S = 1;

/** Busy timeout for embedded files: a writer waits this long for another writer instead of failing. */
export const BUSY_TIMEOUT_MS = 5000;

/**
 * The database handle the gateway uses. Every write goes through `write()`, which
 * opens the transaction in "write" mode (BEGIN IMMEDIATE: the write lock is taken
 * up front, so two writers queue on the busy timeout instead of one failing with
 * SQLITE_BUSY on upgrade), checks foreign keys are on for the pooled connection it
 * got, rolls back on any error, and commits only when the callback returns.
 */
export interface Db {
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
  readonly readStats: { hits: number; misses: number } | undefined;
  write<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
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
  const isFile = options.url.startsWith('file:');
  let reader: PreparedReader | undefined;
  if (path !== undefined) {
    // WAL is a property of the file, so setting it once holds for every connection.
    await client.execute('PRAGMA journal_mode = WAL');
    await client.execute('PRAGMA synchronous = NORMAL');
    // An embedded replica syncs through the client's own connection; read it through the client too.
    if (!options.syncUrl) reader = createPreparedReader(path);
  }
  return createDb(client, isFile, reader);
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

/** Statements that only read (and PRAGMAs, which must not run inside a transaction). */
const READ_ONLY = /^\s*(SELECT|PRAGMA|EXPLAIN)\b/i;

export function createDb(client: Client, isFile: boolean, reader?: PreparedReader): Db {
  const writeQueue = createQueue();
  const db: Db = {
    client,
    isFile,
    // A write passed to execute() still goes through write(): an autocommit write on another pooled
    // connection, issued while this process's own write transaction waits for a microtask, would
    // block the event loop on the busy timeout (see write() below) and fail with SQLITE_BUSY.
    execute: (stmt) => (READ_ONLY.test(typeof stmt === 'string' ? stmt : stmt.sql) ? client.execute(stmt) : db.write((tx) => tx.execute(stmt))),
    readStats: reader?.stats,
    readOne: reader
      ? async (sql, args) => reader.get(sql, args)
      : async (sql, args) => (await client.execute({ sql, args })).rows[0] as Record<string, unknown> | undefined,
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
  return db;
}
