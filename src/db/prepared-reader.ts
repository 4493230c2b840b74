import type { InValue } from '@libsql/client';
import Database from 'libsql';
import { BUSY_TIMEOUT_MS } from './core.ts';

export interface PreparedReader {
  get(sql: string, args: Record<string, InValue>): Record<string, unknown> | undefined;
  /** Rows served from the cache, and rows read from the database. */
  readonly stats: { hits: number; misses: number; versionReads: number };
  /** This process committed: the next read asks `data_version` again, whatever the turn. */
  invalidate(): void;
  close(): void;
}

/** Most cached rows kept between two commits; past it the cache starts over. */
export const READ_CACHE_MAX = 50_000;

/**
 * Prepared statements on a dedicated query_only connection, with the rows they
 * returned cached *only until the database changes*: every read first asks
 * `PRAGMA data_version`, which changes whenever any other connection — in this
 * process or another one sharing the file — commits (https://sqlite.org/pragma.html#pragma_data_version).
 * A changed version empties the cache, so a removal, downgrade or token
 * deactivation is seen by the very next read, as without a cache.
 *
 * The version is asked once per event-loop turn, not once per read: every request
 * decided in a turn was received before that turn began (its bytes were ready when
 * the poll returned), so a commit made before it arrived is also made before the one
 * read of the turn (CONTRACT §3 holds). The answer is forgotten at the end of the turn
 * (setImmediate), and at once when this process commits (`invalidate`).
 */
export function createPreparedReader(path: string): PreparedReader {
  const conn = new Database(path, { timeout: BUSY_TIMEOUT_MS });
  conn.exec('PRAGMA query_only = ON');
  const statements = new Map<string, { stmt: ReturnType<typeof conn.prepare>; rows: Map<string, Record<string, unknown> | undefined> }>();
  // (libsql's pluck() still returns a row object, so the column is read by name.)
  const version = conn.prepare('PRAGMA data_version');
  let seen: unknown;
  let fresh = false;
  const forget = () => {
    fresh = false;
  };
  const stats = { hits: 0, misses: 0, versionReads: 0 };
  return {
    stats,
    invalidate: forget,
    get(sql, args) {
      if (!fresh) {
        const v = (version.get() as { data_version: unknown }).data_version;
        stats.versionReads++;
        if (v !== seen) {
          for (const s of statements.values()) s.rows.clear();
          seen = v;
        }
        fresh = true;
        setImmediate(forget);
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
export function argsKey(args: Record<string, InValue>): string {
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
