import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyDiff } from '../../src/policy-tools/diff.ts';
import { copyPolicies, editOnce, runCli } from './helpers.ts';

/**
 * Mutation tests: copy policies/, make one edit, and check that each tool notices exactly it.
 * `check` names the broken invariant; `diff` (against the unmodified policies/) reports that
 * one widening and nothing else; `test` fails the fixture case that covers it.
 */
interface Mutation {
  name: string;
  apply: (dir: string) => Promise<void>;
  invariants: string[];
  widened: { subject: string; action: string; target_role: string | null }[];
  routes: { kind: string; route: string; before: string; after: string; widens: string[] }[];
  failingCases: RegExp[];
}

const mutations: Mutation[] = [
  {
    name: 'grant billing token:read',
    apply: async (dir) => editOnce(join(dir, 'policy.csv'), 'p, billing, subscription:cancel, -\n', 'p, billing, subscription:cancel, -\np, billing, token:read, -\n'),
    invariants: ['billing-viewer-no-tokens'],
    widened: [{ subject: 'billing', action: 'token:read', target_role: null }],
    routes: [],
    failingCases: [
      /^FAIL fixtures\/default-policy\.yaml:\d+ actions without a target role: bill token:read: expected deny, got allow/,
      /^FAIL fixtures\/http-routes\.yaml:\d+ billing cannot read a token: expected 403, got allow/,
    ],
  },
  {
    name: 'let admin invite owner',
    apply: async (dir) => editOnce(join(dir, 'policy.csv'), 'p, admin, member:invite, atmost:admin', 'p, admin, member:invite, atmost:owner'),
    invariants: ['no-grant-above-rank', 'only-owners-grant-owner'],
    widened: [{ subject: 'admin', action: 'member:invite', target_role: 'owner' }],
    routes: [],
    failingCases: [
      /^FAIL fixtures\/default-policy\.yaml:\d+ rank-ruled actions: bob member:invite@owner: expected deny, got allow/,
      /^FAIL fixtures\/rank-rules\.yaml:\d+ admin cannot invite an owner: expected 403, got allow/,
      /^FAIL fixtures\/rank-rules\.yaml:\d+ admin: developer → owner \(R2 above own rank\): expected 403, got allow/,
    ],
  },
  {
    name: 'remap the token-read route to project:read',
    apply: async (dir) =>
      editOnce(join(dir, 'routes.txt'), /^(GET\s+\/v1\/workspaces\/\{ws\}\/projects\/\{p\}\/tokens\/\{t\}\s+)token:read(\s)/m, '$1project:read$2'),
    invariants: ['token-routes-are-token-actions', 'actions-reachable'],
    widened: [],
    routes: [
      {
        kind: 'remapped',
        route: 'GET /v1/workspaces/{ws}/projects/{p}/tokens/{t}',
        before: 'token:read',
        after: 'project:read',
        widens: ['billing', 'viewer', 'guest:viewer'],
      },
    ],
    failingCases: [/^FAIL fixtures\/http-routes\.yaml:\d+ billing cannot read a token: expected 403, got allow/],
  },
];

describe.each(mutations)('mutation: $name', (m) => {
  let tmp: Awaited<ReturnType<typeof copyPolicies>>;
  beforeAll(async () => {
    tmp = await copyPolicies();
    await m.apply(tmp.dir);
  });
  afterAll(() => tmp.cleanup());

  it('check names the broken invariant(s), with the counter-example, and exits 1', async () => {
    const r = await runCli(['check', '--policies', tmp.dir]);
    expect(r.code).toBe(1);
    const violated = [...r.stdout.matchAll(/^\S+invariants\.yaml:\d+: ([a-z0-9-]+): /gm)].map((x) => x[1]);
    expect(violated.sort()).toEqual([...m.invariants].sort());
    for (const w of m.widened) {
      expect(r.stdout).toContain(`counter-example: ${w.subject} ${w.action}${w.target_role ? `@${w.target_role}` : ''} → allow`);
    }
  });

  it('diff reports exactly that change and nothing else', async () => {
    const r = await runCli(['diff', 'policies', tmp.dir, '--format', 'json', '--no-fixtures', '--fail-on', 'widen']);
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as PolicyDiff;
    expect(d.widened.map(({ subject, action, target_role }) => ({ subject, action, target_role }))).toEqual(m.widened);
    expect(d.narrowed).toEqual([]);
    expect(
      d.routes.map((x) => ({ kind: x.kind, route: x.route, before: x.before?.action, after: x.after?.action, widens: x.widens })),
    ).toEqual(m.routes);
    expect(d.routes.every((x) => x.narrows.length === 0)).toBe(true);
    // And the narrowing direction does not fire.
    expect((await runCli(['diff', 'policies', tmp.dir, '--no-fixtures', '--fail-on', 'narrow'])).code).toBe(0);
  });

  it('test fails the fixture cases that cover it, and exits 1', async () => {
    const r = await runCli(['test', '--policies', tmp.dir]);
    expect(r.code).toBe(1);
    const failures = r.stdout.split('\n').filter((l) => l.startsWith('FAIL '));
    for (const re of m.failingCases) expect(failures.some((l) => re.test(l)), `no failure matches ${re}`).toBe(true);
    expect(r.stdout.trimEnd().split('\n').at(-1)).toMatch(new RegExp(`^\\d+ passed, ${failures.length} failed$`));
  });

  it('diff lists the fixture cases whose outcome changes', async () => {
    const r = await runCli(['diff', 'policies', tmp.dir]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^### Policy diff: /);
    const testRun = await runCli(['test', '--policies', tmp.dir]);
    const failing = testRun.stdout.split('\n').filter((l) => l.startsWith('FAIL ')).length;
    expect(r.stdout).toContain(`${failing} fixture case${failing === 1 ? '' : 's'} with a new outcome`);
  });
});
