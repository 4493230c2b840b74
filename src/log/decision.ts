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
  /** forward-auth: decided for a proxy on the forward-auth listener (CONTRACT §4b); nothing forwarded. */
  mode: DecisionMode;
  /** W3C trace id from the request's `traceparent`, or null. */
  trace_id: string | null;
  /** How long the upstream exchange took (forwarded requests only), or null. */
  upstream_us: number | null;
}

export type DecisionMode = 'enforce' | 'shadow' | 'forward-auth';

/** A fresh decision for a request, before anything is known: a deny until decided. */
export function newDecision(d: { requestId: string; method: string; path: string; policyRevision: string; mode: DecisionMode }): Decision {
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
    trace_id: null,
    upstream_us: null,
  };
}

/** W3C Trace Context `traceparent`: version-traceid-parentid-flags; an all-zero id is invalid. */
const TRACEPARENT = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}(?:-.*)?$/;

/** The trace id of the request's `traceparent` header (exactly one, well-formed), or null. */
export function traceIdOf(rawHeaders: readonly string[]): string | null {
  let found: string | null = null;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length !== 11 || rawHeaders[i]!.toLowerCase() !== 'traceparent') continue;
    if (found !== null) return null;
    const m = TRACEPARENT.exec(rawHeaders[i + 1]!.trim());
    if (!m || /^0+$/.test(m[1]!) || rawHeaders[i + 1]!.startsWith('ff')) return null;
    found = m[1]!;
  }
  return found;
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
