import { appendFile, copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { headerValues } from '../helpers/upstream.ts';
import { copyPolicies, editOnce, ROOT, runCli } from './helpers.ts';

/**
 * examples/reports-api (docs/protect-your-api.md): a second upstream API added with edits
 * to the policy folder and a fixture only. Applied to a copy of the default folder exactly
 * as the example's README says (append three files, copy one), then every tool and a
 * served request.
 */
const EXAMPLE = join(ROOT, 'examples/reports-api');

async function applyExample(dir: string, fixturesDir: string): Promise<void> {
  await appendFile(join(dir, 'routes.txt'), await readFile(join(EXAMPLE, 'routes.txt'), 'utf8'));
  await appendFile(join(dir, 'policy.csv'), await readFile(join(EXAMPLE, 'policy.csv'), 'utf8'));
  await appendFile(join(dir, 'invariants.yaml'), await readFile(join(EXAMPLE, 'invariants.yaml'), 'utf8'));
  await mkdir(fixturesDir, { recursive: true });
  await copyFile(join(EXAMPLE, 'fixtures/reports.yaml'), join(fixturesDir, 'reports.yaml'));
}

describe('examples/reports-api: a second upstream API from the policy folder alone', () => {
  let tmp: Awaited<ReturnType<typeof copyPolicies>>;
  let fixtures: string;

  beforeAll(async () => {
    tmp = await copyPolicies();
    fixtures = join(tmp.root, 'fixtures');
    await applyExample(tmp.dir, fixtures);
  });
  afterAll(() => tmp.cleanup());

  it('is data only: no TypeScript or other code in the example', async () => {
    const files = await readdir(EXAMPLE, { recursive: true });
    const code = files.filter((f) => /\.(ts|js|mjs|cjs|json)$/.test(f));
    expect(code).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['routes.txt', 'policy.csv', 'invariants.yaml', join('fixtures', 'reports.yaml')]));
  });

  it('check: the shipped invariants and the example\'s hold, and no route is unreachable', async () => {
    const r = await runCli(['check', '--policies', tmp.dir]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^check: \d+ invariants hold over \d+ decisions and \d+ routes \(revision [0-9a-f]{16}\)\n$/);
    expect(r.code).toBe(0);
    const shipped = (await readFile(join(ROOT, 'policies/invariants.yaml'), 'utf8')).match(/^ {2}- id: /gm)!.length;
    expect(Number(r.stdout.match(/check: (\d+) invariants/)![1])).toBe(shipped + 2);
  });

  it('test: the example fixture and every shipped fixture pass on the extended folder', async () => {
    const r = await runCli(['test', '--policies', tmp.dir, fixtures, join(ROOT, 'fixtures')]);
    expect(r.stderr).toBe('');
    expect(r.stdout.split('\n').filter((l) => l.startsWith('FAIL '))).toEqual([]);
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed\n$/);
    expect(r.code).toBe(0);
  });

  it('test: the example fixture fails on the default folder, which does not declare report:*', async () => {
    const r = await runCli(['test', join(fixtures, 'reports.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown action "report:read": the policy folder does not declare it');
  });

  it('matrix: every subject × report:* decision, after the default folder\'s unchanged rows', async () => {
    const extended = JSON.parse((await runCli(['matrix', '--policies', tmp.dir, '--format', 'json'])).stdout) as { decisions: Record<string, unknown>[] };
    const base = JSON.parse((await runCli(['matrix', '--format', 'json'])).stdout) as { decisions: Record<string, unknown>[] };
    const reports = extended.decisions.filter((d) => String(d['action']).startsWith('report:'));
    expect(extended.decisions.filter((d) => !String(d['action']).startsWith('report:'))).toEqual(base.decisions);
    expect(reports).toHaveLength(9 * 4);
    const allowed = (action: string) => reports.filter((d) => d['action'] === action && d['allow']).map((d) => d['subject']);
    expect(allowed('report:list')).toEqual(['owner', 'admin', 'developer', 'billing', 'viewer', 'guest:developer', 'guest:viewer']);
    expect(allowed('report:read')).toEqual(['owner', 'admin', 'developer', 'billing']);
    expect(allowed('report:create')).toEqual(['owner', 'admin']);
    expect(allowed('report:delete')).toEqual(['owner', 'admin']);
    const md = (await runCli(['matrix', '--policies', tmp.dir])).stdout;
    expect(md).toContain('| `report:read` |  | ✓ | ✓ | ✓ | ✓ |   |   |   |   |   |');
  });

  it('diff against the default folder: only report:* decisions widen, and the five routes are added', async () => {
    const r = await runCli(['diff', 'policies', tmp.dir, '--format', 'json', '--no-fixtures']);
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as { widened: { action: string }[]; narrowed: unknown[]; routes: { kind: string; route: string; widens: string[] }[] };
    expect(d.narrowed).toEqual([]);
    expect(d.widened.length).toBe(7 + 4 + 2 + 2);
    expect(d.widened.every((w) => w.action.startsWith('report:'))).toBe(true);
    expect(d.routes.map((x) => `${x.kind} ${x.route}`)).toEqual([
      'added GET /v1/workspaces/{ws}/reports',
      'added POST /v1/workspaces/{ws}/reports',
      'added GET /v1/workspaces/{ws}/reports/{report}',
      'added DELETE /v1/workspaces/{ws}/reports/{report}',
      'added GET /v1/workspaces/{ws}/projects/{p}/reports',
    ]);
    const fail = await runCli(['diff', 'policies', tmp.dir, '--no-fixtures', '--fail-on', 'widen']);
    expect(fail.code).toBe(1);
    expect(fail.stdout).toContain('report:read');
  });

  describe('served by the gateway', () => {
    let gate: TestGateway;
    beforeAll(async () => {
      gate = await startTestGateway({ world: ACME, policyDir: tmp.dir });
    });
    afterAll(() => gate.close());

    it('an allowed request reaches the upstream with the new action in its identity headers', async () => {
      const before = gate.upstream.received.length;
      const res = await gate.request('GET', '/v1/workspaces/acme/reports/q3', { as: 'dave' });
      expect(res.status).toBe(200);
      const got = gate.upstream.received.slice(before);
      expect(got).toHaveLength(1);
      expect(got[0]!.url).toBe('/v1/workspaces/acme/reports/q3');
      expect(headerValues(got[0]!, 'x-packagento-action')).toEqual(['report:read']);
      expect(headerValues(got[0]!, 'x-packagento-principal')).toEqual(['user:dave']);
      expect(headerValues(got[0]!, 'x-packagento-roles')).toEqual(['developer']);
      const line = gate.decisions.find((l) => l['decision_id'] === headerValues(got[0]!, 'x-packagento-decision-id')[0]);
      expect(line).toMatchObject({ action: 'report:read', result: 'allow', route: 'GET /v1/workspaces/{ws}/reports/{report}' });
    });

    it('denied requests never reach the upstream', async () => {
      const before = gate.upstream.received.length;
      const vic = await gate.request('GET', '/v1/workspaces/acme/reports/q3', { as: 'vic' });
      expect(vic.status).toBe(403);
      expect(((await vic.json()) as { action: string }).action).toBe('report:read');
      expect((await gate.request('POST', '/v1/workspaces/acme/reports', { as: 'dave', body: { title: 'Q4' } })).status).toBe(403);
      expect((await gate.request('GET', '/v1/workspaces/acme/reports', { as: 'gus' })).status).toBe(403);
      expect((await gate.request('GET', '/v1/workspaces/acme/reports', { as: 'gwen' })).status).toBe(404);
      expect((await gate.request('PATCH', '/v1/workspaces/acme/reports/q3', { as: 'alice' })).status).toBe(405);
      expect(gate.upstream.received.length).toBe(before);
    });

    it('a project guest lists its own project\'s reports', async () => {
      const res = await gate.request('GET', '/v1/workspaces/acme/projects/web/reports', { as: 'gus' });
      expect(res.status).toBe(200);
      expect(headerValues(gate.upstream.received.at(-1)!, 'x-packagento-roles')).toEqual(['guest:viewer']);
    });
  });

  it('explain: the route, the roles and the policy line behind a report decision', async () => {
    const r = await runCli(['explain', '--policies', tmp.dir, '--world', join(fixtures, 'reports.yaml'), '--as', 'dave', 'GET', '/v1/workspaces/acme/reports/q3']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('GET /v1/workspaces/{ws}/reports/{report}');
    expect(r.stdout).toContain('report:read');
    expect(r.stdout).toContain('p, developer, report:read, -');
    expect(r.stdout).toMatch(/allow/i);
  });

  describe('a new rank-ruled action (target=member), still without TypeScript', () => {
    let ranked: Awaited<ReturnType<typeof copyPolicies>>;
    let gate: TestGateway;
    beforeAll(async () => {
      ranked = await copyPolicies();
      await applyExample(ranked.dir, join(ranked.root, 'fixtures'));
      // Admins take a member's access to a report away, up to developers (not admins or owners).
      await appendFile(join(ranked.dir, 'routes.txt'), 'DELETE  /v1/workspaces/{ws}/reports/{report}/readers/{user}  report:unshare  to=upstream  target=member\n');
      await appendFile(join(ranked.dir, 'policy.csv'), 'p, admin, report:unshare, atmost:developer\n');
      gate = await startTestGateway({ world: ACME, policyDir: ranked.dir });
    });
    afterAll(async () => {
      await gate.close();
      await ranked.cleanup();
    });

    it('matrix has it once per target role', async () => {
      const m = JSON.parse((await runCli(['matrix', '--policies', ranked.dir, '--format', 'json'])).stdout) as { decisions: { subject: string; action: string; target_role: string | null; allow: boolean }[] };
      const rows = m.decisions.filter((d) => d.action === 'report:unshare' && d.subject === 'admin');
      expect(rows.map((d) => [d.target_role, d.allow])).toEqual([['owner', false], ['admin', false], ['developer', true], ['billing', true], ['viewer', true]]);
      expect((await runCli(['check', '--policies', ranked.dir])).code).toBe(0);
    });

    it('the gateway decides it on the member\'s current role', async () => {
      const before = gate.upstream.received.length;
      expect((await gate.request('DELETE', '/v1/workspaces/acme/reports/q3/readers/dave', { as: 'bob' })).status).toBe(200);
      expect(gate.upstream.received.length).toBe(before + 1);
      expect((await gate.request('DELETE', '/v1/workspaces/acme/reports/q3/readers/alice', { as: 'bob' })).status).toBe(403);
      expect((await gate.request('DELETE', '/v1/workspaces/acme/reports/q3/readers/dave', { as: 'dave' })).status).toBe(403);
      expect(gate.upstream.received.length).toBe(before + 1);
      expect(gate.decisions.filter((d) => d['action'] === 'report:unshare').map((d) => [d['target_role'], d['result']])).toEqual([
        ['developer', 'allow'],
        ['owner', 'deny'],
        [null, 'deny'],
      ]);
    });
  });

  describe('mistakes are caught in the folder', () => {
    let bad: Awaited<ReturnType<typeof copyPolicies>>;
    beforeAll(async () => {
      bad = await copyPolicies();
      await applyExample(bad.dir, join(bad.root, 'fixtures'));
    });
    afterAll(() => bad.cleanup());

    it('a policy line naming an undeclared action fails at its line, with the closest declared name', async () => {
      await editOnce(join(bad.dir, 'policy.csv'), 'p, developer, report:read, -', 'p, developer, report:reed, -');
      const lines = (await readFile(join(bad.dir, 'policy.csv'), 'utf8')).split('\n');
      const line = lines.findIndex((l) => l.includes('report:reed')) + 1;
      const r = await runCli(['check', '--policies', bad.dir]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`policy.csv:${line}: unknown action "report:reed": no route in routes.txt declares it (did you mean "report:read"?)`);
      await editOnce(join(bad.dir, 'policy.csv'), 'p, developer, report:reed, -', 'p, developer, report:read, -');
    });

    it('an invariant naming an undeclared action fails at its line, with the closest declared name', async () => {
      const file = join(bad.dir, 'invariants.yaml');
      const original = await readFile(file, 'utf8');
      await appendFile(file, '  - { id: typo, description: d, deny: { subjects: [viewer], actions: [report:reed] } }\n');
      const line = original.split('\n').length;
      const r = await runCli(['check', '--policies', bad.dir]);
      expect(r.code).toBe(1);
      expect(r.stdout).toContain(`invariants.yaml:${line}: "report:reed" matches no action (did you mean "report:read"?)`);
      await writeFile(file, original);
    });

    it('a route whose action no policy line grants is reported as unreachable', async () => {
      await appendFile(join(bad.dir, 'routes.txt'), 'GET     /v1/workspaces/{ws}/reports/{report}/export        report:export         to=upstream\n');
      const r = await runCli(['check', '--policies', bad.dir]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/routes\.txt:\d+: unreachable route: GET \/v1\/workspaces\/\{ws\}\/reports\/\{report\}\/export → report:export: no policy line grants report:export/);
      expect(r.stdout).toMatch(/check: 1 unreachable route \(revision [0-9a-f]{16}\)\n$/);
    });
  });
});
