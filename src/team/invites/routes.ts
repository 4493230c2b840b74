import { problem } from '../../http/problem.ts';
import { fail, iso, json, reauthorize, respond, userOf } from '../common.ts';
import { defineNative, type NativeDeps, type NativeHandlers } from '../types.ts';
import { inviteBody } from './schemas.ts';
import { acceptInvite, createInvite, effectiveStatus, inviteView, linkProblem, reissueInvite, revokeInvite, senderCannotGrant, type CreatedInvite } from './service.ts';
import { inviteByLink, type InviteRow } from './sql.ts';

/** Invites: create, list, revoke, re-issue, preview and accept. */
export function inviteHandlers(deps: NativeDeps): NativeHandlers {
  const { db, now } = deps;

  return {
    'POST /v1/workspaces/{ws}/invites': defineNative({
      body: inviteBody,
      async handle(ctx) {
        const ws = ctx.param('ws');
        const body = ctx.body;
        const actor = userOf(ctx.outcome);
        const result = await db.write(async (tx) => {
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'member:invite', target: body.role }]);
          if (!checked.ok) return fail<CreatedInvite>(checked.problem);
          return createInvite(tx, deps, { workspaceId: ws, projectId: null, email: body.email, role: body.role, invitedBy: actor.id, requestId: ctx.requestId });
        });
        return respond(ctx, result, 201);
      },
    }),

    'GET /v1/workspaces/{ws}/invites': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const r = await db.execute({ sql: 'SELECT * FROM invites WHERE workspace_id = ? ORDER BY created_at, id', args: [ws] });
        const at = now();
        return json(200, {
          invites: r.rows.map((row) => {
            const i = row as unknown as InviteRow;
            return { ...inviteView(i, at), invited_by: i.invited_by, created_at: iso(i.created_at), accepted_by: i.accepted_by, accepted_at: iso(i.accepted_at) };
          }),
        });
      },
    }),

    'DELETE /v1/workspaces/{ws}/invites/{id}': defineNative({
      async handle(ctx) {
        const actor = userOf(ctx.outcome);
        return respond(ctx, await db.write((tx) => revokeInvite(tx, deps, { outcome: ctx.outcome, workspaceId: ctx.param('ws'), inviteId: ctx.param('id'), actorId: actor.id, requestId: ctx.requestId })));
      },
    }),

    'POST /v1/workspaces/{ws}/invites/{id}/reissue': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const id = ctx.param('id');
        const actor = userOf(ctx.outcome);
        const result = await db.write((tx) => reissueInvite(tx, deps, { outcome: ctx.outcome, workspaceId: ws, inviteId: id, actorId: actor.id, requestId: ctx.requestId }));
        return respond(ctx, result);
      },
    }),

    'GET /v1/invites/{token}': defineNative({
      async handle(ctx) {
        const found = await inviteByLink(db, ctx.param('token'));
        if (!found) return respond(ctx, fail(problem('not_found', 'no such invite link')));
        const at = now();
        const gone = linkProblem(found, at) ?? (await senderCannotGrant(db, found.invite, ctx.outcome.bundle.table));
        if (gone) return respond(ctx, fail(gone));
        const i = found.invite;
        const names = await db.execute({
          sql: `SELECT w.name AS workspace_name, p.name AS project_name, u.email AS inviter_email
                FROM workspaces w LEFT JOIN projects p ON p.id = ? LEFT JOIN users u ON u.id = ? WHERE w.id = ?`,
          args: [i.project_id, i.invited_by, i.workspace_id],
        });
        const n = names.rows[0];
        return json(200, {
          workspace: { id: i.workspace_id, name: n ? String(n['workspace_name']) : null },
          ...(i.project_id !== null ? { project: { id: i.project_id, name: n?.['project_name'] === null || n === undefined ? null : String(n['project_name']) } } : {}),
          role: i.role,
          invited_by: { user_id: i.invited_by, email: n?.['inviter_email'] === null || n === undefined ? null : String(n['inviter_email']) },
          email: i.email,
          expires_at: iso(i.expires_at),
          status: effectiveStatus(i, at),
        });
      },
    }),

    'POST /v1/invites/{token}/accept': defineNative({
      async handle(ctx) {
        const user = userOf(ctx.outcome);
        const token = ctx.param('token');
        const result = await db.write((tx) => acceptInvite(tx, deps, { outcome: ctx.outcome, user, token, requestId: ctx.requestId }));
        return respond(ctx, result);
      },
    }),
  };
}
