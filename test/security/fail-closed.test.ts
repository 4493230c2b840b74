/**
 * Fail closed (CONTRACT §4): when the database cannot be read the answer is 503
 * and nothing is forwarded. Each test breaks its own gateway.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { startEchoUpstream } from '../helpers/upstream.ts';
import { expectRefused, send } from './support.ts';

const running: TestGateway[] = [];
async function gateway(): Promise<TestGateway> {
  const t = await startTestGateway({ world: ACME });
  running.push(t);
  return t;
}
afterEach(async () => {
  await Promise.all(running.splice(0).map((t) => t.close()));
});

/** Requests that are forwarded while the database is healthy. */
const FORWARDED: [string, string, string][] = [
  ['vic', 'GET', '/v1/workspaces/acme/licences'],
  ['gina', 'GET', '/v1/workspaces/acme/projects/web/licences'],
  ['bill', 'POST', '/v1/workspaces/acme/licences/l1/refund-requests'],
  ['t1', 'GET', '/repo/packages.json'],
];

async function sendAll(t: TestGateway) {
  return Promise.all(
    FORWARDED.map(([as, method, path]) =>
      send(t, method, path, { as, ...(method === 'POST' ? { headers: [['Content-Type', 'application/json']], body: '{}' } : {}) }),
    ),
  );
}

describe('database unavailable → 503 unavailable, nothing forwarded', () => {
  it('control: with a healthy database these requests are forwarded', async () => {
    const t = await gateway();
    const results = await sendAll(t);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(t.upstream.received).toHaveLength(4);
  });

  it('the database client is closed', async () => {
    const t = await gateway();
    t.gw.db.close();
    for (const res of await sendAll(t)) {
      expectRefused(res, 503, 'unavailable');
      expect(res.headers['x-request-id']).toBeTruthy();
    }
    expect(t.upstream.received).toHaveLength(0);
    const native = await send(t, 'GET', '/v1/workspaces/acme/projects/web/tokens', { as: 'alice' });
    expectRefused(native, 503, 'unavailable');
    const ready = await send(t, 'GET', '/_gate/readyz');
    expect(ready.status).toBe(503);
  });

  it('a table the decision reads is gone', async () => {
    const t = await gateway();
    await t.gw.db.execute('DROP TABLE project_guests');
    const [vic, gina, bill, token] = await sendAll(t);
    for (const res of [vic!, gina!, bill!]) expectRefused(res, 503, 'unavailable');
    // The project-token path does not read project guests: it still works.
    expect(token!.status).toBe(200);
    expect(t.upstream.received.map((r) => r.url)).toEqual(['/repo/packages.json']);
  });

  it('the tokens table is gone: project tokens fail closed', async () => {
    const t = await gateway();
    await t.gw.db.execute('ALTER TABLE tokens RENAME TO tokens_gone');
    const res = await send(t, 'GET', '/repo/packages.json', { as: 't1' });
    expectRefused(res, 503, 'unavailable');
    expect(t.upstream.received).toHaveLength(0);
  });

  it('a 503 carries no internals (no SQL, no stack)', async () => {
    const t = await gateway();
    await t.gw.db.execute('DROP TABLE project_guests');
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic' });
    expectRefused(res, 503, 'unavailable');
    expect(res.text).not.toMatch(/SQL|project_guests|at .*\.ts|stack/i);
    // The details go to the operational log instead.
    expect(t.logs.some((l) => l.includes('decision failed') && l.includes(res.headers['x-request-id']!))).toBe(true);
  });
});

describe('a broken database file stops the start', () => {
  it('a file that is not a database: the gateway refuses to start', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-broken-'));
    const upstream = await startEchoUpstream();
    try {
      await writeFile(join(dir, 'gate.db'), 'this is not a sqlite database '.repeat(200));
      await expect(startTestGateway({ dir, upstream, world: ACME })).rejects.toThrow();
      expect(upstream.received).toHaveLength(0);
    } finally {
      await upstream.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
