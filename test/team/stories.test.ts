import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { basic, call, linkToken, testClock } from '../helpers/api.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

const DAY = 24 * 60 * 60 * 1000;

/** A gateway on an empty database, its clock, and what the story's steps have created so far. */
interface Story {
  t: TestGateway;
  clock: ReturnType<typeof testClock>;
  api: (method: string, path: string, opts?: Parameters<typeof call>[3]) => ReturnType<typeof call>;
  ws: string;
  project: string;
}

async function newStory(): Promise<Story> {
  const clock = testClock();
  const t = await startTestGateway({ now: clock.now });
  return { t, clock, api: (method, path, opts = {}) => call(t.gw.url, method, path, opts), ws: '', project: '' };
}

// The tests below the story each get a gateway of their own too.
let t: TestGateway;
const api = (method: string, path: string, opts: Parameters<typeof call>[3] = {}) => call(t.gw.url, method, path, opts);
function ownGatewayPerTest(): void {
  beforeEach(async () => {
    t = await startTestGateway({ now: testClock().now });
  });
  afterEach(async () => {
    await t?.close();
  });
}

describe('a workspace run end to end through the API', () => {
  /**
   * One story in steps. Each test starts its own gateway and replays the steps before
   * its own (with their assertions), so every test sets up what it needs and can run
   * alone or in any order.
   */
  const STEPS: [string, (s: Story) => Promise<void>][] = [
    [
      "the first purchase creates the caller's own workspace, once",
      async (s) => {
        const first = await s.api('PUT', '/v1/me/workspace', { as: 'alice' });
        expect(first.status).toBe(201);
        expect(first.body).toMatchObject({ role: 'owner', created: true });
        s.ws = first.body.id;
        const again = await s.api('PUT', '/v1/me/workspace', { as: 'alice' });
        expect(again.status).toBe(200);
        expect(again.body).toMatchObject({ id: s.ws, created: false });
        const read = await s.api('GET', `/v1/workspaces/${s.ws}`, { as: 'alice' });
        expect(read.body).toMatchObject({ id: s.ws, my_role: 'owner' });
      },
    ],
    [
      'staffing by invite: owner invites admin, admin invites developer, rank rules hold',
      async (s) => {
        const inv = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'alice', body: { email: 'Bob@Example.com', role: 'admin' } });
        expect(inv.status).toBe(201);
        expect(inv.body.invite).toMatchObject({ email: 'bob@example.com', role: 'admin', status: 'pending' });
        const preview = await call(s.t.gw.url, 'GET', `/v1/invites/${linkToken(inv.body.accept_url)}`);
        expect(preview.status).toBe(200);
        expect(preview.body).toMatchObject({ workspace: { id: s.ws }, role: 'admin', status: 'pending', invited_by: { user_id: 'alice' } });
        const accepted = await s.api('POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { as: 'bob' });
        expect(accepted.status).toBe(200);
        expect(accepted.body).toMatchObject({ workspace_id: s.ws, role: 'admin' });

        const ownerByAdmin = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'bob', body: { email: 'carol@example.com', role: 'owner' } });
        expect(ownerByAdmin.status).toBe(403);
        expect(ownerByAdmin.body).toMatchObject({ code: 'forbidden', action: 'member:invite' });

        const dev = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'bob', body: { email: 'dave@example.com', role: 'developer' } });
        expect(dev.status).toBe(201);
        const dup = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'bob', body: { email: 'DAVE@example.com', role: 'viewer' } });
        expect(dup.status).toBe(409);
        expect(dup.body.code).toBe('invite_pending');
        expect((await s.api('POST', `/v1/invites/${linkToken(dev.body.accept_url)}/accept`, { as: 'dave' })).status).toBe(200);
        const again = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'bob', body: { email: 'dave@example.com', role: 'viewer' } });
        expect(again.status).toBe(409);
        expect(again.body.code).toBe('already_member');

        const members = await s.api('GET', `/v1/workspaces/${s.ws}/members`, { as: 'dave' });
        expect(members.status).toBe(200);
        expect(members.body.members.map((m: any) => [m.user_id, m.role])).toEqual([
          ['alice', 'owner'],
          ['bob', 'admin'],
          ['dave', 'developer'],
        ]);
        expect(JSON.stringify(members.body)).not.toMatch(/accept_url|token/);
      },
    ],
    [
      'projects and tokens: a developer mints, Composer credentials install, removal kills only their tokens',
      async (s) => {
        const p = await s.api('POST', `/v1/workspaces/${s.ws}/projects`, { as: 'bob', body: { name: 'Web shop' } });
        expect(p.status).toBe(201);
        s.project = p.body.id;
        expect((await s.api('POST', `/v1/workspaces/${s.ws}/projects`, { as: 'dave', body: { name: 'x' } })).status).toBe(403);

        const daveTok = await s.api('POST', `/v1/workspaces/${s.ws}/projects/${s.project}/tokens`, { as: 'dave', body: { name: 'ci' } });
        expect(daveTok.status).toBe(201);
        expect(daveTok.body.token.public_key).toMatch(/^pk_/);
        expect(daveTok.body.token.private_key).toMatch(/^sk_/);
        const bobTok = await s.api('POST', `/v1/workspaces/${s.ws}/projects/${s.project}/tokens`, { as: 'bob', body: { name: 'deploy' } });
        expect(bobTok.status).toBe(201);

        const list = await s.api('GET', `/v1/workspaces/${s.ws}/projects/${s.project}/tokens`, { as: 'dave' });
        expect(list.body.tokens).toHaveLength(2);
        expect(JSON.stringify(list.body)).not.toMatch(/sk_/);
        const read = await s.api('GET', `/v1/workspaces/${s.ws}/projects/${s.project}/tokens/${daveTok.body.token.id}`, { as: 'bob' });
        expect(read.status).toBe(200);
        expect(read.body.token.private_key).toBe(daveTok.body.token.private_key);
        const host = new URL(s.t.gw.url).host;
        expect(read.body.auth_json['http-basic'][host]).toEqual({ username: daveTok.body.token.public_key, password: daveTok.body.token.private_key });

        const daveCreds = basic(daveTok.body.token.public_key, daveTok.body.token.private_key);
        const bobCreds = basic(bobTok.body.token.public_key, bobTok.body.token.private_key);
        const before = s.t.upstream.received.length;
        expect((await call(s.t.gw.url, 'GET', '/repo/packages.json', { headers: daveCreds })).status).toBe(200);
        expect(s.t.upstream.received.length).toBe(before + 1);
        expect(s.t.upstream.received.at(-1)!.headers['x-packagento-principal']).toBe(`token:${daveTok.body.token.id}`);
        expect(s.t.upstream.received.at(-1)!.headers['x-packagento-project']).toBe(s.project);

        const removed = await s.api('DELETE', `/v1/workspaces/${s.ws}/members/dave`, { as: 'bob' });
        expect(removed.status).toBe(200);
        expect(removed.body).toEqual({ removed: 'dave', deactivated_tokens: 1 });

        const after = s.t.upstream.received.length;
        expect((await call(s.t.gw.url, 'GET', '/repo/packages.json', { headers: daveCreds })).status).toBe(401);
        expect(s.t.upstream.received.length).toBe(after);
        expect((await call(s.t.gw.url, 'GET', '/repo/packages.json', { headers: bobCreds })).status).toBe(200);
        expect((await s.api('GET', `/v1/workspaces/${s.ws}`, { as: 'dave' })).status).toBe(404);

        // Invited back: a new membership, but the old token stays dead.
        const back = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'bob', body: { email: 'dave@example.com', role: 'developer' } });
        expect((await s.api('POST', `/v1/invites/${linkToken(back.body.accept_url)}/accept`, { as: 'dave' })).status).toBe(200);
        expect((await call(s.t.gw.url, 'GET', '/repo/packages.json', { headers: daveCreds })).status).toBe(401);
        const reread = await s.api('GET', `/v1/workspaces/${s.ws}/projects/${s.project}/tokens/${daveTok.body.token.id}`, { as: 'dave' });
        expect(reread.body.token).toMatchObject({ active: false, private_key: null, deactivated_reason: 'member_removed' });
      },
    ],
    [
      'project guests: one project only, removal ends exactly that access',
      async (s) => {
        const second = await s.api('POST', `/v1/workspaces/${s.ws}/projects`, { as: 'alice', body: { name: 'Internal' } });
        const inv = await s.api('POST', `/v1/workspaces/${s.ws}/projects/${s.project}/guests`, { as: 'alice', body: { email: 'gina@example.com', role: 'developer' } });
        expect(inv.status).toBe(201);
        expect(inv.body.invite).toMatchObject({ role: 'developer', project_id: s.project });
        expect((await s.api('POST', `/v1/workspaces/${s.ws}/projects/${s.project}/guests`, { as: 'alice', body: { email: 'x@example.com', role: 'admin' } })).status).toBe(400);
        expect((await s.api('POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { as: 'gina' })).status).toBe(200);

        const projects = await s.api('GET', `/v1/workspaces/${s.ws}/projects`, { as: 'gina' });
        expect(projects.status).toBe(200);
        expect(projects.body.projects.map((p: any) => p.id)).toEqual([s.project]);
        expect((await s.api('GET', `/v1/workspaces/${s.ws}/projects/${second.body.id}`, { as: 'gina' })).status).toBe(404);
        expect((await s.api('GET', `/v1/workspaces/${s.ws}`, { as: 'gina' })).status).toBe(403);
        const mine = await s.api('GET', '/v1/me/workspaces', { as: 'gina' });
        expect(mine.body).toEqual({ workspaces: [], guest_projects: [{ workspace_id: s.ws, project_id: s.project, role: 'developer' }] });

        const tok = await s.api('POST', `/v1/workspaces/${s.ws}/projects/${s.project}/tokens`, { as: 'gina', body: { name: 'laptop' } });
        expect(tok.status).toBe(201);
        const creds = basic(tok.body.token.public_key, tok.body.token.private_key);
        expect((await call(s.t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(200);

        const removed = await s.api('DELETE', `/v1/workspaces/${s.ws}/projects/${s.project}/guests/gina`, { as: 'bob' });
        expect(removed.status).toBe(200);
        expect(removed.body).toMatchObject({ removed: 'gina', deactivated_tokens: 1 });
        expect((await call(s.t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
        expect((await s.api('GET', `/v1/workspaces/${s.ws}/projects`, { as: 'gina' })).status).toBe(404);
      },
    ],
    [
      'switching workspaces: the switcher lists only where the user is owner or admin',
      async (s) => {
        const own = await s.api('POST', '/v1/workspaces', { as: 'dave', body: { name: 'Dave & Co' } });
        expect(own.status).toBe(201);
        const all = await s.api('GET', '/v1/me/workspaces', { as: 'dave' });
        expect(all.body.workspaces.map((w: any) => [w.id, w.role]).sort()).toEqual([[own.body.id, 'owner'], [s.ws, 'developer']].sort());
        const switcher = await s.api('GET', '/v1/me/workspaces?switcher=true', { as: 'dave' });
        expect(switcher.body.workspaces.map((w: any) => w.id)).toEqual([own.body.id]);
        expect((await s.api('GET', '/v1/me/workspaces?switcher=maybe', { as: 'dave' })).status).toBe(400);
      },
    ],
    [
      'an expired link is re-issued: the new link works, the old one is dead',
      async (s) => {
        const inv = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'alice', body: { email: 'erin@example.com', role: 'viewer' } });
        const oldToken = linkToken(inv.body.accept_url);
        s.clock.advance(15 * DAY);
        expect((await call(s.t.gw.url, 'GET', `/v1/invites/${oldToken}`)).body.code).toBe('invite_expired');
        const acceptExpired = await s.api('POST', `/v1/invites/${oldToken}/accept`, { as: 'erin' });
        expect(acceptExpired.status).toBe(410);
        expect(acceptExpired.body.code).toBe('invite_expired');
        const listed = await s.api('GET', `/v1/workspaces/${s.ws}/members`, { as: 'alice' });
        expect(listed.body.invites.find((i: any) => i.id === inv.body.invite.id)).toMatchObject({ status: 'expired' });

        const re = await s.api('POST', `/v1/workspaces/${s.ws}/invites/${inv.body.invite.id}/reissue`, { as: 'bob' });
        expect(re.status).toBe(200);
        expect(re.body.invite).toMatchObject({ id: inv.body.invite.id, status: 'pending' });
        const newToken = linkToken(re.body.accept_url);
        expect(newToken).not.toBe(oldToken);
        const old = await s.api('POST', `/v1/invites/${oldToken}/accept`, { as: 'erin' });
        expect(old.status).toBe(410);
        expect(old.body.code).toBe('invite_revoked');
        expect((await s.api('POST', `/v1/invites/${newToken}/accept`, { as: 'erin' })).status).toBe(200);
        const used = await s.api('POST', `/v1/invites/${newToken}/accept`, { as: 'erin' });
        expect(used.status).toBe(410);
        expect(used.body.code).toBe('invite_used');
      },
    ],
    [
      'an admin cannot re-issue an owner invite; revoked links answer 410',
      async (s) => {
        const inv = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'alice', body: { email: 'olga@example.com', role: 'owner' } });
        expect(inv.status).toBe(201);
        const byAdmin = await s.api('POST', `/v1/workspaces/${s.ws}/invites/${inv.body.invite.id}/reissue`, { as: 'bob' });
        expect(byAdmin.status).toBe(403);
        expect(byAdmin.body).toMatchObject({ action: 'invite:reissue', target_role: 'owner' });
        expect((await s.api('DELETE', `/v1/workspaces/${s.ws}/invites/${inv.body.invite.id}`, { as: 'bob' })).status).toBe(200);
        expect((await s.api('DELETE', `/v1/workspaces/${s.ws}/invites/${inv.body.invite.id}`, { as: 'bob' })).body.code).toBe('invite_not_pending');
        const gone = await s.api('POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { as: 'olga' });
        expect(gone.status).toBe(410);
        expect(gone.body.code).toBe('invite_revoked');
      },
    ],
    [
      'accepting needs the invited, verified email; a brand-new user accepts the same way',
      async (s) => {
        const inv = await s.api('POST', `/v1/workspaces/${s.ws}/invites`, { as: 'alice', body: { email: 'newbie@example.com', role: 'billing' } });
        const token = linkToken(inv.body.accept_url);
        expect((await s.api('POST', `/v1/invites/${token}/accept`, { as: 'mallory', email: 'mallory@example.com' })).body.code).toBe('invite_email_mismatch');
        expect((await s.api('POST', `/v1/invites/${token}/accept`, { as: 'newbie', emailVerified: false })).body.code).toBe('invite_email_mismatch');
        const ok = await s.api('POST', `/v1/invites/${token}/accept`, { as: 'newbie', email: 'NewBie@Example.COM' });
        expect(ok.status).toBe(200);
        expect(ok.body.role).toBe('billing');
      },
    ],
    [
      'role changes follow the rank rules, and an owner is never changed through the API',
      async (s) => {
        expect((await s.api('PATCH', `/v1/workspaces/${s.ws}/members/dave`, { as: 'bob', body: { role: 'viewer' } })).body.role).toBe('viewer');
        const toOwner = await s.api('PATCH', `/v1/workspaces/${s.ws}/members/dave`, { as: 'bob', body: { role: 'owner' } });
        expect(toOwner.status).toBe(403);
        const ownerChanged = await s.api('PATCH', `/v1/workspaces/${s.ws}/members/alice`, { as: 'bob', body: { role: 'viewer' } });
        expect(ownerChanged.status).toBe(403);
        expect((await s.api('DELETE', `/v1/workspaces/${s.ws}/members/alice`, { as: 'bob' })).status).toBe(403);
        expect((await s.api('DELETE', `/v1/workspaces/${s.ws}/members/me`, { as: 'alice' })).status).toBe(403);
        expect((await s.api('PATCH', `/v1/workspaces/${s.ws}/members/dave`, { as: 'bob', body: { role: 'viewer', extra: 1 } })).status).toBe(400);
        const left = await s.api('DELETE', `/v1/workspaces/${s.ws}/members/me`, { as: 'dave' });
        expect(left.status).toBe(200);
        expect(left.body.removed).toBe('dave');
      },
    ],
    [
      'every change was audited with actor, target, time and request id',
      async (s) => {
        const r = await s.t.gw.db.execute({ sql: 'SELECT action, actor, target, request_id, at FROM audit_events WHERE workspace_id = ? ORDER BY id', args: [s.ws] });
        const actions = r.rows.map((row) => String(row['action']));
        for (const a of ['workspace.created', 'invite.sent', 'invite.accepted', 'invite.revoked', 'invite.reissued', 'member.role_changed', 'member.removed', 'member.left', 'guest.removed', 'token.minted', 'token.deactivated', 'project.created']) {
          expect(actions).toContain(a);
        }
        for (const row of r.rows) {
          expect(String(row['actor'])).toMatch(/^user:/);
          expect(row['request_id']).toBeTruthy();
          expect(Number(row['at'])).toBeGreaterThan(0);
        }
      },
    ],
  ];

  STEPS.forEach(([name], i) => {
    test(name, async () => {
      const s = await newStory();
      try {
        for (const [, step] of STEPS.slice(0, i + 1)) await step(s);
      } finally {
        await s.t.close();
      }
    });
  });
});

describe('the gateway records the users it sees', () => {
  ownGatewayPerTest();

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
  ownGatewayPerTest();

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
