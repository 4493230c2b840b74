import { isEmptyDiff, type DecisionChange, type PolicyDiff, type RouteShape } from '../../policy-tools/diff.ts';

export const DIFF_FORMATS = ['md', 'json'] as const;
export type DiffFormat = (typeof DIFF_FORMATS)[number];

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const verdict = (allow: boolean) => (allow ? 'allow' : 'deny');
/** Markdown table cells cannot hold a raw `|`. */
const cell = (text: string) => text.replace(/\|/g, '\\|');

/** A table section: a heading, the table head, its rows (or a line saying there are none). */
interface Section {
  heading: string;
  head: string[];
  rows: string[];
}

function decisionSection(title: string, rows: readonly DecisionChange[]): Section {
  return {
    heading: `#### ${title} (${rows.length})`,
    head: ['| subject | action | target role | before → after |', '|---|---|---|---|'],
    rows: rows.map((r) => `| ${r.subject} | \`${r.action}\` | ${r.target_role ?? ''} | ${verdict(r.before)} → **${verdict(r.after)}** |`),
  };
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

/** The line `diff --format md` prints when nothing changes. */
export function noChangesLine(d: PolicyDiff): string {
  return `no decision changes: \`${d.base.origin}\` (\`${d.base.revision}\`) and \`${d.head.origin}\` (\`${d.head.revision}\`) decide alike\n`;
}

/** The smallest `--max-chars` that still leaves room for the summary and every heading. */
export const MIN_MD_CHARS = 2000;

export interface MdOptions {
  /**
   * Keep the report at most this many characters (GitHub refuses comments over 65,536):
   * the summary and every section heading stay, table rows are kept in order (widened
   * first) while they fit, and each cut table says how many rows it left out.
   */
  maxChars?: number;
}

/** GitHub-flavoured markdown for a pull-request comment; one "no decision changes" line when nothing changes. */
export function renderDiffMd(d: PolicyDiff, options: MdOptions = {}): string {
  if (isEmptyDiff(d)) return noChangesLine(d);
  const count = (k: string) => d.routes.filter((r) => r.kind === k).length;
  const header = [
    `### Policy diff: ${plural(d.widened.length, 'decision')} widened, ${d.narrowed.length} narrowed, ` +
      `${plural(d.routes.length, 'route change')}, ${plural(d.fixtures.length, 'fixture case')} with a new outcome`,
    '',
    `\`${d.base.origin}\` (\`${d.base.revision}\`) → \`${d.head.origin}\` (\`${d.head.revision}\`)`,
  ];
  const sections: Section[] = [
    decisionSection('Widened', d.widened),
    decisionSection('Narrowed', d.narrowed),
    {
      heading: `#### Route map changes (${count('added')} added, ${count('removed')} removed, ${count('remapped')} remapped)`,
      head: ['| change | route | before | after | now admits | no longer admits |', '|---|---|---|---|---|---|'],
      rows: d.routes.map(
        (r) => `| ${r.kind} | \`${cell(r.route)}\` | ${shape(r.before)} | ${shape(r.after)} | ${r.widens.join(', ') || '—'} | ${r.narrows.join(', ') || '—'} |`,
      ),
    },
    {
      heading: `#### Fixture cases with a new outcome (${d.fixtures.length})`,
      head: ['| case | expects | before → after | |', '|---|---|---|---|'],
      rows: d.fixtures.map((f) => `| \`${f.file}:${f.line}\` ${cell(f.name)} | ${f.expect} | ${f.before} → **${f.after}** | ${f.passes ? 'passes' : '**fails**'} |`),
    },
  ];
  const render = (keep: number[] | undefined, note: string[]) => {
    const out = [...header, ...note];
    sections.forEach((sec, i) => {
      out.push('', sec.heading, '');
      if (sec.rows.length === 0) {
        out.push('None.');
        return;
      }
      const n = keep ? keep[i]! : sec.rows.length;
      if (n > 0) out.push(...sec.head, ...sec.rows.slice(0, n));
      if (n < sec.rows.length) {
        if (n > 0) out.push('');
        out.push(`_…${plural(sec.rows.length - n, 'more row')} not shown (the report is cut to fit its size limit)._`);
      }
    });
    return out.join('\n') + '\n';
  };
  const full = render(undefined, []);
  const max = options.maxChars;
  if (max === undefined || full.length <= max) return full;

  // Greedy, in order: a row is kept while the whole report, notes included, still fits.
  const total = sections.reduce((n, s) => n + s.rows.length, 0);
  const noteFor = (shown: number) => [
    '',
    `> **Shortened**: the full report is ${full.length.toLocaleString('en-US')} characters, over the limit of ` +
      `${max.toLocaleString('en-US')}; ${shown} of ${total} table rows are shown, widened decisions first.`,
  ];
  const keep = sections.map(() => 0);
  // Worst-case length of the notes (every section cut, the widest counts).
  const skeleton = render(keep, noteFor(total)).length;
  let used = skeleton;
  for (let i = 0; i < sections.length && used < max; i++) {
    const sec = sections[i]!;
    if (sec.rows.length === 0) continue;
    let extra = sec.head.reduce((n, l) => n + l.length + 1, 0) + 1;
    for (const row of sec.rows) {
      if (used + extra + row.length + 1 > max) break;
      extra += row.length + 1;
      keep[i]!++;
    }
    if (keep[i]! > 0) used += extra;
    if (keep[i]! < sec.rows.length) break;
  }
  const shown = () => keep.reduce((a, b) => a + b, 0);
  let out = render(keep, noteFor(shown()));
  // The estimate above is exact up to a blank line per cut table; make sure, row by row.
  while (out.length > max && shown() > 0) {
    const last = keep.findLastIndex((n) => n > 0);
    keep[last]!--;
    out = render(keep, noteFor(shown()));
  }
  return out;
}

export function renderDiffJson(d: PolicyDiff): string {
  return JSON.stringify(d, null, 2) + '\n';
}

export function renderDiff(d: PolicyDiff, format: DiffFormat, options: MdOptions = {}): string {
  return format === 'json' ? renderDiffJson(d) : renderDiffMd(d, options);
}
