import type { IncomingMessage } from 'node:http';
import { Hono } from 'hono';
import type { Db } from './db/client.ts';
import { isUnavailableError } from './db/errors.ts';
import { hasBody } from './http/body.ts';
import type { Env } from './http/hono-env.ts';
import { isProblem, problem, problemResponse, type Problem } from './http/problem.ts';
import { errorFields, type Logger } from './log/logger.ts';
import type { OperationsHandler } from './operations.ts';
import type { Decided } from './pipeline/pipeline.ts';
import type { Allowed } from './pipeline/types.ts';
import type { PolicyStore } from './policy/store.ts';
import type { NativeHandler, NativeHandlers, RouteParam } from './team/types.ts';

/** What the Node listener decided for a request before handing it to the app. */
export type Handoff =
  | { kind: 'operations'; handler: OperationsHandler; requestId: string }
  | { kind: 'native'; decided: Decided & { outcome: Allowed } };

/** Requests handed to the app, keyed by Node's request (the app never decides again). */
export type Handoffs = WeakMap<IncomingMessage, Handoff>;

export interface AppDeps {
  db: Db;
  policy: PolicyStore;
  natives: NativeHandlers;
  logger: Logger;
}

/**
 * The gateway's own API (natives) and operations as a Hono app. It serves only what
 * the Node listener (src/server.ts) decided and handed over; a request without a
 * handoff never reaches a handler.
 */
export function createApp(deps: AppDeps, handoffs: Handoffs): Hono<Env> {
  const app = new Hono<Env>();

  app.onError((err, c) => {
    const requestId = c.res.headers.get('x-request-id') ?? 'unknown';
    deps.logger.error('unhandled error', { request_id: requestId, ...errorFields(err) });
    return problemResponse(problem('internal_error', 'internal error'), { requestId });
  });

  app.use('*', async function packagentoGate(c) {
    const incoming = c.env?.incoming;
    const handoff = incoming ? handoffs.get(incoming) : undefined;
    if (!incoming || !handoff) throw new Error('the app serves only requests the gateway listener decided');
    if (handoff.kind === 'operations') return withRequestId(await handoff.handler(c, deps), handoff.requestId);

    const { outcome, requestId, readJsonBody } = handoff.decided;
    const ids = { requestId, decisionId: outcome.decision.decision_id };
    const handler = deps.natives[outcome.route.id];
    if (!handler) return problemResponse(problem('not_implemented', `${outcome.route.id} is not implemented yet`), ids);

    const body = await validBody(handler, incoming, readJsonBody);
    if (body.problem) return problemResponse(body.problem, { requestId }, body.close);
    try {
      const res = await handler.handle({ c, outcome, requestId, body: body.value, param: paramOf(outcome) });
      return withRequestId(res, requestId);
    } catch (err) {
      deps.logger.error('handler failed', { request_id: requestId, route: outcome.route.id, ...errorFields(err) });
      const p = isUnavailableError(err) ? problem('unavailable', 'the gateway cannot complete this right now') : problem('internal_error', 'internal error');
      return problemResponse(p, { requestId });
    }
  });

  return app;
}

/** The handler's body: parsed and validated against its schema, or the problem to answer. */
async function validBody(
  handler: NativeHandler,
  incoming: IncomingMessage,
  readJsonBody: Decided['readJsonBody'],
): Promise<{ value: unknown; problem?: undefined } | { value?: undefined; problem: Problem; close: boolean }> {
  if (!handler.body) {
    return hasBody(incoming) ? { problem: problem('unexpected_body', 'this route takes no request body'), close: true } : { value: undefined };
  }
  const parsed = await readJsonBody();
  if (isProblem(parsed)) return { problem: parsed, close: parsed.code === 'payload_too_large' };
  if (parsed === undefined) {
    return handler.bodyOptional ? { value: undefined } : { problem: problem('invalid_body', 'a JSON body is required'), close: false };
  }
  const result = handler.body.safeParse(parsed);
  if (result.success) return { value: result.data };
  const issues = result.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`);
  return { problem: problem('invalid_body', issues.join('; '), { issues }), close: false };
}

function paramOf(outcome: Allowed): (name: RouteParam) => string {
  return (name) => {
    const value = outcome.params[name];
    if (value === undefined) throw new Error(`route ${outcome.route.id} has no {${name}} parameter`);
    return value;
  };
}

function withRequestId(res: Response, requestId: string): Response {
  res.headers.set('x-request-id', requestId);
  return res;
}
