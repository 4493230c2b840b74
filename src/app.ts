import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Hono, type Context } from 'hono';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import type { Duplex } from 'node:stream';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { z } from 'zod';
import type { Authenticator } from './authn/authenticate.ts';
import { isProblem } from './authn/authenticate.ts';
import type { PolicyStore } from './policy/store.ts';
import type { AccessRepo } from './db/access-repo.ts';
import type { Db } from './db/client.ts';
import { schemaIsCurrent } from './db/migrations.ts';
import { UserRecorder } from './db/user-recorder.ts';
import type { Forwarder } from './pipeline/forward.ts';
import { Gate, isUnavailableError, newDecision, redactPath, type Allowed, type Denied, type GateOutcome } from './gateway/gate.ts';
import { canonicalizeTarget } from './http/canonical-path.ts';
import { hasBody, parseJsonObject, readBody } from './http/body.ts';
import { problem, problemBody, problemResponse, type Problem } from './http/problem.ts';
import type { DecisionLog } from './log/decision-log.ts';
import { errorFields, type Logger } from './log/logger.ts';

export type Env = { Bindings: HttpBindings };

/** What a native (gateway-answered) route's handler receives. */
export interface NativeContext {
  c: Context<Env>;
  outcome: Allowed;
  requestId: string;
  /** The body, validated against the handler's schema (undefined when it has none). */
  body: unknown;
}

export interface NativeHandler {
  /** A strict zod schema for the JSON body; routes without one refuse a body. */
  body?: z.ZodType;
  /** When the body may be left out entirely (e.g. PUT /v1/me/workspace). */
  bodyOptional?: boolean;
  handle(ctx: NativeContext): Promise<Response>;
}

/** Native handlers keyed by route id (`METHOD PATTERN` from the route map). */
export type NativeHandlers = Record<string, NativeHandler>;

export interface AppDeps {
  policy: PolicyStore;
  db: Db;
  access: AccessRepo;
  authenticator: Authenticator;
  forwarder: Forwarder;
  natives: NativeHandlers;
  decisionLog: DecisionLog;
  logger: Logger;
  mode: 'enforce' | 'shadow';
  /**
   * Called once per request after the decision, before the request is answered or
   * forwarded (metrics; tests use it to land a concurrent change in that window).
   */
  onDecision?: (outcome: GateOutcome) => void | Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function requestIdOf(incoming: IncomingMessage): string {
  const given = incoming.headers['x-request-id'];
  return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
}

/** A request that went through the decision path (logged exactly once). */
export interface Decided {
  outcome: GateOutcome;
  requestId: string;
  readJsonBody: () => Promise<Record<string, unknown> | undefined | Problem>;
}

const DECIDED = Symbol('packagento.decided');
type WithDecision = IncomingMessage & { [DECIDED]?: Decided };

/**
 * The decision path shared by every entry: evaluate (which never throws: an error
 * is a deny), log one decision line, record the user, forward an allowed upstream
 * request, render a deny.
 */
export function createPipeline(deps: AppDeps) {
  const gate = new Gate({
    policy: () => deps.policy.current,
    authenticator: deps.authenticator,
    access: deps.access,
    mode: deps.mode,
  });
  const users = new UserRecorder(deps.access, (err) => deps.logger.warn('could not record a user', errorFields(err)));

  async function decide(incoming: IncomingMessage): Promise<Decided> {
    const started = process.hrtime.bigint();
    const requestId = requestIdOf(incoming);
    let bodyPromise: Promise<Record<string, unknown> | undefined | Problem> | undefined;
    const readJsonBody = () =>
      (bodyPromise ??= (async () => {
        if (!hasBody(incoming)) return undefined;
        const raw = await readBody(incoming);
        if (isProblem(raw)) return raw;
        return parseJsonObject(incoming.headers['content-type'], raw);
      })());
    const outcome = await gate.evaluate(
      { method: incoming.method ?? 'GET', target: incoming.url ?? '', rawHeaders: incoming.rawHeaders, readJsonBody },
      requestId,
    );
    if (!outcome.allow && outcome.error !== undefined) {
      deps.logger.error('decision failed', { request_id: requestId, decision_id: outcome.decision.decision_id, ...errorFields(outcome.error) });
    }
    deps.decisionLog.write(outcome.decision, Number((process.hrtime.bigint() - started) / 1000n));
    if (outcome.allow && outcome.principal.kind === 'user') users.seen(outcome.principal);
    await deps.onDecision?.(outcome);
    return { outcome, requestId, readJsonBody };
  }

  function forward(incoming: IncomingMessage, outgoing: ServerResponse, outcome: Allowed, requestId: string): void {
    deps.forwarder.forward({
      incoming,
      outgoing,
      method: incoming.method ?? 'GET',
      path: outcome.path + (outcome.query !== undefined ? `?${outcome.query}` : ''),
      identity: identityHeaders(outcome, requestId),
      requestId,
    });
  }

  /** Writes a deny (problem+json) straight to the Node response. */
  function refuse(outgoing: ServerResponse, decided: Decided & { outcome: Denied }): void {
    const { outcome, requestId } = decided;
    const body = JSON.stringify(problemBody(outcome.problem, { requestId, decisionId: outcome.decision.decision_id }));
    const headers: Record<string, string | number> = {
      'content-type': 'application/problem+json',
      'content-length': Buffer.byteLength(body),
      'x-request-id': requestId,
      ...(outcome.problem.headers ?? {}),
    };
    if (outcome.closeConnection) headers['connection'] = 'close';
    outgoing.writeHead(outcome.decision.status, headers);
    outgoing.end(body);
  }

  return { decide, forward, refuse };
}

/**
 * The gateway's own API (natives) and operations as a Hono app. Every request it
 * serves has been through the decision path already (the Node listener below
 * attaches the decision); a request reaching it without one (e.g. `app.request()`
 * in a test) is decided here, the same way.
 */
export function createApp(deps: AppDeps, pipeline = createPipeline(deps)): Hono<Env> {
  const app = new Hono<Env>();

  app.onError((err, c) => {
    const requestId = c.res.headers.get('x-request-id') ?? 'unknown';
    deps.logger.error('unhandled error', { request_id: requestId, ...errorFields(err) });
    return problemResponse(problem('internal_error', 'internal error'), { requestId });
  });

  app.use('*', async function packagentoGate(c) {
    const incoming = c.env?.incoming as WithDecision | undefined;
    if (!incoming) throw new Error('the gateway must run on @hono/node-server (no Node request bindings)');

    const ops = operations(incoming.url ?? '');
    if (ops !== undefined) return withRequestId(await ops(c, deps), requestIdOf(incoming));

    const decided = incoming[DECIDED] ?? (await pipeline.decide(incoming));
    const { outcome, requestId, readJsonBody } = decided;

    if (!outcome.allow) {
      return withRequestId(problemResponse(outcome.problem, { requestId, decisionId: outcome.decision.decision_id }), requestId, outcome.closeConnection);
    }

    if (outcome.route.to === 'upstream') {
      pipeline.forward(incoming, c.env.outgoing, outcome, requestId);
      return RESPONSE_ALREADY_SENT;
    }

    const handler = deps.natives[outcome.route.id];
    if (!handler) {
      return withRequestId(
        problemResponse(problem('not_implemented', `${outcome.route.id} is not implemented yet`), { requestId, decisionId: outcome.decision.decision_id }),
        requestId,
      );
    }
    let body: unknown;
    if (handler.body) {
      const parsed = await readJsonBody();
      if (isProblem(parsed)) return withRequestId(problemResponse(parsed, { requestId }), requestId, parsed.code === 'payload_too_large');
      if (parsed === undefined && !handler.bodyOptional) {
        return withRequestId(problemResponse(problem('invalid_body', 'a JSON body is required'), { requestId }), requestId);
      }
      if (parsed !== undefined) {
        const result = handler.body.safeParse(parsed);
        if (!result.success) {
          const issues = result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
          return withRequestId(problemResponse(problem('invalid_body', issues.join('; '), { issues }), { requestId }), requestId);
        }
        body = result.data;
      }
    } else if (hasBody(incoming)) {
      return withRequestId(problemResponse(problem('unexpected_body', 'this route takes no request body'), { requestId }), requestId, true);
    }
    try {
      const res = await handler.handle({ c, outcome, requestId, body });
      return withRequestId(res, requestId);
    } catch (err) {
      const unavailable = isUnavailableError(err);
      deps.logger.error('handler failed', { request_id: requestId, route: outcome.route.id, ...errorFields(err) });
      const p = unavailable ? problem('unavailable', 'the gateway cannot complete this right now') : problem('internal_error', 'internal error');
      return withRequestId(problemResponse(p, { requestId }), requestId);
    }
  });

  return app;
}

function withRequestId(res: Response, requestId: string, close = false): Response {
  res.headers.set('x-request-id', requestId);
  if (close) res.headers.set('connection', 'close');
  return res;
}

/** Identity headers for the upstream (CONTRACT §4). Every value is header-safe by construction. */
export function identityHeaders(outcome: Allowed, requestId: string): Record<string, string> {
  const p = outcome.principal;
  const headers: Record<string, string> = {
    'x-packagento-principal': p.kind === 'user' ? `user:${p.id}` : p.kind === 'token' ? `token:${p.id}` : 'anonymous',
  };
  const workspace = p.kind === 'token' ? p.workspaceId : outcome.params['ws'];
  const project = p.kind === 'token' ? p.projectId : outcome.params['p'];
  if (workspace !== undefined) headers['x-packagento-workspace'] = workspace;
  if (project !== undefined) headers['x-packagento-project'] = project;
  headers['x-packagento-roles'] = outcome.subjects.join(',');
  if (outcome.route.action) headers['x-packagento-action'] = outcome.route.action;
  headers['x-packagento-decision-id'] = outcome.decision.decision_id;
  headers['x-packagento-policy-revision'] = outcome.bundle.revision;
  if (outcome.shadowDenied) headers['x-packagento-shadow-decision'] = 'deny';
  headers['x-request-id'] = requestId;
  return headers;
}

type OpsHandler = (c: Context<Env>, deps: AppDeps) => Promise<Response>;

/** `/_gate/*`: operations, answered by the gateway, never forwarded. */
function operations(rawTarget: string): OpsHandler | undefined {
  // Cheap test first: this runs for every request, before the gate canonicalizes the path.
  if (!rawTarget.startsWith('/_gate/')) return undefined;
  const canonical = canonicalizeTarget(rawTarget);
  if (!canonical.ok || canonical.segments[0] !== '_gate') return undefined;
  const name = canonical.segments.length === 2 ? canonical.segments[1] : undefined;
  switch (name) {
    case 'healthz':
      return async (c) => c.json({ status: 'ok' });
    case 'readyz':
      return async (c, deps) => {
        const checks: Record<string, string> = {};
        try {
          checks['database'] = (await schemaIsCurrent(deps.db)) ? 'ok' : 'schema not migrated';
        } catch {
          checks['database'] = 'unreachable';
        }
        checks['policy'] = deps.policy.current ? 'ok' : 'not loaded';
        const ready = Object.values(checks).every((v) => v === 'ok');
        return c.json({ status: ready ? 'ready' : 'not ready', checks, policy_revision: deps.policy.current.revision }, ready ? 200 : 503);
      };
    default:
      return async () => problemResponse(problem('not_found', 'no such operations endpoint'));
  }
}

/**
 * The Node request listener, plus a handler for what Node's HTTP parser refuses
 * before any request exists.
 *
 * Every request except `/_gate/*` goes through the decision path first, here. An
 * allowed request to an upstream route is forwarded straight from the Node request
 * (no framework work on the forwarded hot path) and a deny is answered here; only
 * allowed native routes and operations are handed to the Hono app, with the
 * decision attached. Every refusal is problem+json with one decision line.
 */
export function createNodeHandlers(deps: AppDeps) {
  const pipeline = createPipeline(deps);
  const app = createApp(deps, pipeline);

  const refuseEarly = (code: 'bad_path' | 'bad_request', detail: string, method: string, rawTarget: string) => {
    const requestId = randomUUID();
    const path = redactPath(rawTarget.split('?')[0] ?? '');
    const decision = newDecision({ requestId, method, path, policyRevision: deps.policy.current.revision, mode: deps.mode });
    decision.code = code;
    decision.status = 400;
    deps.decisionLog.write(decision, 0);
    return { requestId, decision, body: JSON.stringify(problemBody(problem(code, detail), { requestId, decisionId: decision.decision_id })) };
  };

  // The request being handed to @hono/node-server right now: its errorHandler runs synchronously
  // when it cannot build a request (so this is that request), and receives only the error.
  let current: WithDecision | undefined;
  const honoListener = getRequestListener(
    async (request, env) => {
      const res = await app.fetch(request, env);
      // Hono answers HEAD by wrapping the GET response in a new Response; an already-sent
      // answer must stay marked as such, or the server writes it twice.
      return res.headers.has('x-hono-already-sent') ? RESPONSE_ALREADY_SENT : res;
    },
    {
      // @hono/node-server refuses a request-target it cannot turn into a URL before the app
      // runs. The gate refuses those first; this is the backstop, answering as the gate would.
      errorHandler: (err) => {
        if ((err as Error)?.name !== 'RequestError') return problemResponse(problem('internal_error', 'internal error'));
        const incoming = current;
        const r = refuseEarly('bad_path', 'the request target is not a valid path', incoming?.method ?? '', incoming?.url ?? '');
        return new Response(r.body, {
          status: 400,
          headers: { 'content-type': 'application/problem+json', 'x-request-id': r.requestId, connection: 'close' },
        });
      },
    },
  );
  const toHono = (incoming: WithDecision, outgoing: ServerResponse) => {
    current = incoming;
    try {
      return honoListener(incoming, outgoing);
    } finally {
      current = undefined;
    }
  };

  const listener = (incoming: IncomingMessage, outgoing: ServerResponse): void => {
    if (operations(incoming.url ?? '') !== undefined) {
      void toHono(incoming, outgoing);
      return;
    }
    pipeline.decide(incoming).then(
      (decided) => {
        const { outcome } = decided;
        if (!outcome.allow) return pipeline.refuse(outgoing, { ...decided, outcome });
        if (outcome.route.to === 'upstream') return pipeline.forward(incoming, outgoing, outcome, decided.requestId);
        (incoming as WithDecision)[DECIDED] = decided;
        void toHono(incoming, outgoing);
      },
      (err: unknown) => {
        // decide() turns decision errors into denies; this is a bug elsewhere. Fail closed.
        deps.logger.error('request failed before a decision', errorFields(err));
        if (!outgoing.headersSent) {
          outgoing.writeHead(500, { 'content-type': 'application/problem+json', connection: 'close' });
          outgoing.end(JSON.stringify(problemBody(problem('internal_error', 'internal error'))));
        } else outgoing.destroy();
      },
    );
  };

  /** Node's parser refused the bytes (raw control or non-ASCII characters, bad headers…). */
  const onClientError = (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    // A response is already under way on this connection (pipelining): never write into it.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      socket.end('HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const line = (err.rawPacket?.toString('latin1') ?? '').split('\r\n')[0] ?? '';
    const [method = '', target = ''] = line.split(' ');
    const inTarget = err.code === 'HPE_INVALID_URL' || err.code === 'HPE_INVALID_METHOD' || /[^\x21-\x7e]/.test(target);
    const r = refuseEarly(inTarget ? 'bad_path' : 'bad_request', inTarget ? 'the request target is not a valid path' : 'malformed HTTP request', method.slice(0, 16), target);
    socket.end(
      `HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\nX-Request-Id: ${r.requestId}\r\n` +
        `Content-Length: ${Buffer.byteLength(r.body)}\r\nConnection: close\r\n\r\n${r.body}`,
    );
  };

  return { app, listener, onClientError };
}
