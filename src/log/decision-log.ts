import type { Decision } from '../gateway/gate.ts';
import type { LineSink } from './logger.ts';

export interface DecisionLog {
  write(decision: Decision, durationUs: number): void;
}

/**
 * One JSON line per decision (CONTRACT §7). The Decision value never holds
 * credentials; paths are redacted where they carry a secret (invite links).
 */
export function createDecisionLog(sink: LineSink = (l) => process.stdout.write(l + '\n')): DecisionLog {
  return {
    write(d, durationUs) {
      sink(
        JSON.stringify({
          time: new Date().toISOString(),
          decision_id: d.decision_id,
          request_id: d.request_id,
          principal: d.principal,
          method: d.method,
          path: d.path,
          route: d.route,
          action: d.action,
          target_role: d.target_role,
          workspace: d.workspace,
          project: d.project,
          roles: d.roles,
          result: d.result,
          code: d.code,
          status: d.status,
          policy_revision: d.policy_revision,
          mode: d.mode,
          duration_us: durationUs,
        }),
      );
    },
  };
}
