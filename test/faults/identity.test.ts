/**
 * Identity faults (issue #9 faults 9, 10, 11; CONTRACT §3): user ids are opaque (1–255
 * characters, no control characters), percent-decoded in every `{user}` segment, `me`
 * is refused as a `sub`, and emails fold in ASCII only.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { call, linkToken } from '../helpers/api.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signUserJwt } from '../helpers/jwt.ts';
import { rawRequest, rawHttp } from '../helpers/raw-http.ts';
import { headerValues } from '../helpers/upstream.ts';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
});
afterAll(async () => {
  await t?.close();
});

const bearer = async (sub: string, email?: string) =>
  `Bearer ${await signUserJwt(sub, email !== undefined ? { email, emailVerified: true } : {})}`;

/** Invites `email` into acme as `role` (by alice, the owner) and accepts it as `sub`. */
async function join(sub: string, email: string, role = 'developer', projectGuest = false): Promise<void> {
  const path = projectGuest ? '/v1/workspaces/acme/projects/web/guests' : '/v1/workspaces/acme/invites';
  const inv = await call(t.gw.url, 'POST', path, { as: 'alice', body: { email, role } });
  expect(inv.status, JSON.stringify(inv.body)).toBe(201);
  const res = await fetch(`${t.gw.url}/v1/invites/${linkToken(inv.body.accept_url)}/accept`, {
    method: 'POST',
    headers: { authorization: await bearer(sub, email) },
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

async function memberIds(): Promise<string[]> {
  const r = await call(t.gw.url, 'GET', '/v1/workspaces/acme/members', { as: 'alice' });
  expect(r.status).toBe(200);
  return r.body.members.map((m: { user_id: string }) => m.user_id);
}

describe('fault 10: sub "me" is refused', () => {
  test('a JWT whose sub is "me" gets 401, and DELETE …/members/me removes nobody', async () => {
    const auth = await bearer('me', 'me@example.com');
    for (const [method, path] of [
      ['GET', '/v1/me/workspaces'],
      ['GET', '/v1/workspaces/acme/licences'],
      ['DELETE', '/v1/workspaces/acme/members/me'],
    ] as const) {
      const r = await fetch(t.gw.url + path, { method, headers: { authorization: auth } });
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect(t.upstream.received.some((r) => r.url === '/v1/workspaces/acme/licences')).toBe(false);
    expect(await memberIds()).toEqual(expect.arrayContaining(['alice', 'bob', 'dave', 'bill', 'vic']));
  });
});

describe('opaque user ids (CONTRACT §3)', () => {
  test('control characters and more than 255 characters are refused; 255 characters (code points) are not', async () => {
    for (const sub of ['a\u0000b', 'tab\tbed', 'del\u007f', 'c1\u0085', 'x'.repeat(256), '😀'.repeat(256)]) {
      const r = await fetch(t.gw.url + '/v1/me/workspaces', { headers: { authorization: await bearer(sub) } });
      expect(r.status, JSON.stringify(sub).slice(0, 40)).toBe(401);
    }
    for (const sub of ['x'.repeat(255), '😀'.repeat(255)]) {
      const r = await fetch(t.gw.url + '/v1/me/workspaces', { headers: { authorization: await bearer(sub) } });
      expect(r.status, `${sub.length} UTF-16 units`).toBe(200);
    }
  });

  test('Auth0-style, e-mail-like and URL-like subs sign in, and the upstream gets them as the principal', async () => {
    for (const sub of ['auth0|fwd1', 'fwd2@example.com', 'https://idp.example.com/users/3']) {
      const email = `m${sub.length}x${Math.floor(sub.charCodeAt(0))}@fwd.example.com`;
      await join(sub, email);
      const r = await fetch(t.gw.url + '/v1/workspaces/acme/licences', { headers: { authorization: await bearer(sub, email) } });
      expect(r.status, sub).toBe(200);
      const seen = t.upstream.received.at(-1)!;
      expect(headerValues(seen, 'x-packagento-principal')).toEqual([`user:${sub}`]);
    }
  });

  test('a non-ASCII sub (with spaces and %) is forwarded with a header-safe, percent-encoded principal, not a crash', async () => {
    const sub = 'ユーザー é 100% ';
    await join(sub, 'unicode-user@example.com');
    const r = await fetch(t.gw.url + '/v1/workspaces/acme/licences', { headers: { authorization: await bearer(sub, 'unicode-user@example.com') } });
    expect(r.status).toBe(200);
    const seen = t.upstream.received.at(-1)!;
    const principal = headerValues(seen, 'x-packagento-principal')[0]!;
    expect(principal).toMatch(/^user:[\x21-\x7e]+$/);
    expect(decodeURIComponent(principal.slice('user:'.length))).toBe(sub);
  });
});

describe('fault 9: {user} segments are percent-decoded', () => {
  test('an owner changes the role of, then removes, a member whose sub is auth0|abc (%7C and raw |)', async () => {
    await join('auth0|abc', 'auth0-abc@example.com');
    expect(await memberIds()).toContain('auth0|abc');
    const alice = await bearer('alice', 'alice@example.com');
    const patched = await fetch(`${t.gw.url}/v1/workspaces/acme/members/auth0%7Cabc`, {
      method: 'PATCH',
      headers: { authorization: alice, 'content-type': 'application/json' },
      body: JSON.stringify({ role: 'viewer' }),
    });
    expect(patched.status, await patched.clone().text()).toBe(200);
    const raw = await rawRequest(t.gw.port, rawHttp('DELETE', '/v1/workspaces/acme/members/auth0|abc', [['Authorization', alice]]));
    expect(raw.status, raw.body).toBe(200);
    expect(await memberIds()).not.toContain('auth0|abc');
  });

  test('an e-mail-like member (%40) can be removed', async () => {
    await join('kim@idp.example.com', 'kim@example.com');
    const r = await call(t.gw.url, 'DELETE', '/v1/workspaces/acme/members/kim%40idp.example.com', { as: 'alice' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(await memberIds()).not.toContain('kim@idp.example.com');
  });

  test('a guest whose sub is auth0|guest can be removed from the project', async () => {
    await join('auth0|guest', 'auth0-guest@example.com', 'viewer', true);
    const r = await call(t.gw.url, 'DELETE', '/v1/workspaces/acme/projects/web/guests/auth0%7Cguest', { as: 'alice' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const guests = await call(t.gw.url, 'GET', '/v1/workspaces/acme/projects/web/guests', { as: 'alice' });
    expect(JSON.stringify(guests.body)).not.toContain('auth0|guest');
  });

  test('`me` still means the caller: a member leaves with DELETE …/members/me', async () => {
    await join('auth0|leaver', 'leaver@example.com');
    const r = await fetch(`${t.gw.url}/v1/workspaces/acme/members/me`, { method: 'DELETE', headers: { authorization: await bearer('auth0|leaver', 'leaver@example.com') } });
    expect(r.status, await r.clone().text()).toBe(200);
    expect(await memberIds()).not.toContain('auth0|leaver');
  });
});

describe('fault 11: emails fold in ASCII only', () => {
  const KELVIN = '\u212A'; // KELVIN SIGN: toLowerCase() makes it "k"

  test('a Kelvin-sign address cannot accept an invite sent to kate@example.com', async () => {
    const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: 'kate@example.com', role: 'developer' } });
    expect(inv.status).toBe(201);
    const r = await fetch(`${t.gw.url}/v1/invites/${linkToken(inv.body.accept_url)}/accept`, {
      method: 'POST',
      headers: { authorization: await bearer('mallory-k', `${KELVIN}ate@example.com`) },
    });
    expect(r.status).toBe(403);
    expect(((await r.json()) as { code: string }).code).toBe('invite_email_mismatch');
  });

  test('an invite to a look-alike address stays that address; the ASCII one cannot accept it', async () => {
    const pairs: [string, string][] = [
      [`${KELVIN}evin@example.com`, 'kevin@example.com'],
      ['\u212Bsa@example.com', '\u00e5sa@example.com'], // ANGSTROM SIGN vs å
      ['\u0130van@example.com', 'i\u0307van@example.com'], // dotted capital I: lower-cases to i + U+0307
    ];
    for (const [lookalike, ascii] of pairs) {
      const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: lookalike, role: 'viewer' } });
      if (inv.status === 400) continue; // refusing a non-ASCII address outright is also safe
      expect(inv.status, JSON.stringify(inv.body)).toBe(201);
      expect(inv.body.invite.email).toBe(lookalike);
      const r = await fetch(`${t.gw.url}/v1/invites/${linkToken(inv.body.accept_url)}/accept`, {
        method: 'POST',
        headers: { authorization: await bearer(`acc-${ascii.length}-${ascii.charCodeAt(0)}`, ascii) },
      });
      expect(r.status, lookalike).toBe(403);
    }
  });

  test('ASCII case still folds: Kate@Example.COM accepts an invite for kate@example.com', async () => {
    const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: 'Fold.Me@Example.COM', role: 'viewer' } });
    expect(inv.status).toBe(201);
    expect(inv.body.invite.email).toBe('fold.me@example.com');
    const r = await fetch(`${t.gw.url}/v1/invites/${linkToken(inv.body.accept_url)}/accept`, {
      method: 'POST',
      headers: { authorization: await bearer('folder', 'FOLD.me@example.com') },
    });
    expect(r.status).toBe(200);
  });
});
