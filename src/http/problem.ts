import { STATUS_CODES, type ServerResponse } from 'node:http';

/**
 * RFC 9457 problem details: the one place where error codes, statuses and titles live.
 * https://www.rfc-editor.org/rfc/rfc9457
 */

export const PROBLEMS = {
  bad_path: { status: 400, title: 'Malformed request path' },
  bad_request: { status: 400, title: 'Bad request' },
  invalid_body: { status: 400, title: 'Invalid request body' },
  unexpected_body: { status: 400, title: 'This route takes no request body' },
  duplicate_credentials: { status: 400, title: 'More than one credential' },
  method_override: { status: 400, title: 'Method override headers are not accepted' },
  unauthenticated: { status: 401, title: 'Authentication required' },
  invalid_credentials: { status: 401, title: 'Invalid credentials' },
  forbidden: { status: 403, title: 'Forbidden' },
  invite_email_mismatch: { status: 403, title: 'This invite was sent to another email address' },
  not_found: { status: 404, title: 'Not found' },
  method_not_allowed: { status: 405, title: 'Method not allowed' },
  already_member: { status: 409, title: 'Already a member' },
  invite_pending: { status: 409, title: 'An invite is already pending' },
  invite_not_pending: { status: 409, title: 'The invite is not pending' },
  last_owner: { status: 409, title: 'A workspace must keep at least one owner' },
  conflict: { status: 409, title: 'Conflict' },
  invite_expired: { status: 410, title: 'The invite has expired' },
  invite_used: { status: 410, title: 'The invite has already been used' },
  invite_revoked: { status: 410, title: 'The invite has been revoked' },
  payload_too_large: { status: 413, title: 'Request body too large' },
  uri_too_long: { status: 414, title: 'Request target too long' },
  unsupported_media_type: { status: 415, title: 'Request body must be JSON' },
  internal_error: { status: 500, title: 'Internal error' },
  not_implemented: { status: 501, title: 'Not implemented yet' },
  upstream_unavailable: { status: 502, title: 'Upstream unavailable' },
  unavailable: { status: 503, title: 'Service unavailable' },
  upstream_timeout: { status: 504, title: 'Upstream timeout' },
} as const satisfies Record<string, { status: number; title: string }>;

export type ProblemCode = keyof typeof PROBLEMS;

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ProblemCode;
  decision_id?: string;
  request_id?: string;
  action?: string;
  [extra: string]: unknown;
}

/** A problem as a value: services and the gateway return it, routers render it. */
export interface Problem {
  code: ProblemCode;
  detail: string;
  extra?: Record<string, unknown>;
  headers?: Record<string, string>;
}

/** Tells a Problem from a value in `T | Problem` results (authentication, bodies). */
export function isProblem(value: unknown): value is Problem {
  return typeof value === 'object' && value !== null && 'code' in value && 'detail' in value;
}

export function problem(
  code: ProblemCode,
  detail: string,
  extra?: Record<string, unknown>,
  headers?: Record<string, string>,
): Problem {
  return { code, detail, ...(extra ? { extra } : {}), ...(headers ? { headers } : {}) };
}

export const PROBLEM_TYPE_BASE = 'https://packagento.com/problems/';

export function problemBody(p: Problem, ids: { requestId?: string; decisionId?: string } = {}): ProblemBody {
  const def = PROBLEMS[p.code];
  return {
    type: PROBLEM_TYPE_BASE + p.code.replaceAll('_', '-'),
    title: def.title,
    status: def.status,
    detail: p.detail,
    code: p.code,
    ...(p.extra ?? {}),
    ...(ids.decisionId ? { decision_id: ids.decisionId } : {}),
    ...(ids.requestId ? { request_id: ids.requestId } : {}),
  };
}

export function statusOf(code: ProblemCode): number {
  return PROBLEMS[code].status;
}

export interface ProblemIds {
  requestId?: string;
  decisionId?: string;
}

/**
 * The one rendering of a problem+json answer: status, headers and body, for any
 * transport (a Node response, a fetch Response, raw socket bytes). `close` asks the
 * client to close the connection (an unread body is left on it).
 */
export function renderProblem(p: Problem, ids: ProblemIds = {}, close = false): { status: number; headers: Record<string, string>; body: string } {
  const body = JSON.stringify(problemBody(p, ids));
  const headers: Record<string, string> = {
    'content-type': 'application/problem+json',
    'content-length': String(Buffer.byteLength(body)),
    ...(ids.requestId ? { 'x-request-id': ids.requestId } : {}),
    ...(p.headers ?? {}),
  };
  if (close) headers['connection'] = 'close';
  return { status: PROBLEMS[p.code].status, headers, body };
}

/** A ready fetch Response for a problem (the Hono app). */
export function problemResponse(p: Problem, ids: ProblemIds = {}, close = false): Response {
  const r = renderProblem(p, ids, close);
  delete r.headers['content-length'];
  return new Response(r.body, { status: r.status, headers: r.headers });
}

/** Writes a problem to a Node response, or cuts the connection when a head was already sent. */
export function sendProblem(outgoing: ServerResponse, p: Problem, ids: ProblemIds = {}, close = false): number {
  const r = renderProblem(p, ids, close);
  if (outgoing.headersSent) {
    outgoing.destroy();
    return r.status;
  }
  outgoing.writeHead(r.status, r.headers);
  outgoing.end(r.body);
  return r.status;
}

/** A problem as raw HTTP/1.1 bytes, for a socket Node's parser refused (no request object exists). */
export function rawProblemMessage(p: Problem, ids: ProblemIds = {}): string {
  const r = renderProblem(p, ids, true);
  const reason = STATUS_CODES[r.status] ?? '';
  const head = Object.entries(r.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
  return `HTTP/1.1 ${r.status} ${reason}\r\n${head}\r\n${r.body}`;
}
