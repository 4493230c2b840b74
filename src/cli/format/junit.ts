import type { FixtureResult } from '../../policy-tools/fixture-run.ts';

/** XML 1.0 text: escaped, and without the control characters XML cannot carry. */
function xml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

/**
 * JUnit XML (the dialect GitHub, GitLab and Jenkins read): one testsuite per fixture
 * file, one testcase per fixture case, a <failure> with the expectation for each failed one.
 */
export function renderJunit(results: readonly FixtureResult[], opts: { timestamp?: Date } = {}): string {
  let tests = 0;
  let failures = 0;
  let totalMs = 0;
  const suites: string[] = [];
  for (const f of results) {
    const failed = f.results.filter((r) => !r.pass).length;
    const ms = f.results.reduce((n, r) => n + r.durationMs, 0);
    tests += f.results.length;
    failures += failed;
    totalMs += ms;
    const cases = f.results.map((r) => {
      const attrs = `name="${xml(r.case.name)}" classname="${xml(f.fixture.file)}" file="${xml(r.case.file)}" line="${r.case.line}" time="${seconds(r.durationMs)}"`;
      if (r.pass) return `    <testcase ${attrs}/>`;
      return [
        `    <testcase ${attrs}>`,
        `      <failure message="${xml(r.message ?? 'failed')}" type="decision">${xml(`${r.case.file}:${r.case.line}: ${r.message ?? ''}`)}</failure>`,
        `    </testcase>`,
      ].join('\n');
    });
    const stamp = opts.timestamp ? ` timestamp="${opts.timestamp.toISOString().replace(/\.\d+Z$/, '')}"` : '';
    suites.push(
      [
        `  <testsuite name="${xml(f.fixture.file)}" tests="${f.results.length}" failures="${failed}" errors="0" skipped="0" time="${seconds(ms)}"${stamp}>`,
        `    <properties><property name="fixture" value="${xml(f.fixture.name)}"/></properties>`,
        ...cases,
        `  </testsuite>`,
      ].join('\n'),
    );
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="packagento-gate policy fixtures" tests="${tests}" failures="${failures}" errors="0" time="${seconds(totalMs)}">`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}
