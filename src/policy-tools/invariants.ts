import { LineCounter, parseDocument, type Document } from 'yaml';
import { z } from 'zod';
import { isWorkspaceRole, NO_TARGET, SUBJECTS, WORKSPACE_ROLES, type Action, type Subject } from '../domain.ts';
import { buildVocabulary, type Vocabulary } from '../policy/vocabulary.ts';
import type { Route } from '../policy/route-map.ts';
import { ROUTES_FILE, type PolicyBundle } from '../policy/bundle.ts';
import { lineRef, policyFilePath, traceDecision } from './trace.ts';

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

export class InvariantsError extends Error {
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly reason: string,
  ) {
    super(`${file}${line !== undefined ? `:${line}` : ''}: ${reason}`);
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

/**
 * Parses invariants.yaml. `file` is the path shown in messages. Action patterns expand
 * over the policy folder's vocabulary (default: the native actions alone).
 */
export function parseInvariants(text: string, file: string, vocabulary: Vocabulary = buildVocabulary([])): InvariantSet {
  const ACTIONS = vocabulary.actions;
  const lines = new LineCounter();
  const doc: Document = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new InvariantsError(file, lines.linePos(e.pos[0]).line, `invalid YAML: ${e.message.split('\n')[0]}`);
  }
  const lineOf = (path: (string | number)[]): number | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
      if (range) return lines.linePos(range[0]).line;
    }
    return undefined;
  };
  const fail = (path: (string | number)[], reason: string) => new InvariantsError(file, lineOf(path), reason);
  const zodFail = (base: (string | number)[], err: z.ZodError) => {
    const issue = err.issues.find((i) => i.code === 'unrecognized_keys') ?? err.issues[0]!;
    const path = [...base, ...(issue.path as (string | number)[])];
    const where = path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${p}`)).join('').replace(/^\./, '');
    if (issue.code === 'unrecognized_keys') return fail([...path, issue.keys[0]!], `${where ? `${where}: ` : ''}unknown key "${issue.keys[0]}"`);
    return fail(path, `${where ? `${where}: ` : ''}${issue.message}`);
  };

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
        const untargeted = list.find((a) => vocabulary.targetRoles(a) === undefined);
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
        rule = { kind, except: (d.except ?? []).map((route, j) => ({ route, line: lineOf(at('except').concat(j)) ?? 0 })) };
        break;
      }
      case 'actions_reachable': {
        const d = v.actions_reachable as z.infer<typeof ruleSchemas.actions_reachable>;
        rule = {
          kind,
          except: Object.entries(d.except ?? {}).map(([action, reason]) => {
            if (!vocabulary.has(action)) {
              const hint = vocabulary.suggest(action);
              throw fail(at('except').concat(action), `unknown action "${action}"${hint ? ` (did you mean "${hint}"?)` : ''}`);
            }
            return { action: action as Action, reason, line: lineOf(at('except').concat(action)) ?? 0 };
          }),
        };
        break;
      }
    }
    return { id: v.id, description: v.description, file, line: lineOf(base) ?? 0, rule };
  });
  return { file, ranks, invariants };
}

/** Reads `invariants.yaml` from the bundle's policy source. */
export function loadInvariants(bundle: PolicyBundle): InvariantSet {
  const file = policyFilePath(bundle, INVARIANTS_FILE);
  const text = bundle.source.files.get(INVARIANTS_FILE);
  if (text === undefined) throw new InvariantsError(file, undefined, `missing: check needs ${INVARIANTS_FILE} in the policy folder`);
  return parseInvariants(text, file, bundle.vocabulary);
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/** One counter-example: what is wrong, and the file lines behind it. */
export interface CounterExample {
  text: string;
  refs: string[];
}

export interface Violation {
  invariant: Invariant;
  examples: CounterExample[];
}

export interface CheckReport {
  revision: string;
  invariants: number;
  decisions: number;
  routes: number;
  violations: Violation[];
  /** Routes that always deny: an action they decide is granted by no policy line (always checked). */
  unreachable: CounterExample[];
}

/**
 * Routes whose action (or an also= action) no policy line grants to anyone: every request
 * to them is denied, which is a forgotten policy line far more often than an intent.
 */
export function unreachableRoutes(bundle: PolicyBundle): CounterExample[] {
  const routesFile = policyFilePath(bundle, ROUTES_FILE);
  const out: CounterExample[] = [];
  for (const rt of bundle.routes.routes) {
    // `grant` is whichever of member:invite / guest:invite created the invite: not a route's own choice.
    const never = new Set(rt.checks.flatMap((c) => (c.action !== 'grant' && !bundle.table.granted(c.action) ? [c.action] : [])));
    for (const a of never) {
      out.push({ text: `${routeLabel(rt)}: no policy line grants ${a}, so every request to it is denied`, refs: [`${routesFile}:${rt.line}`] });
    }
  }
  return out;
}

function checkLabel(c: Route['checks'][number]): string {
  return c.target ? `${c.action}@${c.target}` : c.action;
}

/** `GET /v1/x → token:read` */
export function routeLabel(r: Route): string {
  return `${r.id} → ${r.action ?? '-'}`;
}

/** Actions a route decides: its own, its also= checks, and both creators for `grant`. */
export function routeActions(r: Route): Action[] {
  const out = new Set<Action>();
  for (const c of r.checks) {
    if (c.action === 'grant') {
      out.add('member:invite');
      out.add('guest:invite');
    } else out.add(c.action);
  }
  return [...out];
}

/** Evaluates every invariant over the bundle's complete decision table and route map. */
export function checkInvariants(bundle: PolicyBundle, set: InvariantSet): CheckReport {
  const rows = bundle.table.rows();
  const routes = bundle.routes.routes;
  const routesFile = policyFilePath(bundle, ROUTES_FILE);
  const routeRef = (r: Route) => `${routesFile}:${r.line}`;

  const allowedRow = (row: (typeof rows)[number]): CounterExample => {
    const target = row.target_role ?? NO_TARGET;
    const trace = traceDecision(bundle, row.subject, row.action, target as never);
    const refs = trace.rule
      ? [`${lineRef(bundle, trace.rule)} ${trace.rule.text}`, ...trace.roleChain.map((l) => `  via ${lineRef(bundle, l)} ${l.text}`)]
      : [];
    return { text: `${row.subject} ${row.action}${row.target_role ? `@${row.target_role}` : ''} → allow`, refs };
  };
  const rankOf = (s: Subject) => (isWorkspaceRole(s) ? set.ranks.get(s)! : 0);

  const violations: Violation[] = [];
  for (const inv of set.invariants) {
    const r = inv.rule;
    const examples: CounterExample[] = [];
    switch (r.kind) {
      case 'deny':
        for (const row of rows) {
          if (!row.allow || !r.subjects.includes(row.subject) || !r.actions.includes(row.action)) continue;
          if (r.targets && (row.target_role === null || !r.targets.includes(row.target_role))) continue;
          examples.push(allowedRow(row));
        }
        break;
      case 'only':
        for (const row of rows) {
          if (row.allow && r.subjects.includes(row.subject) && !r.actions.includes(row.action)) examples.push(allowedRow(row));
        }
        break;
      case 'rank':
        for (const row of rows) {
          if (!row.allow || !r.actions.includes(row.action) || row.target_role === null) continue;
          if (set.ranks.get(row.target_role)! > rankOf(row.subject)) examples.push(allowedRow(row));
        }
        break;
      case 'routes': {
        const matched = routes.filter((rt) => (r.method === '*' || rt.method === r.method) && r.path.test(rt.pattern));
        if (matched.length === 0) examples.push({ text: `"${r.match}" matches no route`, refs: [routesFile] });
        for (const rt of matched) {
          const problems: string[] = [];
          if (r.actions && (rt.action === undefined || !r.actions.includes(rt.action))) problems.push(`action ${rt.action ?? '-'}`);
          if (r.checks) {
            const have = rt.checks.map(checkLabel).sort();
            const want = [...r.checks].sort();
            if (have.join(' ') !== want.join(' ')) problems.push(`checks ${have.join(', ') || 'none'} (expected ${want.join(', ')})`);
          }
          if (r.to && rt.to !== r.to) problems.push(`to=${rt.to}`);
          if (r.auth && rt.auth !== r.auth) problems.push(`auth=${rt.auth}`);
          if (problems.length > 0) examples.push({ text: `${routeLabel(rt)}: ${problems.join('; ')}`, refs: [routeRef(rt)] });
        }
        break;
      }
      case 'routes_have_actions': {
        const allowed = new Set(r.except.map((e) => e.route));
        for (const rt of routes) {
          if (rt.action === undefined && !allowed.has(rt.id)) examples.push({ text: `${rt.id} has no action`, refs: [routeRef(rt)] });
        }
        for (const e of r.except) {
          const rt = routes.find((x) => x.id === e.route);
          if (!rt) examples.push({ text: `except lists "${e.route}", which is not in the route map`, refs: [`${inv.file}:${e.line}`] });
          else if (rt.action !== undefined) examples.push({ text: `except lists "${e.route}", which has the action ${rt.action}`, refs: [`${inv.file}:${e.line}`, routeRef(rt)] });
        }
        break;
      }
      case 'actions_reachable': {
        const reach = new Map<Action, Route>();
        for (const rt of routes) for (const a of routeActions(rt)) if (!reach.has(a)) reach.set(a, rt);
        const excused = new Map(r.except.map((e) => [e.action, e]));
        for (const a of bundle.vocabulary.actions) {
          if (!reach.has(a) && !excused.has(a)) examples.push({ text: `${a} is decided by no route`, refs: [routesFile] });
        }
        for (const e of r.except) {
          const rt = reach.get(e.action);
          if (rt) examples.push({ text: `except lists ${e.action}, which ${rt.id} decides`, refs: [`${inv.file}:${e.line}`, routeRef(rt)] });
        }
        break;
      }
    }
    if (examples.length > 0) violations.push({ invariant: inv, examples });
  }
  return {
    revision: bundle.revision,
    invariants: set.invariants.length,
    decisions: rows.length,
    routes: routes.length,
    violations,
    unreachable: unreachableRoutes(bundle),
  };
}
