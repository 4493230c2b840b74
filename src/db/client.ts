import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Client, type Transaction } from '@libsql/client';
import { BUSY_TIMEOUT_MS, createQueue, inWriteTransaction, DEFAULT_WRITE_TIMEOUT_MS, READ_ONLY, REPLICA_SYNC_INTERVAL_S, retryBusy, type Db, type DbOptions } from './core.ts';
import { createFileDb } from './file-db.ts';
import type { PreparedReader } from './prepared-reader.ts';

export * from './core.ts';

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

/** A database behind a client only (remote libSQL, memory, embedded replicas): writes through the client. */
export function createDb(client: Client, isFile: boolean, reader?: PreparedReader): Db {
  const stats = { busy: 0 };
  const writeQueue = createQueue();
  const db: Db = {
    client,
    isFile,
    // A write passed to execute() still goes through write(): an autocommit write on another pooled
    // connection, issued while this process's own write transaction waits for a microtask, would
    // block the event loop on the busy timeout (see write() below) and fail with SQLITE_BUSY.
    execute: (stmt) => (READ_ONLY.test(typeof stmt === 'string' ? stmt : stmt.sql) ? client.execute(stmt) : db.write((tx) => tx.execute(stmt))),
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
        return await inWriteTransaction(tx, fn, { checkForeignKeys: isFile });
      } finally {
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
