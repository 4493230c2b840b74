import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { basic, call } from '../helpers/api.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';

/**
 * Access changes are immediate: the very next request with the old credentials is
 * denied, on this instance and on another instance that shares the database file.
 */
describe('access changes take effect on the very next request, on every instance', () => {
  let a: TestGateway;
  let b: TestGateway;

  beforeAll(async () => {
    a = await startTestGateway({ world: ACME });
    // A second gateway on the same libSQL file, the same upstream and the same encryption key.
    b = await startTestGateway({ dir: a.dir, upstream: a.upstream, encryptionKey: a.encryptionKey });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const upstreamCount = () => a.upstream.received.length;

  test('removal: the removed member is denied at once on both instances, and nothing is forwarded', async () => {
    for (const gw of [a, b]) expect((await call(gw.gw.url, 'GET', '/v1/workspaces/acme/licences', { as: 'vic' })).status).toBe(200);
    expect((await call(a.gw.url, 'DELETE', '/v1/workspaces/acme/members/vic', { as: 'bob' })).status).toBe(200);
    const before = upstreamCount();
    for (const gw of [b, a]) expect((await call(gw.gw.url, 'GET', '/v1/workspaces/acme/licences', { as: 'vic' })).status).toBe(404);
    expect(upstreamCount()).toBe(before);
  });

  test('downgrade: billing loses refunds the next request after becoming viewer', async () => {
    expect((await call(b.gw.url, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', { as: 'bill', body: {} })).status).toBe(200);
    expect((await call(a.gw.url, 'PATCH', '/v1/workspaces/acme/members/bill', { as: 'alice', body: { role: 'viewer' } })).status).toBe(200);
    const before = upstreamCount();
    const denied = await call(b.gw.url, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', { as: 'bill', body: {} });
    expect(denied.status).toBe(403);
    expect(denied.body.action).toBe('licence:refund');
    expect(upstreamCount()).toBe(before);
  });

  test('rotation: the old key stops working at once, the new one works, on both instances', async () => {
    const old = a.seeded.tokens.get('t1')!;
    const oldCreds = basic(old.publicKey, old.privateKey);
    expect((await call(b.gw.url, 'GET', '/repo/packages.json', { headers: oldCreds })).status).toBe(200);
    const rotated = await call(a.gw.url, 'POST', '/v1/workspaces/acme/projects/web/tokens/t1/rotate', { as: 'dave' });
    expect(rotated.status).toBe(200);
    const before = upstreamCount();
    for (const gw of [b, a]) expect((await call(gw.gw.url, 'GET', '/repo/packages.json', { headers: oldCreds })).status).toBe(401);
    expect(upstreamCount()).toBe(before);
    const fresh = basic(rotated.body.token.public_key, rotated.body.token.private_key);
    expect((await call(b.gw.url, 'GET', '/repo/packages.json', { headers: fresh })).status).toBe(200);
    expect(a.upstream.received.at(-1)!.headers['x-packagento-principal']).toBe(`token:${rotated.body.token.id}`);
  });

  test('guest removal and token revocation are immediate too', async () => {
    expect((await call(b.gw.url, 'GET', '/v1/workspaces/acme/projects/web/licences', { as: 'gus' })).status).toBe(200);
    expect((await call(a.gw.url, 'DELETE', '/v1/workspaces/acme/projects/web/guests/gus', { as: 'bob' })).status).toBe(200);
    expect((await call(b.gw.url, 'GET', '/v1/workspaces/acme/projects/web/licences', { as: 'gus' })).status).toBe(404);

    const t2 = a.seeded.tokens.get('t2')!;
    const creds = basic(t2.publicKey, t2.privateKey);
    expect((await call(b.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(200);
    expect((await call(a.gw.url, 'DELETE', '/v1/workspaces/acme/projects/api/tokens/t2', { as: 'bob' })).status).toBe(200);
    expect((await call(b.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
  });

  test('project deletion deactivates its tokens', async () => {
    const created = await call(a.gw.url, 'POST', '/v1/workspaces/acme/projects', { as: 'alice', body: { name: 'Temp' } });
    const tok = await call(a.gw.url, 'POST', `/v1/workspaces/acme/projects/${created.body.id}/tokens`, { as: 'alice', body: { name: 'x' } });
    const creds = basic(tok.body.token.public_key, tok.body.token.private_key);
    expect((await call(b.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(200);
    const del = await call(a.gw.url, 'DELETE', `/v1/workspaces/acme/projects/${created.body.id}`, { as: 'alice' });
    expect(del.body).toEqual({ deleted: created.body.id, deactivated_tokens: 1 });
    expect((await call(b.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
    expect((await call(a.gw.url, 'GET', `/v1/workspaces/acme/projects/${created.body.id}`, { as: 'alice' })).status).toBe(404);
  });
});
