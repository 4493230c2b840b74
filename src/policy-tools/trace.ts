import { NO_TARGET, type Action, type Subject } from '../domain.ts';
import type { Target } from '../policy/decision-table.ts';
import { POLICY_FILE, type PolicyBundle, type PolicyLine } from '../policy/bundle.ts';

/** Why one (subject, action, target) cell is allowed: the p line Casbin matched, and the g / g2 lines that led to it. */
export interface DecisionTrace {
  subject: Subject;
  action: Action;
  target: Target;
  allow: boolean;
  /** The p line that allowed it (Casbin's enforceEx explanation), undefined for a deny. */
  rule: PolicyLine | undefined;
  /** g lines from the subject to the rule's subject (role inheritance), in order. */
  roleChain: PolicyLine[];
  /** g2 lines from the target to the rule's target (rank containment), in order. */
  targetChain: PolicyLine[];
}

/** `policies/policy.csv` for a folder source, `REF:policies/policy.csv` for a git source. */
export function policyFilePath(bundle: PolicyBundle, name: string): string {
  const origin = bundle.source.origin.replace(/^\.\//, '').replace(/\/$/, '');
  return origin === '' || origin === '.' ? name : `${origin}/${name}`;
}

/** Shortest chain of `ptype` lines (child, parent) from `from` to `to`; [] when equal or unreachable. */
function chain(lines: readonly PolicyLine[], ptype: string, from: string, to: string): PolicyLine[] {
  if (from === to) return [];
  const edges = lines.filter((l) => l.ptype === ptype);
  const prev = new Map<string, PolicyLine>();
  const queue = [from];
  const seen = new Set([from]);
  while (queue.length > 0) {
    const node = queue.shift()!;
    for (const e of edges) {
      if (e.values[0] !== node || seen.has(e.values[1]!)) continue;
      seen.add(e.values[1]!);
      prev.set(e.values[1]!, e);
      if (e.values[1] === to) {
        const path: PolicyLine[] = [];
        for (let n = to; n !== from; ) {
          const edge = prev.get(n)!;
          path.unshift(edge);
          n = edge.values[0]!;
        }
        return path;
      }
      queue.push(e.values[1]!);
    }
  }
  return [];
}

/**
 * Asks the bundle's stock Casbin enforcer (enforceExSync) which policy line decides a cell,
 * and maps it back to its line in policy.csv.
 */
export function traceDecision(bundle: PolicyBundle, subject: Subject, action: Action, target: Target = NO_TARGET): DecisionTrace {
  const [allow, explained] = bundle.enforcer.enforceExSync(subject, action, target);
  let rule: PolicyLine | undefined;
  if (allow && explained.length > 0) {
    rule = bundle.policyLines.find((l) => l.ptype === 'p' && l.values.length === explained.length && l.values.every((v, i) => v === explained[i]));
  }
  return {
    subject,
    action,
    target,
    allow,
    rule,
    roleChain: rule ? chain(bundle.policyLines, 'g', subject, rule.values[0]!) : [],
    targetChain: rule ? chain(bundle.policyLines, 'g2', target, rule.values[2]!) : [],
  };
}

/** `policies/policy.csv:17` */
export function lineRef(bundle: PolicyBundle, line: PolicyLine): string {
  return `${policyFilePath(bundle, POLICY_FILE)}:${line.line}`;
}
