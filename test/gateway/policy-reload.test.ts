/**
 * Policy reload (CONTRACT §4 "Fail closed"): an invalid policy on reload is rejected
 * and the last good policy stays in force; a valid change is swapped in whole, and
 * its revision is what the upstream sees. Each test works on its own copy of policies/.
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway, type TestGatewayOptions } from '../helpers/gateway.ts';
import { headerValues, startEchoUpstream } from '../helpers/upstream.ts';
import { decisionOf, expectForwardedOnce, expectRefused, send, until, type Exchange } from '../security/support.ts';

const REFUND = '/v1/workspaces/acme/licences/l1/refund-requests';
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function gatewayOnCopy(options: TestGatewayOptions = {}): Promise<{ t: TestGateway; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'gate-policy-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  await cp('policies', dir, { recursive: true });
  const t = await startTestGateway({ world: ACME, policyDir: dir, ...options });
  cleanup.push(() => t.close());
  return { t, dir };
}

async function edit(dir: string, file: string, change: (text: string) => string): Promise<void> {
  const path = join(dir, file);
  await writeFile(path, change(await readFile(path, 'utf8')));
}

const refundAs = (t: TestGateway, as: string): Promise<Exchange> =>
  send(t, 'POST', REFUND, { as, headers: [['Content-Type', 'application/json']], body: '{}' });

/** bill (billing) may refund under the default policy: forwarded, with this revision. */
async function expectBillRefundForwarded(t: TestGateway, revision: string): Promise<void> {
  const res = await refundAs(t, 'bill');
  expect(res.status).toBe(200);
  expect(headerValues(expectForwardedOnce(res), 'x-packagento-policy-revision')).toEqual([revision]);
  expect(decisionOf(res).policy_revision).toBe(revision);
}

const BILLING_REFUND = /^p, billing, licence:refund, -$/m;

describe('an invalid policy on reload is rejected; the last good policy stays', () => {
  it.each<[string, string, (text: string) => string]>([
    ['policy.csv names an unknown action', 'policy.csv', (s) => s + '\np, viewer, licence:everything, -\n'],
    ['policy.csv has a malformed line', 'policy.csv', (s) => s + '\np, viewer\n'],
    ['policy.csv repeats a line', 'policy.csv', (s) => s + '\np, viewer, licence:list, -\n'],
    ['routes.txt has a garbage line', 'routes.txt', (s) => s + '\nFETCH /v1/anything whatever to=upstream\n'],
    ['routes.txt gives a native route an action the gateway does not answer', 'routes.txt', (s) => s + '\nGET /v1/workspaces/{ws}/secrets secret:read to=native\n'],
    ['routes.txt drops a route of the gateway\'s own API', 'routes.txt', (s) => s.replace(/^GET\s+\/v1\/workspaces\/\{ws\}\/members\s+member:list.*$/m, '# dropped')],
    ['model.conf is not a Casbin model', 'model.conf', () => '[request_definition]\nr = sub\n[nonsense\n'],
  ])('%s', async (_name, file, change) => {
    const { t, dir } = await gatewayOnCopy();
    const before = t.gw.policy.current.revision;
    // The invalid edit also removes billing's refund, so a wrongly applied reload would show.
    await edit(dir, 'policy.csv', (s) => s.replace(BILLING_REFUND, '# removed'));
    await edit(dir, file, change);
    await t.gw.policy.reload();
    expect(t.gw.policy.current.revision).toBe(before);
    expect(t.logs.some((l) => JSON.parse(l).msg?.includes('reload rejected'))).toBe(true);
    await expectBillRefundForwarded(t, before);
  });

  it('the policy folder disappearing is rejected too', async () => {
    const { t, dir } = await gatewayOnCopy();
    const before = t.gw.policy.current.revision;
    await rm(dir, { recursive: true, force: true });
    await t.gw.policy.reload();
    expect(t.gw.policy.current.revision).toBe(before);
    await expectBillRefundForwarded(t, before);
  });

  it('an invalid policy stops the gateway from starting', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-policy-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await cp('policies', dir, { recursive: true });
    await edit(dir, 'policy.csv', (s) => s + '\np, viewer, licence:everything, -\n');
    const upstream = await startEchoUpstream();
    cleanup.push(() => upstream.close());
    await expect(startTestGateway({ world: ACME, policyDir: dir, upstream })).rejects.toThrow(/licence:everything|unknown action/);
  });
});

describe('a valid change is applied whole', () => {
  it('narrowing: billing loses licence:refund; the new revision is in the decision and upstream headers', async () => {
    const { t, dir } = await gatewayOnCopy();
    const before = t.gw.policy.current.revision;
    await expectBillRefundForwarded(t, before);

    await edit(dir, 'policy.csv', (s) => s.replace(BILLING_REFUND, '# billing refunds now go through support'));
    await t.gw.policy.reload();
    const after = t.gw.policy.current.revision;
    expect(after).not.toBe(before);

    const denied = await refundAs(t, 'bill');
    expectRefused(denied, 403, 'forbidden');
    expect(decisionOf(denied).policy_revision).toBe(after);
    // The owner held licence:refund only by inheriting billing (g, owner, billing): it goes too.
    const owner = await refundAs(t, 'alice');
    expect(owner.status).toBe(403);
    // Other actions are untouched and carry the new revision upstream.
    const list = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic' });
    expect(headerValues(expectForwardedOnce(list), 'x-packagento-policy-revision')).toEqual([after]);
  });

  it('widening the route map: a new forwarded route starts working, 404 before', async () => {
    const { t, dir } = await gatewayOnCopy();
    const before = await send(t, 'GET', '/v1/workspaces/acme/invoices', { as: 'vic' });
    expectRefused(before, 404, 'not_found');
    await edit(dir, 'routes.txt', (s) => s + '\nGET     /v1/workspaces/{ws}/invoices                       licence:list          to=upstream\n');
    await t.gw.policy.reload();
    const after = await send(t, 'GET', '/v1/workspaces/acme/invoices', { as: 'vic' });
    expect(after.status).toBe(200);
    expect(expectForwardedOnce(after).url).toBe('/v1/workspaces/acme/invoices');
    expect(decisionOf(after)).toMatchObject({ route: 'GET /v1/workspaces/{ws}/invoices', action: 'licence:list' });
  });

  it('requests during a reload are each decided by one whole revision', async () => {
    const { t, dir } = await gatewayOnCopy();
    const before = t.gw.policy.current.revision;
    await edit(dir, 'policy.csv', (s) => s.replace(BILLING_REFUND, '# removed'));
    const inflight = Array.from({ length: 30 }, () => refundAs(t, 'bill'));
    const reloading = t.gw.policy.reload();
    const results = [...(await Promise.all(inflight)), ...(await Promise.all(Array.from({ length: 10 }, () => refundAs(t, 'bill'))))];
    await reloading;
    const after = t.gw.policy.current.revision;
    expect(after).not.toBe(before);
    for (const res of results) {
      const d = decisionOf(res);
      if (res.status === 200) {
        expect(d.policy_revision).toBe(before);
        expect(headerValues(expectForwardedOnce(res), 'x-packagento-policy-revision')).toEqual([before]);
      } else {
        expectRefused(res, 403, 'forbidden');
        expect(d.policy_revision).toBe(after);
      }
    }
    // After the reload resolved, every request uses the new policy.
    expectRefused(await refundAs(t, 'bill'), 403, 'forbidden');
  });

  it('SIGHUP reloads (serve wires it)', async () => {
    const { t, dir } = await gatewayOnCopy({ handleSignals: true });
    const before = t.gw.policy.current.revision;
    await edit(dir, 'policy.csv', (s) => s.replace(BILLING_REFUND, '# removed'));
    process.kill(process.pid, 'SIGHUP');
    await until(() => t.gw.policy.current.revision !== before, 5000);
    expectRefused(await refundAs(t, 'bill'), 403, 'forbidden');
  });

  it('a change of the policy folder reloads when watching', async () => {
    const { t, dir } = await gatewayOnCopy({ watchPolicy: true });
    const before = t.gw.policy.current.revision;
    await edit(dir, 'policy.csv', (s) => s.replace(BILLING_REFUND, '# removed'));
    await until(() => t.gw.policy.current.revision !== before, 5000);
    expectRefused(await refundAs(t, 'bill'), 403, 'forbidden');
  });
});
