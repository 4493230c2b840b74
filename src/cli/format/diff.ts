import { isEmptyDiff, type DecisionChange, type PolicyDiff, type RouteShape } from '../../policy-tools/diff.ts';

export const DIFF_FORMATS = ['md', 'json'] as const;
export type DiffFormat = (typeof DIFF_FORMATS)[number];

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const verdict = (allow: boolean) => (allow ? 'allow' : 'deny');
/** Markdown table cells cannot hold a raw `|`. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

function decisionTable(rows: readonly DecisionChange[]): string[] {
  if (rows.length === 0) return ['None.'];
  return [
    '| subject | action | target role | before → after |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.subject} | \`${r.action}\` | ${r.target_role ?? ''} | ${verdict(r.before)} → **${verdict(r.after)}** |`),
  ];
}

function shape(s: RouteShape | null): string {
  if (s === null) return '—';
  const extra = s.checks.slice(1);
  const opts = [
    ...(extra.length > 0 ? [`also ${extra.join(', ')}`] : []),
    ...(s.checks[0]?.includes('@') ? [`target ${s.checks[0].split('@')[1]}`] : []),
    `to=${s.to}`,
    ...(s.auth !== 'jwt' ? [`auth=${s.auth}`] : []),
    ...(s.guests !== 'project' ? [`guests=${s.guests}`] : []),
  ];
  return `\`${s.action ?? '-'}\` (${cell(opts.join('; '))})`;
}

/** GitHub-flavoured markdown for a pull-request comment; empty when nothing changes. */
export function renderDiffMd(d: PolicyDiff): string {
  if (isEmptyDiff(d)) return '';
  const count = (k: string) => d.routes.filter((r) => r.kind === k).length;
  const out = [
    `### Policy diff: ${plural(d.widened.length, 'decision')} widened, ${d.narrowed.length} narrowed, ` +
      `${plural(d.routes.length, 'route change')}, ${plural(d.fixtures.length, 'fixture case')} with a new outcome`,
    '',
    `\`${d.base.origin}\` (\`${d.base.revision}\`) → \`${d.head.origin}\` (\`${d.head.revision}\`)`,
    '',
    `#### Widened (${d.widened.length})`,
    '',
    ...decisionTable(d.widened),
    '',
    `#### Narrowed (${d.narrowed.length})`,
    '',
    ...decisionTable(d.narrowed),
    '',
    `#### Route map changes (${count('added')} added, ${count('removed')} removed, ${count('remapped')} remapped)`,
    '',
  ];
  if (d.routes.length === 0) out.push('None.');
  else {
    out.push('| change | route | before | after | now admits | no longer admits |', '|---|---|---|---|---|---|');
    for (const r of d.routes) {
      out.push(
        `| ${r.kind} | \`${cell(r.route)}\` | ${shape(r.before)} | ${shape(r.after)} | ${r.widens.join(', ') || '—'} | ${r.narrows.join(', ') || '—'} |`,
      );
    }
  }
  out.push('', `#### Fixture cases with a new outcome (${d.fixtures.length})`, '');
  if (d.fixtures.length === 0) out.push('None.');
  else {
    out.push('| case | expects | before → after | |', '|---|---|---|---|');
    for (const f of d.fixtures) {
      out.push(`| \`${f.file}:${f.line}\` ${cell(f.name)} | ${f.expect} | ${f.before} → **${f.after}** | ${f.passes ? 'passes' : '**fails**'} |`);
    }
  }
  return out.join('\n') + '\n';
}

export function renderDiffJson(d: PolicyDiff): string {
  return JSON.stringify(d, null, 2) + '\n';
}

export function renderDiff(d: PolicyDiff, format: DiffFormat): string {
  return format === 'json' ? renderDiffJson(d) : renderDiffMd(d);
}
