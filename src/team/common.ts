import { randomBytes } from 'node:crypto';
import type { Transaction } from '@libsql/client';
import type { NativeContext } from '../app.ts';
import type { Principal } from '../authn/authenticate.ts';
import { NO_TARGET, type Action, type Subject } from '../domain.ts';
import type { Target } from '../policy/decision-table.ts';
import { AccessRepo, type Executor } from '../db/access-repo.ts';
import { subjectsFor, type Allowed } from '../gateway/gate.ts';
import { problem, problemResponse, type Problem } from '../http/problem.ts';

/** A service result: a value, or a problem the router renders. */
export type Result<T> = { ok: true; value: T } | { ok: false; problem: Problem };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(p: Problem): Result<T> => ({ ok: false, problem: p });

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A new id: prefix + 16 base62 characters (~95 random bits). */
export function newId(prefix: 'ws' | 'prj' | 'tok' | 'inv'): string {
  const bytes = randomBytes(16);
  let out = '';
  for (let i = 0; i < 16; i++) out += BASE62[bytes[i]! % 62];
  return `${prefix}_${out}`;
}

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/** Renders a service result: the value as JSON with `status`, or the problem. */
export function respond<T>(ctx: NativeContext, result: Result<T>, status = 200): Response {
  if (result.ok) return json(status, result.value);
  return problemResponse(result.problem, { requestId: ctx.requestId, decisionId: ctx.outcome.decision.decision_id });
}

export function iso(ms: number | null | undefined): string | null {
  return ms === null || ms === undefined ? null : new Date(Number(ms)).toISOString();
}

/** The signed-in user of a native route (every native route with an action is auth=jwt). */
export function userOf(outcome: Allowed): Extract<Principal, { kind: 'user' }> {
  if (outcome.principal.kind !== 'user') throw new Error('this route needs a signed-in user');
  return outcome.principal;
}

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

/** Makes sure the signed-in user has a users row (memberships reference it). */
export async function ensureUser(tx: Executor, user: Extract<Principal, { kind: 'user' }>, now: number): Promise<void> {
  await new AccessRepo(tx).recordUser(user, now);
}

export interface Recheck {
  action: Action;
  target?: Target;
}

/**
 * Re-decides under the write lock. The gate decided on roles read before the
 * transaction; a concurrent removal or downgrade may have committed since. Inside
 * a "write" transaction no other writer can interleave, so reading the roles again
 * here and deciding with the same table makes every mutation race-free.
 */
export async function reauthorize(tx: Transaction, outcome: Allowed, checks: Recheck[]): Promise<{ subjects: Subject[] } | Problem> {
  const principal = outcome.principal;
  if (principal.kind !== 'user') return problem('forbidden', 'a signed-in user is required');
  const ws = outcome.params['ws'];
  if (ws === undefined) return { subjects: [] };
  const access = await new AccessRepo(tx).userAccess({
    userId: principal.id,
    workspaceId: ws,
    projectId: outcome.params['p'],
    tokenId: outcome.params['t'],
    guestScope: outcome.route.guests,
  });
  if (!access.workspaceRole && !access.guestInWorkspace) return problem('not_found', 'no such workspace, or you have no access to it');
  if (outcome.params['p'] !== undefined && (!access.projectInWorkspace || (!access.workspaceRole && !access.guestRole))) {
    return problem('not_found', 'no such project in this workspace');
  }
  if (outcome.params['t'] !== undefined && !access.tokenInProject) return problem('not_found', 'no such token in this project');
  const subjects = subjectsFor(principal, access);
  for (const check of checks) {
    const target = check.target ?? NO_TARGET;
    if (!outcome.bundle.table.allows(subjects, check.action, target)) {
      const what = target === NO_TARGET ? check.action : `${check.action} with the ${target} role`;
      return problem('forbidden', `you are not allowed to ${what} here`, {
        action: check.action,
        ...(target !== NO_TARGET ? { target_role: target } : {}),
      });
    }
  }
  return { subjects };
}

/** Maps the database's last-owner guard to its problem. */
export function isLastOwnerError(err: unknown): boolean {
  return String((err as Error)?.message ?? '').includes('last_owner');
}

export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; extendedCode?: string; message?: string };
  return (
    e?.extendedCode === 'SQLITE_CONSTRAINT_UNIQUE' ||
    e?.extendedCode === 'SQLITE_CONSTRAINT_PRIMARYKEY' ||
    /UNIQUE constraint failed/.test(String(e?.message ?? ''))
  );
}
