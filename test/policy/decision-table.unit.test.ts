import { describe, expect, test } from 'vitest';
import { newEnforcer, newModelFromString, StringAdapter } from 'casbin';
import { readFile } from 'node:fs/promises';
import { ACTIONS, SUBJECTS } from '../../src/domain.ts';
import { DecisionTable, TARGETS } from '../../src/policy/decision-table.ts';
import { buildPolicyBundle, verifyDecisionTable } from '../../src/policy/bundle.ts';
import { loadPolicySourceFromDir } from '../../src/policy/source.ts';

describe('the compiled decision table', () => {
  test('equals stock node-casbin, loaded from the files, on every cell of the domain', async () => {
    const bundle = await buildPolicyBundle(await loadPolicySourceFromDir('policies'));
    const stock = await newEnforcer(
      newModelFromString(await readFile('policies/model.conf', 'utf8')),
      new StringAdapter(await readFile('policies/policy.csv', 'utf8')),
    );
    let cells = 0;
    let allowed = 0;
    for (const s of SUBJECTS)
      for (const a of ACTIONS)
        for (const t of TARGETS) {
          const expected = await stock.enforce(s, a, t);
          expect(bundle.table.allows([s], a, t), `${s} ${a} ${t}`).toBe(expected);
          cells++;
          if (expected) allowed++;
        }
    expect(cells).toBe(SUBJECTS.length * ACTIONS.length * TARGETS.length);
    expect(allowed).toBeGreaterThan(50); // the comparison covered real allows, not only denies
  });

  test('a table that disagrees with Casbin on one cell is refused, naming the cell', () => {
    const truth = (s: string, a: string, t: string) => s === 'owner' && a === 'member:invite' && t !== '-';
    const table = DecisionTable.build(truth);
    expect(() => verifyDecisionTable(table, truth)).not.toThrow();
    const flipped = (s: string, a: string, t: string) => (s === 'admin' && a === 'token:read' && t === '-' ? true : truth(s, a, t));
    expect(() => verifyDecisionTable(table, flipped)).toThrow('decision table disagrees with Casbin on (admin, token:read, -)');
  });

  test('a user with two roles gets the union; no role gets nothing', async () => {
    const { table } = await buildPolicyBundle(await loadPolicySourceFromDir('policies'));
    expect(table.allows(['viewer'], 'token:read')).toBe(false);
    expect(table.allows(['viewer', 'guest:developer'], 'token:read')).toBe(true);
    expect(table.allows([], 'workspace:read')).toBe(false);
    expect(table.holds(['admin'], 'member:invite')).toBe(true);
    expect(table.allows(['admin'], 'member:invite', 'owner')).toBe(false);
  });
});
