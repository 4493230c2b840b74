import { existsSync } from 'node:fs';
import type { Config } from '../config.ts';
import { filePathOf, openDb, type Db } from '../db/client.ts';
import { UsageError } from './command.ts';

/** How long a command waits for a remote database to answer its first query. */
export const DATABASE_PROBE_TIMEOUT_MS = 10_000;

/** The database URL as it may be printed: no credentials, no query (libSQL URLs can carry ?authToken=). */
export function printableDatabaseUrl(url: string): string {
  if (url.startsWith('file:')) return url.split('?')[0]!;
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    u.search = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/[?#].*$/, '');
  }
}

/** A one-line reason from a database error (undici hides the socket error in `cause`). */
function reasonOf(err: unknown): string {
  const e = err as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } } | undefined;
  const cause = e?.cause;
  // A socket error (ECONNREFUSED, ENOTFOUND…) says it all; undici's own message ("fetch failed") does not.
  if (typeof cause?.code === 'string' && /^E[A-Z]+$/.test(cause.code)) return cause.code;
  const code = typeof e?.code === 'string' ? e.code : undefined;
  const message = typeof e?.message === 'string' ? e.message.split('\n')[0]!.replace(/^[A-Z_]+: /, '') : String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}

/**
 * Turns a failure to open or query the configured database into a configuration error
 * naming the variable: `GATE_DATABASE_URL: cannot reach libsql://…: ECONNREFUSED`.
 */
export function databaseError(err: unknown, config: Pick<Config, 'databaseUrl'>): UsageError {
  const reason = reasonOf(err);
  const url = printableDatabaseUrl(config.databaseUrl);
  if (/\b401\b|unauthori[sz]ed|auth(entication)? token/i.test(reason)) {
    return new UsageError(`GATE_DATABASE_AUTH_TOKEN: ${url} refused the credentials (${reason})`);
  }
  if (config.databaseUrl.startsWith('file:')) return new UsageError(`GATE_DATABASE_URL: cannot open ${url}: ${reason}`);
  return new UsageError(`GATE_DATABASE_URL: cannot reach ${url}: ${reason}`);
}

/** Whether an error came from the database or the way to it (libSQL, undici, SQLite), not from our code. */
export function isDatabaseError(err: unknown): boolean {
  const e = err as { name?: unknown; code?: unknown; message?: unknown; cause?: { code?: unknown } } | undefined;
  if (e?.name === 'LibsqlError') return true;
  if (typeof e?.code === 'string' && /^(SQLITE_|HRANA_|SERVER_ERROR|ECONN|ENOTFOUND|ETIMEDOUT|EAI_)/.test(e.code)) return true;
  return e instanceof TypeError && e.message === 'fetch failed' && typeof e.cause?.code === 'string';
}

/** `databaseError` for a database error; anything else is rethrown as it is (a bug, not configuration). */
export function asDatabaseError(err: unknown, config: Pick<Config, 'databaseUrl'>): unknown {
  return isDatabaseError(err) ? databaseError(err, config) : err;
}

export interface OpenForCommandOptions {
  /** Create an embedded database file that does not exist (`--create`); otherwise refuse. */
  create: boolean;
}

/**
 * Opens the configured database for a CLI command and proves it answers (`SELECT 1`,
 * bounded by DATABASE_PROBE_TIMEOUT_MS), so a mistyped path or an unreachable server is a
 * one-line configuration error before the command does anything. A file that does not
 * exist is refused unless `create` (a typo must not silently make an empty database).
 */
export async function openDatabaseForCommand(config: Config, options: OpenForCommandOptions): Promise<Db> {
  const path = filePathOf(config.databaseUrl);
  if (path !== undefined && !options.create && !existsSync(path)) {
    throw new UsageError(`GATE_DATABASE_URL: ${path} does not exist (pass --create to create a new database there)`);
  }
  let db: Db;
  try {
    db = await openDb({ url: config.databaseUrl, authToken: config.databaseAuthToken, syncUrl: config.databaseSyncUrl });
  } catch (err) {
    throw databaseError(err, config);
  }
  try {
    await probe(db);
  } catch (err) {
    db.close();
    throw databaseError(err, config);
  }
  return db;
}

/** Checks the configured database answers, without keeping it open (serve: before startup). */
export async function probeDatabase(config: Config): Promise<void> {
  const db = await openDatabaseForCommand(config, { create: true });
  db.close();
}

async function probe(db: Db): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${DATABASE_PROBE_TIMEOUT_MS / 1000} s`)), DATABASE_PROBE_TIMEOUT_MS);
  });
  try {
    await Promise.race([db.execute('SELECT 1'), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
