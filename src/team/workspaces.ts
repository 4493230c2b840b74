import { z } from 'zod';
import { defineNative, type NativeDeps, type NativeHandlers } from './types.ts';
import { isGuestRole, isWorkspaceRole } from '../domain.ts';
import { problem } from '../http/problem.ts';
import { newId } from '../crypto/ids.ts';
import { audit } from '../db/audit.ts';
import { ensureUser, fail, json, ok, respond, userOf, type Result } from './common.ts';

export const workspaceName = z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters');

const createWorkspaceBody = z.strictObject({ name: workspaceName });
const personalWorkspaceBody = z.strictObject({ name: workspaceName.optional() });

export interface WorkspaceView {
  id: string;
  name: string;
  role: string | null;
}

/** Workspaces: the caller's own (created on first purchase), new ones, and the list with the switcher. */
export function workspaceHandlers(deps: NativeDeps): NativeHandlers {
  const { db, now } = deps;

  async function createWorkspace(
    user: Parameters<typeof ensureUser>[1],
    name: string,
    personal: boolean,
    requestId: string,
  ): Promise<Result<{ workspace: WorkspaceView; created: boolean }>> {
    return db.write(async (tx) => {
      const at = now();
      await ensureUser(tx, user, at);
      if (personal) {
        // Idempotent: BEGIN IMMEDIATE serializes concurrent first calls, and personal_for is UNIQUE.
        const existing = await tx.execute({
          sql: `SELECT w.id, w.name, m.role FROM workspaces w
                LEFT JOIN memberships m ON m.workspace_id = w.id AND m.user_id = ?
                WHERE w.personal_for = ?`,
          args: [user.id, user.id],
        });
        const row = existing.rows[0];
        if (row) {
          return ok({
            workspace: { id: String(row['id']), name: String(row['name']), role: row['role'] === null ? null : String(row['role']) },
            created: false,
          });
        }
      }
      const id = newId('ws');
      await tx.execute({
        sql: 'INSERT INTO workspaces (id, name, personal_for, created_by, created_at) VALUES (?, ?, ?, ?, ?)',
        args: [id, name, personal ? user.id : null, user.id, at],
      });
      await tx.execute({
        sql: "INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES (?, ?, 'owner', ?)",
        args: [id, user.id, at],
      });
      await audit(tx, {
        workspaceId: id,
        actor: `user:${user.id}`,
        action: 'workspace.created',
        target: `workspace:${id}`,
        detail: { name, personal },
        requestId,
        at,
      });
      return ok({ workspace: { id, name, role: 'owner' }, created: true });
    });
  }

  return {
    'PUT /v1/me/workspace': defineNative({
      body: personalWorkspaceBody,
      bodyOptional: true,
      async handle(ctx) {
        const user = userOf(ctx.outcome);
        const body = ctx.body ?? {};
        const defaultName = user.email ? `${user.email.split('@')[0]}'s workspace` : 'My workspace';
        const result = await createWorkspace(user, body.name ?? defaultName, true, ctx.requestId);
        if (!result.ok) return respond(ctx, result);
        return json(result.value.created ? 201 : 200, { ...result.value.workspace, created: result.value.created });
      },
    }),

    'POST /v1/workspaces': defineNative({
      body: createWorkspaceBody,
      async handle(ctx) {
        const user = userOf(ctx.outcome);
        const body = ctx.body;
        const result = await createWorkspace(user, body.name, false, ctx.requestId);
        if (!result.ok) return respond(ctx, result);
        return json(201, result.value.workspace);
      },
    }),

    'GET /v1/me/workspaces': defineNative({
      async handle(ctx) {
        const user = userOf(ctx.outcome);
        const query = new URL(ctx.c.req.url).searchParams;
        const switcherParam = query.get('switcher');
        const parsed = z.stringbool().optional().safeParse(switcherParam ?? undefined);
        if (!parsed.success) {
          return respond(ctx, fail(problem('bad_request', 'switcher must be true or false')));
        }
        const table = ctx.outcome.bundle.table;
        const memberships = await db.execute({
          sql: `SELECT w.id, w.name, m.role FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
                WHERE m.user_id = ? ORDER BY w.name, w.id`,
          args: [user.id],
        });
        let workspaces = memberships.rows
          .filter((r) => isWorkspaceRole(r['role']))
          .map((r) => ({ id: String(r['id']), name: String(r['name']), role: String(r['role']) as 'owner' }));
        // The switcher lists the workspaces where the policy grants workspace:switch (owner and admin by default).
        if (parsed.data === true) workspaces = workspaces.filter((w) => table.allows([w.role], 'workspace:switch'));
        const guests = await db.execute({
          sql: `SELECT g.workspace_id, g.project_id, g.role FROM project_guests g
                JOIN projects p ON p.id = g.project_id AND p.deleted_at IS NULL
                WHERE g.user_id = ? ORDER BY g.workspace_id, g.project_id`,
          args: [user.id],
        });
        const guestProjects =
          parsed.data === true
            ? []
            : guests.rows
                .filter((r) => isGuestRole(r['role']))
                .map((r) => ({ workspace_id: String(r['workspace_id']), project_id: String(r['project_id']), role: String(r['role']) }));
        return json(200, { workspaces, guest_projects: guestProjects });
      },
    }),

    'GET /v1/workspaces/{ws}': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const r = await db.execute({ sql: 'SELECT id, name, created_at FROM workspaces WHERE id = ?', args: [ws] });
        const row = r.rows[0];
        if (!row) return respond(ctx, fail(problem('not_found', 'no such workspace, or you have no access to it')));
        return json(200, {
          id: String(row['id']),
          name: String(row['name']),
          my_role: ctx.outcome.access?.workspaceRole ?? null,
          created_at: new Date(Number(row['created_at'])).toISOString(),
        });
      },
    }),
  };
}
