import { execFileSync } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PolicyDiff } from '../../src/policy-tools/diff.ts';
import { ROOT, runCli, TEST_POLICIES } from './helpers.ts';

/** Each test file gets its own throwaway repository: nothing here touches the project's git state. */
describe('diff with git refs (read with git show, no checkout)', () => {
  let repo: string;
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=Policy Test', '-c', 'user.email=policy@example.com', '-c', 'commit.gpgsign=false', ...args], {
      cwd: repo,
      encoding: 'utf8',
    });

  beforeAll(async () => {
    repo = await mkdtemp(join(tmpdir(), 'gate-git-'));
    git('init', '-q', '-b', 'main');
    await cp(join(ROOT, TEST_POLICIES, 'mini'), join(repo, 'policies'), { recursive: true });
    await mkdir(join(repo, 'fixtures'));
    await cp(join(ROOT, 'test/policy/fixtures/mini.yaml'), join(repo, 'fixtures/mini.yaml'));
    git('add', '-A');
    git('commit', '-q', '-m', 'base policy');
    // Second commit: the mini-changed policy.
    await cp(join(ROOT, TEST_POLICIES, 'mini-changed'), join(repo, 'policies'), { recursive: true });
    git('commit', '-q', '-am', 'change policy');
    // Work tree (uncommitted): additionally let admin invite owners.
    const csv = join(repo, 'policies/policy.csv');
    await writeFile(csv, (await readFile(csv, 'utf8')).replace('p, admin, member:invite, atmost:admin', 'p, admin, member:invite, atmost:owner'));
  });
  afterAll(() => rm(repo, { recursive: true, force: true }));

  it('BASE and HEAD as refs give the same report as the folders', async () => {
    const viaGit = await runCli(['diff', 'HEAD~1', 'HEAD', '--format', 'json'], { cwd: repo });
    const viaDirs = await runCli(['diff', join(ROOT, TEST_POLICIES, 'mini'), join(ROOT, TEST_POLICIES, 'mini-changed'), '--format', 'json'], { cwd: repo });
    expect(viaGit.stderr).toBe('');
    expect(viaGit.code).toBe(0);
    const g = JSON.parse(viaGit.stdout) as PolicyDiff;
    const d = JSON.parse(viaDirs.stdout) as PolicyDiff;
    expect(g.base.origin).toBe('HEAD~1:policies');
    expect(g.head.origin).toBe('HEAD:policies');
    expect(g.base.revision).toBe(d.base.revision);
    expect(g.head.revision).toBe(d.head.revision);
    expect({ ...g, base: null, head: null }).toEqual({ ...d, base: null, head: null });
    expect(g.widened.length + g.narrowed.length + g.routes.length).toBeGreaterThan(0);
  });

  it('HEAD defaults to the work tree policy folder (uncommitted changes included)', async () => {
    const r = await runCli(['diff', 'HEAD', '--format', 'json', '--fail-on', 'widen'], { cwd: repo });
    expect(r.code).toBe(1);
    const d = JSON.parse(r.stdout) as PolicyDiff;
    expect(d.base.origin).toBe('HEAD:policies');
    expect(d.head.origin).toBe('policies');
    expect(d.widened.map((w) => `${w.subject} ${w.action} ${w.target_role}`)).toEqual(['admin member:invite owner']);
    expect(d.narrowed).toEqual([]);
    expect(d.routes).toEqual([]);
    expect(d.fixtures.map((f) => [f.name, f.before, f.after])).toEqual([['admin cannot invite an owner', '403 forbidden', 'allow']]);
  });

  it('works from a subdirectory with --policies relative to it', async () => {
    await mkdir(join(repo, 'sub'), { recursive: true });
    const r = await runCli(['diff', 'HEAD~1', 'HEAD', '--policies', '../policies', '--no-fixtures', '--format', 'json'], { cwd: join(repo, 'sub') });
    expect(r.stderr).toBe('');
    expect((JSON.parse(r.stdout) as PolicyDiff).base.origin).toBe('HEAD~1:policies');
  });

  it('leaves the work tree and index alone', async () => {
    const before = git('status', '--porcelain');
    await runCli(['diff', 'HEAD~1', 'HEAD', '--no-fixtures'], { cwd: repo });
    expect(git('status', '--porcelain')).toBe(before);
    expect(before).toBe(' M policies/policy.csv\n');
  });

  it('an unknown ref is a one-line usage error (exit 2)', async () => {
    const r = await runCli(['diff', 'no-such-branch'], { cwd: repo });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^packagento-gate diff: git ls-tree failed for no-such-branch: .+\n$/);
  });

  it('a ref without the policy folder is a usage error', async () => {
    const r = await runCli(['diff', 'HEAD', '--policies', 'nope'], { cwd: repo });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('packagento-gate diff: no policy folder "nope" at HEAD\n');
  });
});
