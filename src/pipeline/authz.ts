import type { IncomingMessage, ServerResponse } from 'node:http';
import { normalizeHeaderName } from '../http/headers.ts';
import { isProblem, problem, problemBody, renderProblem, statusOf, type Problem } from '../http/problem.ts';
import { requestIdOf } from '../http/request-id.ts';
import type { DecisionLog } from '../log/decision-log.ts';
import { newDecision, redactPath } from '../log/decision.ts';
import { errorFields, type Logger } from '../log/logger.ts';
import { identityHeaders } from './identity.ts';
import type { GateOutcome, GateRequest } from './types.ts';
import { IDENTITY_PREFIX } from './forward-headers.ts';

/**
 * The forward-auth listener (CONTRACT §4b): decisions for a proxy that already runs in
 * front of the upstream (nginx auth_request, Caddy forward_auth, Traefik forwardAuth,
 * Envoy ext_authz). It runs the same decision path as forwarding on the ORIGINAL request,
 * which it takes on trust from the proxy: who can reach this listener can ask about any
 * method and path with any credentials, so it must be reachable by the proxy only.
 */

export const AUTHZ_PATH = '/_gate/authz';

/** The headers a proxy describes the original request with; consumed here, never decided on. */
const FORWARDED_METHOD = 'x-forwarded-method';
const FORWARDED_URI = 'x-forwarded-uri';
const ORIGINAL_METHOD = 'x-original-method';
const ORIGINAL_URI = 'x-original-uri';
const PROTOCOL_HEADERS = new Set([FORWARDED_METHOD, FORWARDED_URI, ORIGINAL_METHOD, ORIGINAL_URI]);

/** Every identity header the forwarding path can set, in the order they are sent. */
export const IDENTITY_HEADER_NAMES = [
  'x-packagento-principal',
  'x-packagento-workspace',
  'x-packagento-project',
  'x-packagento-roles',
  'x-packagento-action',
  'x-packagento-decision-id',
  'x-packagento-policy-revision',
  'x-packagento-shadow-decision',
  'x-request-id',
] as const;

/** A method token as a request line carries it. */
const METHOD = /^[A-Z][A-Z0-9-]{0,15}$/;

export interface OriginalRequest {
  method: string;
  /** The raw request-target the proxy received (origin-form), not yet canonical. */
  target: string;
  /** The request's headers without the forward-auth protocol headers. */
  rawHeaders: string[];
}

/**
 * The request the proxy asks about. `GET /_gate/authz` (any query: Caddy appends the
 * original one) takes it from X-Forwarded-Method + X-Forwarded-Uri or X-Original-Method +
 * X-Original-URI; both pairs may be present only when they agree (a caller must not be able
 * to slip in the pair the proxy does not set). `/_gate/authz/<path>` (Envoy's path_prefix)
 * takes the request's own method and the rest of the path.
 */
export function originalRequest(method: string, url: string, rawHeaders: readonly string[]): OriginalRequest | Problem {
  const values = new Map<string, string[]>();
  const rest: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = normalizeHeaderName(rawHeaders[i]!);
    // Forwarding strips a caller's identity headers; here the gateway cannot strip anything
    // from the proxy's request, so one that reached it (any spelling) is refused instead.
    // A proxy configured as in docs/forward-auth removes them first or refuses them this way.
    if (name.startsWith(IDENTITY_PREFIX)) {
      return problem('bad_request', `the ${rawHeaders[i]} header is the gateway's own; the proxy must not pass a caller's x-packagento-* headers`);
    }
    if (PROTOCOL_HEADERS.has(name)) {
      const list = values.get(name) ?? [];
      list.push(rawHeaders[i + 1]!);
      values.set(name, list);
    } else rest.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  for (const [name, list] of values) {
    if (list.length > 1) return problem('bad_request', `more than one ${name} header`);
  }
  const one = (name: string) => values.get(name)?.[0];

  if (url === AUTHZ_PATH || url.startsWith(AUTHZ_PATH + '?')) {
    const pairs: { method: string; uri: string }[] = [];
    for (const [m, u] of [
      [FORWARDED_METHOD, FORWARDED_URI],
      [ORIGINAL_METHOD, ORIGINAL_URI],
    ] as const) {
      const mv = one(m);
      const uv = one(u);
      if (mv === undefined && uv === undefined) continue;
      if (mv === undefined || uv === undefined) return problem('bad_request', `${m} and ${u} go together`);
      pairs.push({ method: mv.trim(), uri: uv.trim() });
    }
    if (pairs.length === 0) {
      return problem('bad_request', 'name the original request: X-Forwarded-Method and X-Forwarded-Uri, or X-Original-Method and X-Original-URI');
    }
    if (pairs.length === 2 && (pairs[0]!.method !== pairs[1]!.method || pairs[0]!.uri !== pairs[1]!.uri)) {
      return problem('bad_request', 'X-Forwarded-Method/-Uri and X-Original-Method/-URI name different requests');
    }
    const original = pairs[0]!;
    if (!METHOD.test(original.method)) return problem('bad_request', 'the original method is not a method');
    if (!original.uri.startsWith('/')) return problem('bad_path', 'the original request-target must be a path');
    return { method: original.method, target: original.uri, rawHeaders: rest };
  }
  if (url.startsWith(AUTHZ_PATH + '/')) {
    // Envoy style: the protocol headers are not part of it; present, they would be ambiguous.
    if (values.size > 0) return problem('bad_request', 'X-Forwarded-Uri / X-Original-URI are not accepted with /_gate/authz/<path>');
    return { method, target: url.slice(AUTHZ_PATH.length), rawHeaders: rest };
  }
  return problem('not_found', `the forward-auth listener answers ${AUTHZ_PATH} only`);
}

/**
 * Header values must be visible ASCII: the problem body, compact, with every other
 * character escaped as JSON allows (\uXXXX).
 */
export function headerSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => '\\u' + c.charCodeAt(0).toString(16).padStart(4, '0'));
}

export interface AuthzDeps {
  /**
   * The forwarding decision path (pipeline.decideForwardAuth); `finish` writes its one
   * `mode: "forward-auth"` line (a deny's is written already).
   */
  decide(req: GateRequest, requestId: string): Promise<GateOutcome & { finish(status: number): void }>;
  decisionLog: DecisionLog;
  logger: Logger;
  /** The policy revision in force, for lines about requests that never reached the gate. */
  revision(): string;
}

/** A decision that needs the request body cannot be made here: the proxy never sends it. */
const bodyRequired = async (): Promise<Problem> =>
  problem('body_required', 'this route decides on the request body (a rank rule on its "role"), which forward-auth does not receive');

/**
 * The Node request listener of the forward-auth port. Allow: 200, empty body, every
 * identity header (empty where the request has none: Caddy copies a missing header as a
 * literal placeholder). Deny: the status forwarding would give, problem+json, the
 * WWW-Authenticate / Allow headers, and the body repeated compact in X-Gate-Problem (nginx
 * discards a subrequest's body but can copy a header).
 */
export function createAuthzListener(deps: AuthzDeps): (incoming: IncomingMessage, outgoing: ServerResponse) => void {
  return (incoming, outgoing) => {
    const requestId = requestIdOf(incoming);
    const original = originalRequest(incoming.method ?? 'GET', incoming.url ?? '', incoming.rawHeaders);
    if (isProblem(original)) {
      const decision = newDecision({
        requestId,
        method: incoming.method ?? '',
        path: redactPath((incoming.url ?? '').split('?')[0] ?? ''),
        policyRevision: deps.revision(),
        mode: 'forward-auth',
      });
      decision.code = original.code;
      decision.status = statusOf(original.code);
      deps.decisionLog.write(decision, 0);
      deny(outgoing, original, requestId, decision.decision_id);
      return;
    }
    deps
      .decide({ method: original.method, target: original.target, rawHeaders: original.rawHeaders, readJsonBody: bodyRequired }, requestId)
      .then(
        (outcome) => {
          if (!outcome.allow) return deny(outgoing, outcome.problem, requestId, outcome.decision.decision_id);
          const headers = identityHeaders(outcome, requestId);
          const out: Record<string, string> = {};
          for (const name of IDENTITY_HEADER_NAMES) out[name] = headers[name] ?? '';
          out['content-length'] = '0';
          outgoing.writeHead(200, out);
          outgoing.end();
          outcome.finish(200);
        },
        (err: unknown) => {
          // decide() turns decision errors into denies; this is a bug elsewhere. Fail closed.
          deps.logger.error('forward-auth request failed before a decision', errorFields(err));
          deny(outgoing, problem('internal_error', 'internal error'), requestId, undefined);
        },
      );
  };
}

function deny(outgoing: ServerResponse, p: Problem, requestId: string, decisionId: string | undefined): void {
  const ids = { requestId, ...(decisionId ? { decisionId } : {}) };
  const r = renderProblem(p, ids);
  r.headers['x-gate-problem'] = headerSafeJson(problemBody(p, ids));
  if (outgoing.headersSent) {
    outgoing.destroy();
    return;
  }
  outgoing.writeHead(r.status, r.headers);
  outgoing.end(r.body);
}
