import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyPolicies, editOnce, ROOT, runCli } from './helpers.ts';

const lastLine = (text: string) => text.trimEnd().split('\n').at(-1);

describe('packagento-gate test', () => {
  it('passes on the shipped fixtures (default: fixtures/), ending with "N passed, 0 failed"', async () => {
    const r = await runCli(['test']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^\d+ passed, 0 failed\n$/);
    expect(Number(r.stdout.split(' ')[0])).toBeGreaterThan(500);
  });

  it('works through the real bin (npx packagento-gate) with exit code 0', () => {
    const r = spawnSync(process.execPath, ['bin/packagento-gate.mjs', 'test', 'fixtures/rank-rules.yaml'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
      env: { ...process.env, GATE_POLICY_DIR: '' },
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(lastLine(r.stdout)).toMatch(/^\d+ passed, 0 failed$/);
  });

  describe('when one policy.csv line is widened', () => {
    let tmp: Awaited<ReturnType<typeof copyPolicies>>;
    beforeAll(async () => {
      tmp = await copyPolicies();
      // developer's token:list moves down to viewer: viewer and billing (who inherits viewer) gain it.
      await editOnce(join(tmp.dir, 'policy.csv'), 'p, developer, token:list, -', 'p, viewer, token:list, -');
    });
    afterAll(() => tmp.cleanup());

    it('exits 1 and names each failing case with its file and line', async () => {
      const r = await runCli(['test', '--policies', tmp.dir]);
      expect(r.code).toBe(1);
      const failures = r.stdout.split('\n').filter((l) => l.startsWith('FAIL '));
      expect(failures).toContain(
        'FAIL fixtures/default-policy.yaml:111 actions without a target role: bill token:list: expected deny, got allow [roles: billing; token:list]',
      );
      expect(failures).toContain(
        'FAIL fixtures/default-policy.yaml:119 actions without a target role: vic token:list: expected deny, got allow [roles: viewer; token:list]',
      );
      expect(failures.some((l) => l.startsWith('FAIL fixtures/http-routes.yaml:') && l.includes('viewer cannot list tokens: expected 403, got allow'))).toBe(true);
      expect(lastLine(r.stdout)).toBe(`${r.stdout.match(/^(\d+) passed/m)![1]} passed, ${failures.length} failed`);
    });

    it('writes JUnit XML with one testcase per case and a failure for each failed one', async () => {
      const out = join(tmp.root, 'reports', 'fixtures.xml');
      const r = await runCli(['test', '--policies', tmp.dir, '--junit', out]);
      const xml = await readFile(out, 'utf8');
      const [passed, failed] = lastLine(r.stdout)!.match(/\d+/g)!.map(Number) as [number, number];
      expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
      expect(xml.match(/<testcase /g)).toHaveLength(passed + failed);
      expect(xml.match(/<failure /g)).toHaveLength(failed);
      expect(xml).toMatch(new RegExp(`<testsuites name="packagento-gate policy fixtures" tests="${passed + failed}" failures="${failed}"`));
      expect(xml).toContain('<testsuite name="fixtures/default-policy.yaml" ');
      expect(xml).toMatch(/<testcase name="actions without a target role: vic token:list" classname="fixtures\/default-policy.yaml" file="fixtures\/default-policy.yaml" line="119" time="[\d.]+">\n\s+<failure message="expected deny, got allow \[roles: viewer; token:list\]" type="decision">/);
      expect(xml.trimEnd().endsWith('</testsuites>')).toBe(true);
    });
  });

  it('escapes case names in JUnit XML', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gate-junit-'));
    try {
      await writeFile(
        join(dir, 'x.yaml'),
        `name: "<odd> & \\"quoted\\""
world:
  workspaces: { acme: { members: { alice: owner } } }
cases:
  - { name: "a <b> & 'c' \\"d\\"", as: alice, action: workspace:read, workspace: acme, expect: deny }
`,
      );
      const r = await runCli(['test', join(dir, 'x.yaml'), '--junit', join(dir, 'out.xml')]);
      expect(r.code).toBe(1);
      const xml = await readFile(join(dir, 'out.xml'), 'utf8');
      expect(xml).toContain('name="a &lt;b&gt; &amp; &apos;c&apos; &quot;d&quot;"');
      expect(xml).toContain('value="&lt;odd&gt; &amp; &quot;quoted&quot;"');
      expect(xml).not.toMatch(/<b>|& '/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 with a one-line reason for a fixture that does not load', async () => {
    const r = await runCli(['test', 'fixtures/invalid/unknown-action.yaml']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('packagento-gate test: invalid fixture: fixtures/invalid/unknown-action.yaml:10: cases[0].action: unknown action "token:steal": the policy folder does not declare it\n');
  });

  it('exits 2 for a policy that does not load, naming file and line', async () => {
    const r = await runCli(['test', '--policies', 'fixtures/invalid/bundles/duplicate-line']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('packagento-gate test: invalid policy: fixtures/invalid/bundles/duplicate-line/policy.csv:12: duplicate of line 11\n');
  });

  it('exits 2 when there are no fixture files', async () => {
    const r = await runCli(['test', 'test/policy/golden']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('packagento-gate test: no fixture files in test/policy/golden\n');
  });
});

describe('every policy command', () => {
  it.each(['test', 'check', 'matrix', 'diff', 'explain'])('%s --help prints usage and exits 0', async (name) => {
    const r = await runCli([name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout.startsWith(`Usage: packagento-gate ${name}`)).toBe(true);
    expect(r.stdout).toContain('--policies DIR');
  });

  it.each([
    [['matrix', '--format', 'xml'], 'packagento-gate matrix: --format must be one of md, json, csv'],
    [['matrix', '--policies', 'no/such/dir'], 'packagento-gate matrix: cannot read policy folder'],
    [['diff'], 'packagento-gate diff: expected BASE [HEAD]'],
    [['diff', 'policies', '--fail-on', 'sometimes'], 'packagento-gate diff: --fail-on must be one of widen, narrow, any'],
    [['explain', 'GET', '/v1/workspaces/acme'], 'packagento-gate explain: --as USER is required'],
    [['explain', '--as', 'root', 'GET', '/v1/workspaces/acme'], 'packagento-gate explain: without --world, --as is a subject'],
    [['explain', '--as', 'admin', 'get', '/v1/workspaces/acme'], 'packagento-gate explain: "get" is not an HTTP method'],
    [['check', '--bogus'], "packagento-gate check: Unknown option '--bogus'"],
    [['test', '--junit'], "packagento-gate test: Option '--junit <value>' argument missing"],
  ])('%j exits 2 with a one-line reason', async (argv, reason) => {
    const r = await runCli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr.startsWith(reason)).toBe(true);
    expect(r.stderr.split('\n')).toHaveLength(2);
  });

  it('reads GATE_POLICY_DIR when --policies is not given', async () => {
    const viaEnv = await runCli(['matrix', '--format', 'json'], { env: { GATE_POLICY_DIR: 'test/policy/policies/mini' } });
    const viaFlag = await runCli(['matrix', '--format', 'json', '--policies', 'test/policy/policies/mini']);
    const shipped = await runCli(['matrix', '--format', 'json']);
    expect(viaEnv.stdout).toBe(viaFlag.stdout);
    expect(viaEnv.stdout).not.toBe(shipped.stdout);
  });
});
