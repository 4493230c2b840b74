import type { Transaction } from '@libsql/client';
import type { Principal } from '../authn/authenticate.ts';
import { AccessRepo, type Executor } from '../db/access-repo.ts';
import type { Action, Subject } from '../domain.ts';
import { problem, problemResponse, type Problem } from '../http/problem.ts';
import { firstForbidden, subjectsFor, visibilityProblem } from '../pipeline/access.ts';
import type { Allowed } from '../pipeline/types.ts';
import type { Target } from '../policy/decision-table.ts';
import type { NativeContext } from './types.ts';

/** A service result: a value, or a problem the router renders. */
export type Result<T> = { ok: true; value: T } | { ok: false; problem: Problem };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(p: Problem): Result<T> => ({ ok: false, problem: p });

export function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });
}

/** Renders a service result: the value as JSON with `status`, or the problem. */
export function respond<T>(ctx: NativeContext<unknown>, result: Result<T>, status = 200): Response {
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
 * here and deciding with the same table and the same visibility rules
 * (pipeline/access.ts) makes every mutation race-free.
 */
export async function reauthorize(tx: Transaction, outcome: Allowed, checks: Recheck[]): Promise<Result<{ subjects: Subject[] }>> {
  const principal = outcome.principal;
  if (principal.kind !== 'user') return fail(problem('forbidden', 'a signed-in user is required'));
  const ws = outcome.params['ws'];
  if (ws === undefined) return ok({ subjects: [] });
  const access = await new AccessRepo(tx).userAccess({
    userId: principal.id,
    workspaceId: ws,
    projectId: outcome.params['p'],
    tokenId: outcome.params['t'],
    guestScope: outcome.route.guests,
  });
  const invisible = visibilityProblem(access, outcome.params);
  if (invisible) return fail(invisible);
  const subjects = subjectsFor(principal, access);
  const denied = firstForbidden(outcome.bundle.table, subjects, checks);
  return denied ? fail(denied) : ok({ subjects });
}
