import { z } from 'zod';
import { defineNative, type NativeDeps, type NativeHandlers } from './types.ts';
import { problem } from '../http/problem.ts';
import { newId } from '../crypto/ids.ts';
import { audit } from '../db/audit.ts';
import { fail, iso, json, ok, reauthorize, respond, userOf, type Result } from './common.ts';

const projectName = z.string().trim().min(1, 'must not be empty').max(100, 'at most 100 characters');
const projectBody = z.strictObject({ name: projectName });

function projectView(row: Record<string, unknown>) {
  return {
    id: String(row['id']),
    workspace_id: String(row['workspace_id']),
    name: String(row['name']),
    created_at: iso(Number(row['created_at'])),
    updated_at: iso(Number(row['updated_at'])),
  };
}

/** Projects: list (a guest sees only their projects), create, read, rename, delete. */
export function projectHandlers(deps: NativeDeps): NativeHandlers {
  const { db, now } = deps;
  return {
    'GET /v1/workspaces/{ws}/projects': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const user = userOf(ctx.outcome);
        // A workspace role covers every project; a guest-only caller sees the projects they are a guest of.
        const r = ctx.outcome.access?.workspaceRole
          ? await db.execute({
              sql: 'SELECT * FROM projects WHERE workspace_id = ? AND deleted_at IS NULL ORDER BY name, id',
              args: [ws],
            })
          : await db.execute({
              sql: `SELECT p.* FROM projects p JOIN project_guests g ON g.project_id = p.id AND g.user_id = ?
                    WHERE p.workspace_id = ? AND p.deleted_at IS NULL ORDER BY p.name, p.id`,
              args: [user.id, ws],
            });
        return json(200, { projects: r.rows.map((row) => projectView(row as unknown as Record<string, unknown>)) });
      },
    }),

    'POST /v1/workspaces/{ws}/projects': defineNative({
      body: projectBody,
      async handle(ctx) {
        const ws = ctx.param('ws');
        const { name } = ctx.body;
        const user = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<ReturnType<typeof projectView>>> => {
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'project:create' }]);
          if (!checked.ok) return fail(checked.problem);
          const at = now();
          const id = newId('prj');
          await tx.execute({
            sql: 'INSERT INTO projects (id, workspace_id, name, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)',
            args: [id, ws, name, user.id, at, at],
          });
          await audit(tx, { workspaceId: ws, actor: `user:${user.id}`, action: 'project.created', target: `project:${id}`, detail: { name }, requestId: ctx.requestId, at });
          return ok(projectView({ id, workspace_id: ws, name, created_at: at, updated_at: at }));
        });
        return respond(ctx, result, 201);
      },
    }),

    'GET /v1/workspaces/{ws}/projects/{p}': defineNative({
      async handle(ctx) {
        const r = await db.execute({
          sql: 'SELECT * FROM projects WHERE id = ? AND workspace_id = ? AND deleted_at IS NULL',
          args: [ctx.param('p'), ctx.param('ws')],
        });
        const row = r.rows[0];
        if (!row) return respond(ctx, fail(problem('not_found', 'no such project in this workspace')));
        return json(200, projectView(row as unknown as Record<string, unknown>));
      },
    }),

    'PATCH /v1/workspaces/{ws}/projects/{p}': defineNative({
      body: projectBody,
      async handle(ctx) {
        const ws = ctx.param('ws');
        const p = ctx.param('p');
        const { name } = ctx.body;
        const user = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<ReturnType<typeof projectView>>> => {
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'project:update' }]);
          if (!checked.ok) return fail(checked.problem);
          const at = now();
          const r = await tx.execute({
            sql: 'UPDATE projects SET name = ?, updated_at = ? WHERE id = ? AND workspace_id = ? AND deleted_at IS NULL RETURNING *',
            args: [name, at, p, ws],
          });
          const row = r.rows[0];
          if (!row) return fail(problem('not_found', 'no such project in this workspace'));
          await audit(tx, { workspaceId: ws, actor: `user:${user.id}`, action: 'project.updated', target: `project:${p}`, detail: { name }, requestId: ctx.requestId, at });
          return ok(projectView(row as unknown as Record<string, unknown>));
        });
        return respond(ctx, result);
      },
    }),

    'DELETE /v1/workspaces/{ws}/projects/{p}': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const p = ctx.param('p');
        const user = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<{ deleted: string; deactivated_tokens: number }>> => {
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'project:delete' }]);
          if (!checked.ok) return fail(checked.problem);
          const at = now();
          await tx.execute({ sql: 'UPDATE projects SET deleted_at = ? WHERE id = ? AND workspace_id = ?', args: [at, p, ws] });
          // The project's tokens stop working, its guests lose access, its pending guest invites die.
          const tokens = await tx.execute({
            sql: "UPDATE tokens SET active = 0, deactivated_at = ?, deactivated_reason = 'project_deleted' WHERE project_id = ? AND active = 1 RETURNING id",
            args: [at, p],
          });
          const guests = await tx.execute({ sql: 'DELETE FROM project_guests WHERE project_id = ? RETURNING user_id', args: [p] });
          await tx.execute({ sql: "UPDATE invites SET status = 'revoked', revoked_at = ? WHERE project_id = ? AND status = 'pending'", args: [at, p] });
          const actor = `user:${user.id}`;
          await audit(tx, { workspaceId: ws, actor, action: 'project.deleted', target: `project:${p}`, detail: { deactivated_tokens: tokens.rows.length, removed_guests: guests.rows.length }, requestId: ctx.requestId, at });
          for (const row of guests.rows) {
            await audit(tx, { workspaceId: ws, actor, action: 'guest.removed', target: `user:${String(row['user_id'])}`, detail: { project_id: p, reason: 'project_deleted' }, requestId: ctx.requestId, at });
          }
          for (const row of tokens.rows) {
            await audit(tx, { workspaceId: ws, actor, action: 'token.deactivated', target: `token:${String(row['id'])}`, detail: { reason: 'project_deleted' }, requestId: ctx.requestId, at });
          }
          return ok({ deleted: p, deactivated_tokens: tokens.rows.length });
        });
        return respond(ctx, result);
      },
    }),
  };
}
