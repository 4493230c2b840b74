import type { FixtureResult } from '../../policy-tools/fixture-run.ts';

export interface TestTotals {
  passed: number;
  failed: number;
}

export function totals(results: readonly FixtureResult[]): TestTotals {
  let passed = 0;
  let failed = 0;
  for (const f of results) for (const r of f.results) r.pass ? passed++ : failed++;
  return { passed, failed };
}

/** Each failure as `FAIL file:line name: why`, then the last line `N passed, N failed`. */
export function renderTestReport(results: readonly FixtureResult[]): string {
  const out: string[] = [];
  for (const f of results) {
    for (const r of f.results) {
      if (!r.pass) out.push(`FAIL ${r.case.file}:${r.case.line} ${r.case.name}: ${r.message}`);
    }
  }
  const t = totals(results);
  out.push(`${t.passed} passed, ${t.failed} failed`);
  return out.join('\n') + '\n';
}
