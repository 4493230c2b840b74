import { describe, expect, it } from 'vitest';
import { ACTIONS, SUBJECTS } from '../../src/domain.ts';
import { expectGolden, runCli, TEST_POLICIES } from './helpers.ts';

const MINI = `${TEST_POLICIES}/mini`;
const MINI_CHANGED = `${TEST_POLICIES}/mini-changed`;
const MINI_BROKEN = `${TEST_POLICIES}/mini-broken`;
const MINI_FIXTURE = 'test/policy/fixtures/mini.yaml';

describe('matrix', () => {
  it.each(['md', 'json', 'csv'])('--format %s matches its golden file', async (format) => {
    const r = await runCli(['matrix', '--policies', MINI, '--format', format]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    await expectGolden(`matrix-mini.${format}`, r.stdout);
  });

  it('defaults to markdown', async () => {
    const md = await runCli(['matrix', '--policies', MINI, '--format', 'md']);
    expect((await runCli(['matrix', '--policies', MINI])).stdout).toBe(md.stdout);
  });

  it('JSON has exactly the CONTRACT §6 shape, covers the whole domain, and is stable', async () => {
    const first = (await runCli(['matrix', '--policies', MINI, '--format', 'json'])).stdout;
    const second = (await runCli(['matrix', '--policies', MINI, '--format', 'json'])).stdout;
    expect(second).toBe(first);
    const m = JSON.parse(first) as { revision: string; decisions: Record<string, unknown>[] };
    expect(Object.keys(m)).toEqual(['revision', 'decisions']);
    expect(m.revision).toMatch(/^[0-9a-f]{16}$/);
    for (const d of m.decisions) expect(Object.keys(d)).toEqual(['subject', 'action', 'target_role', 'allow']);
    // 21 actions without a target, member:invite/update-role/remove/leave/invite:reissue × 5, guest:invite × 2.
    expect(m.decisions).toHaveLength(SUBJECTS.length * (ACTIONS.length - 6 + 5 * 5 + 2));
    expect(new Set(m.decisions.map((d) => d['subject']))).toEqual(new Set(SUBJECTS));
    expect(m.decisions.find((d) => d['subject'] === 'admin' && d['action'] === 'member:invite' && d['target_role'] === 'owner')).toEqual({
      subject: 'admin',
      action: 'member:invite',
      target_role: 'owner',
      allow: false,
    });
    expect(m.decisions.find((d) => d['subject'] === 'none' && d['action'] === 'workspace:read')).toEqual({
      subject: 'none',
      action: 'workspace:read',
      target_role: null,
      allow: false,
    });
  });

  it('CSV and JSON carry the same decisions', async () => {
    const json = JSON.parse((await runCli(['matrix', '--policies', MINI, '--format', 'json'])).stdout) as { decisions: { subject: string; action: string; target_role: string | null; allow: boolean }[] };
    const csv = (await runCli(['matrix', '--policies', MINI, '--format', 'csv'])).stdout.trimEnd().split('\n').slice(1);
    expect(csv).toEqual(json.decisions.map((d) => `${d.subject},${d.action},${d.target_role ?? ''},${d.allow}`));
  });
});

describe('check', () => {
  it('passes on the mini policy', async () => {
    const r = await runCli(['check', '--policies', MINI]);
    expect(r.code).toBe(0);
    await expectGolden('check-mini.txt', r.stdout);
  });

  it('reports every broken invariant with file:line and counter-examples', async () => {
    const r = await runCli(['check', '--policies', MINI_BROKEN]);
    expect(r.code).toBe(1);
    await expectGolden('check-mini-broken.txt', r.stdout);
  });

  it('passes on the shipped policies/', async () => {
    const r = await runCli(['check']);
    expect(r.stdout).toMatch(/^check: \d+ invariants hold over 432 decisions and \d+ routes \(revision [0-9a-f]{16}\)\n$/);
    expect(r.code).toBe(0);
  });

  it('reports a policy file that does not load with its file and line (exit 1)', async () => {
    const r = await runCli(['check', '--policies', 'fixtures/invalid/bundles/unknown-action-in-routes']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('fixtures/invalid/bundles/unknown-action-in-routes/routes.txt:52: unknown action "guest:lsit"\ncheck: the policy does not load\n');
  });

  it('reports an invariants file that does not load with its line (exit 1)', async () => {
    const r = await runCli(['check', '--policies', 'fixtures/invalid/bundles/bad-invariants']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('fixtures/invalid/bundles/bad-invariants/invariants.yaml:14: "viewr" matches no subject\ncheck: the invariants file does not load\n');
  });
});

describe('diff', () => {
  const args = [MINI, MINI_CHANGED, '--fixtures', MINI_FIXTURE];

  it('markdown matches its golden file', async () => {
    const r = await runCli(['diff', ...args]);
    expect(r.code).toBe(0);
    await expectGolden('diff-mini.md', r.stdout);
  });

  it('JSON matches its golden file', async () => {
    const r = await runCli(['diff', ...args, '--format', 'json']);
    expect(r.code).toBe(0);
    await expectGolden('diff-mini.json', r.stdout);
  });

  it.each([
    ['widen', 1],
    ['narrow', 1],
    ['any', 1],
  ])('--fail-on %s exits %i when the change does that', async (kind, code) => {
    expect((await runCli(['diff', ...args, '--fail-on', kind])).code).toBe(code);
  });

  it('--fail-on narrow passes a change that only widens', async () => {
    const r = await runCli(['diff', MINI, MINI_BROKEN, '--no-fixtures', '--fail-on', 'narrow', '--format', 'json']);
    const d = JSON.parse(r.stdout) as { widened: unknown[]; narrowed: unknown[] };
    expect(d.widened.length).toBeGreaterThan(0);
    expect(d.narrowed).toEqual([]);
    expect(r.code).toBe(0);
    expect((await runCli(['diff', MINI, MINI_BROKEN, '--no-fixtures', '--fail-on', 'widen'])).code).toBe(1);
  });

  it('says "no decision changes" (and passes any --fail-on) when nothing changes', async () => {
    const r = await runCli(['diff', MINI, MINI, '--fixtures', MINI_FIXTURE, '--fail-on', 'any']);
    expect(r).toEqual({
      code: 0,
      stdout: expect.stringMatching(/^no decision changes: `test\/policy\/policies\/mini` \(`[0-9a-f]{16}`\) and `test\/policy\/policies\/mini` \(`[0-9a-f]{16}`\) decide alike\n$/),
      stderr: '',
    });
  });
});

describe('explain', () => {
  const world = ['--policies', MINI, '--world', MINI_FIXTURE];
  it.each([
    ['explain-inherited-allow.txt', ['--as', 'alice', ...world, 'GET', '/v1/workspaces/acme/projects/web/tokens/t1']],
    ['explain-deny-would-allow.txt', ['--as', 'bill', ...world, 'GET', '/v1/workspaces/acme/projects/web/tokens/t1']],
    ['explain-rank-deny.txt', ['--as', 'bob', ...world, '--body', '{"email":"x@example.com","role":"owner"}', 'POST', '/v1/workspaces/acme/invites']],
    ['explain-rank-allow.txt', ['--as', 'bob', ...world, '--body', '{"email":"x@example.com","role":"billing"}', 'POST', '/v1/workspaces/acme/invites']],
    ['explain-not-visible.txt', ['--as', 'mallory', ...world, 'GET', '/v1/workspaces/acme/projects/web']],
    ['explain-guest.txt', ['--as', 'gina', ...world, 'GET', '/v1/workspaces/acme/projects/web/tokens/t1']],
    ['explain-unauthenticated.txt', ['--as', 'anonymous', ...world, 'GET', '/v1/workspaces/acme']],
    ['explain-bad-path.txt', ['--as', 'vic', ...world, 'GET', '/v1/workspaces/acme/../globex']],
    ['explain-no-route.txt', ['--as', 'vic', ...world, 'GET', '/v1/workspaces/acme/members']],
    ['explain-synthesized-token.txt', ['--as', 'token', '--policies', MINI, 'GET', '/repo/packages.json']],
    ['explain-synthesized-viewer.txt', ['--as', 'viewer', '--policies', MINI, 'GET', '/v1/workspaces/globex/projects/shop/tokens/t9']],
  ])('%s', async (golden, argv) => {
    const r = await runCli(['explain', ...argv]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    await expectGolden(golden, r.stdout);
  });
});
