import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { DEMO_AUDIENCE, DEMO_ISSUER, DEMO_JWT_SECRET } from '../../src/demo/credentials.ts';

/** `npm run demo` as a user runs it: the printed commands must work as printed. */
let child: ChildProcess;
let output = '';
let dataDir: string;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'gate-demo-'));
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

function bash(script: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('bash', ['-c', script], { timeout: 120_000, env: { ...process.env, COMPOSER_ALLOW_SUPERUSER: '1' } }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout + stderr),
    ),
  );
}

test('the printed curl commands work as printed', async () => {
  const lines = output.split('\n');
  const exports = lines.filter((l) => l.startsWith('export '));
  const curls = lines.filter((l) => l.startsWith('curl '));
  expect(exports).toHaveLength(6);
  expect(curls.length).toBeGreaterThanOrEqual(8);
  const results = (await bash([...exports, ...curls.map((c) => c.replace(/^curl -s -w '\\n' /, `curl -s -o /dev/null -w '%{http_code}\\n' `))].join('\n')))
    .split('\n')
    .filter((l) => /^\d{3}$/.test(l));
  // members (viewer), refund (billing), refund (developer: 403), guest project licences, guest workspace licences (403),
  // token read, packages.json with the project token, invite (admin).
  expect(results.slice(0, 9)).toEqual(['200', '200', '202', '403', '200', '403', '200', '200', '201']);
}, 120_000);

test('the printed composer commands install the demo package through the gateway', async () => {
  const block = output.slice(output.indexOf('# Composer'), output.indexOf('Stop with Ctrl-C.'));
  await rm('/tmp/packagento-demo-app', { recursive: true, force: true });
  const out = await bash(block);
  expect(out).toContain('Installing acme/hello (1.0.0)');
}, 120_000);

test('serve refuses the demo credentials and the demo database', async () => {
  let stderr = '';
  const io = { stdout: () => undefined, stderr: (s: string) => (stderr += s), cwd: process.cwd() };
  const base = {
    GATE_UPSTREAM_URL: 'http://127.0.0.1:9',
    GATE_JWT_AUDIENCE: DEMO_AUDIENCE,
    GATE_TOKEN_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
    GATE_INVITE_URL: 'https://app.packagento.test/invites/{token}',
  };
  expect(await main(['serve'], { ...io, env: { ...base, GATE_JWT_ISSUER: 'https://id.example', GATE_JWT_SECRET: DEMO_JWT_SECRET } })).toBe(2);
  expect(stderr).toContain('GATE_JWT_SECRET: this is the public demo secret');
  stderr = '';
  expect(
    await main(['serve'], {
      ...io,
      env: { ...base, GATE_JWT_ISSUER: DEMO_ISSUER.replace('demo', 'prod'), GATE_JWT_SECRET: 'x'.repeat(40), GATE_DATABASE_URL: `file:${join(dataDir, 'demo.db')}` },
    }),
  ).toBe(2);
  expect(stderr).toContain('GATE_DATABASE_URL: this database was seeded by the demo');
});
