import { loadConfig } from '../config.ts';
import { openDb, type Db } from '../db/client.ts';
import { migrate } from '../db/migrations.ts';
import { EVENT_ID, OUTBOX_STATUSES, type OutboxStatus } from '../outbox/events.ts';
import { listEvents, retryEvent, statusCounts, type OutboxRow } from '../outbox/store.ts';
import { EXIT_FAILED, EXIT_OK, parseCommandArgs, UsageError, type Command, type CommandIo } from './command.ts';

async function withDb<T>(io: CommandIo, fn: (db: Db) => Promise<T>): Promise<T> {
  const config = loadConfig(io.env);
  let db: Db;
  try {
    db = await openDb({ url: config.databaseUrl, authToken: config.databaseAuthToken, syncUrl: config.databaseSyncUrl });
    await migrate(db);
  } catch (err) {
    throw new UsageError(`GATE_DATABASE_URL: cannot open the database (${(err as Error).message.split('\n')[0]})`);
  }
  try {
    return await fn(db);
  } finally {
    db.close();
  }
}

const iso = (ms: number | undefined) => (ms === undefined ? '-' : new Date(ms).toISOString());

/** One line per event: what an operator needs to decide on a retry. Never data or secrets. */
export function formatOutboxList(rows: OutboxRow[], counts: Record<OutboxStatus, number>): string {
  const header = ['ID', 'TYPE', 'WORKSPACE', 'STATUS', 'ATTEMPTS', 'CREATED', 'NEXT ATTEMPT', 'LAST ERROR'];
  const lines = rows.map((r) => [
    r.id,
    r.type,
    r.workspaceId,
    r.status,
    String(r.attempts),
    iso(r.createdAt),
    r.status === 'pending' ? iso(r.nextAttemptAt) : '-',
    r.lastError ?? '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cols: string[]) => cols.map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  const summary = `${counts.pending} pending, ${counts.delivered} delivered, ${counts.dead} dead`;
  return (rows.length > 0 ? [fmt(header), ...lines.map(fmt)].join('\n') + '\n' : 'no events\n') + summary + '\n';
}

export const outboxListCommand: Command = {
  name: 'outbox list',
  summary: 'list outbox events (invite emails, webhooks) and their delivery state',
  help: `Usage: packagento-gate outbox list [--status pending|delivered|dead] [--limit N] [--json]

Lists the transactional outbox's events, newest first: id, type, workspace, status,
attempts, when it was written, when it is tried next, and the last (redacted) error.
Event data and invite links are never printed. The last line counts events by status.

Options:
  --status S   only events in this state: pending, delivered or dead
  --limit N    at most N events (default 50)
  --json       one JSON object per line instead of the table
Uses GATE_DATABASE_URL (default file:./data/gate.db).
Exit codes: 0 listed, 2 bad usage or configuration.
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(argv, { status: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
    const status = values.status;
    if (status !== undefined && !(OUTBOX_STATUSES as readonly string[]).includes(status)) {
      throw new UsageError(`--status must be one of ${OUTBOX_STATUSES.join(', ')}`);
    }
    const limit = values.limit === undefined ? 50 : Number(values.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new UsageError('--limit must be a whole number from 1 to 10000');
    return withDb(io, async (db) => {
      const rows = await listEvents(db, { status: status as OutboxStatus | undefined, limit });
      if (values.json) {
        for (const r of rows) {
          io.stdout(
            JSON.stringify({
              id: r.id, type: r.type, workspace: r.workspaceId, actor: r.actor, status: r.status, attempts: r.attempts,
              created_at: iso(r.createdAt), next_attempt_at: r.status === 'pending' ? iso(r.nextAttemptAt) : null,
              delivered_at: r.deliveredAt === undefined ? null : iso(r.deliveredAt), last_error: r.lastError ?? null,
            }) + '\n',
          );
        }
      } else {
        io.stdout(formatOutboxList(rows, await statusCounts(db)));
      }
      return EXIT_OK;
    });
  },
};

export const outboxRetryCommand: Command = {
  name: 'outbox retry',
  summary: 'deliver a dead (or waiting) outbox event again, now',
  help: `Usage: packagento-gate outbox retry EVENT_ID

Makes a dead or pending event due now, with a fresh backoff and a fresh 24 h retry
window. The gateway holding the outbox lease delivers it at its next look (within
a second). Channels that already took the event (the email was sent, say) are not
sent it again. A delivered event is not retried.
Uses GATE_DATABASE_URL (default file:./data/gate.db).
Exit codes: 0 queued, 1 no such event or already delivered, 2 bad usage or configuration.
`,
  async run(argv, io) {
    const { positionals } = parseCommandArgs(argv, {}, true);
    if (positionals.length !== 1) throw new UsageError('expected exactly one EVENT_ID');
    const id = positionals[0]!;
    if (!EVENT_ID.test(id)) throw new UsageError(`"${id.slice(0, 80)}" is not an event id (evt_…)`);
    return withDb(io, async (db) => {
      const result = await retryEvent(db, id);
      if (!result.ok) {
        io.stderr(`packagento-gate outbox retry: ${result.reason === 'not_found' ? `no event ${id}` : `${id} is already delivered`}\n`);
        return EXIT_FAILED;
      }
      io.stdout(`${id} (${result.previous}) is queued for delivery now\n`);
      return EXIT_OK;
    });
  },
};
