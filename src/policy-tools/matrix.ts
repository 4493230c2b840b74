import { ACTIONS, NO_TARGET, TARGET_ROLES, type Action, type Subject } from '../domain.ts';
import type { DecisionRow } from '../policy/decision-table.ts';
import type { PolicyBundle } from '../policy/bundle.ts';

/** The complete decision table of one policy revision (CONTRACT §6 `matrix --format json`). */
export interface Matrix {
  revision: string;
  decisions: DecisionRow[];
}

/**
 * Every subject × action (× target role for rank-ruled actions), read from the bundle's
 * decision table: the very table the gateway decides with. Sorted in domain order —
 * subjects by rank, then actions and target roles as src/domain.ts lists them — so two
 * runs of the same revision are byte-identical.
 */
export function computeMatrix(bundle: PolicyBundle): Matrix {
  return { revision: bundle.revision, decisions: bundle.table.rows() };
}

/** A stable key for a row: `subject action target` (target `-` when none). */
export function rowKey(row: Pick<DecisionRow, 'subject' | 'action' | 'target_role'>): string {
  return `${row.subject} ${row.action} ${row.target_role ?? NO_TARGET}`;
}

/** The (action, target) columns of the matrix, in order: `workspace:read` once, `member:invite` per role. */
export function matrixColumns(): { action: Action; target_role: string | null }[] {
  return ACTIONS.flatMap((action) =>
    TARGET_ROLES[action] ? TARGET_ROLES[action]!.map((t) => ({ action, target_role: t as string | null })) : [{ action, target_role: null }],
  );
}

/** Lookup of a matrix's decisions by (subject, action, target). */
export function indexMatrix(m: Matrix): Map<string, boolean> {
  return new Map(m.decisions.map((r) => [rowKey(r), r.allow]));
}

export function allowedIn(index: Map<string, boolean>, subject: Subject, action: Action, target: string | null): boolean {
  return index.get(rowKey({ subject, action, target_role: target })) === true;
}
