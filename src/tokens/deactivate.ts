import type { Transaction } from '@libsql/client';

/**
 * Deactivates, in the caller's transaction, the active tokens `userId` minted in the
 * workspace (or, for a guest, on one project as a guest). Returns their ids.
 */
export async function deactivateMintedTokens(
  tx: Transaction,
  scope: { workspaceId: string; userId: string; projectId?: string; mintedAs?: 'member' | 'guest' },
  reason: string,
  at: number,
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
    args: [at, reason, ...args],
  });
  return r.rows.map((row) => String(row['id']));
}
