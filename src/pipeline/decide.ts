import type { Principal } from '../authn/authenticate.ts';
import type { AccessRepo, InviteTarget, UserAccess } from '../db/access-repo.ts';
import { isGuestRole, isWorkspaceRole, NO_TARGET, type Action, type Subject, type WorkspaceRole } from '../domain.ts';
import { isProblem, problem } from '../http/problem.ts';
import type { DecisionTable, Target } from '../policy/decision-table.ts';
import type { RouteCheck, RouteMatch } from '../policy/route-map.ts';
import { forbidden } from './access.ts';
import { refuse, type GateRequest, type Refusal } from './types.ts';

/** What the rank rules looked up, for the native handler to re-check under its write lock. */
export interface TargetFacts {
  body: Record<string, unknown> | undefined;
  member: { userId: string; role: WorkspaceRole } | undefined;
  invite: InviteTarget | undefined;
  /** The first target role a check used (the decision log's `target_role`). */
  targetRole: string | null;
}

const NO_FACTS: TargetFacts = { body: undefined, member: undefined, invite: undefined, targetRole: null };

export interface DecideInput {
  table: DecisionTable;
  repo: AccessRepo;
  req: GateRequest;
  match: RouteMatch;
  principal: Principal;
  access: UserAccess | undefined;
  subjects: Subject[];
}

/**
 * Step 5, the rank rules: each of the route's checks against its target role — the
 * role in the body, the member's or the caller's current role, or the invite's role.
 * The caller already holds the route's action (checked before any body is read).
 */
export async function checkTargets(input: DecideInput): Promise<TargetFacts | Refusal> {
  const { table, repo, req, match, principal, access, subjects } = input;
  const { route, params } = match;
  if (!route.checks.some((c) => c.target !== undefined)) return NO_FACTS;

  let body: Record<string, unknown> | undefined;
  if (route.checks.some((c) => c.target === 'body.role')) {
    const parsed = await req.readJsonBody();
    if (isProblem(parsed)) return refuse(parsed, parsed.code === 'payload_too_large');
    if (parsed === undefined) return refuse(problem('invalid_body', 'a JSON body with a "role" is required'));
    body = parsed;
  }
  const facts: TargetFacts = { body, member: undefined, invite: undefined, targetRole: null };
  const ws = params['ws']!;
  // A refusal inside the loop still logs the target role a check got to.
  const stop = (p: Parameters<typeof refuse>[0]): Refusal => ({ ...refuse(p), targetRole: facts.targetRole });
  for (const check of route.checks) {
    let target: Target = NO_TARGET;
    switch (check.target) {
      case 'body.role': {
        const role = body?.['role'];
        const valid = check.action === 'guest:invite' ? isGuestRole(role) : isWorkspaceRole(role);
        if (!valid) {
          const allowedRoles = check.action === 'guest:invite' ? 'developer or viewer' : 'owner, admin, developer, billing or viewer';
          return stop(problem('invalid_body', `"role" must be one of ${allowedRoles}`));
        }
        target = role as Target;
        break;
      }
      case 'member': {
        const userId = params['user']!;
        const role = await repo.memberRole(ws, userId);
        if (!role) return stop(problem('not_found', 'no such member in this workspace'));
        facts.member = { userId, role };
        target = role;
        break;
      }
      case 'self': {
        if (principal.kind !== 'user' || !access?.workspaceRole) return stop(problem('not_found', 'you are not a member of this workspace'));
        facts.member = { userId: principal.id, role: access.workspaceRole };
        target = access.workspaceRole;
        break;
      }
      case 'invite': {
        facts.invite ??= await repo.inviteTarget(ws, params['id']!);
        if (!facts.invite) return stop(problem('not_found', 'no such invite in this workspace'));
        target = facts.invite.role;
        break;
      }
      case undefined:
        break;
    }
    const action = resolveCheckAction(check, facts.invite);
    facts.targetRole ??= target === NO_TARGET ? null : target;
    if (!table.allows(subjects, action, target)) return stop(forbidden(action, target));
  }
  return facts;
}

function resolveCheckAction(check: RouteCheck, invite: InviteTarget | undefined): Action {
  if (check.action !== 'grant') return check.action;
  // The action that created the invite must still allow its role (an admin cannot re-issue an owner invite).
  return invite?.projectId ? 'guest:invite' : 'member:invite';
}
