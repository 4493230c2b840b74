import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { Transaction } from '@libsql/client';
import { defineNative, type NativeContext, type NativeDeps, type NativeHandlers } from '../types.ts';
import { GUEST_ROLES, WORKSPACE_ROLES, isWorkspaceRole, type Action, type WorkspaceRole } from '../../domain.ts';
import type { DecisionTable } from '../../policy/decision-table.ts';
import { deactivateMintedTokens } from '../token-deactivation.ts';
import { sha256 } from '../../crypto/hash.ts';
import { problem } from '../../http/problem.ts';
import { newId } from '../../crypto/ids.ts';
import { isUniqueViolation } from '../../db/errors.ts';
import { audit } from '../../db/audit.ts';
import { ensureUser, fail, iso, json, ok, reauthorize, respond, userOf, type Result } from '../common.ts';

const DAY_MS = 24 * 60 * 60 * 1000;

/** Emails are compared case-insensitively: stored lower-cased. */
export const emailSchema = z
  .string()
  .trim()
  .max(254)
  .pipe(z.email({ message: 'must be an email address' }))
  .transform((e) => e.toLowerCase());

const inviteBody = z.strictObject({ email: emailSchema, role: z.enum(WORKSPACE_ROLES) });
export const guestInviteBody = z.strictObject({ email: emailSchema, role: z.enum(GUEST_ROLES) });

/** Invite link tokens: 256 random bits, base64url (43 characters). Only a hash is stored. */
const LINK_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export interface InviteRow {
  id: string;
  workspace_id: string;
  project_id: string | null;
  email: string;
  role: string;
  status: string;
  invited_by: string;
  created_at: number;
  expires_at: number;
  accepted_by: string | null;
  accepted_at: number | null;
  revoked_at: number | null;
}

/** What an invite's status is now: a pending invite past its expiry is expired. */
export function effectiveStatus(row: Pick<InviteRow, 'status' | 'expires_at'>, at: number): string {
  return row.status === 'pending' && Number(row.expires_at) <= at ? 'expired' : row.status;
}

export function inviteView(row: InviteRow, at: number) {
  return {
    id: row.id,
    email: row.email,
    role: row.role,
    status: effectiveStatus(row, at),
    expires_at: iso(row.expires_at),
    ...(row.project_id !== null ? { project_id: row.project_id } : {}),
  };
}

export interface CreatedInvite {
  invite: ReturnType<typeof inviteView>;
  accept_url: string;
}

/** Creates an invite and its link inside the caller's write transaction. */
export async function createInvite(
  tx: Transaction,
  deps: NativeDeps,
  args: { workspaceId: string; projectId: string | null; email: string; role: string; invitedBy: string; requestId: string },
): Promise<Result<CreatedInvite>> {
  const at = deps.now();
  // Already in: a member (workspace invite) or a guest of the project (guest invite), by verified email.
  const existing = args.projectId === null
    ? await tx.execute({
        sql: `SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
              WHERE m.workspace_id = ? AND u.email = ? AND u.email_verified = 1 LIMIT 1`,
        args: [args.workspaceId, args.email],
      })
    : await tx.execute({
        sql: `SELECT 1 FROM project_guests g JOIN users u ON u.id = g.user_id
              WHERE g.project_id = ? AND u.email = ? AND u.email_verified = 1 LIMIT 1`,
        args: [args.projectId, args.email],
      });
  if (existing.rows.length > 0) {
    return fail(problem('already_member', args.projectId === null ? 'this email already belongs to a member' : 'this email already belongs to a guest of the project'));
  }
  const pending = await tx.execute({
    sql: `SELECT id, expires_at FROM invites WHERE workspace_id = ? AND ifnull(project_id, '') = ? AND email = ? AND status = 'pending'`,
    args: [args.workspaceId, args.projectId ?? '', args.email],
  });
  const open = pending.rows[0];
  if (open) {
    if (Number(open['expires_at']) > at) return fail(problem('invite_pending', 'an invite for this email is already pending', { invite_id: String(open['id']) }));
    // An expired invite does not block a new one.
    await tx.execute({ sql: "UPDATE invites SET status = 'expired' WHERE id = ?", args: [String(open['id'])] });
  }
  const id = newId('inv');
  const expiresAt = at + deps.inviteTtlDays * DAY_MS;
  await tx.execute({
    sql: `INSERT INTO invites (id, workspace_id, project_id, email, role, status, invited_by, created_at, expires_at)
          VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?)`,
    args: [id, args.workspaceId, args.projectId, args.email, args.role, args.invitedBy, at, expiresAt],
  });
  const token = await newLink(tx, id, at);
  await audit(tx, {
    workspaceId: args.workspaceId,
    actor: `user:${args.invitedBy}`,
    action: 'invite.sent',
    target: `invite:${id}`,
    detail: { email: args.email, role: args.role, ...(args.projectId ? { project_id: args.projectId } : {}) },
    requestId: args.requestId,
    at,
  });
  const row: InviteRow = {
    id, workspace_id: args.workspaceId, project_id: args.projectId, email: args.email, role: args.role, status: 'pending',
    invited_by: args.invitedBy, created_at: at, expires_at: expiresAt, accepted_by: null, accepted_at: null, revoked_at: null,
  };
  return ok({ invite: inviteView(row, at), accept_url: deps.inviteUrl.replace('{token}', token) });
}

/** Replaces the invite's current link with a new one; the old link answers 410 from now on. */
async function newLink(tx: Transaction, inviteId: string, at: number): Promise<string> {
  await tx.execute({ sql: 'UPDATE invite_links SET replaced_at = ? WHERE invite_id = ? AND replaced_at IS NULL', args: [at, inviteId] });
  const token = randomBytes(32).toString('base64url');
  await tx.execute({ sql: 'INSERT INTO invite_links (token_hash, invite_id, created_at) VALUES (?, ?, ?)', args: [sha256(token), inviteId, at] });
  return token;
}

async function inviteById(tx: { execute: Transaction['execute'] }, ws: string, id: string): Promise<InviteRow | undefined> {
  const r = await tx.execute({ sql: 'SELECT * FROM invites WHERE workspace_id = ? AND id = ?', args: [ws, id] });
  return r.rows[0] as unknown as InviteRow | undefined;
}

type LinkLookup = { invite: InviteRow; replaced: boolean } | undefined;

async function inviteByLink(tx: { execute: Transaction['execute'] }, token: string): Promise<LinkLookup> {
  if (!LINK_TOKEN.test(token)) return undefined;
  const r = await tx.execute({
    sql: `SELECT i.*, l.replaced_at AS link_replaced_at FROM invite_links l JOIN invites i ON i.id = l.invite_id WHERE l.token_hash = ?`,
    args: [sha256(token)],
  });
  const row = r.rows[0];
  if (!row) return undefined;
  return { invite: row as unknown as InviteRow, replaced: row['link_replaced_at'] !== null };
}

/** Why a link cannot be used (410s with distinct codes), or undefined when it can. */
function linkProblem(found: NonNullable<LinkLookup>, at: number) {
  const status = effectiveStatus(found.invite, at);
  if (status === 'accepted') return problem('invite_used', 'this invite link has already been used');
  if (status === 'revoked') return problem('invite_revoked', 'this invite was revoked');
  if (found.replaced) return problem('invite_revoked', 'this invite link was replaced by a newer one; use the latest link');
  if (status === 'expired') return problem('invite_expired', 'this invite link has expired; ask for a new one');
  return undefined;
}

/**
 * An invite grants what its sender may grant *now*: if the sender was removed, or
 * demoted below the invited role, since, the link no longer grants it (410).
 */
async function senderCannotGrant(tx: { execute: Transaction['execute'] }, i: InviteRow, table: DecisionTable) {
  const sender = await tx.execute({
    sql: 'SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?',
    args: [i.workspace_id, i.invited_by],
  });
  const role = sender.rows[0]?.['role'];
  if (isWorkspaceRole(role) && table.allows([role], grantActionOf(i), i.role as WorkspaceRole)) return undefined;
  return problem('invite_revoked', 'the member who sent this invite can no longer grant this role; ask for a new invite');
}

/** The action that created an invite, which re-issuing it needs again. */
export function grantActionOf(invite: Pick<InviteRow, 'project_id'>): Action {
  return invite.project_id === null ? 'member:invite' : 'guest:invite';
}

/** Invites: create, list, revoke, re-issue, preview and accept. */
export function inviteHandlers(deps: NativeDeps): NativeHandlers {
  const { db, now } = deps;

  async function revoke(ctx: NativeContext<unknown>): Promise<Result<ReturnType<typeof inviteView>>> {
    const ws = ctx.param('ws');
    const id = ctx.param('id');
    const actor = userOf(ctx.outcome);
    return db.write(async (tx) => {
      const checked = await reauthorize(tx, ctx.outcome, [{ action: 'invite:revoke' }]);
      if (!checked.ok) return fail(checked.problem);
      const invite = await inviteById(tx, ws, id);
      if (!invite) return fail(problem('not_found', 'no such invite in this workspace'));
      if (invite.status !== 'pending') return fail(problem('invite_not_pending', `the invite is ${invite.status}; only a pending invite can be revoked`));
      const at = now();
      await tx.execute({ sql: "UPDATE invites SET status = 'revoked', revoked_at = ? WHERE id = ?", args: [at, id] });
      await audit(tx, { workspaceId: ws, actor: `user:${actor.id}`, action: 'invite.revoked', target: `invite:${id}`, detail: { email: invite.email, role: invite.role }, requestId: ctx.requestId, at });
      return ok(inviteView({ ...invite, status: 'revoked', revoked_at: at }, at));
    });
  }

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
        return respond(ctx, await revoke(ctx));
      },
    }),

    'POST /v1/workspaces/{ws}/invites/{id}/reissue': defineNative({
      async handle(ctx) {
        const ws = ctx.param('ws');
        const id = ctx.param('id');
        const actor = userOf(ctx.outcome);
        const result = await db.write(async (tx): Promise<Result<CreatedInvite>> => {
          const invite = await inviteById(tx, ws, id);
          if (!invite) return fail(problem('not_found', 'no such invite in this workspace'));
          const role = invite.role as (typeof WORKSPACE_ROLES)[number];
          // Re-issuing grants the role again: it needs what creating the invite needed.
          const checked = await reauthorize(tx, ctx.outcome, [
            { action: 'invite:reissue', target: role },
            { action: grantActionOf(invite), target: role },
          ]);
          if (!checked.ok) return fail(checked.problem);
          if (invite.status !== 'pending' && invite.status !== 'expired') {
            return fail(problem('invite_not_pending', `the invite is ${invite.status}; only a pending or expired invite can be re-issued`));
          }
          if (invite.project_id !== null) {
            const live = await tx.execute({ sql: 'SELECT 1 FROM projects WHERE id = ? AND deleted_at IS NULL', args: [invite.project_id] });
            if (live.rows.length === 0) return fail(problem('invite_not_pending', 'the invite\'s project was deleted'));
          }
          const at = now();
          const expiresAt = at + deps.inviteTtlDays * DAY_MS;
          try {
            // The re-issuer now stands behind the grant (and must still hold it when it is accepted).
            await tx.execute({
              sql: "UPDATE invites SET status = 'pending', expires_at = ?, invited_by = ? WHERE id = ?",
              args: [expiresAt, actor.id, id],
            });
          } catch (err) {
            // Another pending invite for the same email was sent after this one expired.
            if (isUniqueViolation(err)) return fail(problem('invite_pending', 'another invite for this email is already pending'));
            throw err;
          }
          const token = await newLink(tx, id, at);
          await audit(tx, { workspaceId: ws, actor: `user:${actor.id}`, action: 'invite.reissued', target: `invite:${id}`, detail: { email: invite.email, role: invite.role }, requestId: ctx.requestId, at });
          return ok({
            invite: inviteView({ ...invite, status: 'pending', expires_at: expiresAt, invited_by: actor.id }, at),
            accept_url: deps.inviteUrl.replace('{token}', token),
          });
        });
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
        const result = await db.write(async (tx): Promise<Result<{ workspace_id: string; project_id?: string; role: string }>> => {
          // Inside the write lock: of any number of concurrent accepts, exactly one sees "pending".
          const found = await inviteByLink(tx, token);
          if (!found) return fail(problem('not_found', 'no such invite link'));
          const at = now();
          const gone = linkProblem(found, at);
          if (gone) return fail(gone);
          const i = found.invite;
          if (!user.email || !user.emailVerified || user.email !== i.email) {
            return fail(problem('invite_email_mismatch', 'sign in as the invited user: your verified email must be the invited email'));
          }
          const senderGone = await senderCannotGrant(tx, i, ctx.outcome.bundle.table);
          if (senderGone) return fail(senderGone);
          await ensureUser(tx, user, at);
          if (i.project_id === null) {
            const member = await tx.execute({ sql: 'SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?', args: [i.workspace_id, user.id] });
            if (member.rows.length > 0) return fail(problem('already_member', 'you are already a member of this workspace'));
            await tx.execute({
              sql: 'INSERT INTO memberships (workspace_id, user_id, role, joined_at) VALUES (?, ?, ?, ?)',
              args: [i.workspace_id, user.id, i.role, at],
            });
          } else {
            const live = await tx.execute({ sql: 'SELECT 1 FROM projects WHERE id = ? AND deleted_at IS NULL', args: [i.project_id] });
            if (live.rows.length === 0) return fail(problem('invite_revoked', 'the project of this invite was deleted'));
            const previous = await tx.execute({
              sql: 'SELECT role FROM project_guests WHERE project_id = ? AND user_id = ?',
              args: [i.project_id, user.id],
            });
            await tx.execute({
              sql: `INSERT INTO project_guests (project_id, user_id, workspace_id, role, added_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (project_id, user_id) DO UPDATE SET role = excluded.role`,
              args: [i.project_id, user.id, i.workspace_id, i.role, at],
            });
            // Re-invited at a role that cannot mint tokens: the tokens minted with the old grant go.
            const was = previous.rows[0]?.['role'];
            const table = ctx.outcome.bundle.table;
            if (
              (was === 'developer' || was === 'viewer') &&
              table.allows([`guest:${was}`], 'token:create') &&
              !table.allows([`guest:${i.role as 'developer'}`], 'token:create')
            ) {
              await deactivateMintedTokens(
                tx,
                { workspaceId: i.workspace_id, userId: user.id, projectId: i.project_id, mintedAs: 'guest' },
                { reason: 'guest_demoted', actor: `user:${user.id}`, requestId: ctx.requestId, at },
              );
            }
          }
          await tx.execute({ sql: "UPDATE invites SET status = 'accepted', accepted_by = ?, accepted_at = ? WHERE id = ?", args: [user.id, at, i.id] });
          await audit(tx, {
            workspaceId: i.workspace_id,
            actor: `user:${user.id}`,
            action: 'invite.accepted',
            target: `invite:${i.id}`,
            detail: { role: i.role, ...(i.project_id ? { project_id: i.project_id } : {}) },
            requestId: ctx.requestId,
            at,
          });
          return ok({ workspace_id: i.workspace_id, ...(i.project_id !== null ? { project_id: i.project_id } : {}), role: i.role });
        });
        return respond(ctx, result);
      },
    }),
  };
}
