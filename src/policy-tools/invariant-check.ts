import { ACTIONS, isWorkspaceRole, NO_TARGET, type Action, type Subject } from '../domain.ts';
import type { Route } from '../policy/route-map.ts';
import { ROUTES_FILE, type PolicyBundle } from '../policy/bundle.ts';
import { lineRef, policyFilePath, traceDecision } from './trace.ts';

import type { Invariant, InvariantSet } from './invariants.ts';

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
        for (const a of ACTIONS) {
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
  return { revision: bundle.revision, invariants: set.invariants.length, decisions: rows.length, routes: routes.length, violations };
}
