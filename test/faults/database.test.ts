/**
 * Database faults (issue #9 faults 4 and 5), against a real gateway process:
 * another process holding the write lock (BEGIN EXCLUSIVE for 6 s) must not freeze
 * the event loop, and a database file deleted or replaced under the gateway must
 * turn reads and writes into 503s (never a write acknowledged into an unlinked file)
 * until a valid database is back at the path, which is then reopened.
 */
import { spawn } from 'node:child_process';
import { copyFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'libsql';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { ACME } from '../helpers/gateway.ts';
import { sleep, startGateProcess, waitUntil, type GateProcess } from '../helpers/gate-process.ts';
import { startEchoUpstream, type EchoUpstream } from '../helpers/upstream.ts';

let upstream: EchoUpstream;
beforeAll(async () => {
  upstream = await startEchoUpstream();
});
afterAll(async () => {
  await upstream?.close();
});

const WRITE_TIMEOUT_MS = 5000; // GATE_DB_WRITE_TIMEOUT_MS's default
const LICENCES = '/v1/workspaces/acme/licences';

/** Another process that takes the write lock (BEGIN EXCLUSIVE) and holds it for `ms`. */
async function holdLock(dbPath: string, ms: number): Promise<{ released: Promise<void> }> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const D = require('libsql'); const d = new D(${JSON.stringify(dbPath)}, { timeout: 5000 });
       d.exec('BEGIN EXCLUSIVE'); d.exec("INSERT OR REPLACE INTO gate_meta (key, value) VALUES ('locker', 'x')");
       process.stdout.write('locked\\n'); setTimeout(() => { d.exec('COMMIT'); d.close(); process.exit(0); }, ${ms});`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout!.once('data', () => resolve());
    child.once('exit', (code) => reject(new Error(`locker exited with ${code}`)));
  });
  return { released: new Promise<void>((resolve) => child.once('exit', () => resolve())) };
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

describe('fault 4: another process holds the write lock for 6 s', () => {
  let gate: GateProcess;
  beforeAll(async () => {
    gate = await startGateProcess({ upstreamUrl: upstream.url, world: ACME });
    // alice is a known (recorded) user before the lock is taken.
    const warm = await gate.request('GET', LICENCES, { as: 'alice' });
    expect(warm.status).toBe(200);
    await sleep(300);
  }, 40_000);
  afterAll(async () => {
    await gate?.stop();
  });

  test('healthz and forwarded reads keep answering at once, a write gets 503 within the write timeout + 1 s, no 504', async () => {
    const { released } = await holdLock(gate.dbPath, 6000);
    const lockedAt = Date.now();
    const health: number[] = [];
    const reads: number[] = [];
    // A native write, and the first request of a user the gateway has not recorded yet (a "record user" write).
    const write = timed(() => gate.request('POST', '/v1/workspaces/acme/projects', { as: 'alice', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'during-lock' }) }));
    const newUser = timed(() => gate.request('GET', '/v1/workspaces/acme/projects/web/licences', { as: 'gina' }));
    while (Date.now() - lockedAt < 5500) {
      const h = await timed(() => fetch(gate.url + '/_gate/healthz'));
      expect(h.value.status).toBe(200);
      health.push(h.ms);
      const r = await gate.request('GET', LICENCES, { as: 'alice' });
      reads.push(r.status);
      await r.arrayBuffer();
      await sleep(50);
    }
    const w = await write;
    const n = await newUser;
    await released;

    // The event loop never waited: every healthz was quick (the lock-wait bug held them ~5 s).
    health.sort((a, b) => a - b);
    expect(health.length).toBeGreaterThan(20);
    expect(health[Math.floor(health.length * 0.95)]!).toBeLessThan(100);
    expect(health.at(-1)!).toBeLessThan(1000);
    // Forwarded reads of known users were answered by the upstream, never 504.
    expect(reads.every((s) => s === 200)).toBe(true);
    expect(n.value.status).toBe(200);
    expect(n.ms).toBeLessThan(1000);
    // The write could not get the lock in time: 503, not a hang and not a silent success.
    expect(w.value.status).toBe(503);
    expect(((await w.value.json()) as { code: string }).code).toBe('unavailable');
    expect(w.ms).toBeLessThan(WRITE_TIMEOUT_MS + 1000);
    expect(await gate.alive()).toBe(true);

    // The lock is gone: writes work again.
    const after = await gate.request('POST', '/v1/workspaces/acme/projects', { as: 'alice', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'after-lock' }) });
    expect(after.status).toBe(201);
  }, 30_000);

  test('readyz answers 503 while the lock is held, and 200 again after', async () => {
    const { released } = await holdLock(gate.dbPath, 3000);
    const during = await fetch(gate.url + '/_gate/readyz');
    expect(during.status).toBe(503);
    await released;
    await waitUntil(async () => (await fetch(gate.url + '/_gate/readyz')).status === 200, 'readyz 200 after the lock', 5000);
  }, 20_000);
});

describe('fault 5: the database file deleted or replaced under a running gateway', () => {
  let gate: GateProcess;
  let backup: string;
  beforeAll(async () => {
    gate = await startGateProcess({ upstreamUrl: upstream.url, world: ACME });
    backup = join(gate.dir, 'backup.db');
  }, 40_000);
  afterAll(async () => {
    await gate?.stop();
  });
  afterEach(async () => {
    expect(await gate.alive()).toBe(true);
  });

  const createProject = (name: string) =>
    gate.request('POST', '/v1/workspaces/acme/projects', { as: 'alice', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });

  test('deleted: writes answer 503 (not 201), reads fail closed, an error is logged; a valid file back is reopened', async () => {
    expect((await createProject('before-delete')).status).toBe(201);
    // A consistent copy to restore later (the backup API of a second connection).
    const src = new Database(gate.dbPath);
    src.exec(`VACUUM INTO '${backup}'`);
    src.close();
    // Someone removes bob in the copy that will come back (a change made "elsewhere").
    const b = new Database(backup);
    b.exec("DELETE FROM memberships WHERE workspace_id = 'acme' AND user_id = 'bob'");
    b.close();

    const forwardedBefore = upstream.received.length;
    for (const suffix of ['', '-wal', '-shm']) rmSync(gate.dbPath + suffix, { force: true });
    const w = await createProject('into-the-void');
    expect(w.status).toBe(503);
    await waitUntil(() => gate.logs.some((l) => l.level === 50 && /database file/.test(String(l.msg))), 'an error log line', 5000);
    const read = await gate.request('GET', LICENCES, { as: 'alice' });
    expect(read.status).toBe(503);
    expect(upstream.received.length).toBe(forwardedBefore);
    expect((await fetch(gate.url + '/_gate/readyz')).status).toBe(503);

    // A zero-byte file is not a database: still 503.
    copyFileSync('/dev/null', gate.dbPath);
    await sleep(1500);
    expect((await createProject('into-nothing')).status).toBe(503);
    rmSync(gate.dbPath, { force: true });

    copyFileSync(backup, gate.dbPath);
    await waitUntil(async () => (await createProject('after-restore')).status === 201, 'writes to work on the restored file', 8000);
    // The restored file is the one in use: bob's removal there is seen, and the write landed in it.
    const bob = await gate.request('GET', LICENCES, { as: 'bob' });
    expect(bob.status).toBe(404);
    const check = new Database(gate.dbPath);
    const row = check.prepare("SELECT count(*) AS n FROM projects WHERE name = 'after-restore'").get() as { n: number };
    check.close();
    expect(Number(row.n)).toBe(1);
    expect((await fetch(gate.url + '/_gate/readyz')).status).toBe(200);
  }, 40_000);

  test('replaced (renamed over): detected as a new file, and reopened', async () => {
    const other = join(gate.dir, 'other.db');
    const src = new Database(gate.dbPath);
    src.exec(`VACUUM INTO '${other}'`);
    src.close();
    const o = new Database(other);
    o.exec("DELETE FROM memberships WHERE workspace_id = 'acme' AND user_id = 'dave'");
    o.close();
    expect((await gate.request('GET', LICENCES, { as: 'dave' })).status).toBe(200);
    renameSync(other, gate.dbPath);
    await waitUntil(() => gate.logs.some((l) => /replaced/.test(String(l.reason ?? ''))), 'the replacement to be logged', 5000);
    await waitUntil(async () => (await gate.request('GET', LICENCES, { as: 'dave' })).status === 404, "dave's removal in the new file to be seen", 8000);
    expect((await createProject('after-replace')).status).toBe(201);
  }, 30_000);
});
