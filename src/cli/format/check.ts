import type { CheckReport } from '../../policy-tools/invariant-check.ts';

/** Counter-examples shown per invariant; the rest are counted. */
const MAX_EXAMPLES = 20;

/**
 * One block per violated invariant: `file:line: id: description`, then each
 * counter-example row and the policy / route lines behind it; then one summary line.
 */
export function renderCheckReport(report: CheckReport): string {
  const out: string[] = [];
  for (const v of report.violations) {
    const inv = v.invariant;
    out.push(`${inv.file}:${inv.line}: ${inv.id}: ${inv.description}`);
    for (const ex of v.examples.slice(0, MAX_EXAMPLES)) {
      out.push(`  counter-example: ${ex.text}`);
      for (const ref of ex.refs) out.push(`    ${ref}`);
    }
    if (v.examples.length > MAX_EXAMPLES) out.push(`  … and ${v.examples.length - MAX_EXAMPLES} more`);
  }
  if (report.violations.length > 0) {
    out.push(`check: ${report.violations.length} of ${report.invariants} invariants violated (revision ${report.revision})`);
  } else {
    out.push(
      `check: ${report.invariants} invariants hold over ${report.decisions} decisions and ${report.routes} routes (revision ${report.revision})`,
    );
  }
  return out.join('\n') + '\n';
}
