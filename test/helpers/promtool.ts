import { spawnSync } from 'node:child_process';

export interface PromtoolResult {
  /** 0 clean, 1 the text does not parse, 3 it parses but has lint problems. */
  status: number | null;
  /** promtool's lint lines (stdout and stderr), one problem per line. */
  problems: string[];
}

/**
 * Runs Prometheus's own parser and linter on a scrape: `promtool check metrics`
 * (Debian package `prometheus`, installed by .ci/run).
 */
export function promtoolCheck(text: string): PromtoolResult {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw new Error(`promtool could not run (${(r.error as NodeJS.ErrnoException).code}); install Debian's "prometheus" package`);
  const problems = (r.stdout + r.stderr).split('\n').filter((l) => l.trim() !== '');
  return { status: r.status, problems };
}

/**
 * prom-client's default Node.js metrics name three gauges *_total (a long-standing naming in
 * prom-client, kept for dashboard compatibility); promtool's linter flags them. They are the
 * only lint findings a scrape may have.
 */
export const KNOWN_DEFAULT_METRIC_LINT = [
  'nodejs_active_handles_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_requests_total non-counter metrics should not have "_total" suffix',
  'nodejs_active_resources_total non-counter metrics should not have "_total" suffix',
];
