/**
 * Project tokens (CONTRACT §3): Composer's HTTP Basic pk_/sk_ pair, checksum before
 * lookup, active tokens only, only package:install on the token's own project.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generatePrivateKey, generatePublicKey } from '../../src/authn/keys.ts';
import type { World } from '../../src/policy-tools/world.ts';
import { ACME, basicAuth, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { headerValues } from '../helpers/upstream.ts';
import { decisionOf, expectForwardedOnce, expectRefused, identityOf, send } from './support.ts';

/** ACME plus tokens that single tests change (each used by one test only). */
const WORLD: World = {
  workspaces: {
    ...ACME.workspaces,
    acme: { ...ACME.workspaces!['acme']!, projects: { ...ACME.workspaces!['acme']!.projects, legacy: null } },
  },
  tokens: {
    ...ACME.tokens,
    tflip: { project: 'acme/web', minted_by: 'bob' },
    tlegacy: { project: 'acme/legacy', minted_by: 'alice' },
  },
};

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: WORLD });
});
afterAll(async () => {
  await t?.close();
});

const tok = (name: string) => t.seeded.tokens.get(name)!;

/** Changes one character of a key body so the format stays valid. */
function flip(key: string, at: number): string {
  const i = at < 0 ? key.length + at : at;
  return key.slice(0, i) + (key[i] === 'a' ? 'b' : 'a') + key.slice(i + 1);
}

describe('a valid project token', () => {
  it.each(['/repo/packages.json', '/repo/p2/acme/widget.json', '/repo/dist/acme/widget/1.0.0.zip', '/repo/p2/acme/widget~dev.json?v=1'])(
    'GET %s is forwarded with the token identity',
    async (path) => {
      const res = await send(t, 'GET', path, { as: 't1' });
      expect(res.status).toBe(200);
      const got = expectForwardedOnce(res);
      expect(got.url).toBe(path);
      const id = identityOf(got);
      expect(id).toMatchObject({
        'x-packagento-principal': ['token:t1'],
        'x-packagento-workspace': ['acme'],
        'x-packagento-project': ['web'],
        'x-packagento-roles': ['token'],
        'x-packagento-action': ['package:install'],
        'x-packagento-policy-revision': [t.gw.policy.current.revision],
      });
      expect(id['x-packagento-decision-id']).toHaveLength(1);
      expect(headerValues(got, 'authorization')).toEqual([]);
      expect(decisionOf(res)).toMatchObject({
        principal: 'token:t1',
        workspace: 'acme',
        project: 'web',
        roles: ['token'],
        action: 'package:install',
        result: 'allow',
        decision_id: id['x-packagento-decision-id']![0],
      });
    },
  );

  it("a token of another workspace's project reaches only its own project", async () => {
    const res = await send(t, 'GET', '/repo/packages.json', {
      as: 'tshop',
      headers: [['X-Packagento-Project', 'web'], ['X-Packagento-Workspace', 'acme']],
    });
    expect(res.status).toBe(200);
    const id = identityOf(expectForwardedOnce(res));
    expect(id['x-packagento-workspace']).toEqual(['globex']);
    expect(id['x-packagento-project']).toEqual(['shop']);
    expect(id['x-packagento-principal']).toEqual(['token:tshop']);
  });

  it('Composer-style lower-case "basic" scheme works', async () => {
    const res = await send(t, 'GET', '/repo/packages.json', { authorization: basicAuth(tok('t2').publicKey, tok('t2').privateKey).replace('Basic', 'basic') });
    expect(res.status).toBe(200);
    expect(identityOf(expectForwardedOnce(res))['x-packagento-project']).toEqual(['api']);
  });
});

describe('refused project credentials: 401 with Basic realm="Packagento", nothing forwarded', () => {
  const cases: [string, () => string][] = [
    ['private key with a bad checksum', () => basicAuth(tok('t1').publicKey, flip(tok('t1').privateKey, -1))],
    ['private key with a changed body (checksum no longer matches)', () => basicAuth(tok('t1').publicKey, flip(tok('t1').privateKey, 10))],
    ['truncated private key', () => basicAuth(tok('t1').publicKey, tok('t1').privateKey.slice(0, -1))],
    ['private key without its prefix', () => basicAuth(tok('t1').publicKey, tok('t1').privateKey.slice(3))],
    ['private key with another prefix', () => basicAuth(tok('t1').publicKey, 'pk_' + tok('t1').privateKey.slice(3))],
    ['malformed public key', () => basicAuth('pk_short', tok('t1').privateKey)],
    ['public key of another token', () => basicAuth(tok('t2').publicKey, tok('t1').privateKey)],
    ['public key changed by one character', () => basicAuth(flip(tok('t1').publicKey, -1), tok('t1').privateKey)],
    ['well-formed keys that do not exist', () => basicAuth(generatePublicKey(), generatePrivateKey())],
    ['the right public key with a well-formed unknown private key', () => basicAuth(tok('t1').publicKey, generatePrivateKey())],
    ['keys swapped', () => basicAuth(tok('t1').privateKey, tok('t1').publicKey)],
    ['empty user and password', () => basicAuth('', '')],
    ['an inactive token (tdead)', () => basicAuth(tok('tdead').publicKey, tok('tdead').privateKey)],
  ];
  it.each(cases)('%s', async (_name, auth) => {
    const res = await send(t, 'GET', '/repo/packages.json', { authorization: auth() });
    expectRefused(res, 401, 'invalid_credentials');
    expect(res.headers['www-authenticate']).toBe('Basic realm="Packagento"');
    expect(decisionOf(res)).toMatchObject({ result: 'deny', principal: 'anonymous' });
  });

  it('the private key sent as a Bearer token', async () => {
    const res = await send(t, 'GET', '/repo/packages.json', { authorization: `Bearer ${tok('t1').privateKey}` });
    expectRefused(res, 401);
    expect(res.headers['www-authenticate']).toBe('Basic realm="Packagento"');
  });
});

describe("a token's credentials on /v1 routes: 401, nothing forwarded", () => {
  it.each([
    ['GET', '/v1/workspaces/acme/licences'],
    ['GET', '/v1/workspaces/acme/projects/web/licences'],
    ['POST', '/v1/workspaces/acme/licences/l1/refund-requests'],
    ['GET', '/v1/workspaces/acme/projects/web/tokens'],
    ['GET', '/v1/me/workspaces'],
  ])('%s %s', async (method, path) => {
    const res = await send(t, method, path, { as: 't1' });
    expectRefused(res, 401);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
    expect(decisionOf(res)).toMatchObject({ result: 'deny', status: 401 });
  });
});

describe('access changes are immediate', () => {
  it('a token deactivated in the database is refused on the very next request', async () => {
    const first = await send(t, 'GET', '/repo/packages.json', { as: 'tflip' });
    expect(first.status).toBe(200);
    expectForwardedOnce(first);
    await t.gw.db.execute({ sql: 'UPDATE tokens SET active = 0 WHERE id = ?', args: ['tflip'] });
    const next = await send(t, 'GET', '/repo/packages.json', { as: 'tflip' });
    expectRefused(next, 401, 'invalid_credentials');
  });

  it("a token of a deleted project is refused", async () => {
    const first = await send(t, 'GET', '/repo/packages.json', { as: 'tlegacy' });
    expect(first.status).toBe(200);
    expectForwardedOnce(first);
    await t.gw.db.execute({ sql: 'UPDATE projects SET deleted_at = ? WHERE id = ?', args: [Date.now(), 'legacy'] });
    const next = await send(t, 'GET', '/repo/packages.json', { as: 'tlegacy' });
    expectRefused(next, 401, 'invalid_credentials');
  });
});

describe('a malformed key is refused before any database lookup', () => {
  it('with the database gone, a bad checksum is still 401 while a well-formed key is 503', async () => {
    const g = await startTestGateway({ world: ACME });
    try {
      const t1 = g.seeded.tokens.get('t1')!;
      g.gw.db.close();
      const malformed = await send(g, 'GET', '/repo/packages.json', { authorization: basicAuth(t1.publicKey, flip(t1.privateKey, -1)) });
      expectRefused(malformed, 401, 'invalid_credentials');
      const wellFormed = await send(g, 'GET', '/repo/packages.json', { as: 't1' });
      expectRefused(wellFormed, 503, 'unavailable');
      expect(g.upstream.received).toHaveLength(0);
    } finally {
      await g.close();
    }
  });
});
