import { randomUUID } from 'node:crypto';
import type { Action, Subject } from '../domain.ts';
import type { ProblemCode } from '../http/problem.ts';
import { newTraceId } from '../http/trace-context.ts';

/** One decision, as the decision log records it (CONTRACT §7). */
export interface Decision {
  decision_id: string;
  request_id: string;
  /** W3C trace id (the caller's, continued, or a new one): also in the upstream's traceparent. */
  trace_id: string;
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
  /** forward-auth: decided for a proxy on the forward-auth listener (CONTRACT §4b); nothing forwarded. */
  mode: DecisionMode;
  /** How long the upstream exchange took (forwarded requests only), or null. */
  upstream_us: number | null;
}

export type DecisionMode = 'enforce' | 'shadow' | 'forward-auth';

/** A fresh decision for a request, before anything is known: a deny until decided. */
export function newDecision(d: {
  requestId: string;
  method: string;
  path: string;
  policyRevision: string;
  mode: DecisionMode;
  traceId?: string;
}): Decision {
  return {
    decision_id: randomUUID(),
    request_id: d.requestId,
    trace_id: d.traceId ?? newTraceId(),
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
    upstream_us: null,
  };
}

/** What redactPath's passes look for: an escape (it may hide either), an invite link, a token key. */
const MAY_CARRY_SECRET = /%|invites|sk_/i;

/**
 * Redacts secrets from a path before it is logged. The path is first decoded
 * leniently (every valid %XX), so no spelling of it hides a secret: whatever follows
 * "invites" and a slash or backslash up to the next one (an invite link token) and
 * anything shaped like a project token's private key become "[redacted]".
 */
export function redactPath(path: string): string {
  // Most paths carry nothing to redact: one test instead of three regex passes.
  if (!MAY_CARRY_SECRET.test(path)) return path.length > 512 ? path.slice(0, 512) : path;
  const decoded = path.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return decoded
    .replace(/(invites)[/\\]+[^/\\?#]*/gi, '$1/[redacted]')
    .replace(/sk_[A-Za-z0-9]+/g, 'sk_[redacted]')
    .slice(0, 512);
}
