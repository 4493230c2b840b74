import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { basic, call, linkToken, testClock } from '../helpers/api.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const DAY = 24 * 60 * 60 * 1000;
let t: TestGateway;
const clock = testClock();
const api = (method: string, path: string, opts: Parameters<typeof call>[3] = {}) => call(t.gw.url, method, path, opts);

beforeAll(async () => {
  t = await startTestGateway({ now: clock.now });
});
afterAll(async () => {
  await t?.close();
});

describe('a workspace run end to end through the API', () => {
  let ws = '';
  let project = '';

  test('the first purchase creates the caller\'s own workspace, once', async () => {
    const first = await api('PUT', '/v1/me/workspace', { as: 'alice' });
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ role: 'owner', created: true });
    ws = first.body.id;
    const again = await api('PUT', '/v1/me/workspace', { as: 'alice' });
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ id: ws, created: false });
    const read = await api('GET', `/v1/workspaces/${ws}`, { as: 'alice' });
    expect(read.body).toMatchObject({ id: ws, my_role: 'owner' });
  });

  test('staffing by invite: owner invites admin, admin invites developer, rank rules hold', async () => {
    const inv = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'alice', body: { email: 'Bob@Example.com', role: 'admin' } });
    expect(inv.status).toBe(201);
    expect(inv.body.invite).toMatchObject({ email: 'bob@example.com', role: 'admin', status: 'pending' });
    const preview = await call(t.gw.url, 'GET', `/v1/invites/${linkToken(inv.body.accept_url)}`);
    expect(preview.status).toBe(200);
    expect(preview.body).toMatchObject({ workspace: { id: ws }, role: 'admin', status: 'pending', invited_by: { user_id: 'alice' } });
    const accepted = await api('POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { as: 'bob' });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ workspace_id: ws, role: 'admin' });

    const ownerByAdmin = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'bob', body: { email: 'carol@example.com', role: 'owner' } });
    expect(ownerByAdmin.status).toBe(403);
    expect(ownerByAdmin.body).toMatchObject({ code: 'forbidden', action: 'member:invite' });

    const dev = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'bob', body: { email: 'dave@example.com', role: 'developer' } });
    expect(dev.status).toBe(201);
    const dup = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'bob', body: { email: 'DAVE@example.com', role: 'viewer' } });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('invite_pending');
    expect((await api('POST', `/v1/invites/${linkToken(dev.body.accept_url)}/accept`, { as: 'dave' })).status).toBe(200);
    const again = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'bob', body: { email: 'dave@example.com', role: 'viewer' } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('already_member');

    const members = await api('GET', `/v1/workspaces/${ws}/members`, { as: 'dave' });
    expect(members.status).toBe(200);
    expect(members.body.members.map((m: any) => [m.user_id, m.role])).toEqual([
      ['alice', 'owner'],
      ['bob', 'admin'],
      ['dave', 'developer'],
    ]);
    expect(JSON.stringify(members.body)).not.toMatch(/accept_url|token/);
  });

  test('projects and tokens: a developer mints, Composer credentials install, removal kills only their tokens', async () => {
    const p = await api('POST', `/v1/workspaces/${ws}/projects`, { as: 'bob', body: { name: 'Web shop' } });
    expect(p.status).toBe(201);
    project = p.body.id;
    expect((await api('POST', `/v1/workspaces/${ws}/projects`, { as: 'dave', body: { name: 'x' } })).status).toBe(403);

    const daveTok = await api('POST', `/v1/workspaces/${ws}/projects/${project}/tokens`, { as: 'dave', body: { name: 'ci' } });
    expect(daveTok.status).toBe(201);
    expect(daveTok.body.token.public_key).toMatch(/^pk_/);
    expect(daveTok.body.token.private_key).toMatch(/^sk_/);
    const bobTok = await api('POST', `/v1/workspaces/${ws}/projects/${project}/tokens`, { as: 'bob', body: { name: 'deploy' } });
    expect(bobTok.status).toBe(201);

    const list = await api('GET', `/v1/workspaces/${ws}/projects/${project}/tokens`, { as: 'dave' });
    expect(list.body.tokens).toHaveLength(2);
    expect(JSON.stringify(list.body)).not.toMatch(/sk_/);
    const read = await api('GET', `/v1/workspaces/${ws}/projects/${project}/tokens/${daveTok.body.token.id}`, { as: 'bob' });
    expect(read.status).toBe(200);
    expect(read.body.token.private_key).toBe(daveTok.body.token.private_key);
    const host = new URL(t.gw.url).host;
    expect(read.body.auth_json['http-basic'][host]).toEqual({ username: daveTok.body.token.public_key, password: daveTok.body.token.private_key });

    const daveCreds = basic(daveTok.body.token.public_key, daveTok.body.token.private_key);
    const bobCreds = basic(bobTok.body.token.public_key, bobTok.body.token.private_key);
    const before = t.upstream.received.length;
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: daveCreds })).status).toBe(200);
    expect(t.upstream.received.length).toBe(before + 1);
    expect(t.upstream.received.at(-1)!.headers['x-packagento-principal']).toBe(`token:${daveTok.body.token.id}`);
    expect(t.upstream.received.at(-1)!.headers['x-packagento-project']).toBe(project);

    const removed = await api('DELETE', `/v1/workspaces/${ws}/members/dave`, { as: 'bob' });
    expect(removed.status).toBe(200);
    expect(removed.body).toEqual({ removed: 'dave', deactivated_tokens: 1 });

    const after = t.upstream.received.length;
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: daveCreds })).status).toBe(401);
    expect(t.upstream.received.length).toBe(after);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: bobCreds })).status).toBe(200);
    expect((await api('GET', `/v1/workspaces/${ws}`, { as: 'dave' })).status).toBe(404);

    // Invited back: a new membership, but the old token stays dead.
    const back = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'bob', body: { email: 'dave@example.com', role: 'developer' } });
    expect((await api('POST', `/v1/invites/${linkToken(back.body.accept_url)}/accept`, { as: 'dave' })).status).toBe(200);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: daveCreds })).status).toBe(401);
    const reread = await api('GET', `/v1/workspaces/${ws}/projects/${project}/tokens/${daveTok.body.token.id}`, { as: 'dave' });
    expect(reread.body.token).toMatchObject({ active: false, private_key: null, deactivated_reason: 'member_removed' });
  });

  test('project guests: one project only, removal ends exactly that access', async () => {
    const second = await api('POST', `/v1/workspaces/${ws}/projects`, { as: 'alice', body: { name: 'Internal' } });
    const inv = await api('POST', `/v1/workspaces/${ws}/projects/${project}/guests`, { as: 'alice', body: { email: 'gina@example.com', role: 'developer' } });
    expect(inv.status).toBe(201);
    expect(inv.body.invite).toMatchObject({ role: 'developer', project_id: project });
    expect((await api('POST', `/v1/workspaces/${ws}/projects/${project}/guests`, { as: 'alice', body: { email: 'x@example.com', role: 'admin' } })).status).toBe(400);
    expect((await api('POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { as: 'gina' })).status).toBe(200);

    const projects = await api('GET', `/v1/workspaces/${ws}/projects`, { as: 'gina' });
    expect(projects.status).toBe(200);
    expect(projects.body.projects.map((p: any) => p.id)).toEqual([project]);
    expect((await api('GET', `/v1/workspaces/${ws}/projects/${second.body.id}`, { as: 'gina' })).status).toBe(404);
    expect((await api('GET', `/v1/workspaces/${ws}`, { as: 'gina' })).status).toBe(403);
    const mine = await api('GET', '/v1/me/workspaces', { as: 'gina' });
    expect(mine.body).toEqual({ workspaces: [], guest_projects: [{ workspace_id: ws, project_id: project, role: 'developer' }] });

    const tok = await api('POST', `/v1/workspaces/${ws}/projects/${project}/tokens`, { as: 'gina', body: { name: 'laptop' } });
    expect(tok.status).toBe(201);
    const creds = basic(tok.body.token.public_key, tok.body.token.private_key);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(200);

    const removed = await api('DELETE', `/v1/workspaces/${ws}/projects/${project}/guests/gina`, { as: 'bob' });
    expect(removed.status).toBe(200);
    expect(removed.body).toMatchObject({ removed: 'gina', deactivated_tokens: 1 });
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
    expect((await api('GET', `/v1/workspaces/${ws}/projects`, { as: 'gina' })).status).toBe(404);
  });

  test('switching workspaces: the switcher lists only where the user is owner or admin', async () => {
    const own = await api('POST', '/v1/workspaces', { as: 'dave', body: { name: 'Dave & Co' } });
    expect(own.status).toBe(201);
    const all = await api('GET', '/v1/me/workspaces', { as: 'dave' });
    expect(all.body.workspaces.map((w: any) => [w.id, w.role]).sort()).toEqual([[own.body.id, 'owner'], [ws, 'developer']].sort());
    const switcher = await api('GET', '/v1/me/workspaces?switcher=true', { as: 'dave' });
    expect(switcher.body.workspaces.map((w: any) => w.id)).toEqual([own.body.id]);
    expect((await api('GET', '/v1/me/workspaces?switcher=maybe', { as: 'dave' })).status).toBe(400);
  });

  test('an expired link is re-issued: the new link works, the old one is dead', async () => {
    const inv = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'alice', body: { email: 'erin@example.com', role: 'viewer' } });
    const oldToken = linkToken(inv.body.accept_url);
    clock.advance(15 * DAY);
    expect((await call(t.gw.url, 'GET', `/v1/invites/${oldToken}`)).body.code).toBe('invite_expired');
    const acceptExpired = await api('POST', `/v1/invites/${oldToken}/accept`, { as: 'erin' });
    expect(acceptExpired.status).toBe(410);
    expect(acceptExpired.body.code).toBe('invite_expired');
    const listed = await api('GET', `/v1/workspaces/${ws}/members`, { as: 'alice' });
    expect(listed.body.invites.find((i: any) => i.id === inv.body.invite.id)).toMatchObject({ status: 'expired' });

    const re = await api('POST', `/v1/workspaces/${ws}/invites/${inv.body.invite.id}/reissue`, { as: 'bob' });
    expect(re.status).toBe(200);
    expect(re.body.invite).toMatchObject({ id: inv.body.invite.id, status: 'pending' });
    const newToken = linkToken(re.body.accept_url);
    expect(newToken).not.toBe(oldToken);
    const old = await api('POST', `/v1/invites/${oldToken}/accept`, { as: 'erin' });
    expect(old.status).toBe(410);
    expect(old.body.code).toBe('invite_revoked');
    expect((await api('POST', `/v1/invites/${newToken}/accept`, { as: 'erin' })).status).toBe(200);
    const used = await api('POST', `/v1/invites/${newToken}/accept`, { as: 'erin' });
    expect(used.status).toBe(410);
    expect(used.body.code).toBe('invite_used');
  });

  test('an admin cannot re-issue an owner invite; revoked links answer 410', async () => {
    const inv = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'alice', body: { email: 'olga@example.com', role: 'owner' } });
    expect(inv.status).toBe(201);
    const byAdmin = await api('POST', `/v1/workspaces/${ws}/invites/${inv.body.invite.id}/reissue`, { as: 'bob' });
    expect(byAdmin.status).toBe(403);
    expect(byAdmin.body).toMatchObject({ action: 'invite:reissue', target_role: 'owner' });
    expect((await api('DELETE', `/v1/workspaces/${ws}/invites/${inv.body.invite.id}`, { as: 'bob' })).status).toBe(200);
    expect((await api('DELETE', `/v1/workspaces/${ws}/invites/${inv.body.invite.id}`, { as: 'bob' })).body.code).toBe('invite_not_pending');
    const gone = await api('POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { as: 'olga' });
    expect(gone.status).toBe(410);
    expect(gone.body.code).toBe('invite_revoked');
  });

  test('accepting needs the invited, verified email; a brand-new user accepts the same way', async () => {
    const inv = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'alice', body: { email: 'newbie@example.com', role: 'billing' } });
    const token = linkToken(inv.body.accept_url);
    expect((await api('POST', `/v1/invites/${token}/accept`, { as: 'mallory', email: 'mallory@example.com' })).body.code).toBe('invite_email_mismatch');
    expect((await api('POST', `/v1/invites/${token}/accept`, { as: 'newbie', emailVerified: false })).body.code).toBe('invite_email_mismatch');
    const ok = await api('POST', `/v1/invites/${token}/accept`, { as: 'newbie', email: 'NewBie@Example.COM' });
    expect(ok.status).toBe(200);
    expect(ok.body.role).toBe('billing');
  });

  test('role changes follow the rank rules, and an owner is never changed through the API', async () => {
    expect((await api('PATCH', `/v1/workspaces/${ws}/members/dave`, { as: 'bob', body: { role: 'viewer' } })).body.role).toBe('viewer');
    const toOwner = await api('PATCH', `/v1/workspaces/${ws}/members/dave`, { as: 'bob', body: { role: 'owner' } });
    expect(toOwner.status).toBe(403);
    const ownerChanged = await api('PATCH', `/v1/workspaces/${ws}/members/alice`, { as: 'bob', body: { role: 'viewer' } });
    expect(ownerChanged.status).toBe(403);
    expect((await api('DELETE', `/v1/workspaces/${ws}/members/alice`, { as: 'bob' })).status).toBe(403);
    expect((await api('DELETE', `/v1/workspaces/${ws}/members/me`, { as: 'alice' })).status).toBe(403);
    expect((await api('PATCH', `/v1/workspaces/${ws}/members/dave`, { as: 'bob', body: { role: 'viewer', extra: 1 } })).status).toBe(400);
    const left = await api('DELETE', `/v1/workspaces/${ws}/members/me`, { as: 'dave' });
    expect(left.status).toBe(200);
    expect(left.body.removed).toBe('dave');
  });

  test('every change was audited with actor, target, time and request id', async () => {
    const r = await t.gw.db.execute({ sql: 'SELECT action, actor, target, request_id, at FROM audit_events WHERE workspace_id = ? ORDER BY id', args: [ws] });
    const actions = r.rows.map((row) => String(row['action']));
    for (const a of ['workspace.created', 'invite.sent', 'invite.accepted', 'invite.revoked', 'invite.reissued', 'member.role_changed', 'member.removed', 'member.left', 'guest.removed', 'token.minted', 'token.deactivated', 'project.created']) {
      expect(actions).toContain(a);
    }
    for (const row of r.rows) {
      expect(String(row['actor'])).toMatch(/^user:/);
      expect(row['request_id']).toBeTruthy();
      expect(Number(row['at'])).toBeGreaterThan(0);
    }
  });
});

describe('the gateway records the users it sees', () => {
  test('a signed-in user unknown to the database is recorded with their verified email, without delaying the request', async () => {
    const res = await api('GET', '/v1/me/workspaces', { as: 'quentin', email: 'Quentin@Example.com' });
    expect(res.status).toBe(200);
    let row: Record<string, unknown> | undefined;
    for (let i = 0; i < 50 && !row; i++) {
      row = (await t.gw.db.execute("SELECT email, email_verified FROM users WHERE id = 'quentin'")).rows[0] as Record<string, unknown> | undefined;
      if (!row) await new Promise((r) => setTimeout(r, 20));
    }
    expect(row).toMatchObject({ email: 'quentin@example.com', email_verified: 1 });
  });
});

describe('an invite grants only what its sender may still grant', () => {
  test('an admin removed after inviting: the link no longer makes anyone an admin', async () => {
    const ws = (await api('PUT', '/v1/me/workspace', { as: 'owen' })).body.id;
    const toAdmin = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'owen', body: { email: 'ada@example.com', role: 'admin' } });
    expect((await api('POST', `/v1/invites/${linkToken(toAdmin.body.accept_url)}/accept`, { as: 'ada' })).status).toBe(200);
    const byAda = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'ada', body: { email: 'zed@example.com', role: 'admin' } });
    const byAdaDev = await api('POST', `/v1/workspaces/${ws}/invites`, { as: 'ada', body: { email: 'yan@example.com', role: 'developer' } });
    expect(byAda.status).toBe(201);
    // Ada is demoted to developer: she can no longer grant admin (or anything).
    expect((await api('PATCH', `/v1/workspaces/${ws}/members/ada`, { as: 'owen', body: { role: 'developer' } })).status).toBe(200);
    const refused = await api('POST', `/v1/invites/${linkToken(byAda.body.accept_url)}/accept`, { as: 'zed' });
    expect(refused.status).toBe(410);
    expect(refused.body.code).toBe('invite_revoked');
    expect((await api('POST', `/v1/invites/${linkToken(byAdaDev.body.accept_url)}/accept`, { as: 'yan' })).body.code).toBe('invite_revoked');
    const members = await api('GET', `/v1/workspaces/${ws}/members`, { as: 'owen' });
    expect(members.body.members.map((m: any) => m.user_id).sort()).toEqual(['ada', 'owen']);
    // The owner re-issues it: now the grant comes from the owner's rights and works.
    const re = await api('POST', `/v1/workspaces/${ws}/invites/${byAda.body.invite.id}/reissue`, { as: 'owen' });
    expect(re.status).toBe(200);
    const accepted = await api('POST', `/v1/invites/${linkToken(re.body.accept_url)}/accept`, { as: 'zed' });
    expect(accepted.status).toBe(200);
    expect(accepted.body.role).toBe('admin');
  });
});
