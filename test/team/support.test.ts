import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { call } from '../helpers/api.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: { workspaces: { acme: { members: { alice: 'owner', bob: 'admin', vic: 'viewer' } } } } });
});
afterAll(async () => t?.close());

async function cli(args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await main(args, {
    stdout: (s) => (stdout += s),
    stderr: (s) => (stderr += s),
    env: { GATE_DATABASE_URL: `file:${join(t.dir, 'gate.db')}` },
    cwd: process.cwd(),
  });
  return { code, stdout, stderr };
}

test('support transfers ownership to a member; the old owner becomes admin; audited', async () => {
  const r = await cli(['support', 'transfer-ownership', '--workspace', 'acme', '--to', 'bob', '--actor', 'sam', '--reason', 'TICKET-42']);
  expect(r).toMatchObject({ code: 0, stderr: '' });
  expect(r.stdout).toContain('bob is now an owner of acme; alice now admin');
  const roles = await t.gw.db.execute("SELECT user_id, role FROM memberships WHERE workspace_id = 'acme' ORDER BY user_id");
  expect(roles.rows.map((row) => [row['user_id'], row['role']])).toEqual([
    ['alice', 'admin'],
    ['bob', 'owner'],
    ['vic', 'viewer'],
  ]);
  const audit = await t.gw.db.execute("SELECT actor, action, target, detail FROM audit_events WHERE action = 'ownership.transferred'");
  expect(audit.rows[0]).toMatchObject({ actor: 'support:sam', target: 'user:bob' });
  expect(JSON.parse(String(audit.rows[0]!['detail']))).toMatchObject({ from: ['alice'], reason: 'TICKET-42' });
  // The change is immediate for the gateway: bob now passes owner-only checks.
  const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/invites', { as: 'bob', body: { email: 'o2@example.com', role: 'owner' } });
  expect(inv.status).toBe(201);
});

test('refuses a non-member, an unknown workspace, and bad usage', async () => {
  expect(await cli(['support', 'transfer-ownership', '--workspace', 'acme', '--to', 'stranger'])).toMatchObject({ code: 1 });
  expect((await cli(['support', 'transfer-ownership', '--workspace', 'nope', '--to', 'bob'])).stderr).toContain('no workspace "nope"');
  expect((await cli(['support', 'transfer-ownership', '--workspace', 'acme'])).code).toBe(2);
  expect((await cli(['support', 'transfer-ownership', '--workspace', 'acme', '--to', 'vic', '--previous-owners', 'boss'])).code).toBe(2);
  expect((await cli(['support', 'transfer-ownership', '--help'])).stdout).toContain('Usage: packagento-gate support transfer-ownership');
  const owners = await t.gw.db.execute("SELECT count(*) AS n FROM memberships WHERE workspace_id = 'acme' AND role = 'owner'");
  expect(Number(owners.rows[0]!['n'])).toBe(1);
});
