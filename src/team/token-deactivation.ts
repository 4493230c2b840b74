import type { Transaction } from '@libsql/client';
import { audit } from '../db/audit.ts';

/** Who causes a deactivation, for the audit log. */
export interface DeactivationCause {
  reason: string;
  actor: string;
  requestId: string | null;
  at: number;
}

/**
 * Deactivates, in the caller's transaction, the active tokens `userId` minted in the
 * workspace (optionally: on one project, or only those minted as a member or as a
 * guest), and audits each one. Returns their ids.
 */
export async function deactivateMintedTokens(
  tx: Transaction,
  scope: { workspaceId: string; userId: string; projectId?: string; mintedAs?: 'member' | 'guest' },
  cause: DeactivationCause,
): Promise<string[]> {
  const where = ['workspace_id = ?', 'minted_by = ?', 'active = 1'];
  const args: (string | number)[] = [scope.workspaceId, scope.userId];
  if (scope.projectId !== undefined) {
    where.push('project_id = ?');
    args.push(scope.projectId);
  }
  if (scope.mintedAs !== undefined) {
    where.push('minted_as = ?');
    args.push(scope.mintedAs);
  }
  const r = await tx.execute({
    sql: `UPDATE tokens SET active = 0, deactivated_at = ?, deactivated_reason = ? WHERE ${where.join(' AND ')} RETURNING id`,
    args: [cause.at, cause.reason, ...args],
  });
  const ids = r.rows.map((row) => String(row['id']));
  for (const id of ids) {
    await audit(tx, {
      workspaceId: scope.workspaceId,
      actor: cause.actor,
      action: 'token.deactivated',
      target: `token:${id}`,
      detail: { reason: cause.reason, minted_by: scope.userId },
      requestId: cause.requestId,
      at: cause.at,
    });
  }
  return ids;
}
