import { z } from 'zod';
import type { Transaction } from '@libsql/client';
import { defineNative, type NativeContext, type NativeDeps, type NativeHandlers } from './types.ts';
import { WORKSPACE_ROLES, isWorkspaceRole, type WorkspaceRole } from '../domain.ts';
import { problem } from '../http/problem.ts';
import { isLastOwnerError } from '../db/errors.ts';
import { audit } from '../db/audit.ts';
import { fail, iso, json, ok, reauthorize, respond, userOf, type Result } from './common.ts';
import { inviteView } from './invites/service.ts';
import type { InviteRow } from './invites/sql.ts';
import { deactivateMintedTokens } from './token-deactivation.ts';

const updateRoleBody = z.strictObject({ role: z.enum(WORKSPACE_ROLES) });

export interface MemberView {
  user_id: string;
  email: string | null;
  role: WorkspaceRole;
  joined_at: string | null;
}

async function memberView(tx: { execute: Transaction['execute'] }, ws: string, userId: string): Promise<MemberView | undefined> {
  const r = await tx.execute({
    sql: `SELECT m.user_id, u.email, m.role, m.joined_at FROM memberships m JOIN users u ON u.id = m.user_id
          WHERE m.workspace_id = ? AND m.user_id = ?`,
    args: [ws, userId],
  });
  const row = r.rows[0];
  if (!row || !isWorkspaceRole(row['role'])) return undefined;
  return { user_id: String(row['user_id']), email: row['email'] === null ? null : String(row['email']), role: row['role'], joined_at: iso(Number(row['joined_at'])) };
}

/** Members: list, change role, remove, leave. Rank rules come from the policy, re-checked under the write lock. */
export function memberHandlers(deps: NativeDeps): NativeHandlers {
  const { db, now } = deps;

  async function removeMember(ctx: NativeContext<unknown>, targetUserId: string, leaving: boolean): Promise<Result<{ removed: string; deactivated_tokens: number }>> {
    const ws = ctx.param('ws');
    const actor = userOf(ctx.outcome);
    return db.write(async (tx) => {
      const current = await memberView(tx, ws, targetUserId);
      if (!current) return fail(problem('not_found', 'no such member in this workspace'));
      const checked = await reauthorize(tx, ctx.outcome, [{ action: leaving ? 'member:leave' : 'member:remove', target: current.role }]);
      if (!checked.ok) return fail(checked.problem);
      const at = now();
      try {
        await tx.execute({ sql: 'DELETE FROM memberships WHERE workspace_id = ? AND user_id = ?', args: [ws, targetUserId] });
      } catch (err) {
        if (isLastOwnerError(err)) return fail(problem('last_owner', 'a workspace must keep at least one owner'));
        throw err;
      }
      // Tokens the member personally minted on the workspace's projects die with the membership.
      const actorLabel = `user:${actor.id}`;
      const tokens = await deactivateMintedTokens(
        tx,
        { workspaceId: ws, userId: targetUserId },
        { reason: leaving ? 'member_left' : 'member_removed', actor: actorLabel, requestId: ctx.requestId, at },
      );
      await audit(tx, {
        workspaceId: ws,
        actor: actorLabel,
        action: leaving ? 'member.left' : 'member.removed',
        target: `user:${targetUserId}`,
        detail: { role: current.role, deactivated_tokens: tokens },
        requestId: ctx.requestId,
        at,
      });
      return ok({ removed: targetUserId, deactivated_tokens: tokens.length });
    });
  }

  return {
    'GET /v1/workspaces/{ws}/members': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const members = await db.execute({
          sql: `SELECT m.user_id, u.email, m.role, m.joined_at FROM memberships m JOIN users u ON u.id = m.user_id
                WHERE m.workspace_id = ?
                ORDER BY CASE m.role WHEN 'owner' THEN 0 WHEN 'admin' THEN 1 WHEN 'developer' THEN 2 WHEN 'billing' THEN 3 ELSE 4 END, u.email, m.user_id`,
          args: [ws],
        });
        // Pending (and expired, so they can be re-issued) workspace invites; never their links.
        const invites = await db.execute({
          sql: `SELECT * FROM invites WHERE workspace_id = ? AND project_id IS NULL AND status IN ('pending', 'expired')
                ORDER BY created_at, id`,
          args: [ws],
        });
        const at = now();
        return json(200, {
          members: members.rows.map((r) => ({
            user_id: String(r['user_id']),
            email: r['email'] === null ? null : String(r['email']),
            role: String(r['role']),
            joined_at: iso(Number(r['joined_at'])),
          })),
          invites: invites.rows.map((r) => inviteView(r as unknown as InviteRow, at)),
        });
      },
    }),

    'PATCH /v1/workspaces/{ws}/members/{user}': defineNative({
      body: updateRoleBody,
      async handle(ctx) {
        const ws = ctx.param('ws');
        const target = ctx.param('user');
        const { role: next } = ctx.body;
        const actor = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<MemberView & { deactivated_tokens: number }>> => {
          const current = await memberView(tx, ws, target);
          if (!current) return fail(problem('not_found', 'no such member in this workspace'));
          // R1 → R2 is allowed iff update-role on R1 and invite on R2 (CONTRACT §1), on fresh roles.
          const checked = await reauthorize(tx, ctx.outcome, [
            { action: 'member:update-role', target: current.role },
            { action: 'member:invite', target: next },
          ]);
          if (!checked.ok) return fail(checked.problem);
          if (current.role === next) return ok({ ...current, deactivated_tokens: 0 });
          const at = now();
          try {
            await tx.execute({ sql: 'UPDATE memberships SET role = ? WHERE workspace_id = ? AND user_id = ?', args: [next, ws, target] });
          } catch (err) {
            if (isLastOwnerError(err)) return fail(problem('last_owner', 'a workspace must keep at least one owner'));
            throw err;
          }
          // A role that may no longer mint tokens keeps none it minted as a member: the policy's
          // "no token access" for billing and viewer holds for their old tokens too.
          const table = ctx.outcome.bundle.table;
          const actorLabel = `user:${actor.id}`;
          const tokens =
            table.allows([current.role], 'token:create') && !table.allows([next], 'token:create')
              ? await deactivateMintedTokens(
                  tx,
                  { workspaceId: ws, userId: target, mintedAs: 'member' },
                  { reason: 'member_demoted', actor: actorLabel, requestId: ctx.requestId, at },
                )
              : [];
          await audit(tx, {
            workspaceId: ws,
            actor: actorLabel,
            action: 'member.role_changed',
            target: `user:${target}`,
            detail: { from: current.role, to: next, deactivated_tokens: tokens },
            requestId: ctx.requestId,
            at,
          });
          return ok({ ...current, role: next, deactivated_tokens: tokens.length });
        });
        return respond(ctx, result);
      },
    }),

    'DELETE /v1/workspaces/{ws}/members/{user}': defineNative({
      async handle(ctx) {
        return respond(ctx, await removeMember(ctx, ctx.param('user'), false));
      },
    }),

    'DELETE /v1/workspaces/{ws}/members/me': defineNative({
      async handle(ctx) {
        return respond(ctx, await removeMember(ctx, userOf(ctx.outcome).id, true));
      },
    }),
  };
}
