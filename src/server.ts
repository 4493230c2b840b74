import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { createApp, type AppDeps, type Handoffs } from './app.ts';
import { awaitsContinue, sendContinue } from './http/expect-continue.ts';
import { problem, problemResponse, rawProblemMessage, sendProblem } from './http/problem.ts';
import { requestIdOf } from './http/request-id.ts';
import { newDecision, redactPath } from './log/decision.ts';
import { errorFields } from './log/logger.ts';
import { operations } from './operations.ts';
import { createAuthzListener } from './pipeline/authz.ts';
import { createPipeline, type Decided, type PipelineDeps } from './pipeline/pipeline.ts';

export type ServerDeps = PipelineDeps & AppDeps;

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
export function createNodeHandlers(deps: ServerDeps) {
  const pipeline = createPipeline(deps);
  const handoffs: Handoffs = new WeakMap();
  const app = createApp(deps, handoffs);

  /** A refusal before any request exists: one decision line, and the problem to answer. */
  const refuseEarly = (code: 'bad_path' | 'bad_request', detail: string, method: string, rawTarget: string) => {
    const requestId = randomUUID();
    const path = redactPath(rawTarget.split('?')[0] ?? '');
    const decision = newDecision({ requestId, method, path, policyRevision: deps.policy.current.revision, mode: deps.mode });
    decision.code = code;
    decision.status = 400;
    deps.decisionLog.write(decision, 0);
    deps.metrics?.request({ route: undefined, action: undefined, result: 'deny', status: 400 });
    return { problem: problem(code, detail), ids: { requestId, decisionId: decision.decision_id } };
  };

  // The request being handed to @hono/node-server right now: its errorHandler runs synchronously
  // when it cannot build a request (so this is that request), and receives only the error.
  let current: IncomingMessage | undefined;
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
        const r = refuseEarly('bad_path', 'the request target is not a valid path', current?.method ?? '', current?.url ?? '');
        return problemResponse(r.problem, r.ids, true);
      },
    },
  );
  const toHono = (incoming: IncomingMessage, outgoing: ServerResponse) => {
    current = incoming;
    try {
      return honoListener(incoming, outgoing);
    } finally {
      current = undefined;
    }
  };

  const listener = (incoming: IncomingMessage, outgoing: ServerResponse): void => {
    const ops = operations(incoming.url ?? '');
    if (ops !== undefined) {
      handoffs.set(incoming, { kind: 'operations', handler: ops, requestId: requestIdOf(incoming) });
      void toHono(incoming, outgoing);
      return;
    }
    // When the exchange ends: one count in gate_requests_total (status = what the client got,
    // 499 when it went away first) and, with OTLP export on, one span.
    let decided: Decided | undefined;
    if (deps.metrics || deps.tracer) {
      const startTime = deps.tracer ? performance.timeOrigin + performance.now() : 0;
      outgoing.once('close', () => {
        const status = outgoing.writableFinished ? outgoing.statusCode : 499;
        const d = decided?.outcome.decision;
        const labels = { route: d?.route ?? undefined, action: d?.action ?? undefined, result: d?.result ?? ('deny' as const), status };
        deps.metrics?.request(labels);
        if (deps.tracer && decided && d) {
          const t = decided.trace;
          deps.tracer.record(
            { traceId: t.traceId, spanId: t.spanId, parentSpanId: t.parentSpanId, flags: t.flags, startTime },
            { ...labels, method: incoming.method ?? '', requestId: decided.requestId, decisionId: d.decision_id },
          );
        }
      });
    }
    pipeline.decide(incoming).then(
      (result) => {
        decided = result;
        const { outcome } = result;
        if (!outcome.allow) {
          // No 100 Continue for a refusal; the body may or may not follow, so the connection closes.
          const close = outcome.closeConnection || awaitsContinue(incoming);
          return pipeline.refuse(outgoing, { ...result, outcome: close ? { ...outcome, closeConnection: true } : outcome });
        }
        sendContinue(incoming);
        if (outcome.route.to === 'upstream') return pipeline.forward(incoming, outgoing, { ...result, outcome });
        pipeline.finishWhenDone(outgoing, result);
        handoffs.set(incoming, { kind: 'native', decided: { ...result, outcome } });
        void toHono(incoming, outgoing);
      },
      (err: unknown) => {
        // decide() turns decision errors into denies; this is a bug elsewhere. Fail closed.
        deps.logger.error('request failed before a decision', errorFields(err));
        deps.metrics?.request({ route: undefined, action: undefined, result: 'deny', status: 500 });
        sendProblem(outgoing, problem('internal_error', 'internal error'), {}, true);
      },
    );
  };

  /** Node's parser refused the bytes (raw control or non-ASCII characters, bad headers…). */
  const onClientError = (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    // Bytes pipelined behind a request that is still being answered (issue #9 fault 7): its
    // answer — perhaps the upstream's, to a POST it already executed — must reach the client
    // first and whole. Nothing is written into the socket; the connection closes after it.
    const inFlight = (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (inFlight && !inFlight.writableFinished) {
      if (!inFlight.headersSent) inFlight.shouldKeepAlive = false;
      else inFlight.once('finish', () => (socket as Duplex & { destroySoon?: () => void }).destroySoon?.() ?? socket.end());
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
    socket.end(rawProblemMessage(r.problem, r.ids));
  };

  /** The forward-auth listener's handler (CONTRACT §4b); main.ts serves it on its own port only. */
  const authzListener = createAuthzListener({
    decide: (req, requestId) => pipeline.decideForwardAuth(req, requestId),
    decisionLog: deps.decisionLog,
    logger: deps.logger,
    revision: () => deps.policy.current.revision,
  });

  return { app, listener, onClientError, authzListener };
}
