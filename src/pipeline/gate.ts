import type { Principal } from '../authn/authenticate.ts';
import type { UserAccess } from '../db/access-repo.ts';
import { isUnavailableError } from '../db/errors.ts';
import type { Subject } from '../domain.ts';
import { canonicalizeTarget } from '../http/canonical-path.ts';
import { problem, statusOf, type Problem } from '../http/problem.ts';
import { newDecision, redactPath, type Decision } from '../log/decision.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import type { RouteMatch } from '../policy/route-map.ts';
import { forbidden } from './access.ts';
import { authenticateFor, principalLabel } from './authenticate.ts';
import { checkTargets, type TargetFacts } from './decide.ts';
import { checkHygiene, type CleanRequest } from './hygiene.ts';
import { resolveRoles } from './resolve.ts';
import { matchRoute } from './route.ts';
import { isRefusal, type Allowed, type Denied, type GateDeps, type GateOutcome, type GateRequest, type Refusal } from './types.ts';

/** Decides requests: hygiene → route → authenticate → resolve roles → decide. */
export interface Gate {
  /**
   * Decides one request. Never throws: an error on the decision path (the database
   * or the policy unreadable, a bug) is a deny — 503 `unavailable` for the database,
   * 500 otherwise — logged like any other decision, with `error` carrying the cause.
   */
  evaluate(req: GateRequest, requestId: string): Promise<GateOutcome>;
}

/** The decision path. Pure reads: nothing here writes, and every failure is a deny. */
export function createGate(deps: GateDeps): Gate {
  return {
    async evaluate(req, requestId) {
      const bundle = deps.policy();
      // Canonical first, so the path is redacted (a regex pass) once: the canonical one, or the raw one.
      const canonical = canonicalizeTarget(req.target);
      const decision = newDecision({
        requestId,
        method: req.method,
        path: redactPath(canonical.ok ? canonical.path : (req.target.split('?')[0] ?? '')),
        policyRevision: bundle.revision,
        mode: deps.mode,
        ...(req.traceId !== undefined ? { traceId: req.traceId } : {}),
      });
      try {
        const clean = checkHygiene(canonical, req.rawHeaders);
        if (isRefusal(clean)) return denied(decision, clean);
        return await decideClean(deps, bundle, req, clean, decision);
      } catch (error) {
        const p = isUnavailableError(error) ? problem('unavailable', 'the gateway cannot decide right now') : problem('internal_error', 'internal error');
        return { ...denied(decision, { refused: p, close: false }), error };
      }
    },
  };
}

function denied(decision: Decision, r: Refusal): Denied {
  decision.result = 'deny';
  decision.code = r.refused.code;
  decision.status = statusOf(r.refused.code);
  if (r.targetRole !== undefined) decision.target_role = r.targetRole;
  return { allow: false, decision, problem: r.refused, closeConnection: r.close };
}

async function decideClean(deps: GateDeps, bundle: PolicyBundle, req: GateRequest, clean: CleanRequest, decision: Decision): Promise<GateOutcome> {
  const match = matchRoute(bundle, req.method, clean);
  if (isRefusal(match)) return denied(decision, match);
  const { route, params } = match;
  decision.route = route.id;
  decision.action = route.action ?? null;
  decision.workspace = params['ws'] ?? null;
  decision.project = params['p'] ?? null;

  const principal = await authenticateFor(deps.authenticator, route, clean.authorization);
  if (isRefusal(principal)) return denied(decision, principal);
  if (principal.kind === 'token') {
    decision.workspace = principal.workspaceId;
    decision.project = principal.projectId;
  }
  decision.principal = principalLabel(principal);
  const allow = (subjects: Subject[], access: UserAccess | undefined, facts?: TargetFacts) =>
    allowed({ decision, bundle, match, clean, principal, subjects, access, facts });

  // Routes without an action (self-service, invite links): authentication was the check.
  // Under a workspace ({ws}: the permissions routes) visibility still applies: a caller with no
  // role there gets the gate's 404 (a deny in the decision log), as on every workspace route.
  if (route.action === undefined && (params['ws'] === undefined || principal.kind !== 'user')) return allow([], undefined);

  const { access, subjects, invisible } = await resolveRoles(deps.access, principal, route, params);
  if (route.action === undefined) {
    if (invisible) return denied(decision, { refused: invisible, close: false });
    decision.roles = subjects;
    return allow(subjects, access);
  }
  // Shadow mode forwards what a route matches even when the policy denies (logged as a deny);
  // hygiene and authentication are still enforced, and native routes are never shadowed.
  const policyDeny = (p: Problem): GateOutcome =>
    route.to === 'upstream' && deps.mode === 'shadow' ? shadow(allow(subjects, access), p) : denied(decision, { refused: p, close: false });
  if (invisible) return policyDeny(invisible);
  decision.roles = subjects;
  // Does the caller hold the action at all (before any body is read)?
  if (!bundle.table.holds(subjects, route.action)) return policyDeny(forbidden(route.action));

  const facts = await checkTargets({ table: bundle.table, repo: deps.access, req, match, principal, access, subjects });
  if (isRefusal(facts)) return denied(decision, facts);
  decision.target_role = facts.targetRole;
  return allow(subjects, access, facts);
}

function allowed(a: {
  decision: Decision;
  bundle: PolicyBundle;
  match: RouteMatch;
  clean: CleanRequest;
  principal: Principal;
  subjects: Subject[];
  access: UserAccess | undefined;
  facts: TargetFacts | undefined;
}): Allowed {
  a.decision.result = 'allow';
  a.decision.roles = a.subjects;
  return {
    allow: true,
    decision: a.decision,
    bundle: a.bundle,
    route: a.match.route,
    params: a.match.params,
    path: a.clean.canonical.path,
    query: a.clean.canonical.query,
    host: a.clean.host,
    chunked: a.clean.chunked,
    bodyless: a.clean.bodyless,
    principal: a.principal,
    access: a.access,
    subjects: a.subjects,
    body: a.facts?.body,
    member: a.facts?.member,
    invite: a.facts?.invite,
    shadowDenied: undefined,
  };
}

/** Shadow mode: the decision is a deny and is logged as one, but the request goes upstream. */
function shadow(outcome: Allowed, p: Problem): Allowed {
  outcome.decision.result = 'deny';
  outcome.decision.code = p.code;
  outcome.decision.status = statusOf(p.code);
  outcome.shadowDenied = p;
  return outcome;
}
