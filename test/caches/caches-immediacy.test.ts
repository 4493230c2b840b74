import { afterAll, beforeAll, expect, test } from 'vitest';
import { basic, call } from '../helpers/api.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { userJwt } from '../helpers/jwt.ts';

/** The fast paths are on (verified-JWT cache, versioned read cache) and removal is still immediate. */
let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
});
afterAll(async () => t?.close());

test('the same JWT, served from the caches, is denied on the very next request after removal', async () => {
  const jwt = await userJwt('vic');
  const auth = { authorization: `Bearer ${jwt}` };
  for (let i = 0; i < 3; i++) expect((await call(t.gw.url, 'GET', '/v1/workspaces/acme/licences', { headers: auth })).status).toBe(200);
  const hitsBefore = t.gw.db.readStats!.hits;
  expect((await call(t.gw.url, 'GET', '/v1/workspaces/acme/licences', { headers: auth })).status).toBe(200);
  expect(t.gw.db.readStats!.hits).toBeGreaterThan(hitsBefore); // the read cache answered

  expect((await call(t.gw.url, 'DELETE', '/v1/workspaces/acme/members/vic', { as: 'bob' })).status).toBe(200);
  const forwarded = t.upstream.received.length;
  const next = await call(t.gw.url, 'GET', '/v1/workspaces/acme/licences', { headers: auth });
  expect(next.status).toBe(404);
  expect(t.upstream.received.length).toBe(forwarded);
});

test('the same project-token credentials, served from the cache, are refused right after revocation', async () => {
  const t1 = t.seeded.tokens.get('t1')!;
  const creds = basic(t1.publicKey, t1.privateKey);
  for (let i = 0; i < 3; i++) expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(200);
  expect((await call(t.gw.url, 'DELETE', '/v1/workspaces/acme/projects/web/tokens/t1', { as: 'dave' })).status).toBe(200);
  const forwarded = t.upstream.received.length;
  expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
  expect(t.upstream.received.length).toBe(forwarded);
});
