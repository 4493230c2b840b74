import type { Principal } from '../authn/authenticate.ts';
import type { UserAccess } from '../db/access-repo.ts';
import { NO_TARGET, type Action, type Subject } from '../domain.ts';
import { problem, type Problem } from '../http/problem.ts';
import type { DecisionTable, Target } from '../policy/decision-table.ts';

/**
 * Who the caller is in one workspace, and what they may see: used by the gate on
 * every request and again by native handlers under their write lock, so both
 * apply the very same visibility rules and word the very same denials.
 */

/** The caller's Casbin subjects for this request. */
export function subjectsFor(principal: Principal, access: UserAccess | undefined): Subject[] {
  if (principal.kind === 'token') return ['token'];
  const subjects: Subject[] = [];
  if (access?.workspaceRole) subjects.push(access.workspaceRole);
  if (access?.guestRole) subjects.push(`guest:${access.guestRole}`);
  return subjects;
}

/**
 * Visibility (CONTRACT §4): no role in the workspace, or a project that is not in it or
 * not visible to the caller, or a token not in the project, is a 404 — existence never leaks.
 */
export function visibilityProblem(access: UserAccess, params: Record<string, string>): Problem | undefined {
  if (!access.workspaceRole && !access.guestInWorkspace) return problem('not_found', 'no such workspace, or you have no access to it');
  if (params['p'] !== undefined && (!access.projectInWorkspace || (!access.workspaceRole && !access.guestRole))) {
    return problem('not_found', 'no such project in this workspace');
  }
  if (params['t'] !== undefined && !access.tokenInProject) return problem('not_found', 'no such token in this project');
  return undefined;
}

/** The 403 for an action (with a target role when the rank rule decided). */
export function forbidden(action: Action, target: Target = NO_TARGET): Problem {
  const what = target === NO_TARGET ? action : `${action} with the ${target} role`;
  return problem('forbidden', `you are not allowed to ${what} here`, {
    action,
    ...(target !== NO_TARGET ? { target_role: target } : {}),
  });
}

/** The first check the subjects fail, as its 403; undefined when all pass. */
export function firstForbidden(table: DecisionTable, subjects: Subject[], checks: { action: Action; target?: Target }[]): Problem | undefined {
  for (const check of checks) {
    const target = check.target ?? NO_TARGET;
    if (!table.allows(subjects, check.action, target)) return forbidden(check.action, target);
  }
  return undefined;
}
