import { NO_TARGET, type Action, type Subject } from '../domain.ts';
import type { DecisionRow } from '../policy/decision-table.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import type { Vocabulary } from '../policy/vocabulary.ts';

/** The complete decision table of one policy revision (CONTRACT §6 `matrix --format json`). */
export interface Matrix {
  revision: string;
  decisions: DecisionRow[];
}

/** The (action, target) columns of a matrix, in the order its rows first name them. */
export function columnsOf(m: Matrix): { action: Action; target_role: string | null }[] {
  const seen = new Set<string>();
  const out: { action: Action; target_role: string | null }[] = [];
  for (const r of m.decisions) {
    const key = `${r.action} ${r.target_role ?? NO_TARGET}`;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push({ action: r.action, target_role: r.target_role });
  }
  return out;
}

/**
 * Every subject × action (× target role for rank-ruled actions), read from the bundle's
 * decision table: the very table the gateway decides with. Sorted in domain order —
 * subjects by rank, then actions as the folder's vocabulary lists them (native actions
 * first, then the route map's in file order), then target roles — so two runs of the same
 * revision are byte-identical.
 */
export function computeMatrix(bundle: PolicyBundle): Matrix {
  return { revision: bundle.revision, decisions: bundle.table.rows() };
}

/** A stable key for a row: `subject action target` (target `-` when none). */
export function rowKey(row: Pick<DecisionRow, 'subject' | 'action' | 'target_role'>): string {
  return `${row.subject} ${row.action} ${row.target_role ?? NO_TARGET}`;
}

/** The (action, target) columns of the matrix, in order: `workspace:read` once, `member:invite` per role. */
export function matrixColumns(vocabulary: Vocabulary): { action: Action; target_role: string | null }[] {
  return vocabulary.actions.flatMap((action) => {
    const targets = vocabulary.targetRoles(action);
    return targets ? targets.map((t) => ({ action, target_role: t as string | null })) : [{ action, target_role: null }];
  });
}

/** Lookup of a matrix's decisions by (subject, action, target). */
export function indexMatrix(m: Matrix): Map<string, boolean> {
  return new Map(m.decisions.map((r) => [rowKey(r), r.allow]));
}

export function allowedIn(index: Map<string, boolean>, subject: Subject, action: Action, target: string | null): boolean {
  return index.get(rowKey({ subject, action, target_role: target })) === true;
}
