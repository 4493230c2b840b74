import type { Principal } from '../authn/authenticate.ts';
import type { AccessRepo, UserAccess } from '../db/access-repo.ts';
import type { Subject } from '../domain.ts';
import type { Problem } from '../http/problem.ts';
import type { Route } from '../policy/route-map.ts';
import { subjectsFor, visibilityProblem } from './access.ts';

export interface Resolved {
  access: UserAccess | undefined;
  subjects: Subject[];
  /** The 404 when the caller cannot see the workspace, project or token. */
  invisible: Problem | undefined;
}

/**
 * Step 4: the caller's roles and the containment of `{p}` in `{ws}` and `{t}` in `{p}`,
 * in one read on every request (access changes are immediate), then visibility.
 */
export async function resolveRoles(repo: AccessRepo, principal: Principal, route: Route, params: Record<string, string>): Promise<Resolved> {
  let access: UserAccess | undefined;
  if (principal.kind === 'user' && params['ws'] !== undefined) {
    access = await repo.userAccess({
      userId: principal.id,
      workspaceId: params['ws'],
      projectId: params['p'],
      tokenId: params['t'],
      guestScope: route.guests,
    });
  }
  return { access, subjects: subjectsFor(principal, access), invisible: access ? visibilityProblem(access, params) : undefined };
}
