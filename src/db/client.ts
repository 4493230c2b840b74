import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Client, type InStatement, type ResultSet, type Transaction } from '@libsql/client';

export interface DbOptions {
  url: string;
  authToken?: string | undefined;
  syncUrl?: string | undefined;
}

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
  execute(stmt: InStatement): Promise<ResultSet>;
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
    ...(options.syncUrl ? { syncUrl: options.syncUrl } : {}),
    // Applied by the client to every pooled connection it opens (busy_timeout is per connection).
    timeout: BUSY_TIMEOUT_MS,
    intMode: 'number',
  });
  const isFile = options.url.startsWith('file:');
  if (path !== undefined) {
    // WAL is a property of the file, so setting it once holds for every connection.
    await client.execute('PRAGMA journal_mode = WAL');
    await client.execute('PRAGMA synchronous = NORMAL');
  }
  return createDb(client, isFile);
}

export function createDb(client: Client, isFile: boolean): Db {
  return {
    client,
    isFile,
    execute: (stmt) => client.execute(stmt),
    async write<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      const tx = await client.transaction('write');
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
      }
    },
    close: () => client.close(),
  };
}
