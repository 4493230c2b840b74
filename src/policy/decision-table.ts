import {
  ACTIONS,
  NO_TARGET,
  SUBJECTS,
  TARGET_ROLES,
  WORKSPACE_ROLES,
  type Action,
  type Subject,
} from '../domain.ts';

/** Every target value a decision can be asked about: none, then the five roles. */
export const TARGETS = [NO_TARGET, ...WORKSPACE_ROLES] as const;
export type Target = (typeof TARGETS)[number];

const S = SUBJECTS.length;
const A = ACTIONS.length;
const T = TARGETS.length;

export const SUBJECT_INDEX: Readonly<Record<Subject, number>> = Object.fromEntries(
  SUBJECTS.map((s, i) => [s, i]),
) as Record<Subject, number>;
export const ACTION_INDEX: Readonly<Record<Action, number>> = Object.fromEntries(
  ACTIONS.map((a, i) => [a, i]),
) as Record<Action, number>;
export const TARGET_INDEX: Readonly<Record<Target, number>> = Object.fromEntries(
  TARGETS.map((t, i) => [t, i]),
) as Record<Target, number>;

/** One row of the complete decision table. */
export interface DecisionRow {
  subject: Subject;
  action: Action;
  /** null where the action has no target role. */
  target_role: string | null;
  allow: boolean;
}

/** Every (subject, action, target) the domain has, in a stable order. */
export function domainRows(): { subject: Subject; action: Action; target: Target }[] {
  const rows: { subject: Subject; action: Action; target: Target }[] = [];
  for (const subject of SUBJECTS) {
    for (const action of ACTIONS) {
      for (const target of (TARGET_ROLES[action] ?? [NO_TARGET]) as readonly Target[]) {
        rows.push({ subject, action, target });
      }
    }
  }
  return rows;
}

/**
 * The compiled policy: one bit per (subject, action, target). Built by asking
 * Casbin about every cell at load time, so a decision is an array lookup.
 */
export class DecisionTable {
  readonly #bits: Uint8Array;
  /** Per (subject, action): does any target allow? Used before the target is known. */
  readonly #anyTarget: Uint8Array;

  private constructor(bits: Uint8Array) {
    this.#bits = bits;
    this.#anyTarget = new Uint8Array(S * A);
    for (let s = 0; s < S; s++) {
      for (let a = 0; a < A; a++) {
        let any = 0;
        for (let t = 0; t < T; t++) any |= bits[(s * A + a) * T + t]!;
        this.#anyTarget[s * A + a] = any;
      }
    }
  }

  /** Evaluates `enforce(subject, action, target)` for every cell of the table. */
  static build(enforce: (subject: string, action: string, target: string) => boolean): DecisionTable {
    const bits = new Uint8Array(S * A * T);
    for (let s = 0; s < S; s++) {
      for (let a = 0; a < A; a++) {
        for (let t = 0; t < T; t++) {
          bits[(s * A + a) * T + t] = enforce(SUBJECTS[s]!, ACTIONS[a]!, TARGETS[t]!) ? 1 : 0;
        }
      }
    }
    return new DecisionTable(bits);
  }

  /** Is `action` on `target` allowed for any of `subjects`? (A user with two roles gets the union.) */
  allows(subjects: readonly Subject[], action: Action, target: Target = NO_TARGET): boolean {
    const a = ACTION_INDEX[action];
    const t = TARGET_INDEX[target];
    if (a === undefined || t === undefined) return false;
    for (const subject of subjects) {
      if (this.#bits[(SUBJECT_INDEX[subject] * A + a) * T + t] === 1) return true;
    }
    return false;
  }

  /** Does any of `subjects` hold `action` for at least one target? */
  holds(subjects: readonly Subject[], action: Action): boolean {
    const a = ACTION_INDEX[action];
    if (a === undefined) return false;
    for (const subject of subjects) {
      if (this.#anyTarget[SUBJECT_INDEX[subject] * A + a] === 1) return true;
    }
    return false;
  }

  /** The complete table over the domain, sorted by subject, action and target as the domain lists them. */
  rows(): DecisionRow[] {
    return domainRows().map(({ subject, action, target }) => ({
      subject,
      action,
      target_role: target === NO_TARGET ? null : target,
      allow: this.allows([subject], action, target),
    }));
  }

  /** Every cell, including targets outside an action's domain: for verification against Casbin. */
  *cells(): Generator<{ subject: Subject; action: Action; target: Target }> {
    for (const subject of SUBJECTS) for (const action of ACTIONS) for (const target of TARGETS) yield { subject, action, target };
  }
}
