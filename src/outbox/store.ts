import type { SecretBox } from '../crypto/secret-box.ts';
import type { Executor } from '../db/access-repo.ts';
import { newEventId, type OutboxEventInput, type OutboxEventType, type OutboxSecret, type OutboxStatus } from './events.ts';

/** A failing event is given up this long after it was written (or retried by an operator). */
export const GIVE_UP_AFTER_MS = 24 * 60 * 60 * 1000;

export interface EnqueueOptions {
  /** Seals `event.secret`; required when the event has one. */
  secretBox?: SecretBox | undefined;
  now?: number | undefined;
}

/**
 * Writes an event row with the caller's executor — pass the open write transaction
 * of the change, so the event exists exactly when the change commits (a rolled-back
 * change leaves no event). Returns the event id.
 */
export async function enqueue(tx: Executor, event: OutboxEventInput, options: EnqueueOptions = {}): Promise<string> {
  const id = event.id ?? newEventId();
  const at = options.now ?? Date.now();
  let sealed: Buffer | null = null;
  let keyId: string | null = null;
  if (event.secret !== undefined) {
    if (!options.secretBox) throw new Error(`outbox: a ${event.type} event carries a secret but no secret box was given to seal it`);
    sealed = options.secretBox.seal(JSON.stringify(event.secret), id);
    keyId = options.secretBox.keyId;
  }
  await tx.execute({
    sql: `INSERT INTO outbox_events (id, type, workspace_id, actor, data, secret, secret_key_id, status, next_attempt_at, give_up_at, created_at)
          VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
    args: [id, event.type, event.workspaceId, event.actor, JSON.stringify(event.data), sealed, keyId, at, at + GIVE_UP_AFTER_MS, at],
  });
  return id;
}

/** An outbox row as read back (the sealed secret stays sealed). */
export interface OutboxRow {
  seq: number;
  id: string;
  type: OutboxEventType;
  workspaceId: string;
  actor: string;
  data: Record<string, unknown>;
  sealedSecret: Uint8Array | undefined;
  secretKeyId: string | undefined;
  status: OutboxStatus;
  attempts: number;
  nextAttemptAt: number;
  giveUpAt: number;
  createdAt: number;
  deliveredAt: number | undefined;
  emailSentAt: number | undefined;
  webhookSentAt: number | undefined;
  lastError: string | undefined;
}

const num = (v: unknown) => (v === null || v === undefined ? undefined : Number(v));

export function rowToEvent(r: Record<string, unknown>): OutboxRow {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(String(r['data'])) as Record<string, unknown>;
  } catch {
    data = {};
  }
  const secret = r['secret'];
  return {
    seq: Number(r['seq']),
    id: String(r['id']),
    type: String(r['type']) as OutboxEventType,
    workspaceId: String(r['workspace_id']),
    actor: String(r['actor']),
    data,
    sealedSecret: secret instanceof ArrayBuffer ? new Uint8Array(secret) : secret instanceof Uint8Array ? secret : undefined,
    secretKeyId: r['secret_key_id'] === null ? undefined : String(r['secret_key_id']),
    status: String(r['status']) as OutboxStatus,
    attempts: Number(r['attempts']),
    nextAttemptAt: Number(r['next_attempt_at']),
    giveUpAt: Number(r['give_up_at']),
    createdAt: Number(r['created_at']),
    deliveredAt: num(r['delivered_at']),
    emailSentAt: num(r['email_sent_at']),
    webhookSentAt: num(r['webhook_sent_at']),
    lastError: r['last_error'] === null ? undefined : String(r['last_error']),
  };
}

/** Opens an event's sealed secret (the email channel only). */
export function openSecret(row: OutboxRow, secretBox: SecretBox): OutboxSecret | undefined {
  if (!row.sealedSecret || !row.secretKeyId) return undefined;
  return JSON.parse(secretBox.open(row.sealedSecret, row.id, row.secretKeyId)) as OutboxSecret;
}

export interface ListOptions {
  status?: OutboxStatus | undefined;
  limit?: number | undefined;
}

/** Events newest first (operators' `outbox list`). */
export async function listEvents(db: Executor, options: ListOptions = {}): Promise<OutboxRow[]> {
  const limit = Math.max(1, Math.min(options.limit ?? 100, 10_000));
  const r = options.status
    ? await db.execute({ sql: 'SELECT * FROM outbox_events WHERE status = ? ORDER BY seq DESC LIMIT ?', args: [options.status, limit] })
    : await db.execute({ sql: 'SELECT * FROM outbox_events ORDER BY seq DESC LIMIT ?', args: [limit] });
  return r.rows.map((row) => rowToEvent(row as unknown as Record<string, unknown>));
}

export type RetryResult = { ok: true; previous: OutboxStatus } | { ok: false; reason: 'not_found' | 'delivered' };

/**
 * Makes a pending or dead event due now, with a fresh backoff and a fresh 24 h
 * window. Channels that already took the event are not sent it again.
 */
export async function retryEvent(db: Executor, id: string, now = Date.now()): Promise<RetryResult> {
  const run = async (tx: Executor): Promise<RetryResult> => {
    const r = await tx.execute({ sql: 'SELECT status FROM outbox_events WHERE id = ?', args: [id] });
    const status = r.rows[0]?.['status'];
    if (status === undefined) return { ok: false, reason: 'not_found' };
    if (status === 'delivered') return { ok: false, reason: 'delivered' };
    await tx.execute({
      sql: `UPDATE outbox_events SET status = 'pending', attempts = 0, next_attempt_at = ?, give_up_at = ? WHERE id = ?`,
      args: [now, now + GIVE_UP_AFTER_MS, id],
    });
    return { ok: true, previous: String(status) as OutboxStatus };
  };
  return db.write ? db.write(run) : run(db);
}

/** Events not yet delivered (for `gate_outbox_pending`); any gateway can read it, lease or not. */
export async function pendingCount(db: Executor): Promise<number> {
  const r = await db.execute("SELECT count(*) AS n FROM outbox_events WHERE status = 'pending'");
  return Number(r.rows[0]?.['n'] ?? 0);
}

/** Counts by status (for `outbox list` and health views). */
export async function statusCounts(db: Executor): Promise<Record<OutboxStatus, number>> {
  const r = await db.execute('SELECT status, count(*) AS n FROM outbox_events GROUP BY status');
  const out: Record<OutboxStatus, number> = { pending: 0, delivered: 0, dead: 0 };
  for (const row of r.rows) out[String(row['status']) as OutboxStatus] = Number(row['n']);
  return out;
}

/**
 * Makes an error safe to store and log: the message only (no stack, no request data),
 * with every secret value the event carries cut out, and bounded in length.
 */
export function redactError(err: unknown, secrets: readonly string[] = []): string {
  let text = err instanceof Error ? `${err.name === 'Error' ? '' : err.name + ': '}${err.message}` : String(err);
  for (const s of secrets) {
    if (s.length === 0) continue;
    text = text.split(s).join('[redacted]');
    // the link's token on its own (a server may echo only part of the URL)
    for (const token of s.match(/[A-Za-z0-9_-]{32,}/g) ?? []) text = text.split(token).join('[redacted]');
  }
  text = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim();
  return text.length > 500 ? text.slice(0, 497) + '...' : text;
}
