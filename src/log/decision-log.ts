import type { Decision } from './decision.ts';
import type { LineSink } from './logger.ts';

export interface DecisionLog {
  write(decision: Decision, durationUs: number): void;
  /** Writes out what is buffered (on shutdown). */
  flush(): void;
}

/**
 * One JSON line per decision (CONTRACT §7). The Decision value never holds
 * credentials; paths are redacted where they carry a secret (invite links).
 *
 * The default sink is stdout, written once per event-loop turn: a write per line
 * was a syscall per request (about a tenth of the gateway's CPU under load).
 */
export function createDecisionLog(sink?: LineSink): DecisionLog {
  const out = sink ?? batchedStdout();
  return {
    write(d, durationUs) {
      out(
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
    flush() {
      (out as Partial<BatchedSink>).flush?.();
    },
  };
}

type BatchedSink = LineSink & { flush(): void };

/** Lines written to stdout together at the end of the current event-loop turn. */
export function batchedStdout(write: (chunk: string) => void = (c) => process.stdout.write(c)): BatchedSink {
  let pending: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (pending.length === 0) return;
    const chunk = pending.join('\n') + '\n';
    pending = [];
    write(chunk);
  };
  const sink = ((line: string) => {
    pending.push(line);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  }) as BatchedSink;
  sink.flush = flush;
  return sink;
}
