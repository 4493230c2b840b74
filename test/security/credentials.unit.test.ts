/**
 * Credential parsing, key formats and JWT verification on their own (CONTRACT §3).
 */
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  BASIC_CHALLENGE,
  BEARER_CHALLENGE,
  createAuthenticator,
  parseAuthorization,
  type Credentials,
} from '../../src/authn/authenticate.ts';
import { isProblem } from '../../src/http/problem.ts';
import { CLOCK_TOLERANCE_S, createJwtVerifier } from '../../src/authn/jwt.ts';
import { generatePrivateKey, generatePublicKey, isWellFormedPrivateKey, isWellFormedPublicKey } from '../../src/authn/keys.ts';
import type { AccessRepo, TokenRecord } from '../../src/db/access-repo.ts';
import { sha256 } from '../../src/crypto/hash.ts';
import type { Problem } from '../../src/http/problem.ts';
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from '../helpers/jwt.ts';

const basic = (u: string, p: string) => 'Basic ' + Buffer.from(`${u}:${p}`).toString('base64');

describe('parseAuthorization', () => {
  it('no header: no credentials', () => {
    expect(parseAuthorization([])).toEqual({ scheme: 'none' });
  });

  it('one Bearer or Basic credential (scheme case-insensitive)', () => {
    expect(parseAuthorization(['Bearer abc.def.ghi'])).toEqual({ scheme: 'bearer', token: 'abc.def.ghi' });
    expect(parseAuthorization(['bearer abc'])).toEqual({ scheme: 'bearer', token: 'abc' });
    expect(parseAuthorization([basic('pk_x', 'sk_y:z')])).toEqual({ scheme: 'basic', user: 'pk_x', password: 'sk_y:z' });
  });

  it.each([
    [['Bearer a', 'Bearer a']],
    [['Bearer a', basic('u', 'p')]],
    [['Bearer a, Bearer b']],
    [['Bearer a b']],
    [['Bearer a,b']],
    [[`${basic('u', 'p')}, Bearer x`]],
  ])('%j is duplicate_credentials (400)', (values) => {
    expect(parseAuthorization(values)).toMatchObject({ code: 'duplicate_credentials' });
  });

  it.each([['Bearer'], ['Token abc'], ['Bearer abc!'], ['Basic ' + Buffer.from('no-colon').toString('base64')], ['Negotiate YII=']])(
    '%j is a malformed single credential, refused by the route with its challenge',
    (value) => {
      const c = parseAuthorization([value]);
      expect(isProblem(c)).toBe(false);
      expect((c as Credentials).scheme).toBe('malformed');
    },
  );
});

describe('key formats', () => {
  it('generated keys are well-formed and distinct', () => {
    const pks = new Set(Array.from({ length: 200 }, generatePublicKey));
    const sks = new Set(Array.from({ length: 200 }, generatePrivateKey));
    expect(pks.size).toBe(200);
    expect(sks.size).toBe(200);
    for (const k of pks) expect(isWellFormedPublicKey(k), k).toBe(true);
    for (const k of sks) expect(isWellFormedPrivateKey(k), k).toBe(true);
  });

  it('the checksum catches every single-character change of a private key', () => {
    const key = generatePrivateKey();
    const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    let tried = 0;
    for (let i = 3; i < key.length; i++) {
      for (const c of alphabet) {
        if (c === key[i]) continue;
        tried++;
        expect(isWellFormedPrivateKey(key.slice(0, i) + c + key.slice(i + 1)), `position ${i} → ${c}`).toBe(false);
      }
    }
    expect(tried).toBe(49 * 61);
  });

  it.each(['', 'sk_', 'sk_short', 'pk_' + 'a'.repeat(49), 'SK_' + 'a'.repeat(49), ' sk_' + 'a'.repeat(48)])('%j is not a private key', (v) => {
    expect(isWellFormedPrivateKey(v)).toBe(false);
  });

  it('a private key with a transposition is refused', () => {
    const key = generatePrivateKey();
    const i = [...key.slice(3)].findIndex((c, j, a) => c !== a[j + 1]) + 3;
    expect(isWellFormedPrivateKey(key.slice(0, i) + key[i + 1] + key[i] + key.slice(i + 2))).toBe(false);
  });
});

describe('project-token authentication', () => {
  function repoWith(record: TokenRecord | undefined) {
    const lookups: Buffer[] = [];
    const access = { tokenBySecretHash: async (h: Buffer) => (lookups.push(h), record) } as unknown as AccessRepo;
    const jwt = { algorithms: ['HS256'], verify: async () => ({ ok: false as const, reason: 'unused' }) };
    return { auth: createAuthenticator({ jwt, access }), lookups };
  }
  const pk = generatePublicKey();
  const sk = generatePrivateKey();
  const record: TokenRecord = { id: 't1', publicKey: pk, projectId: 'web', workspaceId: 'acme', active: true, projectLive: true };

  it('a valid pair is the token principal; the lookup is by the hash of the private key', async () => {
    const { auth, lookups } = repoWith(record);
    expect(await auth.token({ scheme: 'basic', user: pk, password: sk })).toEqual({ kind: 'token', id: 't1', projectId: 'web', workspaceId: 'acme' });
    expect(lookups).toEqual([sha256(sk)]);
  });

  it('a malformed key never reaches the database', async () => {
    const { auth, lookups } = repoWith(record);
    for (const [user, password] of [
      [pk, sk.slice(0, -1) + (sk.endsWith('0') ? '1' : '0')],
      ['pk_bad', sk],
      [pk, 'sk_' + 'x'.repeat(10)],
    ] as const) {
      const p = (await auth.token({ scheme: 'basic', user, password })) as Problem;
      expect(p).toMatchObject({ code: 'invalid_credentials', headers: { 'www-authenticate': BASIC_CHALLENGE } });
    }
    expect(lookups).toEqual([]);
  });

  it.each<[string, Partial<TokenRecord> | undefined]>([
    ['unknown key', undefined],
    ['another public key', { publicKey: generatePublicKey() }],
    ['inactive', { active: false }],
    ['project deleted', { projectLive: false }],
  ])('%s → 401 with the Basic challenge', async (_name, change) => {
    const { auth } = repoWith(change === undefined ? undefined : { ...record, ...change });
    expect(await auth.token({ scheme: 'basic', user: pk, password: sk })).toMatchObject({
      code: 'invalid_credentials',
      headers: { 'www-authenticate': BASIC_CHALLENGE },
    });
  });

  it('challenges: Basic for tokens, Bearer for users, also for malformed headers', async () => {
    const { auth } = repoWith(record);
    const malformed = parseAuthorization(['Token x']) as Credentials;
    expect(await auth.token(malformed)).toMatchObject({ headers: { 'www-authenticate': BASIC_CHALLENGE } });
    expect(await auth.user(malformed)).toMatchObject({ headers: { 'www-authenticate': BEARER_CHALLENGE } });
    expect(await auth.token({ scheme: 'none' })).toMatchObject({ code: 'unauthenticated', headers: { 'www-authenticate': BASIC_CHALLENGE } });
    expect(await auth.user({ scheme: 'basic', user: pk, password: sk })).toMatchObject({ code: 'unauthenticated', headers: { 'www-authenticate': BEARER_CHALLENGE } });
  });
});

describe('JWT verification at the clock edges', () => {
  const T0 = 1_900_000_000; // a fixed "now", in seconds
  const key = new TextEncoder().encode(TEST_SECRET);
  const verifier = () =>
    createJwtVerifier({ key: { kind: 'secret', secret: TEST_SECRET }, issuer: TEST_ISSUER, audience: TEST_AUDIENCE, currentDate: () => new Date(T0 * 1000) });
  const sign = (claims: Record<string, unknown>) =>
    new SignJWT({ sub: 'alice', iss: TEST_ISSUER, aud: TEST_AUDIENCE, iat: T0 - 10, ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(key);

  it.each([
    ['exp just inside the tolerance', { exp: T0 - CLOCK_TOLERANCE_S + 1 }, true],
    ['exp just past the tolerance', { exp: T0 - CLOCK_TOLERANCE_S - 1 }, false],
    ['nbf just inside the tolerance', { exp: T0 + 60, nbf: T0 + CLOCK_TOLERANCE_S - 1 }, true],
    ['nbf just past the tolerance', { exp: T0 + 60, nbf: T0 + CLOCK_TOLERANCE_S + 1 }, false],
  ])('%s', async (_name, claims, ok) => {
    const v = await verifier();
    expect((await v.verify(await sign(claims))).ok).toBe(ok);
  });

  it('the tolerance is small (at most a minute)', () => {
    expect(CLOCK_TOLERANCE_S).toBeGreaterThan(0);
    expect(CLOCK_TOLERANCE_S).toBeLessThanOrEqual(60);
  });

  it('email is lower-cased; email_verified false is kept', async () => {
    const v = await verifier();
    const r = await v.verify(await sign({ exp: T0 + 60, email: ' Alice@Example.COM ', email_verified: false }));
    expect(r).toMatchObject({ ok: true, user: { id: 'alice', email: 'alice@example.com', emailVerified: false } });
  });

  it('HS256 only by default for a secret', async () => {
    expect((await verifier()).algorithms).toEqual(['HS256']);
  });
});
