import type { Executor } from './access-repo.ts';

export interface AuditEvent {
  workspaceId: string | null;
  actor: string;
  action: string;
  target?: string | null;
  detail?: Record<string, unknown>;
  requestId: string | null;
  at: number;
}

/** Every membership change is recorded in the same transaction as the change. */
export async function audit(tx: Executor, e: AuditEvent): Promise<void> {
  await tx.execute({
    sql: 'INSERT INTO audit_events (at, workspace_id, actor, action, target, detail, request_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
    args: [e.at, e.workspaceId, e.actor, e.action, e.target ?? null, e.detail ? JSON.stringify(e.detail) : null, e.requestId],
  });
}
