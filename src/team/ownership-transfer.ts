import { isWorkspaceRole, type WorkspaceRole } from '../domain.ts';
import type { Db } from '../db/client.ts';
import { audit } from '../db/audit.ts';

export interface TransferOptions {
  workspaceId: string;
  toUserId: string;
  /** What the previous owners become; `owner` keeps them as co-owners. */
  previousOwnersBecome: WorkspaceRole;
  /** Who ran it (support staff), for the audit log. */
  actor: string;
  reason: string | undefined;
  now: number;
}

export type TransferResult =
  | { ok: true; previousOwners: string[]; newOwner: string }
  | { ok: false; error: 'no_workspace' | 'not_a_member' | 'already_owner'; message: string };

/**
 * The support-assisted owner change (never a self-service API call). One write
 * transaction: the new owner is promoted before anyone is demoted, so the
 * workspace never has zero owners (the database's last-owner guard also holds).
 */
export async function transferOwnership(db: Db, o: TransferOptions): Promise<TransferResult> {
  return db.write(async (tx) => {
    const ws = await tx.execute({ sql: 'SELECT id FROM workspaces WHERE id = ?', args: [o.workspaceId] });
    if (ws.rows.length === 0) return { ok: false, error: 'no_workspace', message: `no workspace "${o.workspaceId}"` };
    const member = await tx.execute({
      sql: 'SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?',
      args: [o.workspaceId, o.toUserId],
    });
    const role = member.rows[0]?.['role'];
    if (!isWorkspaceRole(role)) {
      return { ok: false, error: 'not_a_member', message: `"${o.toUserId}" is not a member of ${o.workspaceId}; invite them first` };
    }
    const owners = await tx.execute({
      sql: "SELECT user_id FROM memberships WHERE workspace_id = ? AND role = 'owner' AND user_id <> ? ORDER BY user_id",
      args: [o.workspaceId, o.toUserId],
    });
    const previous = owners.rows.map((r) => String(r['user_id']));
    if (role === 'owner' && (o.previousOwnersBecome === 'owner' || previous.length === 0)) {
      return { ok: false, error: 'already_owner', message: `"${o.toUserId}" is already the owner of ${o.workspaceId}` };
    }
    await tx.execute({
      sql: "UPDATE memberships SET role = 'owner' WHERE workspace_id = ? AND user_id = ?",
      args: [o.workspaceId, o.toUserId],
    });
    if (o.previousOwnersBecome !== 'owner') {
      for (const userId of previous) {
        await tx.execute({
          sql: 'UPDATE memberships SET role = ? WHERE workspace_id = ? AND user_id = ?',
          args: [o.previousOwnersBecome, o.workspaceId, userId],
        });
      }
    }
    await audit(tx, {
      workspaceId: o.workspaceId,
      actor: `support:${o.actor}`,
      action: 'ownership.transferred',
      target: `user:${o.toUserId}`,
      detail: { from: previous, previous_role_of_new_owner: role, previous_owners_become: o.previousOwnersBecome, ...(o.reason ? { reason: o.reason } : {}) },
      requestId: null,
      at: o.now,
    });
    return { ok: true, previousOwners: previous, newOwner: o.toUserId };
  });
}
