/**
 * User authentication (CONTRACT §3): every JWT failure is a 401 with a Bearer
 * challenge and nothing reaches the upstream; roles come from the database only.
 */
import { createHmac } from 'node:crypto';
import { exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, basicAuth, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signUserJwt, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from '../helpers/jwt.ts';
import { headerValues } from '../helpers/upstream.ts';
import { decisionOf, expectForwardedOnce, expectRefused, send } from './support.ts';

const b64url = (v: unknown): string => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
const now = (): number => Math.floor(Date.now() / 1000);
const claims = (sub: string) => ({ sub, iss: TEST_ISSUER, aud: TEST_AUDIENCE, iat: now(), exp: now() + 600 });

/** A hand-made HS256 JWT (for headers and claims jose would not let us sign). */
function handSigned(header: Record<string, unknown>, payload: Record<string, unknown>, secret = TEST_SECRET): string {
  const input = `${b64url(header)}.${b64url(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

/** Every way a user JWT must fail; each must be refused on every user route. */
const BAD_TOKENS: [string, () => Promise<string> | string][] = [
  ['alg none, no signature', () => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims('alice'))}.`],
  ['alg none with a signature', () => `${b64url({ alg: 'none' })}.${b64url(claims('alice'))}.${b64url('sig')}`],
  ['alg "None"', () => `${b64url({ alg: 'None' })}.${b64url(claims('alice'))}.`],
  ['signed with another key', () => signUserJwt('alice', { secret: 'another-secret-that-is-also-long-enough-xyz' })],
  ['payload changed after signing', async () => {
    const [h, , s] = (await signUserJwt('vic')).split('.');
    return `${h}.${b64url(claims('alice'))}.${s}`;
  }],
  ['HS384 (not an allowed algorithm)', () => new SignJWT(claims('alice')).setProtectedHeader({ alg: 'HS384' }).sign(new TextEncoder().encode(TEST_SECRET))],
  ['no exp', () => signUserJwt('alice', { expSeconds: null })],
  ['no sub', () => signUserJwt(undefined)],
  ['empty sub', () => handSigned({ alg: 'HS256' }, { ...claims(''), sub: '' })],
  ['numeric sub', () => handSigned({ alg: 'HS256' }, { ...claims('x'), sub: 42 })],
  ['sub with CR LF (header injection)', () => handSigned({ alg: 'HS256' }, claims('alice\r\nx-packagento-roles: owner'))],
  // (A space is allowed since CONTRACT §3 made user ids opaque: test/faults/identity.test.ts.)
  ['expired a minute ago', () => signUserJwt('alice', { expSeconds: -60 })],
  ['exp as a string', () => handSigned({ alg: 'HS256' }, { ...claims('alice'), exp: String(now() + 600) })],
  ['nbf an hour ahead', () => signUserJwt('alice', { nbf: now() + 3600 })],
  ['wrong iss', () => signUserJwt('alice', { issuer: 'https://evil.example' })],
  ['no iss', () => handSigned({ alg: 'HS256' }, { sub: 'alice', aud: TEST_AUDIENCE, exp: now() + 600 })],
  ['wrong aud', () => signUserJwt('alice', { audience: 'some-other-service' })],
  ['no aud', () => handSigned({ alg: 'HS256' }, { sub: 'alice', iss: TEST_ISSUER, exp: now() + 600 })],
  ['not a JWT', () => 'not-a-jwt'],
  ['two segments only', async () => (await signUserJwt('alice')).split('.').slice(0, 2).join('.')],
];

// alice (owner) is allowed on each of these: only the credential decides.
const USER_ROUTES: [string, string][] = [
  ['GET', '/v1/workspaces/acme/licences'],
  ['GET', '/v1/workspaces/acme/projects/web/licences'],
  ['POST', '/v1/workspaces/acme/licences/l1/refund-requests'],
  ['POST', '/v1/workspaces/acme/subscriptions/s1/cancel'],
];

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
});
afterAll(async () => {
  await t?.close();
});

describe('the credential is the only thing that differs: a valid JWT is forwarded', () => {
  it.each(USER_ROUTES)('%s %s as alice is forwarded', async (method, path) => {
    const res = await send(t, method, path, { as: 'alice', ...(method === 'POST' ? { body: '{}', headers: [['Content-Type', 'application/json']] } : {}) });
    expect(res.status).toBe(200);
    expect(headerValues(expectForwardedOnce(res), 'x-packagento-principal')).toEqual(['user:alice']);
  });
});

describe.each(USER_ROUTES)('refused JWTs on %s %s: 401 with a Bearer challenge, nothing forwarded', (method, path) => {
  it.each(BAD_TOKENS)('%s', async (_name, make) => {
    const res = await send(t, method, path, { authorization: `Bearer ${await make()}` });
    expectRefused(res, 401, 'invalid_credentials');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="Packagento"/);
    expect(decisionOf(res)).toMatchObject({ result: 'deny', principal: 'anonymous', status: 401 });
  });

  it('no credentials', async () => {
    const res = await send(t, method, path);
    expectRefused(res, 401, 'unauthenticated');
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="Packagento"/);
  });

  it("a project token's Basic credentials", async () => {
    const res = await send(t, method, path, { as: 't1' });
    expectRefused(res, 401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });

  it('a valid JWT sent as a Basic password', async () => {
    const res = await send(t, method, path, { authorization: basicAuth('alice', await signUserJwt('alice')) });
    expectRefused(res, 401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });
});

describe('malformed Authorization headers are 401 with a challenge too', () => {
  it.each([
    ['a scheme without a credential', 'Bearer'],
    ['an unknown scheme', 'Token abc.def.ghi'],
    ['Digest', 'Digest username="alice"'],
    ['a credential with characters outside token68', 'Bearer abc!def'],
    ['an empty Basic credential', 'Basic'],
  ])('%s on a user route (Bearer challenge)', async (_name, value) => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { authorization: value });
    expectRefused(res, 401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer realm="Packagento"/);
  });

  it.each([
    ['a scheme without a credential', 'Basic'],
    ['an unknown scheme', 'Token abc'],
    ['Basic without a colon', `Basic ${Buffer.from('pk_only').toString('base64')}`],
  ])('%s on /repo (Basic challenge)', async (_name, value) => {
    const res = await send(t, 'GET', '/repo/packages.json', { authorization: value });
    expectRefused(res, 401);
    expect(res.headers['www-authenticate']).toBe('Basic realm="Packagento"');
  });
});

describe('clock tolerance is small', () => {
  it('a token that expired 2 s ago is still accepted (tolerance 5 s)', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${await signUserJwt('vic', { expSeconds: -2 })}` });
    expect(res.status).toBe(200);
    expect(expectForwardedOnce(res).url).toBe('/v1/workspaces/acme/licences');
  });

  it('nbf 2 s ahead is accepted, nbf 60 s ahead is not', async () => {
    const soon = await send(t, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${await signUserJwt('vic', { nbf: now() + 2 })}` });
    expect(soon.status).toBe(200);
    expectForwardedOnce(soon);
    const later = await send(t, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${await signUserJwt('vic', { nbf: now() + 60 })}` });
    expectRefused(later, 401, 'invalid_credentials');
  });
});

describe('role and workspace claims inside a JWT are ignored', () => {
  const escalating = { role: 'owner', roles: ['owner', 'billing'], workspace: 'acme', workspaces: { acme: 'owner' }, 'x-packagento-roles': 'owner', admin: true };

  it('a viewer claiming owner gets 403 on licence:refund and nothing is forwarded', async () => {
    const jwt = await signUserJwt('vic', { claims: escalating });
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
      authorization: `Bearer ${jwt}`,
      headers: [['Content-Type', 'application/json']],
      body: '{}',
    });
    expectRefused(res, 403, 'forbidden');
    expect(res.json().action).toBe('licence:refund');
    expect(decisionOf(res)).toMatchObject({ principal: 'user:vic', roles: ['viewer'], result: 'deny' });
  });

  it('what a viewer claiming owner may do is forwarded with the database role (viewer)', async () => {
    const jwt = await signUserJwt('vic', { claims: escalating });
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${jwt}` });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(headerValues(got, 'x-packagento-roles')).toEqual(['viewer']);
    expect(headerValues(got, 'x-packagento-principal')).toEqual(['user:vic']);
  });

  it('a user with no membership claiming one gets 404, not 403 or 200', async () => {
    const jwt = await signUserJwt('mallory', { claims: escalating });
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${jwt}` });
    expectRefused(res, 404, 'not_found');
  });
});

describe('/repo takes project tokens only', () => {
  it('no credentials on /repo: 401 with Basic realm="Packagento"', async () => {
    const res = await send(t, 'GET', '/repo/packages.json');
    expectRefused(res, 401, 'unauthenticated');
    expect(res.headers['www-authenticate']).toBe('Basic realm="Packagento"');
  });

  it('a valid user JWT on /repo: 401 with the Basic challenge', async () => {
    const res = await send(t, 'GET', '/repo/packages.json', { as: 'alice' });
    expectRefused(res, 401);
    expect(res.headers['www-authenticate']).toBe('Basic realm="Packagento"');
  });
});

describe('the gateway pins its algorithms', () => {
  it('an HS256 token is refused when the gateway pins HS512 (and HS512 is accepted)', async () => {
    const g = await startTestGateway({ world: ACME, env: { GATE_JWT_ALGORITHMS: 'HS512' } });
    try {
      const hs256 = await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${await signUserJwt('vic')}` });
      expectRefused(hs256, 401, 'invalid_credentials');
      expect(hs256.headers['www-authenticate']).toMatch(/^Bearer /);
      const hs512 = await new SignJWT(claims('vic')).setProtectedHeader({ alg: 'HS512' }).sign(new TextEncoder().encode(TEST_SECRET));
      const ok = await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${hs512}` });
      expect(ok.status).toBe(200);
      expectForwardedOnce(ok);
    } finally {
      await g.close();
    }
  });

  it('with an RS256 public key, an HS256 token signed with that public key (alg confusion) is refused', async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    const g = await startTestGateway({ world: ACME, env: { GATE_JWT_SECRET: '', GATE_JWT_PUBLIC_KEY: pem } });
    try {
      const confused = handSigned({ alg: 'HS256', typ: 'JWT' }, claims('vic'), pem);
      const refused = await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${confused}` });
      expectRefused(refused, 401, 'invalid_credentials');
      const hsWithTestSecret = await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${await signUserJwt('vic')}` });
      expectRefused(hsWithTestSecret, 401, 'invalid_credentials');
      const rs256 = await new SignJWT(claims('vic')).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
      const ok = await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${rs256}` });
      expect(ok.status).toBe(200);
      expect(headerValues(expectForwardedOnce(ok), 'x-packagento-principal')).toEqual(['user:vic']);
    } finally {
      await g.close();
    }
  });
});
