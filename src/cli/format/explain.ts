import type { ExplainedCheck, Explanation } from '../../policy-tools/explain.ts';
import { POLICY_FILE, type PolicyBundle } from '../../policy/bundle.ts';
import { lineRef, policyFilePath } from '../../policy-tools/trace.ts';

const pad = (label: string) => label.padEnd(11);

function checkLabel(c: ExplainedCheck): string {
  if (c.target === '*') return `${c.action} (any target role)`;
  return c.target === '-' ? c.action : `${c.action}@${c.target}`;
}

/** A plain-text account of one decision, top to bottom in the gate's order. */
export function renderExplanation(e: Explanation, bundle: PolicyBundle): string {
  const out: string[] = [];
  out.push(`${pad('request')} ${e.request}`);
  out.push(`${pad('world')} ${e.world}`);
  out.push(`${pad('canonical')} ${e.canonical ?? `refused: ${e.refused}`}`);
  if (e.route) {
    out.push(`${pad('route')} ${e.route.id} → ${e.route.action} (${e.route.to}, auth=${e.route.auth})  ${e.route.ref}`);
    if (e.route.checks.length > 1 || e.route.checks[0]?.includes('@')) out.push(`${pad('')} checks: ${e.route.checks.join(', ')}`);
  } else if (e.canonical !== undefined) {
    out.push(`${pad('route')} none`);
  }
  out.push(`${pad('principal')} ${e.principal}`);
  const scope = [e.workspace && `workspace ${e.workspace}`, e.project && `project ${e.project}`].filter(Boolean).join(', ');
  out.push(`${pad('roles')} ${e.roles.length > 0 ? e.roles.join(', ') : 'none'}${scope ? ` (${scope})` : ''}`);
  for (const [i, c] of e.checks.entries()) {
    out.push(`${pad(i === 0 ? 'decision' : '')} ${checkLabel(c)}: ${c.allow ? 'allow' : 'deny'}`);
    for (const t of c.traces) {
      if (!t.rule) continue;
      out.push(`${pad('')}   ${t.subject}: ${lineRef(bundle, t.rule)}  ${t.rule.text}`);
      for (const l of [...t.roleChain, ...t.targetChain]) out.push(`${pad('')}     via ${lineRef(bundle, l)}  ${l.text}`);
    }
    if (!c.allow) {
      out.push(`${pad('')}   no line of ${policyFilePath(bundle, POLICY_FILE)} allows it for ${e.roles.join(', ') || 'no role'}`);
      out.push(`${pad('')}   would allow: ${c.wouldAllow.join(', ') || 'no subject'}`);
    }
  }
  if (e.visibleTo) {
    out.push(`${pad('would allow')} ${e.visibleTo.join(', ') || 'no subject'} (without a role in the workspace, its routes answer 404)`);
  }
  out.push(`${pad('result')} ${e.result.allow ? 'allow' : `deny ${e.result.status} ${e.result.code}: ${e.result.detail}`}`);
  return out.join('\n') + '\n';
}
