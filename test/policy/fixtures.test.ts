import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS, NO_TARGET, SUBJECTS, TARGET_ROLES, WORKSPACE_ROLES } from '../../src/domain.ts';
import { fixtureJsonSchema } from '../../src/policy-tools/fixture-schema.ts';
import { runFixture, runFixtures, type FixtureResult } from '../../src/policy-tools/fixture-run.ts';
import { FixtureError, loadFixtureFile, parseFixture, resolveFixturePaths } from '../../src/policy-tools/fixtures.ts';
import { loadInvariants, InvariantsError } from '../../src/policy-tools/invariants.ts';
import { buildPolicyBundle, PolicyError, type PolicyBundle } from '../../src/policy/bundle.ts';
import { loadPolicySourceFromDir } from '../../src/policy/source.ts';
import { ROOT } from './helpers.ts';

const loadDefault = async () => buildPolicyBundle(await loadPolicySourceFromDir(join(ROOT, 'policies')));

describe('shipped fixtures (fixtures/*.yaml) against policies/', () => {
  let bundle: PolicyBundle;
  let results: FixtureResult[];

  beforeAll(async () => {
    bundle = await loadDefault();
    const files = await resolveFixturePaths(['fixtures'], ROOT);
    const fixtures = await Promise.all(files.map((f) => loadFixtureFile(f, ROOT)));
    results = await runFixtures(fixtures, bundle);
  });

  it('all pass', () => {
    const failures = results.flatMap((f) => f.results.filter((r) => !r.pass).map((r) => `${r.case.file}:${r.case.line} ${r.case.name}: ${r.message}`));
    expect(failures).toEqual([]);
    expect(results.reduce((n, f) => n + f.results.length, 0)).toBeGreaterThan(500);
  });

  // Decided at the decision table: action cases, keyed by the subject the caller had.
  const decided = () =>
    results.flatMap((f) =>
      f.results
        .filter((r) => r.case.kind === 'action' && r.outcome.subjects.length <= 1 && r.outcome.code !== 'invalid_credentials')
        .map((r) => ({ subject: r.outcome.subjects[0] ?? 'none', c: r.case as Extract<typeof r.case, { kind: 'action' }>, allow: r.outcome.allow })),
    );

  it('cover every subject × every action', () => {
    const seen = new Set(decided().map((d) => `${d.subject} ${d.c.action}`));
    const missing = SUBJECTS.flatMap((s) => ACTIONS.filter((a) => !seen.has(`${s} ${a}`)).map((a) => `${s} ${a}`));
    expect(missing).toEqual([]);
  });

  it('cover every target role of every rank rule for every workspace role (member:leave: the leaver’s own role)', () => {
    const seen = new Set(decided().map((d) => `${d.subject} ${d.c.action} ${d.c.target}`));
    const missing: string[] = [];
    for (const [action, targets] of Object.entries(TARGET_ROLES)) {
      for (const s of WORKSPACE_ROLES) {
        const wanted = action === 'member:leave' ? [s] : targets!;
        for (const t of wanted) if (!seen.has(`${s} ${action} ${t}`)) missing.push(`${s} ${action}@${t}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('expect both outcomes for every action (a pair not listed as allowed is expected to deny)', () => {
    for (const a of ACTIONS) {
      const outcomes = new Set(decided().filter((d) => d.c.action === a).map((d) => d.c.expect));
      expect([a, [...outcomes].sort()]).toEqual([a, ['allow', 'deny']]);
    }
  });

  it('send requests through every route of the route map', () => {
    const hit = new Set(results.flatMap((f) => f.results.map((r) => r.outcome.route)));
    const missing = bundle.routes.routes.filter((r) => !hit.has(r.id)).map((r) => r.id);
    expect(missing).toEqual([]);
  });

  it('carry the schema header so editors validate them', async () => {
    for (const name of (await readdir(join(ROOT, 'fixtures'))).filter((n) => n.endsWith('.yaml'))) {
      const text = await readFile(join(ROOT, 'fixtures', name), 'utf8');
      expect([name, text.split('\n')[0]]).toEqual([name, '# yaml-language-server: $schema=./schema.json']);
    }
  });
});

describe('fixtures/schema.json', () => {
  it('is the JSON Schema of the loader’s zod schema (UPDATE_GOLDEN=1 regenerates it)', async () => {
    const generated = JSON.stringify(fixtureJsonSchema(), null, 2) + '\n';
    const path = join(ROOT, 'fixtures/schema.json');
    if (process.env['UPDATE_GOLDEN'] === '1') await writeFile(path, generated);
    expect(await readFile(path, 'utf8')).toBe(generated);
  });

  it('is strict: unknown keys are refused at every level', () => {
    const schema = fixtureJsonSchema() as { additionalProperties?: boolean; properties: Record<string, { additionalProperties?: boolean }> };
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties['world']!.additionalProperties).toBe(false);
  });
});

describe('fixtures that must fail to load (fixtures/invalid/)', () => {
  const cases: [file: string, line: number | undefined, message: string][] = [
    ['unknown-action.yaml', 10, 'cases[0].action: unknown action "token:steal"'],
    ['misspelt-key.yaml', 13, 'cases[0]: unknown key "exepct"'],
    ['unknown-user.yaml', 10, 'cases[0].as: "nobody" is not a user or token of the world'],
    ['action-expects-status.yaml', 10, 'cases[0].expect: an action case expects allow or deny'],
    ['missing-target-role.yaml', 10, 'cases[0].target_role: member:invite needs a target_role among owner, admin, developer, billing, viewer'],
    ['table-allows-unlisted.yaml', 13, "tables[0].allow.bob[1]: token:rotate is not among this table's actions"],
    ['no-owner.yaml', 6, 'world.workspaces.acme: a workspace needs at least one owner'],
    ['bad-yaml.yaml', 11, 'invalid YAML'],
    ['scope-both.yaml', 10, 'cases[0]: give exactly one of workspace or project'],
    ['bad-request.yaml', 10, 'cases[0].request: a request is "METHOD /path"'],
    ['no-cases.yaml', 1, 'a fixture file needs at least one entry in cases or tables'],
    ['unknown-project.yaml', 10, 'cases[0].project: no project "wbe" in the world'],
  ];

  it('lists every file in the folder', async () => {
    const files = (await readdir(join(ROOT, 'fixtures/invalid'))).filter((n) => n.endsWith('.yaml')).sort();
    expect(files).toEqual(cases.map((c) => c[0]).sort());
  });

  it.each(cases)('%s is refused at line %s', async (name, line, message) => {
    const err = await loadFixtureFile(`fixtures/invalid/${name}`, ROOT).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(FixtureError);
    const fe = err as FixtureError;
    expect(fe.file).toBe(`fixtures/invalid/${name}`);
    expect(fe.line).toBe(line);
    expect(fe.message).toContain(message);
    expect(fe.message.startsWith(`fixtures/invalid/${name}:${line}: `)).toBe(true);
  });
});

describe('policy bundles that must fail to load (fixtures/invalid/bundles/)', () => {
  const cases: [dir: string, message: string][] = [
    ['unknown-action-in-policy', 'policy.csv:24: unknown action "token:steal"'],
    ['unknown-action-in-routes', 'routes.txt:52: unknown action "guest:lsit"'],
    ['duplicate-line', 'policy.csv:12: duplicate of line 11'],
    ['bad-arity', 'policy.csv:17: a p line takes 3 values'],
    ['missing-routes', 'routes.txt: missing routes.txt'],
    ['model-without-matcher', 'model.conf: invalid Casbin model'],
  ];

  it.each(cases)('%s is refused: %s', async (dir, message) => {
    const source = await loadPolicySourceFromDir(join(ROOT, 'fixtures/invalid/bundles', dir));
    await expect(buildPolicyBundle(source)).rejects.toThrow(PolicyError);
    await expect(buildPolicyBundle(source)).rejects.toThrow(message);
  });

  it('bad-invariants loads as a policy, but its invariants file is refused with its line', async () => {
    const bundle = await buildPolicyBundle(await loadPolicySourceFromDir(join(ROOT, 'fixtures/invalid/bundles/bad-invariants')));
    expect(() => loadInvariants(bundle)).toThrow(InvariantsError);
    expect(() => loadInvariants(bundle)).toThrow(/invariants\.yaml:14: "viewr" matches no subject$/);
  });
});

describe('the runner', () => {
  const world = `world:
  users: { mallory: {} }
  workspaces:
    acme:
      members: { alice: owner, vic: viewer }
      projects:
        web: { guests: { gina: developer } }
  tokens:
    t1: { project: acme/web, minted_by: alice }
`;

  it('fails a case whose expectation is wrong, naming the file, line and what happened', async () => {
    const fixture = parseFixture(
      `name: wrong on purpose
${world}cases:
  - { name: viewer reads tokens, as: vic, action: token:read, project: acme/web, expect: allow }
  - { name: owner reads tokens, as: alice, action: token:read, project: acme/web, expect: deny }
  - { name: outsider gets 403, as: mallory, request: GET /v1/workspaces/acme, expect: 403 }
  - { name: a 401 is not a deny, request: GET /v1/workspaces/acme, expect: deny }
  - { name: a 404 is a deny, as: mallory, request: GET /v1/workspaces/acme, expect: deny }
  - { name: allowed request expected 404, as: vic, request: GET /v1/workspaces/acme, expect: 404 }
`,
      'wrong.yaml',
    );
    const { results } = await runFixture(fixture, await loadDefault());
    expect(results.map((r) => [r.case.line, r.pass, r.actual])).toEqual([
      [12, false, 'deny'],
      [13, false, 'allow'],
      [14, false, '404 not_found'],
      [15, false, '401 unauthenticated'],
      [16, true, '404 not_found'],
      [17, false, 'allow'],
    ]);
    expect(results[0]!.message).toBe('expected allow, got deny [roles: viewer; token:read]');
    expect(results[2]!.message).toContain('expected 403, got 404 not_found (no such workspace, or you have no access to it)');
  });

  it('expands a table: listed pairs expect allow, every other pair deny', () => {
    const fixture = parseFixture(
      `name: table
${world}tables:
  - name: t
    project: acme/web
    actions: [token:read, member:invite@owner, guest:invite]
    allow:
      alice: [token:read, guest:invite@viewer]
`,
      'table.yaml',
    );
    expect(fixture.cases.map((c) => [c.name, c.expect])).toEqual([
      ['t: alice token:read', 'allow'],
      ['t: alice member:invite@owner', 'deny'],
      ['t: alice guest:invite@developer', 'deny'],
      ['t: alice guest:invite@viewer', 'allow'],
    ]);
    expect(fixture.cases.every((c) => c.kind === 'action' && c.project === 'web' && c.line === 16)).toBe(true);
    expect(fixture.cases.filter((c) => c.kind === 'action' && c.target === NO_TARGET)).toHaveLength(1);
  });

  it('decides a token only on its own project, and an anonymous caller nowhere', async () => {
    const fixture = parseFixture(
      `name: tokens
${world}cases:
  - { as: t1, action: package:install, project: acme/web, expect: allow }
  - { as: t1, action: package:install, workspace: acme, expect: deny }
  - { as: anonymous, action: workspace:read, workspace: acme, expect: deny }
  - { action: project:read, project: acme/web, expect: deny }
`,
      'tokens.yaml',
    );
    const { results } = await runFixture(fixture, await loadDefault());
    expect(results.map((r) => [r.pass, r.outcome.subjects])).toEqual([
      [true, ['token']],
      [true, []],
      [true, []],
      [true, []],
    ]);
  });
});
