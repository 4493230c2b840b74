import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DecisionChange, PolicyDiff } from '../../src/policy-tools/diff.ts';
import { renderDiffMd } from '../../src/cli/format/diff.ts';
import { copyPolicies, runCli } from './helpers.ts';

/** GitHub refuses an issue or pull-request comment over this many characters. */
const GITHUB_COMMENT_LIMIT = 65_536;

function syntheticDiff(widened: number, fixtures: number): PolicyDiff {
  const row = (i: number): DecisionChange => ({ subject: 'viewer', action: `report:read-${i}` as DecisionChange['action'], target_role: i % 2 ? 'owner' : null, before: false, after: true });
  return {
    base: { origin: 'origin/main', revision: '0'.repeat(16) },
    head: { origin: 'policies', revision: 'f'.repeat(16) },
    widened: Array.from({ length: widened }, (_, i) => row(i)),
    narrowed: [],
    routes: [],
    fixtures: Array.from({ length: fixtures }, (_, i) => ({
      file: 'fixtures/x.yaml',
      line: i + 1,
      name: `case ${i} with a long descriptive name that takes room in the table`,
      expect: 'deny',
      before: 'deny',
      after: 'allow',
      passes: false,
    })) as PolicyDiff['fixtures'],
  };
}

describe('diff --max-chars (the PR comment cap)', () => {
  it('keeps any report within the limit, summary first, widened rows first and in order', () => {
    const d = syntheticDiff(3000, 3000);
    const full = renderDiffMd(d);
    expect(full.length).toBeGreaterThan(GITHUB_COMMENT_LIMIT * 3);
    for (const max of [2000, 10_000, 60_000, GITHUB_COMMENT_LIMIT - 1]) {
      const cut = renderDiffMd(d, { maxChars: max });
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(cut.split('\n')[0]).toBe(full.split('\n')[0]);
      expect(cut).toMatch(/^> \*\*Shortened\*\*: the full report is [\d,]+ characters, over the limit of [\d,]+; \d+ of 6000 table rows are shown, widened decisions first\.$/m);
      // Every section heading survives, and what is shown is a prefix of the full tables.
      for (const h of ['#### Widened (3000)', '#### Narrowed (0)', '#### Route map changes', '#### Fixture cases with a new outcome (3000)']) expect(cut).toContain(h);
      const rows = cut.split('\n').filter((l) => l.startsWith('| viewer |'));
      expect(rows).toEqual(full.split('\n').filter((l) => l.startsWith('| viewer |')).slice(0, rows.length));
      expect(cut).toMatch(/_…[\d]+ more rows not shown/);
    }
    // A bigger budget shows more rows.
    const shown = (max: number) => renderDiffMd(d, { maxChars: max }).split('\n').filter((l) => l.startsWith('| ')).length;
    expect(shown(60_000)).toBeGreaterThan(shown(10_000));
  });

  it('leaves a report under the limit untouched', () => {
    const d = syntheticDiff(5, 5);
    expect(renderDiffMd(d, { maxChars: GITHUB_COMMENT_LIMIT })).toBe(renderDiffMd(d));
  });

  describe('on a policy that widens six roles', () => {
    let tmp: Awaited<ReturnType<typeof copyPolicies>>;
    beforeAll(async () => {
      tmp = await copyPolicies();
      const file = join(tmp.dir, 'policy.csv');
      const text = await readFile(file, 'utf8');
      const actions = [...new Set([...text.matchAll(/^p, [a-z:]+, ([a-z-]+:[a-z-]+),/gm)].map((m) => m[1]!))];
      const lines = new Set(text.split('\n'));
      const extra: string[] = [];
      for (const s of ['viewer', 'billing', 'developer', 'admin', 'guest:viewer', 'guest:developer']) {
        for (const a of actions) for (const t of ['atmost:owner', '-']) if (!lines.has(`p, ${s}, ${a}, ${t}`)) extra.push(`p, ${s}, ${a}, ${t}`);
      }
      await writeFile(file, text + extra.join('\n') + '\n');
    });
    afterAll(() => tmp.cleanup());

    it('prints the cut report and writes the complete one to --full-report', async () => {
      const fullFile = join(tmp.root, 'out', 'policy-diff-full.md');
      const cut = await runCli(['diff', 'policies', tmp.dir, '--max-chars', '20000', '--full-report', fullFile, '--fail-on', 'widen']);
      expect(cut.stderr).toBe('');
      expect(cut.code).toBe(1);
      expect(cut.stdout.length).toBeLessThanOrEqual(20_000);
      expect(cut.stdout).toMatch(/^### Policy diff: \d+ decisions widened, 0 narrowed/);
      expect(cut.stdout).toContain('> **Shortened**');
      const full = await readFile(fullFile, 'utf8');
      expect(full.length).toBeGreaterThan(20_000);
      expect(full).not.toContain('Shortened');
      expect(full.split('\n')[0]).toBe(cut.stdout.split('\n')[0]);
    }, 60_000);
  });

  it('refuses a --max-chars too small to hold the summary, and with --format json', async () => {
    expect(await runCli(['diff', 'policies', 'policies', '--max-chars', '100'])).toEqual({
      code: 2,
      stdout: '',
      stderr: 'packagento-gate diff: --max-chars must be a whole number of at least 2000\n',
    });
    expect((await runCli(['diff', 'policies', 'policies', '--max-chars', '5000', '--format', 'json'])).stderr).toBe(
      'packagento-gate diff: --max-chars and --full-report apply to --format md\n',
    );
  });

  it('says "no decision changes" for the same policy', async () => {
    const r = await runCli(['diff', 'policies', 'policies', '--no-fixtures']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^no decision changes: `policies` \(`[0-9a-f]{16}`\) and `policies` \(`[0-9a-f]{16}`\) decide alike\n$/);
  });
});
