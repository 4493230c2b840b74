import { SUBJECTS } from '../../domain.ts';
import { allowedIn, indexMatrix, matrixColumns, type Matrix } from '../../policy-tools/matrix.ts';

export const MATRIX_FORMATS = ['md', 'json', 'csv'] as const;
export type MatrixFormat = (typeof MATRIX_FORMATS)[number];

/**
 * CONTRACT §6 JSON: `{"revision", "decisions": [{subject, action, target_role, allow}]}`,
 * one decision per line so two outputs diff line by line.
 */
export function renderMatrixJson(m: Matrix): string {
  const rows = m.decisions.map((d) =>
    JSON.stringify({ subject: d.subject, action: d.action, target_role: d.target_role, allow: d.allow }),
  );
  return `{\n  "revision": ${JSON.stringify(m.revision)},\n  "decisions": [\n    ${rows.join(',\n    ')}\n  ]\n}\n`;
}

export function renderMatrixCsv(m: Matrix): string {
  const lines = ['subject,action,target_role,allow'];
  for (const d of m.decisions) lines.push(`${d.subject},${d.action},${d.target_role ?? ''},${d.allow}`);
  return lines.join('\n') + '\n';
}

/** One row per action (and target role), one column per subject, like the table in CONTRACT §1. */
export function renderMatrixMd(m: Matrix): string {
  const index = indexMatrix(m);
  const out = [
    `### Decision matrix`,
    '',
    `Policy revision \`${m.revision}\` · ✓ allowed · blank denied`,
    '',
    `| action | target role | ${SUBJECTS.join(' | ')} |`,
    `|---|---|${SUBJECTS.map(() => ':-:').join('|')}|`,
  ];
  for (const { action, target_role } of matrixColumns()) {
    const cells = SUBJECTS.map((s) => (allowedIn(index, s, action, target_role) ? '✓' : ' '));
    out.push(`| \`${action}\` | ${target_role ?? ''} | ${cells.join(' | ')} |`);
  }
  return out.join('\n') + '\n';
}

export function renderMatrix(m: Matrix, format: MatrixFormat): string {
  return format === 'json' ? renderMatrixJson(m) : format === 'csv' ? renderMatrixCsv(m) : renderMatrixMd(m);
}
