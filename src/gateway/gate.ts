import { randomUUID } from 'node:crypto';
import type { Action, Subject, WorkspaceRole } from '../domain.ts';
import { isGuestRole, isWorkspaceRole, NO_TARGET } from '../domain.ts';
import { isProblem, parseAuthorization, type Authenticator, type Principal } from '../authn/authenticate.ts';
import type { Target } from '../policy/decision-table.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import type { AccessRepo, InviteTarget, UserAccess } from '../db/access-repo.ts';
import { problem, statusOf, type Problem, type ProblemCode } from '../http/problem.ts';
import { canonicalizeTarget } from '../http/canonical-path.ts';
import type { Route, RouteCheck } from '../policy/route-map.ts';

/** Header names are compared after lower-casing and mapping `_` and `.` to `-`. */
export function normalizeHeaderName(name: string): string {
  return name.toLowerCase().replace(/[_.]/g, '-');
}

/** Headers that ask a server to use another method, or another path, than the request line's. */
const METHOD_OVERRIDE_HEADERS = new Set(['x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-method']);
const TARGET_OVERRIDE_HEADERS = new Set(['x-original-url', 'x-rewrite-url', 'x-original-uri']);

/** Host as RFC 9110 §7.2 allows it: a name or IP literal, and an optional port. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** A query parameter some frameworks read as the method (`_method=DELETE`). */
function hasMethodOverrideParam(query: string | undefined): boolean {
  if (query === undefined) return false;
  for (const pair of query.split('&')) {
    const name = pair.split('=', 1)[0]!;
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // malformed escapes were refused by hygiene
    }
    if (decoded.trim().toLowerCase() === '_method') return true;
  }
  return false;
}

export interface GateRequest {
  method: string;
  /** The raw request-target, exactly as received. */
  target: string;
  /** Raw header name/value pairs, as received (duplicates kept). */
  rawHeaders: readonly string[];
  /** Reads and parses the JSON body (native routes only); a Problem for a bad or oversized body. */
  readJsonBody: () => Promise<Record<string, unknown> | undefined | Problem>;
}

/** One decision, as the decision log records it. */
export interface Decision {
  decision_id: string;
  request_id: string;
  principal: string;
  method: string;
  path: string;
  route: string | null;
  action: Action | null;
  target_role: string | null;
  workspace: string | null;
  project: string | null;
  roles: Subject[];
  result: 'allow' | 'deny';
  code: ProblemCode | 'ok';
  status: number;
  policy_revision: string;
  mode: 'enforce' | 'shadow';
}

export interface Allowed {
  allow: true;
  decision: Decision;
  bundle: PolicyBundle;
  route: Route;
  params: Record<string, string>;
  path: string;
  query: string | undefined;
  principal: Principal;
  access: UserAccess | undefined;
  subjects: Subject[];
  body: Record<string, unknown> | undefined;
  /** What target checks looked up, for the native handler to re-check under its write lock. */
  member: { userId: string; role: WorkspaceRole } | undefined;
  invite: InviteTarget | undefined;
  /** Shadow mode only: the policy denied, but the request is forwarded anyway. */
  shadowDenied: Problem | undefined;
}

export interface Denied {
  allow: false;
  decision: Decision;
  problem: Problem;
  /** Close the connection after answering (an unread body is left on it). */
  closeConnection: boolean;
  /** What failed, when the deny comes from an error on the decision path. */
  error?: unknown;
}

/** Errors that mean the database (or the policy) cannot be read: 503, fail closed. */
export function isUnavailableError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string } | undefined;
  const name = e?.name ?? '';
  const code = String(e?.code ?? '');
  return (
    name === 'LibsqlError' ||
    name === 'SqliteError' ||
    name === 'PolicyError' ||
    /^SQLITE_/.test(code) ||
    code === 'CLIENT_CLOSED' ||
    /database connection is not open/i.test(String(e?.message ?? ''))
  );
}

export type GateOutcome = Allowed | Denied;

export interface GateDeps {
  policy: () => PolicyBundle;
  authenticator: Authenticator;
  access: AccessRepo;
  mode: 'enforce' | 'shadow';
}

/**
 * Redacts secrets from a path before it is logged. The path is first decoded
 * leniently (every valid %XX), so no spelling of it hides a secret: whatever follows
 * "invites" and a slash or backslash up to the next one (an invite link token) and
 * anything shaped like a project token's private key become "[redacted]".
 */
export function redactPath(path: string): string {
  const decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return decoded
    .replace(/(invites)[/\\]+[^/\\?#]*/gi, '$1/[redacted]')
    .replace(/sk_[A-Za-z0-9]+/g, 'sk_[redacted]')
    .slice(0, 512);
}

/** A fresh decision for a request, before anything is known: a deny until decided. */
export function newDecision(d: { requestId: string; method: string; path: string; policyRevision: string; mode: 'enforce' | 'shadow' }): Decision {
  return {
    decision_id: randomUUID(),
    request_id: d.requestId,
    principal: 'anonymous',
    method: d.method,
    path: d.path,
    route: null,
    action: null,
    target_role: null,
    workspace: null,
    project: null,
    roles: [],
    result: 'deny',
    code: 'ok',
    status: 200,
    policy_revision: d.policyRevision,
    mode: d.mode,
  };
}

/** The caller's Casbin subjects for this request. */
export function subjectsFor(principal: Principal, access: UserAccess | undefined): Subject[] {
  if (principal.kind === 'token') return ['token'];
  const subjects: Subject[] = [];
  if (access?.workspaceRole) subjects.push(access.workspaceRole);
  if (access?.guestRole) subjects.push(`guest:${access.guestRole}`);
  return subjects;
}

function principalLabel(p: Principal): string {
  return p.kind === 'user' ? `user:${p.id}` : p.kind === 'token' ? `token:${p.id}` : 'anonymous';
}

/**
 * The decision path: hygiene → route → authenticate → resolve roles → decide.
 * Pure reads: nothing here writes, and every failure is a deny.
 */
export class Gate {
  constructor(private readonly deps: GateDeps) {}

  /**
   * Decides one request. Never throws: an error on the decision path (the database
   * or the policy unreadable, a bug) is a deny — 503 `unavailable` for the database,
   * 500 otherwise — and is logged like any other decision. `error` carries the cause
   * for the operational log.
   */
  async evaluate(req: GateRequest, requestId: string): Promise<GateOutcome> {
    const bundle = this.deps.policy();
    const partial: { decision?: Decision } = {};
    try {
      return await this.decide(req, requestId, bundle, partial);
    } catch (error) {
      const decision = partial.decision!;
      const p = isUnavailableError(error)
        ? problem('unavailable', 'the gateway cannot decide right now')
        : problem('internal_error', 'internal error');
      decision.result = 'deny';
      decision.code = p.code;
      decision.status = statusOf(p.code);
      return { allow: false, decision, problem: p, closeConnection: false, error };
    }
  }

  private async decide(req: GateRequest, requestId: string, bundle: PolicyBundle, partial: { decision?: Decision }): Promise<GateOutcome> {
    // Hygiene first, so the path is redacted (a regex pass) once: the canonical one, or the raw one.
    const canonical = canonicalizeTarget(req.target);
    const decision = newDecision({
      requestId,
      method: req.method,
      path: redactPath(canonical.ok ? canonical.path : (req.target.split('?')[0] ?? '')),
      policyRevision: bundle.revision,
      mode: this.deps.mode,
    });
    partial.decision = decision;
    const deny = (p: Problem, closeConnection = false): Denied => {
      decision.result = 'deny';
      decision.code = p.code;
      decision.status = statusOf(p.code);
      return { allow: false, decision, problem: p, closeConnection };
    };

    // 1. Request hygiene (computed above): one canonical path, or a refusal.
    if (!canonical.ok) return deny(problem(canonical.code, canonical.reason));

    if (hasMethodOverrideParam(canonical.query)) {
      return deny(problem('method_override', 'the _method query parameter is not accepted'));
    }
    const authorization: string[] = [];
    const hosts: string[] = [];
    let transferEncoding: string | undefined;
    let contentLength: string | undefined;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = normalizeHeaderName(req.rawHeaders[i]!);
      const value = req.rawHeaders[i + 1]!;
      if (METHOD_OVERRIDE_HEADERS.has(name)) {
        return deny(problem('method_override', `the ${req.rawHeaders[i]} header is not accepted`));
      }
      if (TARGET_OVERRIDE_HEADERS.has(name)) {
        return deny(problem('bad_request', `the ${req.rawHeaders[i]} header is not accepted`));
      }
      if (name === 'authorization') authorization.push(value);
      else if (name === 'host') hosts.push(value);
      else if (name === 'transfer-encoding') transferEncoding = value;
      else if (name === 'content-length') contentLength = value;
    }
    // The Host becomes X-Forwarded-Host upstream: exactly one, well-formed.
    if (hosts.length !== 1 || !HOST.test(hosts[0]!)) {
      return deny(problem('bad_request', 'send exactly one valid Host header'));
    }
    // Only plain chunking: other transfer-codings would reach the upstream re-framed but still coded.
    if (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked') {
      return deny(problem('bad_request', 'the only transfer-coding accepted is chunked'));
    }
    const hasBody = transferEncoding !== undefined || (contentLength !== undefined && contentLength !== '0');

    // 2. Route.
    const lookup = bundle.routes.lookup(req.method, canonical.segments);
    if (lookup.kind === 'not_found') return deny(problem('not_found', 'no such route'));
    if (lookup.kind === 'method_not_allowed') {
      return deny(
        problem('method_not_allowed', `${req.method} is not allowed here`, { allow: lookup.allow }, { allow: lookup.allow.join(', ') }),
      );
    }
    const { route, params } = lookup.match;
    // GET and HEAD carry no body here: a body on them is how requests get smuggled past proxies.
    if (hasBody && (req.method === 'GET' || req.method === 'HEAD')) {
      return deny(problem('unexpected_body', `a ${req.method} request takes no body`), true);
    }
    decision.route = route.id;
    decision.action = route.action ?? null;
    decision.workspace = params['ws'] ?? null;
    decision.project = params['p'] ?? null;

    // 3. Authenticate.
    const credentials = parseAuthorization(authorization);
    if (isProblem(credentials)) return deny(credentials);
    let principal: Principal = { kind: 'anonymous' };
    if (route.auth === 'jwt') {
      const p = await this.deps.authenticator.user(credentials);
      if (isProblem(p)) return deny(p);
      principal = p;
    } else if (route.auth === 'token') {
      const p = await this.deps.authenticator.token(credentials);
      if (isProblem(p)) return deny(p);
      principal = p;
      decision.workspace = p.kind === 'token' ? p.workspaceId : null;
      decision.project = p.kind === 'token' ? p.projectId : null;
    }
    decision.principal = principalLabel(principal);

    const allowed = (subjects: Subject[], access: UserAccess | undefined, extra: Partial<Allowed> = {}): Allowed => {
      decision.result = 'allow';
      decision.roles = subjects;
      return {
        allow: true,
        decision,
        bundle,
        route,
        params,
        path: canonical.path,
        query: canonical.query,
        principal,
        access,
        subjects,
        body: undefined,
        member: undefined,
        invite: undefined,
        shadowDenied: undefined,
        ...extra,
      };
    };

    // Routes without an action (self-service, invite links): authentication was the check.
    if (route.action === undefined) return allowed([], undefined);

    // 4. Resolve roles and containment (one read, every request: changes are immediate).
    let access: UserAccess | undefined;
    if (principal.kind === 'user' && params['ws'] !== undefined) {
      access = await this.deps.access.userAccess({
        userId: principal.id,
        workspaceId: params['ws'],
        projectId: params['p'],
        tokenId: params['t'],
        guestScope: route.guests,
      });
    }
    // Shadow mode forwards what a route matches even when the policy denies (logged as a deny);
    // hygiene and authentication are still enforced, and native routes are never shadowed.
    const policyDeny = (p: Problem): GateOutcome =>
      route.to === 'upstream' && this.deps.mode === 'shadow'
        ? this.shadow(allowed(subjectsFor(principal, access), access), p)
        : deny(p);
    if (access) {
      // Visibility: no role in the workspace, or a project that is not in it or not visible, is 404.
      if (!access.workspaceRole && !access.guestInWorkspace) {
        return policyDeny(problem('not_found', 'no such workspace, or you have no access to it'));
      }
      if (params['p'] !== undefined && (!access.projectInWorkspace || (!access.workspaceRole && !access.guestRole))) {
        return policyDeny(problem('not_found', 'no such project in this workspace'));
      }
      if (params['t'] !== undefined && !access.tokenInProject) {
        return policyDeny(problem('not_found', 'no such token in this project'));
      }
    }
    const subjects = subjectsFor(principal, access);
    decision.roles = subjects;

    // 5. Decide. First: does the caller hold the action at all (before any body is read)?
    const table = bundle.table;
    if (!table.holds(subjects, route.action)) {
      return policyDeny(problem('forbidden', `you are not allowed to ${route.action} here`, { action: route.action }));
    }

    const needsTargets = route.checks.some((c) => c.target !== undefined);
    if (!needsTargets) return allowed(subjects, access);

    // Target-role checks (rank rules) need the body or the row acted on.
    let body: Record<string, unknown> | undefined;
    if (route.checks.some((c) => c.target === 'body.role')) {
      const parsed = await req.readJsonBody();
      if (isProblem(parsed)) return deny(parsed, parsed.code === 'payload_too_large');
      if (parsed === undefined) return deny(problem('invalid_body', 'a JSON body with a "role" is required'));
      body = parsed;
    }
    let member: Allowed['member'];
    let invite: InviteTarget | undefined;
    const ws = params['ws']!;
    for (const check of route.checks) {
      let target: Target = NO_TARGET;
      let action: Action;
      switch (check.target) {
        case 'body.role': {
          const role = body?.['role'];
          const valid = check.action === 'guest:invite' ? isGuestRole(role) : isWorkspaceRole(role);
          if (!valid) {
            const allowedRoles = check.action === 'guest:invite' ? 'developer or viewer' : 'owner, admin, developer, billing or viewer';
            return deny(problem('invalid_body', `"role" must be one of ${allowedRoles}`));
          }
          target = role as Target;
          break;
        }
        case 'member': {
          const userId = params['user']!;
          const role = await this.deps.access.memberRole(ws, userId);
          if (!role) return deny(problem('not_found', 'no such member in this workspace'));
          member = { userId, role };
          target = role;
          break;
        }
        case 'self': {
          if (principal.kind !== 'user' || !access?.workspaceRole) {
            return deny(problem('not_found', 'you are not a member of this workspace'));
          }
          member = { userId: principal.id, role: access.workspaceRole };
          target = access.workspaceRole;
          break;
        }
        case 'invite': {
          invite ??= await this.deps.access.inviteTarget(ws, params['id']!);
          if (!invite) return deny(problem('not_found', 'no such invite in this workspace'));
          target = invite.role;
          break;
        }
        case undefined:
          break;
      }
      action = resolveCheckAction(check, invite);
      decision.target_role ??= target === NO_TARGET ? null : target;
      if (!table.allows(subjects, action, target)) {
        const what = target === NO_TARGET ? action : `${action} with the ${target} role`;
        return deny(problem('forbidden', `you are not allowed to ${what} here`, {
          action,
          ...(target !== NO_TARGET ? { target_role: target } : {}),
        }));
      }
    }
    return allowed(subjects, access, { body, member, invite });
  }

  private shadow(outcome: Allowed, p: Problem): Allowed {
    // Shadow mode: the decision is a deny and is logged as one, but the request goes upstream.
    outcome.decision.result = 'deny';
    outcome.decision.code = p.code;
    outcome.decision.status = statusOf(p.code);
    outcome.shadowDenied = p;
    return outcome;
  }
}

function resolveCheckAction(check: RouteCheck, invite: InviteTarget | undefined): Action {
  if (check.action !== 'grant') return check.action;
  // The action that created the invite must still allow its role (an admin cannot re-issue an owner invite).
  return invite?.projectId ? 'guest:invite' : 'member:invite';
}

