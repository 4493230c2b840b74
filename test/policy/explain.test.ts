import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SUBJECTS } from '../../src/domain.ts';
import { explainRequest } from '../../src/policy-tools/explain.ts';
import { runFixture } from '../../src/policy-tools/fixture-run.ts';
import { loadFixtureFile, parseWorldFile } from '../../src/policy-tools/fixtures.ts';
import { buildPolicyBundle, type PolicyBundle } from '../../src/policy/bundle.ts';
import { loadPolicySourceFromDir } from '../../src/policy/source.ts';
import { ROOT } from './helpers.ts';

let bundle: PolicyBundle;
beforeAll(async () => {
  bundle = await buildPolicyBundle(await loadPolicySourceFromDir(join(ROOT, 'policies')));
});

describe('explain', () => {
  it('reaches the same result as the fixture runner for every request case of rank-rules.yaml', async () => {
    const file = 'fixtures/rank-rules.yaml';
    const fixture = await loadFixtureFile(file, ROOT);
    const world = parseWorldFile(await readFile(join(ROOT, file), 'utf8'), file);
    const { results } = await runFixture(fixture, bundle);
    let compared = 0;
    for (const r of results) {
      if (r.case.kind !== 'http') continue;
      const e = await explainRequest({
        bundle,
        as: r.case.as ?? 'anonymous',
        method: r.case.method,
        target: r.case.requestTarget,
        body: r.case.body,
        world,
        targetRole: undefined,
      });
      expect([r.case.name, e.result.allow, e.result.status, e.result.code]).toEqual([r.case.name, r.outcome.allow, r.outcome.status, r.outcome.code]);
      if (e.result.allow && e.checks.length > 0) {
        // Every allowed check is backed by a real p line of policy.csv.
        for (const c of e.checks) {
          expect(c.traces.length).toBeGreaterThan(0);
          for (const t of c.traces) expect(bundle.policyLines).toContain(t.rule);
        }
      }
      if (e.result.code === 'forbidden') {
        const failed = e.checks.at(-1)!;
        expect(failed.allow).toBe(false);
        expect(failed.wouldAllow.every((s) => !e.roles.includes(s))).toBe(true);
      }
      compared++;
    }
    expect(compared).toBeGreaterThan(40);
  });

  it.each(SUBJECTS)('with a synthesized world, %s reading a token agrees with the decision table', async (subject) => {
    const e = await explainRequest({
      bundle,
      as: subject,
      method: 'GET',
      target: '/v1/workspaces/acme/projects/web/tokens/t1',
      body: undefined,
      world: undefined,
      targetRole: undefined,
    });
    if (subject === 'token') expect(e.result.status).toBe(401); // a project token is not a user
    else if (subject === 'none') expect(e.result.status).toBe(404); // no role: not visible
    else {
      expect(e.roles).toEqual([subject]);
      expect(e.result.allow).toBe(bundle.table.allows([subject], 'token:read'));
    }
  });

  it('explains the R1 → R2 composite: update-role passes, the invite rule on the new role denies', async () => {
    const e = await explainRequest({
      bundle,
      as: 'admin',
      method: 'PATCH',
      target: '/v1/workspaces/acme/members/dave',
      body: { role: 'owner' },
      world: undefined,
      targetRole: 'developer',
    });
    expect(e.checks.map((c) => [c.action, c.target, c.allow, c.wouldAllow])).toEqual([
      ['member:update-role', 'developer', true, []],
      ['member:invite', 'owner', false, ['owner']],
    ]);
    expect(e.checks[0]!.traces[0]!.rule!.text).toBe('p, admin, member:update-role, atmost:admin');
    expect(e.result).toMatchObject({ allow: false, status: 403, code: 'forbidden' });
  });
});
