import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, linkToken } from '../helpers/api.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { decodeAuditCursor, encodeAuditCursor } from '../../src/team/audit.ts';

let t: TestGateway;
const api = (method: string, path: string, opts: Parameters<typeof call>[3] = {}) => call(t.gw.url, method, path, opts);
const secrets: string[] = [];

beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
  // A few audited changes in acme (and one in globex, which acme's trail must not show).
  for (const email of ['a1@example.com', 'a2@example.com', 'a3@example.com']) {
    const r = await api('POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email, role: 'viewer' } });
    expect(r.status).toBe(201);
    secrets.push(linkToken(r.body.accept_url));
  }
  const re = await api('POST', '/v1/workspaces/acme/invites', { as: 'bob', body: { email: 'a4@example.com', role: 'developer' } });
  secrets.push(linkToken(re.body.accept_url));
  const again = await api('POST', `/v1/workspaces/acme/invites/${re.body.invite.id}/reissue`, { as: 'bob' });
  secrets.push(linkToken(again.body.accept_url));
  const tok = await api('POST', '/v1/workspaces/acme/projects/web/tokens', { as: 'dave', body: { name: 'ci' } });
  expect(tok.status).toBe(201);
  secrets.push(tok.body.token.private_key);
  expect((await api('DELETE', '/v1/workspaces/acme/members/bill', { as: 'bob', headers: { 'x-request-id': 'req-remove-bill' } })).status).toBe(200);
  expect((await api('POST', '/v1/workspaces/globex/projects', { as: 'gwen', body: { name: 'elsewhere' } })).status).toBe(201);
  for (const tokn of t.seeded.tokens.values()) secrets.push(tokn.privateKey);
});
afterAll(async () => {
  await t?.close();
});

describe('GET /v1/workspaces/{ws}/audit', () => {
  it('owners and admins page through the trail newest first; pages join into the whole trail', async () => {
    const all = await api('GET', '/v1/workspaces/acme/audit?limit=200', { as: 'alice' });
    expect(all.status).toBe(200);
    expect(all.body.next_cursor).toBeNull();
    const events = all.body.events as { id: number; time: string; actor: string; action: string; target: string | null; detail: unknown; request_id: string | null }[];
    expect(events.map((e) => e.action)).toEqual(['member.removed', 'token.minted', 'invite.reissued', 'invite.sent', 'invite.sent', 'invite.sent', 'invite.sent']);
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => b - a));
    for (const e of events) expect(Object.keys(e)).toEqual(['id', 'time', 'actor', 'action', 'target', 'detail', 'request_id']);
    expect(events[0]).toMatchObject({ actor: 'user:bob', action: 'member.removed', target: 'user:bill', request_id: 'req-remove-bill', detail: { role: 'billing', deactivated_tokens: [] } });
    expect(new Date(events[0]!.time).toISOString()).toBe(events[0]!.time);

    const paged: unknown[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Awaited<ReturnType<typeof api>> = await api('GET', `/v1/workspaces/acme/audit?limit=3${cursor ? `&cursor=${cursor}` : ''}`, { as: 'bob' });
      expect(page.status).toBe(200);
      expect(page.body.events.length).toBeLessThanOrEqual(3);
      paged.push(...page.body.events);
      cursor = page.body.next_cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(paged).toEqual(events);
    // The default page size covers this small trail.
    expect((await api('GET', '/v1/workspaces/acme/audit', { as: 'alice' })).body.events).toEqual(events);
  });

  it('viewer, developer, billing and guests get 403; outsiders 404; no credentials 401', async () => {
    for (const user of ['vic', 'dave', 'gina', 'gus']) {
      const r = await api('GET', '/v1/workspaces/acme/audit', { as: user });
      expect(r.status, user).toBe(403);
      expect(r.body).toMatchObject({ code: 'forbidden', action: 'audit:list' });
    }
    for (const user of ['mallory', 'gwen', 'bill']) {
      expect((await api('GET', '/v1/workspaces/acme/audit', { as: user })).status, user).toBe(404);
    }
    expect((await api('GET', '/v1/workspaces/acme/audit')).status).toBe(401);
  });

  it('bad limit or cursor: 400; a cursor never crosses into another workspace', async () => {
    for (const q of ['limit=0', 'limit=201', 'limit=abc', 'limit=-1', 'cursor=not-a-cursor', `cursor=${Buffer.from('before:0').toString('base64url')}`, 'cursor=%2F']) {
      const r = await api('GET', `/v1/workspaces/acme/audit?${q}`, { as: 'alice' });
      expect(r.status, q).toBe(400);
      expect(r.body.code).toBe('bad_request');
    }
    // globex's own trail shows only globex; a cursor from acme's ids still reads globex rows only.
    const g = await api('GET', `/v1/workspaces/globex/audit?cursor=${encodeAuditCursor(1_000_000)}`, { as: 'gwen' });
    expect(g.status).toBe(200);
    expect(g.body.events.map((e: { action: string }) => e.action)).toEqual(['project.created']);
    expect(decodeAuditCursor(encodeAuditCursor(42))).toBe(42);
  });

  it('never a secret in the trail: no invite link, no private key', async () => {
    const r = await api('GET', '/v1/workspaces/acme/audit?limit=200', { as: 'alice' });
    const text = JSON.stringify(r.body);
    expect(secrets.length).toBeGreaterThanOrEqual(9);
    for (const s of secrets) expect(text).not.toContain(s);
    expect(text).not.toMatch(/sk_[A-Za-z0-9]{20,}/);
  });
});
