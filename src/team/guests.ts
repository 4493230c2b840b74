import { defineNative, type NativeDeps, type NativeHandlers } from './types.ts';
import { problem } from '../http/problem.ts';
import { guestInviteBody } from './invites/schemas.ts';
import { createInvite, inviteView, type CreatedInvite } from './invites/service.ts';
import type { InviteRow } from './invites/sql.ts';
import { deactivateMintedTokens } from './token-deactivation.ts';
import { audit } from '../db/audit.ts';
import { fail, iso, json, ok, reauthorize, respond, userOf, type Result } from './common.ts';

/** Project guests: access to one project without workspace membership. */
export function guestHandlers(deps: NativeDeps): NativeHandlers {
  const { db, now } = deps;
  return {
    'GET /v1/workspaces/{ws}/projects/{p}/guests': defineNative({
      async handle(ctx) {
        const p = ctx.param('p');
        const guests = await db.execute({
          sql: `SELECT g.user_id, u.email, g.role, g.added_at FROM project_guests g JOIN users u ON u.id = g.user_id
                WHERE g.project_id = ? ORDER BY u.email, g.user_id`,
          args: [p],
        });
        const invites = await db.execute({
          sql: "SELECT * FROM invites WHERE project_id = ? AND status IN ('pending', 'expired') ORDER BY created_at, id",
          args: [p],
        });
        const at = now();
        return json(200, {
          guests: guests.rows.map((r) => ({
            user_id: String(r['user_id']),
            email: r['email'] === null ? null : String(r['email']),
            role: String(r['role']),
            added_at: iso(Number(r['added_at'])),
          })),
          invites: invites.rows.map((r) => inviteView(r as unknown as InviteRow, at)),
        });
      },
    }),

    'POST /v1/workspaces/{ws}/projects/{p}/guests': defineNative({
      body: guestInviteBody,
      async handle(ctx) {
        const ws = ctx.param('ws');
        const p = ctx.param('p');
        const body = ctx.body;
        const actor = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<CreatedInvite>> => {
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'guest:invite', target: body.role }]);
          if (!checked.ok) return fail(checked.problem);
          return createInvite(tx, deps, { workspaceId: ws, projectId: p, email: body.email, role: body.role, invitedBy: actor.id, requestId: ctx.requestId });
        });
        return respond(ctx, result, 201);
      },
    }),

    'DELETE /v1/workspaces/{ws}/projects/{p}/guests/{user}': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const p = ctx.param('p');
        const target = ctx.param('user');
        const actor = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<{ removed: string; project_id: string; deactivated_tokens: number }>> => {
          const checked = await reauthorize(tx, ctx.outcome, [{ action: 'guest:remove' }]);
          if (!checked.ok) return fail(checked.problem);
          const removed = await tx.execute({ sql: 'DELETE FROM project_guests WHERE project_id = ? AND user_id = ? RETURNING role', args: [p, target] });
          if (removed.rows.length === 0) return fail(problem('not_found', 'no such guest on this project'));
          const at = now();
          // Only this project's guest access ends: tokens minted here as a guest. Workspace membership,
          // other guest grants and tokens minted as a member stay.
          const actorLabel = `user:${actor.id}`;
          const tokens = await deactivateMintedTokens(
            tx,
            { workspaceId: ws, userId: target, projectId: p, mintedAs: 'guest' },
            { reason: 'guest_removed', actor: actorLabel, requestId: ctx.requestId, at },
          );
          await audit(tx, { workspaceId: ws, actor: actorLabel, action: 'guest.removed', target: `user:${target}`, detail: { project_id: p, role: String(removed.rows[0]!['role']), deactivated_tokens: tokens }, requestId: ctx.requestId, at });
          return ok({ removed: target, project_id: p, deactivated_tokens: tokens.length });
        });
        return respond(ctx, result);
      },
    }),
  };
}
