import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { getRequestListener } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { createApp, type AppDeps, type Handoffs } from './app.ts';
import { problem, problemResponse, rawProblemMessage, sendProblem } from './http/problem.ts';
import { requestIdOf } from './http/request-id.ts';
import { newDecision, redactPath } from './log/decision.ts';
import { errorFields } from './log/logger.ts';
import { operations } from './operations.ts';
import { createPipeline, type PipelineDeps } from './pipeline/pipeline.ts';

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
    pipeline.decide(incoming).then(
      (decided) => {
        const { outcome } = decided;
        if (!outcome.allow) return pipeline.refuse(outgoing, { ...decided, outcome });
        if (outcome.route.to === 'upstream') return pipeline.forward(incoming, outgoing, outcome, decided.requestId);
        handoffs.set(incoming, { kind: 'native', decided: { ...decided, outcome } });
        void toHono(incoming, outgoing);
      },
      (err: unknown) => {
        // decide() turns decision errors into denies; this is a bug elsewhere. Fail closed.
        deps.logger.error('request failed before a decision', errorFields(err));
        sendProblem(outgoing, problem('internal_error', 'internal error'), {}, true);
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
    socket.end(rawProblemMessage(r.problem, r.ids));
  };

  return { app, listener, onClientError };
}
