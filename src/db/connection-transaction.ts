import { LibsqlError, type InArgs, type InStatement, type InValue, type ResultSet, type Row, type Transaction } from '@libsql/client';
import Database from 'libsql';

/** SQLite's base result code name for a libsql error (`SQLITE_CONSTRAINT_UNIQUE` → `SQLITE_CONSTRAINT`). */
export function mapError(err: unknown): unknown {
  const e = err as { code?: unknown; rawCode?: number; message?: string; name?: string };
  if (e?.name !== 'SqliteError' || typeof e.code !== 'string') return err;
  const base = e.code.split('_').slice(0, 2).join('_');
  return new LibsqlError(String(e.message), base, e.code, e.rawCode, err instanceof Error ? err : undefined);
}

/** Rows shaped as @libsql/client shapes them: by index (non-enumerable) and by column name. */
export function rowOf(values: unknown[], columns: string[]): Row {
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

export function argsOf(args: InArgs | undefined): unknown[] | Record<string, unknown> {
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
export class ConnectionTransaction implements Transaction {
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

export function resultSet(columns: string[], columnTypes: string[], rows: Row[], rowsAffected: number, lastInsertRowid: bigint | undefined): ResultSet {
  return {
    columns,
    columnTypes,
    rows,
    rowsAffected,
    lastInsertRowid,
    toJSON: () => ({ columns, columnTypes, rows: rows.map((r) => Array.from(r as unknown as ArrayLike<unknown>)), rowsAffected, lastInsertRowid: lastInsertRowid?.toString() ?? null }),
  };
}

