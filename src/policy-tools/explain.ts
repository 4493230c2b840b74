import {
  isGuestRole,
  isSubject,
  isWorkspaceRole,
  NO_TARGET,
  SUBJECTS,
  type Action,
  type Subject,
  type WorkspaceRole,
} from '../domain.ts';
import { canonicalizeTarget } from '../http/canonical-path.ts';
import type { GateOutcome } from '../pipeline/types.ts';
import type { Route } from '../policy/route-map.ts';
import type { Target } from '../policy/decision-table.ts';
import { ROUTES_FILE, type PolicyBundle } from '../policy/bundle.ts';
import { routeAdmits } from './diff.ts';
import { policyFilePath, traceDecision, type DecisionTrace } from './trace.ts';
import { ANONYMOUS, createWorldEnv, type WorldEnv } from './world-env.ts';
import { worldSchema, type World } from './world.ts';

/** The principal name a synthesized world gives the caller. */
export const SYNTHETIC_CALLER = 'you';
const SYNTHETIC_OWNER = 'ws-owner';

export class ExplainError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExplainError';
  }
}

/** One rank or action check the gate made, and why it came out as it did. */
export interface ExplainedCheck {
  action: Action;
  /** The target role, `-` for none, or `*` for "any target" (the gate's first, target-free check). */
  target: string;
  allow: boolean;
  /** For an allow: the Casbin trace for each of the caller's subjects that allows it. */
  traces: DecisionTrace[];
  /** For a deny: the subjects that would have been allowed. */
  wouldAllow: Subject[];
}

export interface Explanation {
  request: string;
  world: string;
  canonical: string | undefined;
  /** Why hygiene refused the path. */
  refused: string | undefined;
  route: { id: string; action: string; checks: string[]; to: string; auth: string; ref: string } | undefined;
  principal: string;
  roles: Subject[];
  workspace: string | null;
  project: string | null;
  checks: ExplainedCheck[];
  result: { allow: boolean; status: number; code: string; detail: string | undefined };
  /** For a 404 on a route with an action: the subjects that could pass the route. */
  visibleTo: Subject[] | undefined;
}

export interface ExplainInput {
  bundle: PolicyBundle;
  /** A subject (without a world) or a user / token name of the world; `anonymous` for none. */
  as: string;
  method: string;
  target: string;
  body: Record<string, unknown> | undefined;
  /** A world from a file; without it, one is synthesized from `as` and the path. */
  world: { file: string; world: World; principals: Set<string> } | undefined;
  /** Synthesized worlds: the current role of the member `{user}` or the invite `{id}`. */
  targetRole: WorkspaceRole | undefined;
}

function routeFor(bundle: PolicyBundle, method: string, target: string): { route: Route; params: Record<string, string> } | undefined {
  const c = canonicalizeTarget(target);
  if (!c.ok) return undefined;
  const found = bundle.routes.lookup(method, c.segments);
  return found.kind === 'match' ? found.match : undefined;
}

/**
 * A world in which `as` (a subject) has exactly that role on the request's workspace and
 * project; the member `{user}` or the invite `{id}` has `targetRole`; `{t}` is a token of `{p}`.
 */
export function synthesizeWorld(
  subject: Subject | typeof ANONYMOUS,
  match: { route: Route; params: Record<string, string> } | undefined,
  targetRole: WorkspaceRole | undefined,
): { world: World; as: string; description: string } {
  const params = match?.params ?? {};
  const ws = params['ws'] ?? 'acme';
  const p = params['p'] ?? (subject === 'token' || subject.startsWith('guest:') ? 'web' : undefined);
  const owner = subject === 'owner' ? SYNTHETIC_CALLER : SYNTHETIC_OWNER;
  const members: Record<string, WorkspaceRole> = { [owner]: 'owner' };
  const world: World = { users: {}, workspaces: { [ws]: { members, projects: {} } }, tokens: {}, invites: {} };
  const notes: string[] = [];
  if (isWorkspaceRole(subject)) {
    members[SYNTHETIC_CALLER] = subject;
    notes.push(`your role in workspace ${ws} is ${subject}`);
  } else if (subject === 'none') {
    world.users![SYNTHETIC_CALLER] = {};
    notes.push(`you have no role in workspace ${ws}`);
  }
  if (p !== undefined) {
    const guests: Record<string, 'developer' | 'viewer'> = {};
    if (subject.startsWith('guest:')) guests[SYNTHETIC_CALLER] = subject.slice('guest:'.length) as 'developer' | 'viewer';
    world.workspaces![ws]!.projects![p] = { guests };
    if (subject.startsWith('guest:')) notes.push(`you are a ${subject.slice('guest:'.length)} guest of project ${ws}/${p}`);
  }
  if (subject === 'token') {
    world.tokens![SYNTHETIC_CALLER] = { project: `${ws}/${p}`, minted_by: owner };
    notes.push(`you are a project token of ${ws}/${p}`);
  }
  const checks = match?.route.checks ?? [];
  const needs = (t: string) => checks.some((c) => c.target === t);
  const user = params['user'];
  if (user !== undefined && user !== 'me' && user !== SYNTHETIC_CALLER && needs('member')) {
    if (!targetRole) throw new ExplainError(`this route's decision depends on the current role of member "${user}": pass --target-role ROLE`);
    members[user] = targetRole;
    notes.push(`member ${user} is ${targetRole}`);
  }
  const id = params['id'];
  if (id !== undefined && needs('invite')) {
    if (!targetRole) throw new ExplainError(`this route's decision depends on the role of invite "${id}": pass --target-role ROLE`);
    world.invites![id] = { workspace: ws, role: targetRole, invited_by: owner };
    notes.push(`invite ${id} is for ${targetRole}`);
  }
  const t = params['t'];
  if (t !== undefined && p !== undefined && t !== SYNTHETIC_CALLER) world.tokens![t] = { project: `${ws}/${p}`, minted_by: owner };
  const parsed = worldSchema.safeParse(world);
  if (!parsed.success) throw new ExplainError(`cannot build a world for this path: ${parsed.error.issues[0]!.message}`);
  return {
    world: parsed.data,
    as: subject === ANONYMOUS ? ANONYMOUS : SYNTHETIC_CALLER,
    description: subject === ANONYMOUS ? 'synthesized: no credentials' : `synthesized: ${notes.join('; ')}`,
  };
}

/** The targets of each of the route's checks, read as the gate reads them. */
async function checkTargets(
  env: WorldEnv,
  route: Route,
  params: Record<string, string>,
  body: Record<string, unknown> | undefined,
  roles: Subject[],
): Promise<{ action: Action; target: Target }[]> {
  const out: { action: Action; target: Target }[] = [];
  const ws = params['ws'] ?? '';
  for (const check of route.checks) {
    let target: Target = NO_TARGET;
    let projectInvite = false;
    switch (check.target) {
      case 'body.role':
        target = (isWorkspaceRole(body?.['role']) || isGuestRole(body?.['role']) ? body!['role'] : NO_TARGET) as Target;
        break;
      case 'member':
        target = (await env.access.memberRole(ws, params['user'] ?? '')) ?? NO_TARGET;
        break;
      case 'self':
        target = roles.find(isWorkspaceRole) ?? NO_TARGET;
        break;
      case 'invite': {
        const invite = await env.access.inviteTarget(ws, params['id'] ?? '');
        target = invite?.role ?? NO_TARGET;
        projectInvite = invite?.projectId !== undefined;
        break;
      }
      case undefined:
        break;
    }
    const action: Action = check.action === 'grant' ? (projectInvite ? 'guest:invite' : 'member:invite') : check.action;
    out.push({ action, target });
  }
  return out;
}

function explainCheck(bundle: PolicyBundle, roles: Subject[], action: Action, target: Target | '*'): ExplainedCheck {
  if (target === '*') {
    const allow = bundle.table.holds(roles, action);
    return {
      action,
      target,
      allow,
      traces: [],
      wouldAllow: allow ? [] : SUBJECTS.filter((s) => bundle.table.holds([s], action)),
    };
  }
  const allow = bundle.table.allows(roles, action, target);
  return {
    action,
    target,
    allow,
    traces: allow ? roles.filter((s) => bundle.table.allows([s], action, target)).map((s) => traceDecision(bundle, s, action, target)) : [],
    wouldAllow: allow ? [] : SUBJECTS.filter((s) => bundle.table.allows([s], action, target)),
  };
}

/** Runs one request through the real gate in a seeded world, and explains the decision. */
export async function explainRequest(input: ExplainInput): Promise<Explanation> {
  const { bundle } = input;
  const match = routeFor(bundle, input.method, input.target);
  let world: World;
  let as: string;
  let worldLabel: string;
  if (input.world) {
    if (input.as !== ANONYMOUS && !input.world.principals.has(input.as)) {
      throw new ExplainError(`"${input.as}" is not a user or token of ${input.world.file} (or "${ANONYMOUS}")`);
    }
    world = input.world.world;
    as = input.as;
    worldLabel = input.world.file;
  } else {
    if (input.as !== ANONYMOUS && !isSubject(input.as)) {
      throw new ExplainError(`without --world, --as is a subject (${SUBJECTS.join(', ')}) or ${ANONYMOUS}`);
    }
    const s = synthesizeWorld(input.as as Subject | typeof ANONYMOUS, match, input.targetRole);
    world = s.world;
    as = s.as;
    worldLabel = s.description;
  }

  const env = await createWorldEnv(world, () => bundle);
  try {
    const outcome: GateOutcome = await env.request({ as, method: input.method, target: input.target, body: input.body, headers: [] });
    const d = outcome.decision;
    const canonical = canonicalizeTarget(input.target);
    const route = match?.route;
    const roles = outcome.allow ? outcome.subjects : d.roles;
    const code = outcome.allow ? 'ok' : outcome.problem.code;

    const checks: ExplainedCheck[] = [];
    if (route?.action !== undefined && (outcome.allow || code === 'forbidden')) {
      // The gate's order: does the caller hold the action for any target, then each check with its target.
      const first = explainCheck(bundle, roles, route.action, '*');
      if (!first.allow || !route.checks.some((c) => c.target !== undefined)) {
        checks.push(first.allow ? explainCheck(bundle, roles, route.action, NO_TARGET) : first);
      } else {
        for (const { action, target } of await checkTargets(env, route, match!.params, input.body, roles)) {
          const c = explainCheck(bundle, roles, action, target);
          checks.push(c);
          if (!c.allow) break;
        }
      }
    }
    const visibleTo =
      !outcome.allow && code === 'not_found' && route?.action !== undefined
        ? SUBJECTS.filter((s) => routeAdmits(route, bundle.table, s))
        : undefined;

    return {
      request: `${input.method} ${input.target}`,
      world: worldLabel,
      canonical: canonical.ok ? canonical.path : undefined,
      refused: canonical.ok ? undefined : canonical.reason,
      route: route
        ? {
            id: route.id,
            action: route.action ?? '-',
            checks: route.checks.map((c) => (c.target ? `${c.action}@${c.target}` : c.action)),
            to: route.to,
            auth: route.auth,
            ref: `${policyFilePath(bundle, ROUTES_FILE)}:${route.line}`,
          }
        : undefined,
      // Hygiene and the route map come before authentication: say so rather than "anonymous".
      principal: canonical.ok && route ? d.principal : `${input.as} (not authenticated: the gate stopped before that step)`,
      roles,
      workspace: d.workspace,
      project: d.project,
      checks,
      result: {
        allow: outcome.allow,
        status: outcome.allow ? 200 : d.status,
        code,
        detail: outcome.allow ? undefined : outcome.problem.detail,
      },
      visibleTo,
    };
  } finally {
    await env.close();
  }
}
