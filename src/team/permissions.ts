import { isGuestRole } from '../domain.ts';
import { problem } from '../http/problem.ts';
import { permissionsFor } from '../policy/permissions.ts';
import { fail, json, respond, userOf } from './common.ts';
import { defineNative, type NativeContext, type NativeDeps, type NativeHandlers } from './types.ts';

/**
 * "What can I do here?" for the Org settings UI (CONTRACT §1, §4): the actions, the
 * invite role picker and the guest role picker, from the decision table in force.
 * The routes carry no action (anyone signed in may ask); the gate still applies
 * visibility to them, so a workspace or project the caller cannot see is its 404.
 */
export function permissionHandlers(deps: NativeDeps): NativeHandlers {
  const { db } = deps;

  async function answer(ctx: NativeContext<unknown>, projectId: string | undefined): Promise<Response> {
    const ws = ctx.param('ws');
    const user = userOf(ctx.outcome);
    // The gate read the caller's roles for this request and answered 404 where they see nothing.
    const access = ctx.outcome.access;
    if (!access) return respond(ctx, fail(problem('not_found', 'no such workspace, or you have no access to it')));
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
