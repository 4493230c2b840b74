/**
 * Visibility and containment (CONTRACT §1, §4): ids never leak across workspaces,
 * a caller with no role in a workspace gets 404 (never 403) on every one of its
 * routes, a project outside the workspace is 404, and a guest's role covers one project.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { World } from '../../src/policy-tools/world.ts';
import type { Route } from '../../src/policy/route-map.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { headerValues } from '../helpers/upstream.ts';
import { decisionOf, expectForwardedOnce, expectRefused, identityOf, send, type Exchange } from './support.ts';

/** ACME plus users whose access single tests change, and a deleted project. */
const WORLD: World = {
  workspaces: {
    acme: {
      members: { ...ACME.workspaces!['acme']!.members, vera: 'viewer', dan: 'developer' },
      projects: { web: { guests: { gina: 'developer', gus: 'viewer', gail: 'viewer' } }, api: null, old: { deleted: true } },
    },
    globex: ACME.workspaces!['globex']!,
  },
  tokens: ACME.tokens,
};

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: WORLD });
  const now = Date.now();
  await t.gw.db.execute({
    sql: `INSERT INTO invites (id, workspace_id, project_id, email, role, status, invited_by, created_at, expires_at)
          VALUES ('inv-globex', 'globex', NULL, 'pat@example.com', 'viewer', 'pending', 'gwen', ?, ?)`,
    args: [now, now + 86_400_000],
  });
});
afterAll(async () => {
  await t?.close();
});

const PARAMS: Record<string, string> = { ws: 'acme', p: 'web', t: 't1', user: 'bob', id: 'inv-globex', l: 'l1', s: 's1', token: 'x' };

function concrete(route: Route, params: Record<string, string>): string {
  return route.pattern.replace(/\{(\w+)\*?\}/g, (_, name: string) => params[name] ?? 'x');
}

async function call(as: string, route: Route, params: Record<string, string>): Promise<Exchange> {
  const path = concrete(route, params);
  const withBody = route.method === 'POST' || route.method === 'PATCH' || route.method === 'PUT';
  return send(t, route.method, path, {
    as,
    ...(withBody ? { headers: [['Content-Type', 'application/json']], body: JSON.stringify({ email: 'new@example.com', role: 'viewer' }) } : {}),
  });
}

const wsRoutes = (): Route[] => t.gw.policy.current.routes.routes.filter((r) => r.pattern.startsWith('/v1/workspaces/{ws}'));

describe('no role in the workspace: 404 on every /v1/workspaces/{ws}/… route, never 403', () => {
  it('the route map has workspace routes to check', () => {
    expect(wsRoutes().length).toBeGreaterThan(20);
  });

  it.each([
    ['gwen (owner of another workspace)', 'gwen'],
    ['zed (no workspace at all)', 'zed'],
  ])('%s on acme', async (_name, as) => {
    const failures: string[] = [];
    for (const route of wsRoutes()) {
      const res = await call(as, route, PARAMS);
      const code = res.headers['content-type']?.includes('json') ? res.json().code : undefined;
      if (res.status !== 404 || code !== 'not_found' || res.upstream().length !== 0) failures.push(`${route.id}: ${res.status} ${code}`);
      if (res.status === 404 && decisionOf(res).result !== 'deny') failures.push(`${route.id}: decision not a deny`);
    }
    expect(failures).toEqual([]);
  });

  it('alice (acme owner) on every globex route', async () => {
    const failures: string[] = [];
    for (const route of wsRoutes()) {
      const res = await call('alice', route, { ...PARAMS, ws: 'globex', p: 'shop', t: 'tshop', user: 'gwen', id: 'inv-globex' });
      if (res.status !== 404 || res.upstream().length !== 0) failures.push(`${route.id}: ${res.status}`);
    }
    expect(failures).toEqual([]);
  });

  it('a workspace that does not exist looks the same as one without access', async () => {
    const missing = await send(t, 'GET', '/v1/workspaces/no-such-ws/licences', { as: 'alice' });
    const hidden = await send(t, 'GET', '/v1/workspaces/globex/licences', { as: 'alice' });
    expectRefused(missing, 404, 'not_found');
    expectRefused(hidden, 404, 'not_found');
    const strip = (b: Record<string, unknown>) => ({ ...b, request_id: undefined, decision_id: undefined });
    expect(strip(missing.json())).toEqual(strip(hidden.json()));
  });
});

describe('ids of one workspace in another workspace URL are 404 (dave: developer in acme, viewer in globex)', () => {
  it.each([
    ['acme project under globex', 'GET', '/v1/workspaces/globex/projects/web/licences'],
    ['globex project under acme', 'GET', '/v1/workspaces/acme/projects/shop/licences'],
    ['acme project and token under globex', 'GET', '/v1/workspaces/globex/projects/web/tokens/t1'],
    ['globex token under an acme project', 'GET', '/v1/workspaces/acme/projects/web/tokens/tshop'],
    ['token of another acme project', 'GET', '/v1/workspaces/acme/projects/web/tokens/t2'],
    ['rotate a token of another project', 'POST', '/v1/workspaces/acme/projects/api/tokens/t1/rotate'],
    ['revoke a globex token through acme', 'DELETE', '/v1/workspaces/acme/projects/web/tokens/tshop'],
    ['a deleted project', 'GET', '/v1/workspaces/acme/projects/old/licences'],
    ['a project that does not exist', 'GET', '/v1/workspaces/acme/projects/nope/licences'],
  ])('%s: %s %s', async (_name, method, path) => {
    const res = await send(t, method, path, { as: 'dave' });
    expectRefused(res, 404, 'not_found');
    expect(decisionOf(res)).toMatchObject({ result: 'deny', code: 'not_found' });
  });

  it('the same ids in their own workspace are visible (controls)', async () => {
    const own = await send(t, 'GET', '/v1/workspaces/globex/projects/shop/licences', { as: 'dave' });
    expect(own.status).toBe(200);
    const got = expectForwardedOnce(own);
    expect(identityOf(got)).toMatchObject({ 'x-packagento-workspace': ['globex'], 'x-packagento-project': ['shop'], 'x-packagento-roles': ['viewer'] });
    const token = await send(t, 'GET', '/v1/workspaces/acme/projects/web/tokens/t1', { as: 'dave' });
    expect(decisionOf(token)).toMatchObject({ result: 'allow', action: 'token:read', workspace: 'acme', project: 'web' });
  });

  it("a role in one workspace does not carry into another: dave is only a viewer in globex", async () => {
    const tokens = await send(t, 'GET', '/v1/workspaces/globex/projects/shop/tokens', { as: 'dave' });
    expectRefused(tokens, 403, 'forbidden');
    expect(tokens.json().action).toBe('token:list');
    expect(decisionOf(tokens).roles).toEqual(['viewer']);
    const refund = await send(t, 'POST', '/v1/workspaces/globex/licences/l1/refund-requests', { as: 'dave', headers: [['Content-Type', 'application/json']], body: '{}' });
    expectRefused(refund, 403, 'forbidden');
  });

  it('a member of another workspace is not a member here: PATCH /members/{user} is 404', async () => {
    const res = await send(t, 'PATCH', '/v1/workspaces/acme/members/gwen', {
      as: 'alice',
      headers: [['Content-Type', 'application/json']],
      body: '{"role":"viewer"}',
    });
    expectRefused(res, 404, 'not_found');
  });

  it('an invite of another workspace cannot be re-issued through this one', async () => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/invites/inv-globex/reissue', { as: 'alice' });
    expectRefused(res, 404, 'not_found');
  });

  it('an invite of another workspace cannot be revoked through this one (it stays pending)', async () => {
    const res = await send(t, 'DELETE', '/v1/workspaces/acme/invites/inv-globex', { as: 'alice' });
    expect(res.status).toBe(404);
    expect(res.upstream()).toHaveLength(0);
    const row = await t.gw.db.execute({ sql: 'SELECT status FROM invites WHERE id = ?', args: ['inv-globex'] });
    expect(row.rows[0]?.['status']).toBe('pending');
  });
});

describe('project guests (gina: developer on acme/web, gus: viewer on acme/web)', () => {
  it('gina gets the licences of her project, forwarded with her guest role', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/projects/web/licences', { as: 'gina' });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(identityOf(got)).toMatchObject({
      'x-packagento-principal': ['user:gina'],
      'x-packagento-workspace': ['acme'],
      'x-packagento-project': ['web'],
      'x-packagento-roles': ['guest:developer'],
      'x-packagento-action': ['licence:list'],
    });
  });

  it.each([
    ['GET', '/v1/workspaces/acme/projects/api/licences'],
    ['GET', '/v1/workspaces/acme/projects/api'],
    ['GET', '/v1/workspaces/acme/projects/api/tokens'],
    ['GET', '/v1/workspaces/acme/projects/web/tokens/t2'],
    ['GET', '/v1/workspaces/globex/licences'],
    ['GET', '/v1/workspaces/globex/projects/shop/licences'],
  ])('gina: %s %s is 404 (not her project)', async (method, path) => {
    const res = await send(t, method, path, { as: 'gina' });
    expectRefused(res, 404, 'not_found');
  });

  it.each([
    ['GET', '/v1/workspaces/acme/licences', 'licence:list'],
    ['POST', '/v1/workspaces/acme/licences/l1/refund-requests', 'licence:refund'],
    ['POST', '/v1/workspaces/acme/subscriptions/s1/cancel', 'subscription:cancel'],
    ['GET', '/v1/workspaces/acme/members', 'member:list'],
    ['GET', '/v1/workspaces/acme', 'workspace:read'],
  ])('gina: workspace-level %s %s is 403 (%s), nothing forwarded', async (method, path, action) => {
    const res = await send(t, method, path, { as: 'gina', ...(method === 'POST' ? { headers: [['Content-Type', 'application/json']], body: '{}' } : {}) });
    expectRefused(res, 403, 'forbidden');
    expect(res.json().action).toBe(action);
  });

  it("gina's guest role allows token reads on her project only", async () => {
    const own = await send(t, 'GET', '/v1/workspaces/acme/projects/web/tokens', { as: 'gina' });
    expect(decisionOf(own)).toMatchObject({ result: 'allow', roles: ['guest:developer'] });
  });

  it('gus (guest viewer) sees project licences but not its tokens', async () => {
    const licences = await send(t, 'GET', '/v1/workspaces/acme/projects/web/licences', { as: 'gus' });
    expect(licences.status).toBe(200);
    expect(headerValues(expectForwardedOnce(licences), 'x-packagento-roles')).toEqual(['guest:viewer']);
    const tokens = await send(t, 'GET', '/v1/workspaces/acme/projects/web/tokens', { as: 'gus' });
    expectRefused(tokens, 403, 'forbidden');
    expect(tokens.json().action).toBe('token:list');
  });

  it('a guest of a deleted project has no access through it', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/projects/old/licences', { as: 'gina' });
    expectRefused(res, 404, 'not_found');
  });
});

describe('access changes are immediate', () => {
  it('a removed member gets 404 on the next request', async () => {
    const before = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vera' });
    expect(before.status).toBe(200);
    expectForwardedOnce(before);
    await t.gw.db.execute({ sql: "DELETE FROM memberships WHERE workspace_id = 'acme' AND user_id = 'vera'" });
    const after = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vera' });
    expectRefused(after, 404, 'not_found');
  });

  it('a downgraded member loses the action on the next request', async () => {
    const before = await send(t, 'GET', '/v1/workspaces/acme/projects/web/tokens', { as: 'dan' });
    expect(decisionOf(before)).toMatchObject({ result: 'allow', roles: ['developer'] });
    await t.gw.db.execute({ sql: "UPDATE memberships SET role = 'viewer' WHERE workspace_id = 'acme' AND user_id = 'dan'" });
    const after = await send(t, 'GET', '/v1/workspaces/acme/projects/web/tokens', { as: 'dan' });
    expectRefused(after, 403, 'forbidden');
  });

  it('a removed guest gets 404 on the next request', async () => {
    const before = await send(t, 'GET', '/v1/workspaces/acme/projects/web/licences', { as: 'gail' });
    expect(before.status).toBe(200);
    expectForwardedOnce(before);
    await t.gw.db.execute({ sql: "DELETE FROM project_guests WHERE project_id = 'web' AND user_id = 'gail'" });
    const after = await send(t, 'GET', '/v1/workspaces/acme/projects/web/licences', { as: 'gail' });
    expectRefused(after, 404, 'not_found');
  });
});
