import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument, type YAMLMap, type YAMLSeq } from 'yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { call, linkToken } from '../helpers/api.ts';
import { startTestGateway, type TestGateway } from '../helpers/gateway.ts';

/**
 * Real parallel HTTP requests against one gateway and one libSQL file. The counts
 * observed are printed so the issue note can quote them.
 */
describe('concurrency', () => {
  let t: TestGateway;
  const api = (method: string, path: string, opts: Parameters<typeof call>[3] = {}) => call(t.gw.url, method, path, opts);

  beforeAll(async () => {
    t = await startTestGateway({
      world: {
        workspaces: {
          acme: { members: { alice: 'owner', olivia: 'owner', bob: 'admin', bea: 'admin', dave: 'developer' }, projects: { web: null } },
        },
      },
    });
  });
  afterAll(async () => t?.close());

  test('20 concurrent accepts of one link: exactly one member', async () => {
    const inv = await api('POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: 'zoe@example.com', role: 'developer' } });
    const token = linkToken(inv.body.accept_url);
    const results = await Promise.all(Array.from({ length: 20 }, () => api('POST', `/v1/invites/${token}/accept`, { as: 'zoe' })));
    const statuses = results.map((r) => r.status);
    const successes = statuses.filter((s) => s === 200).length;
    console.log(`[concurrency] 20 accepts of one link: ${successes} succeeded, ${statuses.filter((s) => s === 410).length} got 410 invite_used`);
    expect(successes).toBe(1);
    expect(results.filter((r) => r.status === 410).every((r) => r.body.code === 'invite_used')).toBe(true);
    const members = await t.gw.db.execute({ sql: "SELECT count(*) AS n FROM memberships WHERE workspace_id = 'acme' AND user_id = 'zoe'" });
    expect(Number(members.rows[0]!['n'])).toBe(1);
  });

  test('30 first-time users buying at once: every write lands, none waits on another in-process writer', async () => {
    // Each request records a new user and runs a write transaction; in one process they must queue,
    // never meet in SQLite's (synchronous) busy wait.
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => api('PUT', '/v1/me/workspace', { as: `buyer${i}` })));
    const elapsed = Date.now() - started;
    console.log(`[concurrency] 30 concurrent first purchases: ${results.filter((r) => r.status === 201).length} created in ${elapsed} ms`);
    expect(results.map((r) => r.status)).toEqual(Array(30).fill(201));
    expect(t.logs.join('\n')).not.toContain('SQLITE_BUSY');
    const owners = await t.gw.db.execute("SELECT count(*) AS n FROM workspaces WHERE personal_for LIKE 'buyer%'");
    expect(Number(owners.rows[0]!['n'])).toBe(30);
  });

  test('two admins demoting the owners at once: the policy refuses both (the database guard is tested below)', async () => {
    const [a, b] = await Promise.all([
      api('PATCH', '/v1/workspaces/acme/members/alice', { as: 'bob', body: { role: 'admin' } }),
      api('PATCH', '/v1/workspaces/acme/members/olivia', { as: 'bea', body: { role: 'admin' } }),
    ]);
    expect([a.status, b.status]).toEqual([403, 403]);
    const owners = await t.gw.db.execute("SELECT count(*) AS n FROM memberships WHERE workspace_id = 'acme' AND role = 'owner'");
    expect(Number(owners.rows[0]!['n'])).toBe(2);
  });

  test('removal racing a token mint: no active token of the removed member afterwards', async () => {
    const rounds = 10;
    let mintedFirst = 0;
    let removedFirst = 0;
    for (let i = 0; i < rounds; i++) {
      const user = `racer${i}`;
      const inv = await api('POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: `${user}@example.com`, role: 'developer' } });
      expect((await api('POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { as: user })).status).toBe(200);
      // Alternate which request leaves first so both orders are exercised.
      const mintReq = () => api('POST', '/v1/workspaces/acme/projects/web/tokens', { as: user, body: { name: 'race' } });
      const removeReq = () => api('DELETE', `/v1/workspaces/acme/members/${user}`, { as: 'bob' });
      const [mint, removal] =
        i % 2 === 0 ? await Promise.all([mintReq(), removeReq()]) : await Promise.all([removeReq(), mintReq()]).then(([r, m]) => [m, r] as const);
      expect(removal.status).toBe(200);
      if (mint.status === 201) {
        mintedFirst++;
        expect(removal.body.deactivated_tokens).toBe(1);
      } else {
        removedFirst++;
        expect([403, 404]).toContain(mint.status);
      }
      const active = await t.gw.db.execute({ sql: 'SELECT count(*) AS n FROM tokens WHERE minted_by = ? AND active = 1', args: [user] });
      expect(Number(active.rows[0]!['n'])).toBe(0);
    }
    console.log(`[concurrency] ${rounds} mint/remove races: mint first ${mintedFirst}, removal first ${removedFirst}, active tokens of removed members: 0`);
  });
});

describe('the database keeps at least one owner, whatever the policy says', () => {
  let t: TestGateway;
  let policyDir: string;

  beforeAll(async () => {
    // A policy that (wrongly) lets admins demote owners: the last-owner guard in libSQL must still hold.
    policyDir = await mkdtemp(join(tmpdir(), 'gate-policy-'));
    await cp('policies', policyDir, { recursive: true });
    const csv = await readFile(join(policyDir, 'policy.csv'), 'utf8');
    await writeFile(join(policyDir, 'policy.csv'), csv.replace('p, admin, member:update-role, atmost:admin', 'p, admin, member:update-role, atmost:owner'));
    // Such a policy breaks two invariants, so it would never go live: drop them from this test's copy.
    const invariants = parseDocument(await readFile(join(policyDir, 'invariants.yaml'), 'utf8'));
    const list = invariants.get('invariants') as YAMLSeq<YAMLMap>;
    list.items = list.items.filter((i) => !['no-grant-above-rank', 'owners-untouchable'].includes(String(i.get('id'))));
    await writeFile(join(policyDir, 'invariants.yaml'), invariants.toString());
    t = await startTestGateway({
      policyDir,
      world: { workspaces: { acme: { members: { alice: 'owner', olivia: 'owner', bob: 'admin', bea: 'admin' } } } },
    });
  });
  afterAll(async () => {
    await t?.close();
    await rm(policyDir, { recursive: true, force: true });
  });

  test('two admins demote the last two owners at once: one succeeds, the other gets 409 last_owner', async () => {
    const [a, b] = await Promise.all([
      call(t.gw.url, 'PATCH', '/v1/workspaces/acme/members/alice', { as: 'bob', body: { role: 'admin' } }),
      call(t.gw.url, 'PATCH', '/v1/workspaces/acme/members/olivia', { as: 'bea', body: { role: 'admin' } }),
    ]);
    const statuses = [a.status, b.status].sort();
    console.log(`[concurrency] 2 concurrent owner demotions (permissive policy): statuses ${statuses.join(', ')}`);
    expect(statuses).toEqual([200, 409]);
    expect([a, b].find((r) => r.status === 409)!.body.code).toBe('last_owner');
    const owners = await t.gw.db.execute("SELECT count(*) AS n FROM memberships WHERE workspace_id = 'acme' AND role = 'owner'");
    expect(Number(owners.rows[0]!['n'])).toBe(1);
  });
});

describe('a change that lands between the decision and the write', () => {
  let t: TestGateway;
  let interleave: ((route: string) => Promise<void>) | undefined;

  beforeAll(async () => {
    t = await startTestGateway({
      world: { workspaces: { acme: { members: { alice: 'owner', bob: 'admin', dave: 'developer' }, projects: { web: null } } } },
      onDecision: async (outcome) => {
        if (outcome.allow && interleave) await interleave(outcome.route.id);
      },
    });
  });
  afterAll(async () => t?.close());

  test('a member removed after the gate allowed their mint gets no token (re-checked under the write lock)', async () => {
    interleave = async (route) => {
      if (route !== 'POST /v1/workspaces/{ws}/projects/{p}/tokens') return;
      interleave = undefined;
      await t.gw.db.execute("DELETE FROM memberships WHERE workspace_id = 'acme' AND user_id = 'dave'");
    };
    const mint = await call(t.gw.url, 'POST', '/v1/workspaces/acme/projects/web/tokens', { as: 'dave', body: { name: 'late' } });
    expect(mint.status).toBe(404);
    const tokens = await t.gw.db.execute("SELECT count(*) AS n FROM tokens WHERE minted_by = 'dave'");
    expect(Number(tokens.rows[0]!['n'])).toBe(0);
  });

  test('an admin downgraded after the gate allowed their invite cannot send it', async () => {
    interleave = async (route) => {
      if (route !== 'POST /v1/workspaces/{ws}/invites') return;
      interleave = undefined;
      await t.gw.db.execute("UPDATE memberships SET role = 'viewer' WHERE workspace_id = 'acme' AND user_id = 'bob'");
    };
    const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/invites', { as: 'bob', body: { email: 'late@example.com', role: 'developer' } });
    expect(inv.status).toBe(403);
    expect(inv.body).toMatchObject({ code: 'forbidden', action: 'member:invite' });
    const invites = await t.gw.db.execute("SELECT count(*) AS n FROM invites WHERE email = 'late@example.com'");
    expect(Number(invites.rows[0]!['n'])).toBe(0);
  });
});
