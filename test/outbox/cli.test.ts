import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { enqueue } from '../../src/outbox/store.ts';
import { tempDb } from './helpers.ts';

const cleanups: (() => unknown)[] = [];
afterEach(() => {
  while (cleanups.length > 0) cleanups.pop()!();
});

async function run(argv: string[], env: Record<string, string>) {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env, cwd: process.cwd() });
  return { code, stdout, stderr };
}

describe('packagento-gate outbox', () => {
  it('list shows events by status without data or links; retry requeues a dead event', async () => {
    const { db, url } = await tempDb();
    cleanups.push(() => db.close());
    const env = { GATE_DATABASE_URL: url };
    const delivered = await db.write((tx) => enqueue(tx, { type: 'member.removed', workspaceId: 'ws_acme', actor: 'user:alice', data: { user: 'dave', email: 'dave@example.com' } }));
    const dead = await db.write((tx) => enqueue(tx, { type: 'token.deactivated', workspaceId: 'ws_acme', actor: 'user:alice', data: { token_id: 'tok_1' } }));
    const pending = await db.write((tx) => enqueue(tx, { type: 'guest.added', workspaceId: 'ws_beta', actor: 'user:bob', data: {} }));
    await db.write(async (tx) => {
      await tx.execute({ sql: "UPDATE outbox_events SET status = 'delivered', delivered_at = created_at, attempts = 1 WHERE id = ?", args: [delivered] });
      await tx.execute({ sql: "UPDATE outbox_events SET status = 'dead', attempts = 31, last_error = 'webhook: the webhook answered 500' WHERE id = ?", args: [dead] });
    });

    const all = await run(['outbox', 'list'], env);
    expect(all.code).toBe(0);
    const lines = all.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+TYPE\s+WORKSPACE\s+STATUS\s+ATTEMPTS\s+CREATED\s+NEXT ATTEMPT\s+LAST ERROR$/);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/)[0])).toEqual([pending, dead, delivered]);
    expect(lines[2]).toContain('webhook: the webhook answered 500');
    expect(lines.at(-1)).toBe('1 pending, 1 delivered, 1 dead');
    expect(all.stdout).not.toContain('dave@example.com');

    const deadOnly = await run(['outbox', 'list', '--status', 'dead', '--json'], env);
    expect(deadOnly.code).toBe(0);
    const rows = deadOnly.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(rows).toEqual([expect.objectContaining({ id: dead, status: 'dead', attempts: 31, type: 'token.deactivated' })]);

    const retry = await run(['outbox', 'retry', dead], env);
    expect(retry).toMatchObject({ code: 0, stderr: '' });
    expect(retry.stdout).toBe(`${dead} (dead) is queued for delivery now\n`);
    const after = await db.execute({ sql: 'SELECT status, attempts, give_up_at - next_attempt_at AS window FROM outbox_events WHERE id = ?', args: [dead] });
    expect(after.rows[0]).toMatchObject({ status: 'pending', attempts: 0, window: 24 * 3600 * 1000 });

    expect(await run(['outbox', 'retry', delivered], env)).toMatchObject({ code: 1, stderr: `packagento-gate outbox retry: ${delivered} is already delivered\n` });
    expect(await run(['outbox', 'retry', 'evt_nosuchevent'], env)).toMatchObject({ code: 1, stderr: 'packagento-gate outbox retry: no event evt_nosuchevent\n' });
  });

  it('--help, bad usage and bad configuration exit 0 / 2 with one line', async () => {
    const { db, url } = await tempDb();
    cleanups.push(() => db.close());
    const env = { GATE_DATABASE_URL: url };
    for (const argv of [['outbox', 'list', '--help'], ['outbox', 'retry', '--help'], ['outbox', '--help']]) {
      const r = await run(argv, env);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^Usage: packagento-gate outbox/);
    }
    const bad = [
      [['outbox', 'list', '--status', 'lost'], 'packagento-gate outbox list: --status must be one of pending, delivered, dead\n'],
      [['outbox', 'list', '--limit', '0'], 'packagento-gate outbox list: --limit must be a whole number from 1 to 10000\n'],
      [['outbox', 'retry'], 'packagento-gate outbox retry: expected exactly one EVENT_ID\n'],
      [['outbox', 'retry', 'not-an-id'], 'packagento-gate outbox retry: "not-an-id" is not an event id (evt_…)\n'],
    ] as const;
    for (const [argv, message] of bad) {
      expect(await run([...argv], env)).toMatchObject({ code: 2, stderr: message, stdout: '' });
    }
    const badDb = await run(['outbox', 'list'], { GATE_DATABASE_URL: 'ftp://nowhere' });
    expect(badDb.code).toBe(2);
    expect(badDb.stderr).toMatch(/^packagento-gate outbox list: GATE_DATABASE_URL: .*\n$/);
  });
});
