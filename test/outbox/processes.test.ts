import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { enqueue, listEvents, statusCounts } from '../../src/outbox/store.ts';
import { WEBHOOK_SECRET, startWebhookReceiver, tempDb, waitFor, type WebhookReceiver } from './helpers.ts';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Child {
  proc: ChildProcess;
  out: string[];
  exited: Promise<number | null>;
}

/** A deliverer in its own process (a second gateway, or one to kill -9). */
async function spawnDeliverer(dbUrl: string, hook: WebhookReceiver, holder: string): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'test/outbox/child-deliverer.ts'], {
    env: { ...process.env, DB_URL: dbUrl, HOOK_URL: hook.url, HOOK_SECRET: WEBHOOK_SECRET, HOLDER: holder, LEASE_MS: '800' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out: string[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    const parts = buf.split('\n');
    buf = parts.pop()!;
    out.push(...parts);
  });
  proc.stderr!.on('data', () => undefined);
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    return exited;
  });
  await waitFor(() => out.includes('ready'), 20_000, `${holder} to start`);
  return { proc, out, exited };
}

async function stopChild(c: Child): Promise<{ holder: string; delivered: number }> {
  c.proc.kill('SIGTERM');
  await Promise.race([c.exited, new Promise((_, reject) => setTimeout(() => reject(new Error('child did not stop')), 5000))]);
  const line = c.out.find((l) => l.startsWith('{'));
  const parsed = JSON.parse(line!) as { holder: string; deliveries: { result: string; count: number }[] };
  return { holder: parsed.holder, delivered: parsed.deliveries.filter((d) => d.result === 'delivered').reduce((n, d) => n + d.count, 0) };
}

describe('outbox across processes', () => {
  it('kill -9 while delivering 200 events: after a restart all 200 are delivered, in order per workspace, none lost', async () => {
    const { db, url } = await tempDb();
    cleanups.push(() => db.close());
    const hook = await startWebhookReceiver();
    cleanups.push(() => hook.close());
    hook.respond = async () => {
      await new Promise((r) => setTimeout(r, 3));
      return 200;
    };
    const ids: string[] = [];
    await db.write(async (tx) => {
      for (let i = 0; i < 200; i++) ids.push(await enqueue(tx, { type: 'token.created', workspaceId: `ws_${i % 4}`, actor: 'user:x', data: { n: i } }));
    });
    const first = await spawnDeliverer(url, hook, 'gate-1');
    await waitFor(() => hook.deliveredIds().length >= 50, 20_000, '50 deliveries');
    first.proc.kill('SIGKILL');
    await first.exited;
    const atKill = hook.deliveredIds().length;
    expect(atKill).toBeLessThan(200);
    // The killed holder's lease is still in the row; the next deliverer takes over when it expires.
    const second = await spawnDeliverer(url, hook, 'gate-2');
    await waitFor(async () => (await statusCounts(db)).delivered === 200, 30_000, 'all 200 delivered');
    await stopChild(second);
    expect(new Set(hook.deliveredIds())).toEqual(new Set(ids));
    // At least once: at most the few in flight at the kill arrive twice; the receiver dedups them by webhook-id.
    expect(hook.received.length).toBeLessThanOrEqual(200 + 4);
    expect(hook.rejected).toBe(0);
    // In order per workspace, also across the kill.
    const order = hook.deliveredIds();
    for (let w = 0; w < 4; w++) {
      const wsIds = ids.filter((_, i) => i % 4 === w);
      expect(order.filter((id) => wsIds.includes(id))).toEqual(wsIds);
    }
    expect((await listEvents(db, { status: 'pending' })).length).toBe(0);
  });

  it('two gateways on one database: one delivers at a time; each event is delivered by one of them', async () => {
    const { db, url } = await tempDb();
    cleanups.push(() => db.close());
    const hook = await startWebhookReceiver();
    cleanups.push(() => hook.close());
    hook.respond = async () => {
      await new Promise((r) => setTimeout(r, 3));
      return 200;
    };
    const a = await spawnDeliverer(url, hook, 'gate-a');
    const b = await spawnDeliverer(url, hook, 'gate-b');
    const ids: string[] = [];
    for (let i = 0; i < 60; i++) {
      ids.push(await db.write((tx) => enqueue(tx, { type: 'member.role_changed', workspaceId: `ws_${i % 3}`, actor: 'user:x', data: { n: i } })));
    }
    await waitFor(() => hook.deliveredIds().length >= 20, 20_000, 'the first 20');
    const lease = (await db.execute('SELECT holder FROM outbox_lease')).rows[0]!;
    const holder = String(lease['holder']) === 'gate-a' ? a : b;
    const other = holder === a ? b : a;
    // The holder shuts down (gives the lease up); the other takes over and finishes.
    const first = await stopChild(holder);
    await waitFor(() => hook.deliveredIds().length === 60, 20_000, 'all 60');
    await waitFor(async () => (await statusCounts(db)).delivered === 60, 5000, 'all 60 recorded');
    const second = await stopChild(other);
    expect(new Set(hook.deliveredIds())).toEqual(new Set(ids));
    // A clean shutdown cuts no delivery short: every event was sent exactly once, by one of them.
    expect(hook.received.length).toBe(60);
    expect(first.delivered + second.delivered).toBe(60);
    expect(first.delivered).toBeGreaterThanOrEqual(15);
    expect(second.delivered).toBeGreaterThan(0);
  });
});
