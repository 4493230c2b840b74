import { z } from 'zod';
import { SourceError, YamlSource } from './yaml-source.ts';
import { ACTIONS, SUBJECTS, TARGET_ROLES, WORKSPACE_ROLES, type Action, type Subject } from '../domain.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import { policyFilePath } from './trace.ts';

/**
 * Invariants (`policies/invariants.yaml`): properties `check` proves over the complete
 * decision table and the route map of a policy revision. The file is reviewable data;
 * this module only knows a handful of rule kinds:
 *
 *   deny                 every (subject, action[, target]) it selects is denied
 *   only                 the subjects are allowed nothing outside the listed actions
 *   rank                 an allowed target role never ranks above the subject's own role
 *   routes               routes matching METHOD PATH-GLOB map to these actions / checks / options
 *   routes_have_actions  every route has an action, except the listed self-service routes
 *   actions_reachable    every action is decided by some route, except the listed ones (with a reason)
 */
export const INVARIANTS_FILE = 'invariants.yaml';

export class InvariantsError extends SourceError {
  constructor(file: string, line: number | undefined, reason: string) {
    super(file, line, reason);
    this.name = 'InvariantsError';
  }
}

const patterns = z.array(z.string().min(1)).min(1);

const ruleSchemas = {
  deny: z.strictObject({ subjects: patterns, actions: patterns, targets: z.array(z.enum(WORKSPACE_ROLES)).min(1).optional() }),
  only: z.strictObject({ subjects: patterns, actions: z.array(z.string().min(1)) }),
  rank: z.strictObject({ actions: patterns }),
  routes: z.strictObject({
    match: z.string().regex(/^(\*|[A-Z]+) \/\S*$/, 'match is "METHOD PATH-GLOB" (METHOD may be *)'),
    actions: patterns.optional(),
    checks: z.array(z.string().min(1)).optional(),
    to: z.enum(['native', 'upstream']).optional(),
    auth: z.enum(['jwt', 'token', 'none']).optional(),
  }),
  routes_have_actions: z.strictObject({ except: z.array(z.string().min(1)).optional() }),
  actions_reachable: z.strictObject({ except: z.record(z.string(), z.string().min(1)).optional() }),
} as const;
type RuleKind = keyof typeof ruleSchemas;
const RULE_KINDS = Object.keys(ruleSchemas) as RuleKind[];

const invariantSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9]+(-[a-z0-9]+)*$/, 'an id is kebab-case'),
    description: z.string().min(1),
    ...Object.fromEntries(RULE_KINDS.map((k) => [k, ruleSchemas[k].optional()])),
  })
  .refine((v) => RULE_KINDS.filter((k) => (v as Record<string, unknown>)[k] !== undefined).length === 1, {
    message: `an invariant has exactly one rule: ${RULE_KINDS.join(', ')}`,
  });

const fileSchema = z.strictObject({
  ranks: z.array(z.enum(WORKSPACE_ROLES)),
  invariants: z.array(z.unknown()).min(1),
});

export type Rule =
  | { kind: 'deny'; subjects: Subject[]; actions: Action[]; targets: string[] | undefined }
  | { kind: 'only'; subjects: Subject[]; actions: Action[] }
  | { kind: 'rank'; actions: Action[] }
  | {
      kind: 'routes';
      match: string;
      method: string;
      path: RegExp;
      actions: Action[] | undefined;
      checks: string[] | undefined;
      to: 'native' | 'upstream' | undefined;
      auth: 'jwt' | 'token' | 'none' | undefined;
    }
  | { kind: 'routes_have_actions'; except: { route: string; line: number }[] }
  | { kind: 'actions_reachable'; except: { action: Action; reason: string; line: number }[] };

export interface Invariant {
  id: string;
  description: string;
  /** Where it is declared, e.g. `policies/invariants.yaml:12`. */
  file: string;
  line: number;
  rule: Rule;
}

export interface InvariantSet {
  file: string;
  /** Rank of each workspace role (owner highest), as the file declares it. */
  ranks: Map<string, number>;
  invariants: Invariant[];
}

function globToRegExp(glob: string, star: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      out += '.*';
      i++;
    } else if (c === '*') out += star;
    else out += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** Expands `token:*`, `*`, `!owner` against a universe; every positive pattern must match something. */
function expand<T extends string>(list: readonly string[], universe: readonly T[], what: string): T[] | string {
  const include = new Set<T>();
  const exclude = new Set<T>();
  for (const raw of list) {
    const negated = raw.startsWith('!');
    const re = globToRegExp(negated ? raw.slice(1) : raw, '.*');
    const hits = universe.filter((u) => re.test(u));
    if (hits.length === 0) return `"${raw}" matches no ${what}`;
    for (const h of hits) (negated ? exclude : include).add(h);
  }
  return universe.filter((u) => include.has(u) && !exclude.has(u));
}

/** Parses invariants.yaml. `file` is the path shown in messages. */
export function parseInvariants(text: string, file: string): InvariantSet {
  const src = YamlSource.parse(text, file, (f, l, r) => new InvariantsError(f, l, r));
  const doc = src.doc;
  const fail = (path: (string | number)[], reason: string) => src.fail(path, reason);
  const zodFail = (base: (string | number)[], err: z.ZodError) => src.zodFailure(base, err);

  const top = fileSchema.safeParse(doc.toJS());
  if (!top.success) throw zodFail([], top.error);
  const order = top.data.ranks;
  if (order.length !== WORKSPACE_ROLES.length || new Set(order).size !== order.length) {
    throw fail(['ranks'], `ranks lists each workspace role once, highest first (${WORKSPACE_ROLES.join(', ')})`);
  }
  const ranks = new Map(order.map((r, i) => [r as string, order.length - i]));

  const ids = new Set<string>();
  const invariants: Invariant[] = top.data.invariants.map((raw, i) => {
    const base = ['invariants', i];
    const parsed = invariantSchema.safeParse(raw);
    if (!parsed.success) throw zodFail(base, parsed.error);
    const v = parsed.data as z.infer<typeof invariantSchema> & Record<RuleKind, unknown>;
    if (ids.has(v.id)) throw fail([...base, 'id'], `duplicate invariant id "${v.id}"`);
    ids.add(v.id);
    const kind = RULE_KINDS.find((k) => v[k] !== undefined)!;
    const at = (sub: string) => [...base, kind, sub];
    const subjects = (list: string[]) => {
      const r = expand(list, SUBJECTS, 'subject');
      if (typeof r === 'string') throw fail(at('subjects'), r);
      return r;
    };
    const actions = (list: string[], sub = 'actions') => {
      const r = expand(list, ACTIONS, 'action');
      if (typeof r === 'string') throw fail(at(sub), r);
      return r;
    };
    let rule: Rule;
    switch (kind) {
      case 'deny': {
        const d = v.deny as z.infer<typeof ruleSchemas.deny>;
        rule = { kind, subjects: subjects(d.subjects), actions: actions(d.actions), targets: d.targets };
        break;
      }
      case 'only': {
        const d = v.only as z.infer<typeof ruleSchemas.only>;
        rule = { kind, subjects: subjects(d.subjects), actions: d.actions.length === 0 ? [] : actions(d.actions) };
        break;
      }
      case 'rank': {
        const d = v.rank as z.infer<typeof ruleSchemas.rank>;
        const list = actions(d.actions);
        const untargeted = list.find((a) => TARGET_ROLES[a] === undefined);
        if (untargeted) throw fail(at('actions'), `${untargeted} has no target role, so no rank applies`);
        rule = { kind, actions: list };
        break;
      }
      case 'routes': {
        const d = v.routes as z.infer<typeof ruleSchemas.routes>;
        const [method, path] = d.match.split(' ') as [string, string];
        rule = {
          kind,
          match: d.match,
          method,
          path: globToRegExp(path, '[^/]*'),
          actions: d.actions ? actions(d.actions) : undefined,
          checks: d.checks,
          to: d.to,
          auth: d.auth,
        };
        break;
      }
      case 'routes_have_actions': {
        const d = v.routes_have_actions as z.infer<typeof ruleSchemas.routes_have_actions>;
        rule = { kind, except: (d.except ?? []).map((route, j) => ({ route, line: src.lineOf(at('except').concat(j)) ?? 0 })) };
        break;
      }
      case 'actions_reachable': {
        const d = v.actions_reachable as z.infer<typeof ruleSchemas.actions_reachable>;
        rule = {
          kind,
          except: Object.entries(d.except ?? {}).map(([action, reason]) => {
            if (!ACTIONS.includes(action as Action)) throw fail(at('except').concat(action), `unknown action "${action}"`);
            return { action: action as Action, reason, line: src.lineOf(at('except').concat(action)) ?? 0 };
          }),
        };
        break;
      }
    }
    return { id: v.id, description: v.description, file, line: src.lineOf(base) ?? 0, rule };
  });
  return { file, ranks, invariants };
}

/** Reads `invariants.yaml` from the bundle's policy source. */
export function loadInvariants(bundle: PolicyBundle): InvariantSet {
  const file = policyFilePath(bundle, INVARIANTS_FILE);
  const text = bundle.source.files.get(INVARIANTS_FILE);
  if (text === undefined) throw new InvariantsError(file, undefined, `missing: check needs ${INVARIANTS_FILE} in the policy folder`);
  return parseInvariants(text, file);
}

// ---------------------------------------------------------------------------------------------
// Evaluation
