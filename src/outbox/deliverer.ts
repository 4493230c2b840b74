import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { SecretBox } from '../crypto/secret-box.ts';
import type { Db } from '../db/client.ts';
import type { Logger } from '../log/logger.ts';
import type { ChannelName, DeliverableEvent, OutboxChannel } from './channel.ts';
import type { OutboxSecret } from './events.ts';
import { openSecret, redactError, rowToEvent, type OutboxRow } from './store.ts';

/** The lease row every gateway sharing the database competes for. */
export const LEASE_NAME = 'deliverer';

export const DEFAULT_BACKOFF = { baseMs: 1000, capMs: 60 * 60 * 1000 };

export type DeliveryResult = 'delivered' | 'failed' | 'dead';

export interface DeliveryCount {
  channel: ChannelName;
  result: DeliveryResult;
  count: number;
}

export interface OutboxDelivererOptions {
  db: Pick<Db, 'execute' | 'write'>;
  /** Opens the invite link for the email channel; without it, events with a secret fail (and are retried). */
  secretBox?: SecretBox | undefined;
  /** The configured channels. An event is delivered once every channel that takes its type took it. */
  channels: OutboxChannel[];
  now?: () => number;
  logger?: Logger | undefined;
  /** Longest wait between two looks at the outbox while idle or standing by (default 1000 ms). */
  pollMs?: number;
  /** How long a lease lasts without renewal (default 15 s); a killed holder is replaced after it. */
  leaseMs?: number;
  /** Delay after the n-th failure: baseMs × 2^(n-1), at most capMs (default 1 s … 1 h). */
  backoff?: { baseMs: number; capMs: number };
  /** Workspaces delivered to in parallel (each in order; default 4). */
  concurrency?: number;
  /** Events delivered per workspace before looking at the others again (default 50). */
  batch?: number;
  /** This deliverer's name in the lease row (default host:pid:random). */
  holderId?: string;
  /** On stop, deliveries in flight get this long to finish before they are cut (default 2000 ms). */
  stopGraceMs?: number;
  /** Called for every channel outcome (the ops metrics counter hooks in here). */
  onDelivery?: (channel: ChannelName, result: DeliveryResult) => void;
}

export interface OutboxDeliverer {
  readonly holderId: string;
  /** Starts the loop (idempotent). */
  start(): void;
  /**
   * Ends the loop: starts no new delivery, lets those in flight finish within
   * `stopGraceMs` (then cuts them: they are sent again later), gives the lease up
   * and closes the channels.
   */
  stop(): Promise<void>;
  /** Look now (after an enqueue), instead of at the next poll. */
  kick(): void;
  /** Whether this deliverer held the lease at its last look. */
  readonly holdsLease: boolean;
  /** Channel outcomes since start, as plain numbers (for `gate_outbox_deliveries_total`). */
  deliveries(): DeliveryCount[];
}

/**
 * The delivery loop of the transactional outbox (CONTRACT §9). All state is in the
 * database, so a restart or `kill -9` loses nothing: a row is pending until a
 * delivery was recorded, and an event sent but not yet recorded is sent again
 * (at least once; receivers dedup by event id).
 *
 * - One deliverer among the gateways sharing the database: the holder of the
 *   unexpired `outbox_lease` row, renewed every third of its lifetime.
 * - In order per workspace: only the oldest pending event of a workspace is
 *   eligible, so a failing event holds back the later events of its workspace
 *   (and only of its workspace) until it is delivered or dead.
 * - Network I/O happens outside transactions; each outcome is one short "write"
 *   transaction, so the gateway's own writes never wait on an SMTP server.
 */
export function createOutboxDeliverer(options: OutboxDelivererOptions): OutboxDeliverer {
  const { db, channels } = options;
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 1000;
  const leaseMs = options.leaseMs ?? 15_000;
  const backoff = options.backoff ?? DEFAULT_BACKOFF;
  const concurrency = options.concurrency ?? 4;
  const batch = options.batch ?? 50;
  const stopGraceMs = options.stopGraceMs ?? 2000;
  const holderId = options.holderId ?? `${safeHostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
  const log = options.logger;
  if (!(pollMs > 0) || !(leaseMs > pollMs) || !(backoff.baseMs > 0) || !(backoff.capMs >= backoff.baseMs) || concurrency < 1 || batch < 1) {
    throw new Error('outbox deliverer: pollMs > 0, leaseMs > pollMs, 0 < backoff.baseMs <= backoff.capMs, concurrency and batch >= 1');
  }

  const counts = new Map<string, DeliveryCount>();
  const count = (channel: ChannelName, result: DeliveryResult) => {
    const key = `${channel}|${result}`;
    const c = counts.get(key) ?? { channel, result, count: 0 };
    c.count++;
    counts.set(key, c);
    options.onDelivery?.(channel, result);
  };

  let running = false;
  let stopping = false;
  let loopDone: Promise<void> | undefined;
  let abort = new AbortController();
  let wake: (() => void) | undefined;
  let kicked = false;
  let holds = false;
  let leaseUntil = 0;
  let renewAt = 0;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  /** Holds the lease (taking or renewing it when due); false when another deliverer has it. */
  async function ensureLease(): Promise<boolean> {
    const t = now();
    if (holds && t < renewAt && t < leaseUntil) return true;
    // A standby reads first, and takes the write lock only when the lease is free or its own.
    const current = await db.execute({ sql: 'SELECT holder, expires_at FROM outbox_lease WHERE name = ?', args: [LEASE_NAME] });
    const row = current.rows[0];
    if (row && String(row['holder']) !== holderId && Number(row['expires_at']) > t) {
      if (holds) log?.warn('outbox: lease lost', { holder: holderId });
      holds = false;
      return false;
    }
    const got = await db.write(async (tx) => {
      await tx.execute({
        sql: `INSERT INTO outbox_lease (name, holder, expires_at) VALUES (?, ?, ?)
              ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
              WHERE outbox_lease.holder = excluded.holder OR outbox_lease.expires_at <= ?`,
        args: [LEASE_NAME, holderId, t + leaseMs, t],
      });
      const r = await tx.execute({ sql: 'SELECT holder FROM outbox_lease WHERE name = ?', args: [LEASE_NAME] });
      return String(r.rows[0]?.['holder']) === holderId;
    });
    if (got && !holds) log?.info('outbox: lease taken, delivering', { holder: holderId });
    holds = got;
    if (got) {
      leaseUntil = t + leaseMs;
      renewAt = t + Math.floor(leaseMs / 3);
    }
    return got;
  }

  async function releaseLease(): Promise<void> {
    if (!holds) return;
    holds = false;
    await db
      .write((tx) => tx.execute({ sql: 'UPDATE outbox_lease SET expires_at = 0 WHERE name = ? AND holder = ?', args: [LEASE_NAME, holderId] }))
      .catch((err: unknown) => log?.warn('outbox: could not give the lease up', { error: redactError(err) }));
  }

  const sentAt = (row: OutboxRow, channel: ChannelName) => (channel === 'email' ? row.emailSentAt : row.webhookSentAt);

  /** Delivers one event to every channel still owing it, and records the outcome. True when fully delivered. */
  async function deliverOne(row: OutboxRow): Promise<boolean> {
    const owed = channels.filter((c) => c.accepts(row.type) && sentAt(row, c.name) === undefined);
    let opened: OutboxSecret | undefined;
    let secretError: unknown;
    const secrets: string[] = [];
    const event: DeliverableEvent = {
      id: row.id,
      type: row.type,
      workspaceId: row.workspaceId,
      actor: row.actor,
      data: row.data,
      createdAt: row.createdAt,
      secret() {
        if (opened === undefined && secretError === undefined && row.sealedSecret) {
          try {
            if (!options.secretBox) throw new Error('no encryption key to open the invite link (GATE_TOKEN_ENCRYPTION_KEY)');
            opened = openSecret(row, options.secretBox);
            if (opened) secrets.push(...Object.values(opened).filter((v): v is string => typeof v === 'string'));
          } catch (err) {
            // (secret-box and AES errors name a key id at most, never the plaintext)
            secretError = new Error(`cannot decrypt the invite link: ${(err as Error).message}`);
          }
        }
        if (secretError !== undefined) throw secretError;
        return opened;
      },
    };

    const sent: ChannelName[] = [];
    const failed: { channel: ChannelName; error: string }[] = [];
    for (const channel of owed) {
      if (abort.signal.aborted) break;
      try {
        await channel.deliver(event, abort.signal);
        sent.push(channel.name);
      } catch (err) {
        failed.push({ channel: channel.name, error: `${channel.name}: ${redactError(err, secrets)}` });
      }
    }
    // Stopping: keep what was sent, do not count the interrupted try as a failure.
    const interrupted = abort.signal.aborted && sent.length + failed.length < owed.length;
    const t = now();
    const set: string[] = [];
    const args: (string | number | null)[] = [];
    if (sent.includes('email')) set.push('email_sent_at = ?'), args.push(t);
    if (sent.includes('webhook')) set.push('webhook_sent_at = ?'), args.push(t);
    let outcome: 'delivered' | 'retry' | 'dead' | 'interrupted';
    if (interrupted || (abort.signal.aborted && failed.length > 0)) {
      outcome = 'interrupted';
    } else if (failed.length === 0) {
      outcome = 'delivered';
      set.push("status = 'delivered'", 'delivered_at = ?', 'attempts = attempts + 1', 'last_error = NULL');
      args.push(t);
    } else {
      const attempts = row.attempts + 1;
      const lastError = failed.map((f) => f.error).join('; ');
      set.push('attempts = ?', 'last_error = ?');
      args.push(attempts, lastError.length > 1000 ? lastError.slice(0, 997) + '...' : lastError);
      if (t >= row.giveUpAt) {
        outcome = 'dead';
        set.push("status = 'dead'");
      } else {
        outcome = 'retry';
        const delay = Math.min(backoff.baseMs * 2 ** Math.min(attempts - 1, 40), backoff.capMs);
        set.push('next_attempt_at = ?');
        args.push(Math.min(t + delay, row.giveUpAt));
      }
    }
    if (set.length > 0) {
      await db.write((tx) =>
        tx.execute({ sql: `UPDATE outbox_events SET ${set.join(', ')} WHERE id = ? AND status = 'pending'`, args: [...args, row.id] }),
      );
    }
    for (const c of sent) count(c, 'delivered');
    if (outcome === 'retry' || outcome === 'dead') {
      for (const f of failed) count(f.channel, outcome === 'dead' ? 'dead' : 'failed');
      const fields = { event_id: row.id, type: row.type, workspace: row.workspaceId, attempt: row.attempts + 1, error: failed.map((f) => f.error).join('; ') };
      if (outcome === 'dead') log?.error('outbox: event given up after its retry window (dead)', fields);
      else log?.warn('outbox: delivery failed, will retry', fields);
    } else if (outcome === 'delivered') {
      log?.debug('outbox: event delivered', { event_id: row.id, type: row.type, channels: sent });
    }
    return outcome === 'delivered';
  }

  async function nextOf(workspaceId: string): Promise<OutboxRow | undefined> {
    const r = await db.execute({
      sql: "SELECT * FROM outbox_events WHERE status = 'pending' AND workspace_id = ? ORDER BY seq LIMIT 1",
      args: [workspaceId],
    });
    const row = r.rows[0];
    return row ? rowToEvent(row as unknown as Record<string, unknown>) : undefined;
  }

  /** Delivers a workspace's due events in order, until one fails, one is not due, or the batch is done. */
  async function drain(head: OutboxRow): Promise<number> {
    let row: OutboxRow | undefined = head;
    let done = 0;
    while (row && done < batch && !stopping) {
      if (row.nextAttemptAt > now()) break;
      if (!(await ensureLease())) break;
      const delivered = await deliverOne(row);
      done++;
      if (!delivered) break;
      row = await nextOf(row.workspaceId);
    }
    return done;
  }

  /** One pass: the due heads of up to `concurrency` workspaces, drained in parallel. Returns events tried. */
  async function pass(): Promise<number> {
    if (!(await ensureLease())) return 0;
    const r = await db.execute({
      sql: `SELECT e.* FROM outbox_events e
            WHERE e.seq IN (SELECT min(seq) FROM outbox_events WHERE status = 'pending' GROUP BY workspace_id)
              AND e.next_attempt_at <= ?
            ORDER BY e.seq LIMIT ?`,
      args: [now(), concurrency],
    });
    if (r.rows.length === 0) return 0;
    const heads = r.rows.map((row) => rowToEvent(row as unknown as Record<string, unknown>));
    const tried = await Promise.all(heads.map(drain));
    return tried.reduce((a, b) => a + b, 0);
  }

  async function loop(): Promise<void> {
    let failures = 0;
    while (!stopping) {
      let tried = 0;
      kicked = false;
      try {
        tried = await pass();
        failures = 0;
      } catch (err) {
        // A busy or unreachable database: wait and look again; the rows are where they were.
        // Logged on the first failure and every tenth after it, not once a poll.
        failures++;
        if (!stopping && (failures === 1 || failures % 10 === 0)) {
          log?.warn('outbox: delivery pass failed', { error: redactError(err), consecutive: failures });
        }
      }
      if (stopping) break;
      if (kicked && failures === 0) {
        kicked = false;
        continue;
      }
      // While the database keeps failing, look less often (up to 32 polls apart), never unboundedly.
      if (failures > 0) await sleep(pollMs * 2 ** Math.min(failures - 1, 5));
      else if (tried === 0) await sleep(pollMs);
    }
  }

  return {
    holderId,
    get holdsLease() {
      return holds;
    },
    start() {
      if (running) return;
      running = true;
      stopping = false;
      abort = new AbortController();
      loopDone = loop();
    },
    async stop() {
      if (!running) return;
      stopping = true;
      wake?.();
      let timer: NodeJS.Timeout | undefined;
      const cut = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          abort.abort(new Error('the outbox deliverer is stopping'));
          resolve();
        }, stopGraceMs);
      });
      await Promise.race([loopDone, cut]);
      clearTimeout(timer);
      await loopDone;
      running = false;
      await releaseLease();
      for (const c of channels) await Promise.resolve(c.close?.()).catch(() => undefined);
    },
    kick() {
      kicked = true;
      wake?.();
    },
    deliveries() {
      return [...counts.values()].map((c) => ({ ...c }));
    },
  };
}

function safeHostname(): string {
  try {
    return hostname();
  } catch {
    return 'gate';
  }
}
