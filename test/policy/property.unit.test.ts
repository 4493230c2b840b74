import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { newEnforcer, newModelFromString, StringAdapter } from 'casbin';
import { describe, expect, it } from 'vitest';
import { NO_TARGET } from '../../src/domain.ts';
import { computeMatrix } from '../../src/policy-tools/matrix.ts';
import { buildPolicyBundle } from '../../src/policy/bundle.ts';
import { prng, ROOT } from './helpers.ts';

/**
 * Property: for any subset of policy.csv's lines, every row of `matrix` equals what a fresh,
 * stock node-casbin enforcer (model and policy from strings, nothing of ours) answers.
 * A seeded PRNG (mulberry32) instead of fast-check: no new dependency, and a failure names
 * its seed and subset so it replays exactly. PROPERTY_SEED / PROPERTY_RUNS vary the search.
 */
const SEED = Number(process.env['PROPERTY_SEED'] ?? 20240611);
const RUNS = Number(process.env['PROPERTY_RUNS'] ?? 25);

describe('matrix agrees with stock node-casbin', () => {
  it(`on ${RUNS} random subsets of policy.csv (seed ${SEED})`, async () => {
    const model = await readFile(join(ROOT, 'policies/model.conf'), 'utf8');
    const routes = await readFile(join(ROOT, 'policies/routes.txt'), 'utf8');
    const policyLines = (await readFile(join(ROOT, 'policies/policy.csv'), 'utf8'))
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.trim().startsWith('#'));
    const random = prng(SEED);
    let rowsChecked = 0;
    for (let run = 0; run < RUNS; run++) {
      // Vary the density too: sparse subsets exercise missing inheritance and rank links.
      const keep = 0.15 + random() * 0.8;
      const subset = policyLines.filter(() => random() < keep);
      if (subset.length === 0) subset.push(policyLines[Math.floor(random() * policyLines.length)]!);
      const policy = subset.join('\n') + '\n';

      const bundle = await buildPolicyBundle({
        origin: `subset-${run}`,
        files: new Map([
          ['model.conf', model],
          ['policy.csv', policy],
          ['routes.txt', routes],
        ]),
      });
      const stock = await newEnforcer(newModelFromString(model), new StringAdapter(policy));
      const matrix = computeMatrix(bundle);
      const disagreements = matrix.decisions.filter(
        (d) => stock.enforceSync(d.subject, d.action, d.target_role ?? NO_TARGET) !== d.allow,
      );
      expect(disagreements, `seed ${SEED}, run ${run}, policy:\n${policy}`).toEqual([]);
      rowsChecked += matrix.decisions.length;
    }
    expect(rowsChecked).toBe(RUNS * 432);
  }, 120_000); // 25 full policy compilations: minutes-bound on a loaded 2-core machine, not 30 s

  it('and on the whole policy.csv', async () => {
    const model = await readFile(join(ROOT, 'policies/model.conf'), 'utf8');
    const policy = await readFile(join(ROOT, 'policies/policy.csv'), 'utf8');
    const bundle = await buildPolicyBundle({
      origin: 'policies',
      files: new Map([
        ['model.conf', model],
        ['policy.csv', policy],
        ['routes.txt', await readFile(join(ROOT, 'policies/routes.txt'), 'utf8')],
      ]),
    });
    const stock = await newEnforcer(newModelFromString(model), new StringAdapter(policy));
    const allowed = computeMatrix(bundle).decisions.filter((d) => d.allow);
    for (const d of computeMatrix(bundle).decisions) {
      expect([d.subject, d.action, d.target_role, stock.enforceSync(d.subject, d.action, d.target_role ?? NO_TARGET)]).toEqual([
        d.subject,
        d.action,
        d.target_role,
        d.allow,
      ]);
    }
    // Not vacuous: the default policy allows a good part of the table, and denies the rest.
    expect(allowed.length).toBeGreaterThan(100);
    expect(allowed.length).toBeLessThan(432);
  });
});
