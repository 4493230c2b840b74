import { SUBJECTS, type Action, type Subject } from '../domain.ts';
import type { Route } from '../policy/route-map.ts';
import type { DecisionTable } from '../policy/decision-table.ts';
import type { CaseResult, FixtureResult } from './fixture-run.ts';
import type { PolicyBundle } from '../policy/bundle.ts';

/** One cell of the decision table that differs between two revisions. */
export interface DecisionChange {
  subject: Subject;
  action: Action;
  target_role: string | null;
  before: boolean;
  after: boolean;
}

/** What a route means, for comparing two route maps (line numbers excluded). */
export interface RouteShape {
  route: string;
  action: string | null;
  checks: string[];
  to: string;
  auth: string;
  guests: string;
  line: number;
}

export interface RouteChange {
  kind: 'added' | 'removed' | 'remapped';
  route: string;
  before: RouteShape | null;
  after: RouteShape | null;
  /** Subjects that can pass this route after the change but could not before. */
  widens: Subject[];
  /** Subjects that could pass it before but cannot after. */
  narrows: Subject[];
}

export interface FixtureChange {
  file: string;
  line: number;
  name: string;
  expect: string;
  before: string;
  after: string;
  /** Does the case meet its expectation after the change? */
  passes: boolean;
}

export interface PolicyDiff {
  base: { origin: string; revision: string };
  head: { origin: string; revision: string };
  widened: DecisionChange[];
  narrowed: DecisionChange[];
  routes: RouteChange[];
  fixtures: FixtureChange[];
}

export type FailOn = 'widen' | 'narrow' | 'any';

function shapeOf(r: Route): RouteShape {
  return {
    route: r.id,
    action: r.action ?? null,
    checks: r.checks.map((c) => (c.target ? `${c.action}@${c.target}` : c.action)),
    to: r.to,
    auth: r.auth,
    guests: r.guests,
    line: r.line,
  };
}

const sameShape = (a: RouteShape, b: RouteShape) =>
  a.action === b.action && a.to === b.to && a.auth === b.auth && a.guests === b.guests && a.checks.join(' ') === b.checks.join(' ');

/**
 * Can `subject` ever pass `route` under `table`? Every check of the route must hold for
 * some target. A route without an action admits every caller that authenticates.
 */
export function routeAdmits(route: Route | undefined, table: DecisionTable, subject: Subject): boolean {
  if (route === undefined) return false;
  if (route.action === undefined) return true;
  return route.checks.every((c) =>
    c.action === 'grant' ? table.holds([subject], 'member:invite') || table.holds([subject], 'guest:invite') : table.holds([subject], c.action),
  );
}

/** Decision-level and route-level differences between two compiled revisions. */
export function diffBundles(base: PolicyBundle, head: PolicyBundle): Omit<PolicyDiff, 'fixtures'> {
  const before = base.table.rows();
  const after = head.table.rows();
  const widened: DecisionChange[] = [];
  const narrowed: DecisionChange[] = [];
  // Both tables are over the same domain, in the same order.
  before.forEach((b, i) => {
    const a = after[i]!;
    if (b.allow === a.allow) return;
    const change = { subject: b.subject, action: b.action, target_role: b.target_role, before: b.allow, after: a.allow };
    (a.allow ? widened : narrowed).push(change);
  });

  const baseRoutes = new Map(base.routes.routes.map((r) => [r.id, r]));
  const headRoutes = new Map(head.routes.routes.map((r) => [r.id, r]));
  const ids = [...new Set([...baseRoutes.keys(), ...headRoutes.keys()])];
  const routes: RouteChange[] = [];
  for (const id of ids) {
    const b = baseRoutes.get(id);
    const h = headRoutes.get(id);
    const bs = b ? shapeOf(b) : null;
    const hs = h ? shapeOf(h) : null;
    if (bs && hs && sameShape(bs, hs)) continue;
    const widens = SUBJECTS.filter((s) => routeAdmits(h, head.table, s) && !routeAdmits(b, base.table, s));
    const narrows = SUBJECTS.filter((s) => !routeAdmits(h, head.table, s) && routeAdmits(b, base.table, s));
    routes.push({ kind: !b ? 'added' : !h ? 'removed' : 'remapped', route: id, before: bs, after: hs, widens, narrows });
  }
  const order = { removed: 0, remapped: 1, added: 2 } as const;
  routes.sort((x, y) => order[x.kind] - order[y.kind] || (x.after?.line ?? x.before!.line) - (y.after?.line ?? y.before!.line));

  return {
    base: { origin: base.source.origin, revision: base.revision },
    head: { origin: head.source.origin, revision: head.revision },
    widened,
    narrowed,
    routes,
  };
}

/** Cases whose actual outcome differs between two runs of the same fixtures. */
export function diffFixtureResults(before: readonly FixtureResult[], after: readonly FixtureResult[]): FixtureChange[] {
  const changes: FixtureChange[] = [];
  before.forEach((fb, i) => {
    const fa = after[i]!;
    fb.results.forEach((rb: CaseResult, j) => {
      const ra = fa.results[j]!;
      if (rb.actual === ra.actual) return;
      changes.push({
        file: ra.case.file,
        line: ra.case.line,
        name: ra.case.name,
        expect: String(ra.case.expect),
        before: rb.actual,
        after: ra.actual,
        passes: ra.pass,
      });
    });
  });
  return changes;
}

export function isEmptyDiff(d: PolicyDiff): boolean {
  return d.widened.length === 0 && d.narrowed.length === 0 && d.routes.length === 0 && d.fixtures.length === 0;
}

/** Does the diff contain what `--fail-on` names? Route changes count by the subjects they admit. */
export function diffFails(d: PolicyDiff, on: FailOn): boolean {
  const widens = d.widened.length > 0 || d.routes.some((r) => r.widens.length > 0);
  const narrows = d.narrowed.length > 0 || d.routes.some((r) => r.narrows.length > 0);
  if (on === 'widen') return widens;
  if (on === 'narrow') return narrows;
  return widens || narrows || d.routes.length > 0;
}
