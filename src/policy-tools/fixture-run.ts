import { NO_TARGET, type Action, type Subject } from '../domain.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import type { Fixture, FixtureCase } from './fixture-types.ts';
import { createWorldEnv, type WorldEnv } from './world-env.ts';

/** Runs parsed fixtures through the real decision path in a seeded world. */
// ---------------------------------------------------------------------------------------------
// Running

/** What actually happened to a case. */
export interface CaseOutcome {
  allow: boolean;
  /** 200 for an allow; the problem's status for a deny (403 for a denied action case). */
  status: number;
  code: string;
  subjects: Subject[];
  action: Action | null;
  target_role: string | null;
  detail: string | undefined;
  /** The route a request matched (`METHOD pattern`); null for action cases and unmatched requests. */
  route: string | null;
}

export interface CaseResult {
  case: FixtureCase;
  outcome: CaseOutcome;
  pass: boolean;
  /** `allow`, or `403 forbidden` (requests) / `deny` (actions). */
  actual: string;
  /** One line saying why a failed case failed. */
  message: string | undefined;
  durationMs: number;
}

export interface FixtureResult {
  fixture: Fixture;
  results: CaseResult[];
}

/** `allow` / `deny` for an action case; `allow` or `STATUS code` for a request. */
export function describeOutcome(c: FixtureCase, o: CaseOutcome): string {
  if (o.allow) return 'allow';
  return c.kind === 'action' ? 'deny' : `${o.status} ${o.code}`;
}

export function meetsExpectation(c: FixtureCase, o: CaseOutcome): boolean {
  switch (c.expect) {
    case 'allow':
      return o.allow;
    case 'deny':
      // A request's deny is a decision (403) or the visibility rule (404), not a 400 or 401.
      return !o.allow && (c.kind === 'action' || o.status === 403 || o.status === 404);
    default:
      return !o.allow && o.status === c.expect;
  }
}

function failureMessage(c: FixtureCase, o: CaseOutcome, actual: string): string {
  const roles = o.subjects.length > 0 ? o.subjects.join(', ') : 'none';
  const what = o.action ? `${o.action}${o.target_role ? `@${o.target_role}` : ''}` : 'no action';
  const detail = !o.allow && o.detail ? ` (${o.detail})` : '';
  return `expected ${c.expect}, got ${actual}${detail} [roles: ${roles}; ${what}]`;
}

async function runCase(env: WorldEnv, c: FixtureCase): Promise<CaseOutcome> {
  if (c.kind === 'action') {
    const d = await env.decideAction({ as: c.as, workspace: c.workspace, project: c.project, action: c.action, target: c.target });
    const target_role = c.target === NO_TARGET ? null : c.target;
    if (d.problem) {
      return { allow: false, status: 401, code: d.problem.code, subjects: [], action: c.action, target_role, detail: d.problem.detail, route: null };
    }
    return {
      allow: d.allow,
      status: d.allow ? 200 : 403,
      code: d.allow ? 'ok' : 'forbidden',
      subjects: d.subjects,
      action: c.action,
      target_role,
      detail: undefined,
      route: null,
    };
  }
  const out = await env.request({ as: c.as, method: c.method, target: c.requestTarget, body: c.body, headers: c.headers });
  const d = out.decision;
  return {
    allow: out.allow,
    status: out.allow ? 200 : d.status,
    code: out.allow ? 'ok' : out.problem.code,
    subjects: out.allow ? out.subjects : d.roles,
    action: out.allow ? d.action : ((out.problem.extra?.['action'] as Action | undefined) ?? d.action),
    target_role: out.allow ? d.target_role : ((out.problem.extra?.['target_role'] as string | undefined) ?? d.target_role),
    detail: out.allow ? undefined : out.problem.detail,
    route: d.route,
  };
}

/** Runs one fixture file against a policy bundle: one seeded world, every case through the real decision path. */
export async function runFixture(fixture: Fixture, bundle: PolicyBundle): Promise<FixtureResult> {
  const env = await createWorldEnv(fixture.world, () => bundle);
  const results: CaseResult[] = [];
  try {
    for (const c of fixture.cases) {
      const started = performance.now();
      let outcome: CaseOutcome;
      try {
        outcome = await runCase(env, c);
      } catch (err) {
        const detail = (err as Error).message;
        outcome = { allow: false, status: 500, code: 'internal_error', subjects: [], action: null, target_role: null, detail, route: null };
      }
      const actual = describeOutcome(c, outcome);
      const pass = meetsExpectation(c, outcome);
      results.push({ case: c, outcome, pass, actual, message: pass ? undefined : failureMessage(c, outcome, actual), durationMs: performance.now() - started });
    }
  } finally {
    await env.close();
  }
  return { fixture, results };
}

export async function runFixtures(fixtures: readonly Fixture[], bundle: PolicyBundle): Promise<FixtureResult[]> {
  const out: FixtureResult[] = [];
  for (const f of fixtures) out.push(await runFixture(f, bundle));
  return out;
}
