import { AccessRepo } from '../db/access-repo.ts';
import { isGuestRole } from '../domain.ts';
import { visibilityProblem } from '../pipeline/access.ts';
import { permissionsFor } from '../policy/permissions.ts';
import { fail, json, respond, userOf } from './common.ts';
import { defineNative, type NativeContext, type NativeDeps, type NativeHandlers } from './types.ts';

/**
 * "What can I do here?" for the Org settings UI (CONTRACT §1, §4): the actions, the
 * invite role picker and the guest role picker, from the decision table in force.
 * The routes carry no action (anyone signed in may ask), so visibility is checked
 * here, with the gate's own rules: a workspace or project the caller cannot see is 404.
 */
export function permissionHandlers(deps: NativeDeps): NativeHandlers {
  const { db } = deps;
  const repo = new AccessRepo(db);

  async function answer(ctx: NativeContext<unknown>, projectId: string | undefined): Promise<Response> {
    const ws = ctx.param('ws');
    const user = userOf(ctx.outcome);
    const access = await repo.userAccess({ userId: user.id, workspaceId: ws, projectId, tokenId: undefined, guestScope: projectId === undefined ? 'workspace' : 'project' });
    const invisible = visibilityProblem(access, projectId === undefined ? { ws } : { ws, p: projectId });
    if (invisible) return respond(ctx, fail(invisible));
    const bundle = ctx.outcome.bundle;
    const level = projectId === undefined ? 'workspace' : 'project';
    const perms = permissionsFor(bundle.table, bundle.routes.routes, { workspaceRole: access.workspaceRole, guestRole: access.guestRole, level });
    if (projectId !== undefined) {
      return json(200, { workspace: ws, project: projectId, role: access.workspaceRole ?? null, guest_role: access.guestRole ?? null, ...perms, policy_revision: bundle.revision });
    }
    const guests = await db.execute({
      sql: `SELECT g.project_id, g.role FROM project_guests g JOIN projects p ON p.id = g.project_id AND p.deleted_at IS NULL
            WHERE g.user_id = ? AND g.workspace_id = ? ORDER BY g.project_id`,
      args: [user.id, ws],
    });
    return json(200, {
      workspace: ws,
      role: access.workspaceRole ?? null,
      guest_projects: guests.rows.filter((r) => isGuestRole(r['role'])).map((r) => ({ project_id: String(r['project_id']), role: String(r['role']) })),
      ...perms,
      policy_revision: bundle.revision,
    });
  }

  return {
    'GET /v1/workspaces/{ws}/permissions': defineNative({ handle: (ctx) => answer(ctx, undefined) }),
    'GET /v1/workspaces/{ws}/projects/{p}/permissions': defineNative({ handle: (ctx) => answer(ctx, ctx.param('p')) }),
  };
}
