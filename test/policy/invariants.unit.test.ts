import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { checkInvariants } from '../../src/policy-tools/invariant-check.ts';
import { InvariantsError, parseInvariants } from '../../src/policy-tools/invariants.ts';
import { buildPolicyBundle, type PolicyBundle } from '../../src/policy/bundle.ts';
import { loadPolicySourceFromDir } from '../../src/policy/source.ts';
import { ROOT, TEST_POLICIES } from './helpers.ts';

const RANKS = 'ranks: [owner, admin, developer, billing, viewer]\n';

function parseError(text: string): InvariantsError {
  try {
    parseInvariants(text, 'inv.yaml');
  } catch (err) {
    if (err instanceof InvariantsError) return err;
    throw err;
  }
  throw new Error('expected the invariants to be refused');
}

describe('invariants.yaml is refused with its line when', () => {
  it.each([
    ['an invariant has two rules', `${RANKS}invariants:\n  - id: a\n    description: d\n    deny: { subjects: [admin], actions: [token:read] }\n    only: { subjects: [admin], actions: [] }\n`, 3, 'invariants[0]: an invariant has exactly one rule'],
    ['a key is unknown', `${RANKS}invariants:\n  - id: a\n    description: d\n    deny: { subjects: [admin], actions: [token:read], target: [owner] }\n`, 5, 'invariants[0].deny: unknown key "target"'],
    ['a subject pattern matches nothing', `${RANKS}invariants:\n  - id: a\n    description: d\n    deny: { subjects: [admn], actions: [token:read] }\n`, 5, '"admn" matches no subject'],
    ['an action pattern matches nothing', `${RANKS}invariants:\n  - id: a\n    description: d\n    deny: { subjects: [admin], actions: ["tokens:*"] }\n`, 5, '"tokens:*" matches no action'],
    ['ids repeat', `${RANKS}invariants:\n  - { id: a, description: d, only: { subjects: [none], actions: [] } }\n  - { id: a, description: d, only: { subjects: [none], actions: [] } }\n`, 4, 'duplicate invariant id "a"'],
    ['ranks are not the five roles', `ranks: [owner, admin]\ninvariants:\n  - { id: a, description: d, only: { subjects: [none], actions: [] } }\n`, 1, 'ranks lists each workspace role once'],
    ['a rank rule names an action without targets', `${RANKS}invariants:\n  - { id: a, description: d, rank: { actions: [token:read] } }\n`, 3, 'token:read has no target role'],
    ['an exempted action is unknown', `${RANKS}invariants:\n  - id: a\n    description: d\n    actions_reachable:\n      except:\n        token:steal: why\n`, 7, 'unknown action "token:steal"'],
    ['a route match is malformed', `${RANKS}invariants:\n  - { id: a, description: d, routes: { match: "/v1/x", actions: [token:read] } }\n`, 3, 'match is "METHOD PATH-GLOB"'],
    ['the YAML is broken', `${RANKS}invariants:\n  - { id: a\n`, 4, 'invalid YAML'],
  ])('%s', (_, text, line, message) => {
    const err = parseError(text);
    expect(err.line).toBe(line);
    expect(err.message).toContain(message);
    expect(err.message.startsWith(`inv.yaml:${line}: `)).toBe(true);
  });
});

describe('invariant rules over the mini policy', () => {
  let bundle: PolicyBundle;
  beforeAll(async () => {
    bundle = await buildPolicyBundle(await loadPolicySourceFromDir(join(ROOT, TEST_POLICIES, 'mini')));
  });
  const violations = (body: string) => {
    const set = parseInvariants(`${RANKS}invariants:\n${body}`, 'inv.yaml');
    return checkInvariants(bundle, set).violations.map((v) => [v.invariant.id, v.invariant.line, v.examples.map((e) => e.text)]);
  };

  it('deny: selects subjects with * and !, actions with globs, and optionally targets', () => {
    expect(violations('  - { id: a, description: d, deny: { subjects: ["*", "!owner", "!admin"], actions: ["member:*"] } }\n')).toEqual([]);
    expect(violations('  - { id: a, description: d, deny: { subjects: ["*", "!owner"], actions: ["member:*"] } }\n')).toEqual([
      ['a', 3, ['admin member:invite@admin → allow', 'admin member:invite@developer → allow', 'admin member:invite@billing → allow', 'admin member:invite@viewer → allow']],
    ]);
    expect(violations('  - { id: a, description: d, deny: { subjects: ["*"], actions: [member:invite], targets: [owner] } }\n')).toEqual([
      ['a', 3, ['owner member:invite@owner → allow']],
    ]);
  });

  it('only: a subject gets nothing outside the list', () => {
    expect(violations('  - { id: a, description: d, only: { subjects: [token], actions: [package:install] } }\n')).toEqual([]);
    expect(violations('  - { id: a, description: d, only: { subjects: [guest:developer], actions: [] } }\n')).toEqual([
      ['a', 3, ['guest:developer project:read → allow', 'guest:developer token:read → allow']],
    ]);
  });

  it('rank: with a different rank order, the same policy grants above rank', () => {
    const set = parseInvariants(
      'ranks: [owner, developer, admin, billing, viewer]\ninvariants:\n  - { id: r, description: d, rank: { actions: [member:invite] } }\n',
      'inv.yaml',
    );
    expect(checkInvariants(bundle, set).violations.map((v) => v.examples.map((e) => e.text))).toEqual([['admin member:invite@developer → allow']]);
  });

  it('routes: a rule that matches no route is itself a violation (renames cannot silence it)', () => {
    expect(violations('  - { id: a, description: d, routes: { match: "GET /v2/**", actions: [token:read] } }\n')).toEqual([
      ['a', 3, ['"GET /v2/**" matches no route']],
    ]);
  });

  it('routes: checks, to and auth are compared', () => {
    expect(violations('  - { id: a, description: d, routes: { match: "* /repo/**", actions: [package:install], to: native, auth: jwt } }\n')).toEqual([
      ['a', 3, ['GET /repo/{path*} → package:install: to=upstream; auth=token']],
    ]);
  });

  it('routes_have_actions and actions_reachable flag stale exemptions', () => {
    expect(violations('  - { id: a, description: d, routes_have_actions: { except: ["GET /v1/me/workspaces", "GET /v1/gone", "GET /v1/workspaces/{ws}"] } }\n')).toEqual([
      ['a', 3, ['except lists "GET /v1/gone", which is not in the route map', 'except lists "GET /v1/workspaces/{ws}", which has the action workspace:read']],
    ]);
    const v = violations('  - id: a\n    description: d\n    actions_reachable:\n      except:\n        token:read: stale\n');
    expect(v[0]![2]).toContain('except lists token:read, which GET /v1/workspaces/{ws}/projects/{p}/tokens/{t} decides');
    expect(v[0]![2]).toContain('member:list is decided by no route');
  });

  it('names the policy.csv line (and inherited g lines) behind an allowed counter-example', () => {
    const set = parseInvariants(`${RANKS}invariants:\n  - { id: a, description: d, deny: { subjects: [owner], actions: [token:read] } }\n`, 'inv.yaml');
    const [v] = checkInvariants(bundle, set).violations;
    expect(v!.examples[0]!.refs).toEqual([
      `${TEST_POLICIES}/mini/policy.csv:4 p, developer, token:read, -`.replace(`${TEST_POLICIES}/mini/`, `${join(ROOT, TEST_POLICIES, 'mini')}/`),
      `  via ${join(ROOT, TEST_POLICIES, 'mini')}/policy.csv:12 g, owner, admin`,
      `  via ${join(ROOT, TEST_POLICIES, 'mini')}/policy.csv:14 g, admin, developer`,
    ]);
  });
});

describe('the shipped policies/invariants.yaml', () => {
  it('holds over policies/', async () => {
    const bundle = await buildPolicyBundle(await loadPolicySourceFromDir(join(ROOT, 'policies')));
    const text = bundle.source.files.get('invariants.yaml')!;
    const report = checkInvariants(bundle, parseInvariants(text, 'policies/invariants.yaml'));
    expect(report.violations).toEqual([]);
    expect(report.invariants).toBeGreaterThanOrEqual(20);
  });
});
