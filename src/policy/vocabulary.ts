import { NATIVE_ACTIONS, NATIVE_TARGET_ROLES, WORKSPACE_ROLES, type Action } from '../domain.ts';

/**
 * The actions one policy folder decides over (CONTRACT §5: the policy folder is the
 * vocabulary). The product's own team-and-roles actions come first, in the product's
 * order; every other action is declared by a route of the folder's route map, in the
 * order the map first names it. So the default folder's order never changes, and a folder
 * that adds `report:read` gets it after the actions it already had.
 */
export interface Vocabulary {
  readonly actions: readonly Action[];
  has(action: string): boolean;
  /** Position of the action in `actions`, or undefined. */
  indexOf(action: string): number | undefined;
  /** The target roles a rank-ruled action is decided over; undefined for an action without one. */
  targetRoles(action: string): readonly string[] | undefined;
  /** The declared action closest to a misspelt one, when one is close enough to suggest. */
  suggest(name: string): string | undefined;
}

/** What the route map says about one action: that a route declares it, and whether it has a rank target. */
export interface DeclaredAction {
  action: Action;
  /** A route decides this action on a target role (`target=` or `also=ACTION@…`). */
  targeted: boolean;
}

/** `resource:verb`, lower case: what an action name in the route map looks like. */
export const ACTION_NAME = /^[a-z][a-z0-9-]*:[a-z][a-z0-9-]*$/;

export function buildVocabulary(declared: Iterable<DeclaredAction>): Vocabulary {
  const actions: Action[] = [...NATIVE_ACTIONS];
  const targets = new Map<string, readonly string[]>(Object.entries(NATIVE_TARGET_ROLES));
  const index = new Map<string, number>(actions.map((a, i) => [a, i]));
  for (const d of declared) {
    if (!index.has(d.action)) {
      index.set(d.action, actions.length);
      actions.push(d.action);
    }
    // A new action decided on a target role ranks over the workspace roles; the product's
    // own actions keep the target roles the product gives them (guest:invite: the guest roles).
    if (d.targeted && !targets.has(d.action)) targets.set(d.action, WORKSPACE_ROLES);
  }
  return {
    actions,
    has: (a) => index.has(a),
    indexOf: (a) => index.get(a),
    targetRoles: (a) => targets.get(a),
    suggest: (name) => closest(name, actions),
  };
}

/**
 * The candidate nearest to `name` by edit distance, when it is near enough to be a
 * plausible typo (at most two edits, or a quarter of the name's length).
 */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(name, c);
    if (d < bestDistance || (d === bestDistance && best !== undefined && c < best)) {
      best = c;
      bestDistance = d;
    }
  }
  if (best === undefined || bestDistance === 0) return best;
  return bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

/** Levenshtein distance (insert, delete, substitute), two rows. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** "unknown action "x"" with the nearest declared name, for error messages at a file and line. */
export function unknownActionMessage(vocabulary: Vocabulary, name: string, where = 'the route map'): string {
  const hint = vocabulary.suggest(name);
  return `unknown action "${name}": no route in ${where} declares it${hint ? ` (did you mean "${hint}"?)` : ''}`;
}
