import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call } from '../helpers/api.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { runCli } from '../policy/helpers.ts';

interface Cell {
  subject: string;
  action: string;
  target_role: string | null;
  allow: boolean;
}

let t: TestGateway;
let policyDir: string;
let matrix: Cell[];
const api = (method: string, path: string, as: string) => call(t.gw.url, method, path, { as });

beforeAll(async () => {
  // A copy of the default policy, so one test can change it under the running gateway.
  policyDir = await mkdtemp(join(tmpdir(), 'gate-perm-policy-'));
  await cp('policies', policyDir, { recursive: true });
  t = await startTestGateway({ world: ACME, policyDir });
  // The matrix, computed by the CLI (an independent path: Casbin → decision table → matrix).
  const r = await runCli(['matrix', '--policies', policyDir, '--format', 'json']);
  expect(r.code).toBe(0);
  matrix = (JSON.parse(r.stdout) as { decisions: Cell[] }).decisions;
});
afterAll(async () => {
  await t?.close();
  await rm(policyDir, { recursive: true, force: true });
});

/** What the matrix says a subject holds: an action some target allows; leaving only on one's own role. */
function expectedActions(subject: string, ownRole: string | undefined): string[] {
  const held = new Set<string>();
  for (const c of matrix) {
    if (c.subject !== subject || !c.allow) continue;
    if (c.action === 'member:leave' && c.target_role !== ownRole) continue;
    held.add(c.action);
  }
  // In the order the matrix lists actions.
  return [...new Set(matrix.map((c) => c.action))].filter((a) => held.has(a));
}
const rolesFor = (subject: string, action: string) =>
  matrix.filter((c) => c.subject === subject && c.action === action && c.allow).map((c) => c.target_role);

const MEMBERS: Record<string, string> = { alice: 'owner', bob: 'admin', dave: 'developer', bill: 'billing', vic: 'viewer' };

describe('GET /v1/workspaces/{ws}/permissions', () => {
  it.each(Object.entries(MEMBERS))('%s (%s): actions and role pickers equal the matrix', async (user, role) => {
    const r = await api('GET', '/v1/workspaces/acme/permissions', user);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ workspace: 'acme', role, guest_projects: [] });
    expect(r.body.actions).toEqual(expectedActions(role, role));
    expect(r.body.grantable_roles).toEqual(rolesFor(role, 'member:invite'));
    expect(r.body.guest_grantable_roles).toEqual(rolesFor(role, 'guest:invite'));
    expect(r.body.policy_revision).toBe(t.gw.policy.current.revision);
  });

  it('the role pickers of the product page: an admin offers developer, admin, billing, viewer; only an owner offers owner', async () => {
    expect((await api('GET', '/v1/workspaces/acme/permissions', 'bob')).body.grantable_roles).toEqual(['admin', 'developer', 'billing', 'viewer']);
    expect((await api('GET', '/v1/workspaces/acme/permissions', 'alice')).body.grantable_roles).toEqual(['owner', 'admin', 'developer', 'billing', 'viewer']);
    expect((await api('GET', '/v1/workspaces/acme/permissions', 'vic')).body).toMatchObject({ grantable_roles: [], guest_grantable_roles: [] });
    // An owner may not leave; anyone else may.
    expect((await api('GET', '/v1/workspaces/acme/permissions', 'alice')).body.actions).not.toContain('member:leave');
    expect((await api('GET', '/v1/workspaces/acme/permissions', 'vic')).body.actions).toContain('member:leave');
  });

  it('a guest-only caller: their projects, and at workspace level only what guests=workspace routes give', async () => {
    const r = await api('GET', '/v1/workspaces/acme/permissions', 'gina');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ workspace: 'acme', role: null, guest_projects: [{ project_id: 'web', role: 'developer' }], grantable_roles: [], guest_grantable_roles: [] });
    expect(r.body.actions).toEqual(['project:list']);
  });

  it('404 by visibility: a non-member, another workspace\'s owner', async () => {
    for (const [user, path] of [
      ['mallory', '/v1/workspaces/acme/permissions'],
      ['gwen', '/v1/workspaces/acme/permissions'],
      ['alice', '/v1/workspaces/nosuch/permissions'],
    ] as const) {
      const r = await api('GET', path, user);
      expect(r.status).toBe(404);
      expect(r.body.code).toBe('not_found');
    }
    expect((await call(t.gw.url, 'GET', '/v1/workspaces/acme/permissions')).status).toBe(401);
  });
});

describe('GET /v1/workspaces/{ws}/projects/{p}/permissions', () => {
  it.each(Object.entries(MEMBERS))('%s (%s) on a project: the member role\'s matrix row', async (user, role) => {
    const r = await api('GET', '/v1/workspaces/acme/projects/api/permissions', user);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ workspace: 'acme', project: 'api', role, guest_role: null });
    expect(r.body.actions).toEqual(expectedActions(role, role));
  });

  it.each([
    ['gina', 'developer'],
    ['gus', 'viewer'],
  ])('%s (guest %s) on their project: the guest role\'s matrix row', async (user, guestRole) => {
    const r = await api('GET', '/v1/workspaces/acme/projects/web/permissions', user);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ workspace: 'acme', project: 'web', role: null, guest_role: guestRole, grantable_roles: [] });
    expect(r.body.actions).toEqual(expectedActions(`guest:${guestRole}`, undefined));
    expect(r.body.guest_grantable_roles).toEqual(rolesFor(`guest:${guestRole}`, 'guest:invite'));
  });

  it('member role ∪ guest role: a viewer who is also a developer guest of a project gets both rows there', async () => {
    await t.gw.db.write((tx) => tx.execute("INSERT INTO project_guests (project_id, user_id, workspace_id, role, added_at) VALUES ('web', 'vic', 'acme', 'developer', 0)"));
    try {
      const r = await api('GET', '/v1/workspaces/acme/projects/web/permissions', 'vic');
      expect(r.body).toMatchObject({ role: 'viewer', guest_role: 'developer' });
      const union = new Set([...expectedActions('viewer', 'viewer'), ...expectedActions('guest:developer', undefined)]);
      expect(new Set(r.body.actions)).toEqual(union);
      expect(r.body.actions).toContain('token:create');
      // Elsewhere in the workspace the guest role does not count.
      expect((await api('GET', '/v1/workspaces/acme/projects/api/permissions', 'vic')).body.actions).toEqual(expectedActions('viewer', 'viewer'));
    } finally {
      await t.gw.db.write((tx) => tx.execute("DELETE FROM project_guests WHERE project_id = 'web' AND user_id = 'vic'"));
    }
  });

  it('404 by visibility: a guest on another project, a project of another workspace, a deleted or unknown one', async () => {
    for (const [user, path] of [
      ['gina', '/v1/workspaces/acme/projects/api/permissions'],
      ['alice', '/v1/workspaces/acme/projects/shop/permissions'],
      ['alice', '/v1/workspaces/acme/projects/nosuch/permissions'],
      ['mallory', '/v1/workspaces/acme/projects/web/permissions'],
    ] as const) {
      const r = await api('GET', path, user);
      expect(r.status, `${user} ${path}`).toBe(404);
    }
  });
});

describe('live: a policy change changes the answer', () => {
  it('admins lose project:delete when policy.csv drops it, at the next reload', async () => {
    const before = await api('GET', '/v1/workspaces/acme/permissions', 'bob');
    expect(before.body.actions).toContain('project:delete');
    const file = join(policyDir, 'policy.csv');
    const csv = await readFile(file, 'utf8');
    expect(csv).toContain('p, admin, project:delete, -\n');
    await writeFile(file, csv.replace('p, admin, project:delete, -\n', ''));
    await t.gw.policy.reload();
    const after = await api('GET', '/v1/workspaces/acme/permissions', 'bob');
    expect(after.body.actions).not.toContain('project:delete');
    expect(after.body.policy_revision).not.toBe(before.body.policy_revision);
    // The gate agrees with the answer.
    expect((await call(t.gw.url, 'DELETE', '/v1/workspaces/acme/projects/api', { as: 'bob' })).status).toBe(403);
  });
});
