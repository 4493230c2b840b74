import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticator } from '../authn/authenticate.ts';
import type { AccessRepo } from '../db/access-repo.ts';
import { UserRecorder } from '../db/user-recorder.ts';
import { hasBody, parseJsonObject, readBody } from '../http/body.ts';
import { isProblem, sendProblem, type Problem } from '../http/problem.ts';
import { requestIdOf } from '../http/request-id.ts';
import type { DecisionLog } from '../log/decision-log.ts';
import { errorFields, type Logger } from '../log/logger.ts';
import type { PolicyStore } from '../policy/store.ts';
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
}

/** A request that went through the decision path (logged exactly once). */
export interface Decided {
  outcome: GateOutcome;
  requestId: string;
  /** The JSON body, read at most once (the gate may have read it for a rank rule). */
  readJsonBody: () => Promise<Record<string, unknown> | undefined | Problem>;
}

export interface Pipeline {
  /** Decides a Node request: evaluate (never throws), log one decision line, record the user. */
  decide(incoming: IncomingMessage): Promise<Decided>;
  /** Forwards an allowed upstream request with the identity headers. */
  forward(incoming: IncomingMessage, outgoing: ServerResponse, outcome: Allowed, requestId: string): void;
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
    },

    forward(incoming, outgoing, outcome, requestId) {
      deps.forwarder.forward({
        incoming,
        outgoing,
        method: incoming.method ?? 'GET',
        path: outcome.path + (outcome.query !== undefined ? `?${outcome.query}` : ''),
        identity: identityHeaders(outcome, requestId),
        requestId,
      });
    },

    refuse(outgoing, { outcome, requestId }) {
      sendProblem(outgoing, outcome.problem, { requestId, decisionId: outcome.decision.decision_id }, outcome.closeConnection);
    },
  };
}
