import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../authn/authenticate.ts';
import type { AccessRepo } from '../db/access-repo.ts';
import { UserRecorder } from '../db/user-recorder.ts';
import { hasBody, parseJsonObject, readBody } from '../http/body.ts';
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
import type { Allowed, Denied, GateOutcome } from './types.ts';

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
}

export interface Pipeline {
  /** Decides a Node request: evaluate (never throws), log one decision line, record the user. */
  decide(incoming: IncomingMessage): Promise<Decided>;
  /** Forwards an allowed upstream request with the identity headers. */
  forward(incoming: IncomingMessage, outgoing: ServerResponse, outcome: Allowed, requestId: string, trace?: TraceContext): void;
  /** Answers a deny (problem+json) on the Node response. */
  refuse(outgoing: ServerResponse, decided: Decided & { outcome: Denied }): void;
}

/** The decision path shared by every entry, from a Node request to a decision line. */
export function createPipeline(deps: PipelineDeps): Pipeline {
  const gate = createGate({ policy: () => deps.policy.current, authenticator: deps.authenticator, access: deps.access, mode: deps.mode });
  const users = new UserRecorder(deps.access, (err) => deps.logger.warn('could not record a user', errorFields(err)));

  return {
    async decide(incoming) {
      const started = process.hrtime.bigint();
      const requestId = requestIdOf(incoming);
      const trace = traceFor(incoming.headers.traceparent, deps.tracer ? deps.tracer.spanId() : newSpanId());
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
      const outcome = await gate.evaluate(
        { method: incoming.method ?? 'GET', target: incoming.url ?? '', rawHeaders: incoming.rawHeaders, readJsonBody, traceId: trace.traceId },
        requestId,
      );
      const elapsed = process.hrtime.bigint() - started;
      if (!outcome.allow && outcome.error !== undefined) {
        deps.logger.error('decision failed', {
          request_id: requestId,
          trace_id: trace.traceId,
          decision_id: outcome.decision.decision_id,
          ...errorFields(outcome.error),
        });
      }
      deps.metrics?.decision(Number(elapsed) / 1e9);
      deps.decisionLog.write(outcome.decision, Number(elapsed / 1000n));
      if (outcome.allow && outcome.principal.kind === 'user') users.seen(outcome.principal);
      await deps.onDecision?.(outcome);
      return { outcome, requestId, trace, readJsonBody };
    },

    forward(incoming, outgoing, outcome, requestId, trace) {
      const identity = identityHeaders(outcome, requestId);
      // The caller's traceparent is never forwarded as is: the upstream's parent is the gateway's span.
      identity['traceparent'] = upstreamTraceparent(trace ?? traceFor(undefined));
      deps.forwarder.forward({
        incoming,
        outgoing,
        method: incoming.method ?? 'GET',
        path: outcome.path + (outcome.query !== undefined ? `?${outcome.query}` : ''),
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
