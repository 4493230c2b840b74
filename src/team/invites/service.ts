import type { Transaction } from '@libsql/client';
import type { Principal } from '../../authn/authenticate.ts';
import { newId } from '../../crypto/ids.ts';
import { audit } from '../../db/audit.ts';
import { isUniqueViolation } from '../../db/errors.ts';
import { isWorkspaceRole, type Action, type WorkspaceRole } from '../../domain.ts';
import { problem } from '../../http/problem.ts';
import type { Allowed } from '../../pipeline/types.ts';
import type { DecisionTable } from '../../policy/decision-table.ts';
import { ensureUser, fail, iso, ok, reauthorize, type Result } from '../common.ts';
import { deactivateMintedTokens } from '../token-deactivation.ts';
import type { NativeDeps } from '../types.ts';
import { inviteById, inviteByLink, newLink, type InviteRow, type LinkLookup, type Reader } from './sql.ts';

/** Invite rules: statuses, views, who may still grant, and creating an invite. */

export const DAY_MS = 24 * 60 * 60 * 1000;

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

/** Why a link cannot be used (410s with distinct codes), or undefined when it can. */
export function linkProblem(found: NonNullable<LinkLookup>, at: number) {
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
export async function senderCannotGrant(tx: Reader, i: InviteRow, table: DecisionTable) {
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


export interface InviteChange {
  outcome: Allowed;
  workspaceId: string;
  inviteId: string;
  actorId: string;
  requestId: string;
}

/** Revokes a pending invite, after re-deciding under the write lock. */
export async function revokeInvite(tx: Transaction, deps: NativeDeps, c: InviteChange): Promise<Result<ReturnType<typeof inviteView>>> {
  const { workspaceId: ws, inviteId: id } = c;
  const checked = await reauthorize(tx, c.outcome, [{ action: 'invite:revoke' }]);
  if (!checked.ok) return fail(checked.problem);
  const invite = await inviteById(tx, ws, id);
  if (!invite) return fail(problem('not_found', 'no such invite in this workspace'));
  if (invite.status !== 'pending') return fail(problem('invite_not_pending', `the invite is ${invite.status}; only a pending invite can be revoked`));
  const at = deps.now();
  await tx.execute({ sql: "UPDATE invites SET status = 'revoked', revoked_at = ? WHERE id = ?", args: [at, id] });
  await audit(tx, { workspaceId: ws, actor: `user:${c.actorId}`, action: 'invite.revoked', target: `invite:${id}`, detail: { email: invite.email, role: invite.role }, requestId: c.requestId, at });
  return ok(inviteView({ ...invite, status: 'revoked', revoked_at: at }, at));
}

/** A new link and expiry for a pending or expired invite; the re-issuer now stands behind the grant. */
export async function reissueInvite(tx: Transaction, deps: NativeDeps, c: InviteChange): Promise<Result<CreatedInvite>> {
  const { workspaceId: ws, inviteId: id } = c;
    const invite = await inviteById(tx, ws, id);
    if (!invite) return fail(problem('not_found', 'no such invite in this workspace'));
    const role = invite.role as WorkspaceRole;
    // Re-issuing grants the role again: it needs what creating the invite needed.
    const checked = await reauthorize(tx, c.outcome, [
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
    const at = deps.now();
    const expiresAt = at + deps.inviteTtlDays * DAY_MS;
    try {
      // The re-issuer now stands behind the grant (and must still hold it when it is accepted).
      await tx.execute({
        sql: "UPDATE invites SET status = 'pending', expires_at = ?, invited_by = ? WHERE id = ?",
        args: [expiresAt, c.actorId, id],
      });
    } catch (err) {
      // Another pending invite for the same email was sent after this one expired.
      if (isUniqueViolation(err)) return fail(problem('invite_pending', 'another invite for this email is already pending'));
      throw err;
    }
    const token = await newLink(tx, id, at);
    await audit(tx, { workspaceId: ws, actor: `user:${c.actorId}`, action: 'invite.reissued', target: `invite:${id}`, detail: { email: invite.email, role: invite.role }, requestId: c.requestId, at });
    return ok({
      invite: inviteView({ ...invite, status: 'pending', expires_at: expiresAt, invited_by: c.actorId }, at),
      accept_url: deps.inviteUrl.replace('{token}', token),
    });
  }

/** Accepts an invite by its link: exactly one of any number of concurrent accepts succeeds. */
export async function acceptInvite(
  tx: Transaction,
  deps: NativeDeps,
  c: { outcome: Allowed; user: Extract<Principal, { kind: 'user' }>; token: string; requestId: string },
): Promise<Result<{ workspace_id: string; project_id?: string; role: string }>> {
  const { user, token } = c;
    // Inside the write lock: of any number of concurrent accepts, exactly one sees "pending".
    const found = await inviteByLink(tx, token);
    if (!found) return fail(problem('not_found', 'no such invite link'));
    const at = deps.now();
    const gone = linkProblem(found, at);
    if (gone) return fail(gone);
    const i = found.invite;
    if (!user.email || !user.emailVerified || user.email !== i.email) {
      return fail(problem('invite_email_mismatch', 'sign in as the invited user: your verified email must be the invited email'));
    }
    const senderGone = await senderCannotGrant(tx, i, c.outcome.bundle.table);
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
      const table = c.outcome.bundle.table;
      if (
        (was === 'developer' || was === 'viewer') &&
        table.allows([`guest:${was}`], 'token:create') &&
        !table.allows([`guest:${i.role as 'developer'}`], 'token:create')
      ) {
        await deactivateMintedTokens(
          tx,
          { workspaceId: i.workspace_id, userId: user.id, projectId: i.project_id, mintedAs: 'guest' },
          { reason: 'guest_demoted', actor: `user:${user.id}`, requestId: c.requestId, at },
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
      requestId: c.requestId,
      at,
    });
    return ok({ workspace_id: i.workspace_id, ...(i.project_id !== null ? { project_id: i.project_id } : {}), role: i.role });
  }
