import type { Principal } from '../authn/authenticate.ts';
import type { AccessRepo, InviteTarget, UserAccess } from '../db/access-repo.ts';
import type { Subject, WorkspaceRole } from '../domain.ts';
import type { Problem } from '../http/problem.ts';
import type { Decision } from '../log/decision.ts';
import type { PolicyBundle } from '../policy/bundle.ts';
import type { Route } from '../policy/route-map.ts';
import type { Authenticator } from '../authn/authenticate.ts';

export interface GateRequest {
  method: string;
  /** The raw request-target, exactly as received. */
  target: string;
  /** Raw header name/value pairs, as received (duplicates kept). */
  rawHeaders: readonly string[];
  /** Reads and parses the JSON body (native routes only); a Problem for a bad or oversized body. */
  readJsonBody: () => Promise<Record<string, unknown> | undefined | Problem>;
  /** The request's W3C trace id (continued from `traceparent`); a new one when absent. */
  traceId?: string;
}

export interface Allowed {
  allow: true;
  decision: Decision;
  bundle: PolicyBundle;
  route: Route;
  params: Record<string, string>;
  path: string;
  query: string | undefined;
  /** From hygiene, for the forwarder: the one Host, and how the body is framed. */
  host: string;
  chunked: boolean;
  bodyless: boolean;
  principal: Principal;
  access: UserAccess | undefined;
  subjects: Subject[];
  body: Record<string, unknown> | undefined;
  /** What target checks looked up, for the native handler to re-check under its write lock. */
  member: { userId: string; role: WorkspaceRole } | undefined;
  invite: InviteTarget | undefined;
  /** Shadow mode only: the policy denied, but the request is forwarded anyway. */
  shadowDenied: Problem | undefined;
}

export interface Denied {
  allow: false;
  decision: Decision;
  problem: Problem;
  /** Close the connection after answering (an unread body is left on it). */
  closeConnection: boolean;
  /** What failed, when the deny comes from an error on the decision path. */
  error?: unknown;
}

export type GateOutcome = Allowed | Denied;

export interface GateDeps {
  policy: () => PolicyBundle;
  authenticator: Authenticator;
  access: AccessRepo;
  mode: 'enforce' | 'shadow';
}

/** A step's refusal: the problem to answer, and whether the connection must close after it. */
export interface Refusal {
  refused: Problem;
  close: boolean;
  /** The target role a rank check had reached, for the decision log. */
  targetRole?: string | null;
}

export const refuse = (p: Problem, close = false): Refusal => ({ refused: p, close });

export function isRefusal(value: unknown): value is Refusal {
  return typeof value === 'object' && value !== null && 'refused' in value;
}
