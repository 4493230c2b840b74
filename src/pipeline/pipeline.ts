import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../authn/authenticate.ts';
import type { AccessRepo } from '../db/access-repo.ts';
import { UserRecorder } from '../db/user-recorder.ts';
import { hasBody, parseJsonObject, readBody } from '../http/body.ts';
import { singleRawHeader } from '../http/headers.ts';
import { sendContinue } from '../http/expect-continue.ts';
import { isProblem, sendProblem, type Problem } from '../http/problem.ts';
import { requestIdOf } from '../http/request-id.ts';
import { newSpanId, traceFor, upstreamTraceparent, type TraceContext } from '../http/trace-context.ts';
import type { DecisionLog } from '../log/decision-log.ts';
import { errorFields, type Logger } from '../log/logger.ts';
import type { PolicyStore } from '../policy/store.ts';
import type { GateMetrics } from '../telemetry/metrics.ts';
import type { RequestTracer } from '../telemetry/tracer.ts';
import type { Forwarder } from './forward.ts';
import { createGate } from './gate.ts';
import { identityHeaders } from './identity.ts';
import type { Allowed, Denied, GateOutcome, GateRequest } from './types.ts';

/** The status logged for a request whose client went away before its answer ended (nginx's convention). */
export const CLIENT_GONE = 499;

export interface PipelineDeps {
  policy: PolicyStore;
  access: AccessRepo;
  authenticator: Authenticator;
  forwarder: Forwarder;
  decisionLog: DecisionLog;
  logger: Logger;
  mode: 'enforce' | 'shadow';
  /**
   * Called once per request after the decision, before the request is answered or
   * forwarded (metrics; tests use it to land a concurrent change in that window).
   */
  onDecision?: (outcome: GateOutcome) => void | Promise<void>;
  /** Prometheus metrics (decision duration here; the request counter where the exchange ends). */
  metrics?: GateMetrics;
  /** OTLP export of one span per request (OTEL_EXPORTER_OTLP_ENDPOINT); absent: ids only. */
  tracer?: RequestTracer;
}

/** A request that went through the decision path (logged exactly once). */
export interface Decided {
  outcome: GateOutcome;
  requestId: string;
  /** The gateway's span in the caller's trace (continued from `traceparent`, or new). */
  trace: TraceContext;
  /** The JSON body, read at most once (the gate may have read it for a rank rule). */
  readJsonBody: () => Promise<Record<string, unknown> | undefined | Problem>;
  /**
   * Writes the decision line with what the client got (CONTRACT §7: when the exchange
   * ends; 499 when the client went away first). Once: later calls do nothing. A deny's
   * line is already written when decide() returns.
   */
  finish(status: number, upstreamUs?: number): void;
}

export interface Pipeline {
  /** Decides a Node request: evaluate (never throws), log one decision line, record the user. */
  decide(incoming: IncomingMessage): Promise<Decided>;
  /** Forwards an allowed upstream request with the identity headers; its line is written when the exchange ends. */
  forward(incoming: IncomingMessage, outgoing: ServerResponse, decided: Decided & { outcome: Allowed }): void;
  /** Answers a deny (problem+json) on the Node response. */
  refuse(outgoing: ServerResponse, decided: Decided & { outcome: Denied }): void;
  /** Logs an allowed request answered on `outgoing` (a native route) when its exchange ends. */
  finishWhenDone(outgoing: ServerResponse, decided: Decided): void;
  /**
   * Decides a request a proxy describes (the forward-auth listener): the same path, logged
   * as one `mode: "forward-auth"` line. Nothing is forwarded.
   */
  decideForwardAuth(req: GateRequest, requestId: string): Promise<Decided['outcome'] & { finish: Decided['finish'] }>;
}

/** The decision path shared by every entry, from a Node request to a decision line. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const gate = createGate({ policy: () => deps.policy.current, authenticator: deps.authenticator, access: deps.access, mode: deps.mode });
  const users = new UserRecorder(deps.access, (err) => deps.logger.warn('could not record a user', errorFields(err)));

  /**
   * Evaluates (never throws) and records the user. The one decision line is written by
   * `finish`: at once for a deny, when the exchange ends for an allow.
   */
  const evaluate = async (req: GateRequest, requestId: string, forwardAuth: boolean): Promise<{ outcome: GateOutcome; finish: Decided['finish'] }> => {
    const started = process.hrtime.bigint();
    const outcome = await gate.evaluate(req, requestId);
    const elapsed = process.hrtime.bigint() - started;
    const durationUs = Number(elapsed / 1000n);
    deps.metrics?.decision(Number(elapsed) / 1e9);
    const d = outcome.decision;
    if (forwardAuth) d.mode = 'forward-auth';
    if (!outcome.allow && outcome.error !== undefined) {
      deps.logger.error('decision failed', { request_id: requestId, trace_id: d.trace_id, decision_id: d.decision_id, ...errorFields(outcome.error) });
    }
    let written = false;
    const finish = (status: number, upstreamUs?: number) => {
      if (written) return;
      written = true;
      d.status = status;
      if (upstreamUs !== undefined) d.upstream_us = upstreamUs;
      deps.decisionLog.write(d, durationUs);
    };
    if (!outcome.allow) finish(d.status);
    if (outcome.allow && outcome.principal.kind === 'user') users.seen(outcome.principal);
    await deps.onDecision?.(outcome);
    return { outcome, finish };
  };

  return {
    async decideForwardAuth(req, requestId) {
      // The trace of the request the proxy describes (its traceparent, passed along), or a new one.
      const { outcome, finish } = await evaluate({ ...req, traceId: traceFor(singleRawHeader(req.rawHeaders, 'traceparent')).traceId }, requestId, true);
      return Object.assign(outcome, { finish });
    },

    finishWhenDone(outgoing, decided) {
      // 'finish': the whole answer was handed to the OS; a 'close' before it: the client went away.
      outgoing.once('finish', () => decided.finish(outgoing.statusCode));
      outgoing.once('close', () => decided.finish(CLIENT_GONE));
    },

    async decide(incoming) {
      const requestId = requestIdOf(incoming);
      const trace = traceFor(singleRawHeader(incoming.rawHeaders, 'traceparent'), deps.tracer ? deps.tracer.spanId() : newSpanId());
      let bodyPromise: Promise<Record<string, unknown> | undefined | Problem> | undefined;
      const readJsonBody = () =>
        (bodyPromise ??= (async () => {
          if (!hasBody(incoming)) return undefined;
          // The decision needs the body (the gate asks only after authentication): now it may come.
          sendContinue(incoming);
          const raw = await readBody(incoming);
          if (isProblem(raw)) return raw;
          return parseJsonObject(incoming.headers['content-type'], raw);
        })());
      const { outcome, finish } = await evaluate(
        { method: incoming.method ?? 'GET', target: incoming.url ?? '', rawHeaders: incoming.rawHeaders, readJsonBody, traceId: trace.traceId },
        requestId,
        false,
      );
      return { outcome, requestId, trace, readJsonBody, finish };
    },

    forward(incoming, outgoing, { outcome, requestId, trace, finish }) {
      const upstreamStarted = process.hrtime.bigint();
      const identity = identityHeaders(outcome, requestId);
      // The caller's traceparent is never forwarded as is: the upstream's parent is the gateway's span.
      identity['traceparent'] = upstreamTraceparent(trace);
      deps.forwarder.forward({
        // The status the client got (499 when it went away first), and how long the upstream exchange took.
        onDone: (status) => finish(status, Number((process.hrtime.bigint() - upstreamStarted) / 1000n)),
        incoming,
        outgoing,
        method: incoming.method ?? 'GET',
        path: outcome.query !== undefined ? `${outcome.path}?${outcome.query}` : outcome.path,
        host: outcome.host,
        chunked: outcome.chunked,
        bodyless: outcome.bodyless,
        identity,
        requestId,
        traceId: outcome.decision.trace_id,
      });
    },

    refuse(outgoing, { outcome, requestId }) {
      sendProblem(outgoing, outcome.problem, { requestId, decisionId: outcome.decision.decision_id }, outcome.closeConnection);
    },
  };
}
