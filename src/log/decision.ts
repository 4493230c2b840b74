import { randomUUID } from 'node:crypto';
import type { Action, Subject } from '../domain.ts';
import type { ProblemCode } from '../http/problem.ts';

/** One decision, as the decision log records it (CONTRACT §7). */
export interface Decision {
  decision_id: string;
  request_id: string;
  principal: string;
  method: string;
  path: string;
  route: string | null;
  action: Action | null;
  target_role: string | null;
  workspace: string | null;
  project: string | null;
  roles: Subject[];
  result: 'allow' | 'deny';
  code: ProblemCode | 'ok';
  status: number;
  policy_revision: string;
  mode: 'enforce' | 'shadow';
}

/** A fresh decision for a request, before anything is known: a deny until decided. */
export function newDecision(d: { requestId: string; method: string; path: string; policyRevision: string; mode: 'enforce' | 'shadow' }): Decision {
  return {
    decision_id: randomUUID(),
    request_id: d.requestId,
    principal: 'anonymous',
    method: d.method,
    path: d.path,
    route: null,
    action: null,
    target_role: null,
    workspace: null,
    project: null,
    roles: [],
    result: 'deny',
    code: 'ok',
    status: 200,
    policy_revision: d.policyRevision,
    mode: d.mode,
  };
}

/**
 * Redacts secrets from a path before it is logged. The path is first decoded
 * leniently (every valid %XX), so no spelling of it hides a secret: whatever follows
 * "invites" and a slash or backslash up to the next one (an invite link token) and
 * anything shaped like a project token's private key become "[redacted]".
 */
export function redactPath(path: string): string {
  const decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return decoded
    .replace(/(invites)[/\\]+[^/\\?#]*/gi, '$1/[redacted]')
    .replace(/sk_[A-Za-z0-9]+/g, 'sk_[redacted]')
    .slice(0, 512);
}
