import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, expect, test } from 'vitest';

/**
 * The README's team-and-roles guide, run as written: its ```sh blocks, in order, with the
 * `export` block `npm run demo` prints, against the demo. The guide cannot drift again.
 */
let child: ChildProcess;
let output = '';
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'gate-guide-'));
  child = spawn(process.execPath, ['bin/packagento-gate.mjs', 'demo', '--data-dir', dataDir], {
    env: { ...process.env, GATE_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const deadline = Date.now() + 60_000;
  while (!output.includes('Stop with Ctrl-C.')) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the demo did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}, 90_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
  }
  await rm(dataDir, { recursive: true, force: true });
});

async function guideBlocks(): Promise<string[]> {
  const readme = await readFile('README.md', 'utf8');
  const start = readme.indexOf('## Team and roles: a short guide');
  const end = readme.indexOf('\n## ', start + 1);
  expect(start).toBeGreaterThan(0);
  const section = readme.slice(start, end);
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function bash(script: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) =>
    execFile(
      'bash',
      ['-c', script],
      { timeout: 150_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, COMPOSER_ALLOW_SUPERUSER: '1', COMPOSER_NO_INTERACTION: '1' } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    ),
  );
}

test('every command of the README guide works in order, as printed', async () => {
  const exports = output.split('\n').filter((l) => l.startsWith('export '));
  expect(exports[0]).toMatch(/^export GATE='http:\/\/127\.0\.0\.1:\d+' WS='ws_\w+' P='prj_\w+' T='tok_\w+'/);
  expect(exports.some((l) => l.startsWith('export ERIN_JWT='))).toBe(true);
  const blocks = await guideBlocks();
  expect(blocks.length).toBeGreaterThanOrEqual(1);
  const script = ['set -euo pipefail', ...exports, ...blocks, 'echo; echo "GUIDE_LINK=$LINK"'].join('\n');
  const { code, out } = await bash(script);
  expect(code, out.slice(-4000)).toBe(0);
  // The two expected refusals, as the guide's comments say (curl -w prints the status after the
  // previous command's JSON, which ends without a newline).
  expect([...out.matchAll(/(?:^|[}\]])(\d{3})$/gm)].map((m) => m[1])).toEqual(['410', '403']);
  expect(out).toContain('"grantable_roles":["admin","developer","billing","viewer"]');
  expect(out).toContain('Installing acme/hello (1.0.0)');
  expect(out).toContain('{"removed":"dave","deactivated_tokens":2}');

  // Erin's emails landed in the demo's mail folder; the last one carries the link she accepted with.
  const link = /^GUIDE_LINK=(\S+)$/m.exec(out)![1]!;
  const mailDir = join(dataDir, 'mail');
  let toErin: { text: string; subject: string }[] = [];
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    toErin = [];
    for (const f of (await readdir(mailDir)).filter((n) => n.endsWith('.eml')).sort()) {
      const mail = await simpleParser(await readFile(join(mailDir, f)));
      if (mail.to && !Array.isArray(mail.to) && mail.to.text === 'erin@demo.packagento.test') toErin.push({ text: mail.text ?? '', subject: mail.subject ?? '' });
    }
    if (toErin.length >= 2) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(toErin).toHaveLength(2);
  expect(toErin[1]!.subject).toMatch(/^New link: /);
  expect(toErin[1]!.text).toContain(link);
  expect(toErin[0]!.text).not.toContain(link);
}, 180_000);
