import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { commands } from '../../src/cli/commands.ts';
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, userJwt } from '../helpers/jwt.ts';
import { startEchoUpstream, type EchoUpstream } from '../helpers/upstream.ts';

/** `npx packagento-gate serve` as an operator runs it: a real process, configured by the environment. */
let dir: string;
let upstream: EchoUpstream;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gate-serve-'));
  upstream = await startEchoUpstream();
  env = {
    GATE_HOST: '127.0.0.1',
    GATE_UPSTREAM_URL: upstream.url,
    GATE_DATABASE_URL: `file:${join(dir, 'gate.db')}`,
    GATE_JWT_ISSUER: TEST_ISSUER,
    GATE_JWT_AUDIENCE: TEST_AUDIENCE,
    GATE_JWT_SECRET: TEST_SECRET,
    GATE_TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    GATE_INVITE_URL: 'https://app.packagento.test/invites/{token}',
  };
});
afterAll(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[], extraEnv: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  let out = '';
  const child = spawn(process.execPath, ['bin/packagento-gate.mjs', ...args], {
    env: { PATH: process.env['PATH'] ?? '', ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitFor(check: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('packagento-gate serve', () => {
  test('starts, migrates, is ready, decides, forwards, and drains on SIGTERM', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const p = run(['serve'], { ...env, GATE_PORT: String(port) });
    try {
      await waitFor(() => p.output().includes('"msg":"listening"'), 'the listening log line');
      const base = `http://127.0.0.1:${port}`;
      const ready = await fetch(`${base}/_gate/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready', checks: { database: 'ok', policy: 'ok' } });
      expect((await fetch(`${base}/_gate/healthz`)).status).toBe(200);
      // A user with no workspace: the first purchase creates one (native), then a forwarded read.
      const jwt = await userJwt('olga');
      const ws = await fetch(`${base}/v1/me/workspace`, { method: 'PUT', headers: { authorization: `Bearer ${jwt}` } });
      expect(ws.status).toBe(201);
      const { id } = (await ws.json()) as { id: string };
      const before = upstream.received.length;
      expect((await fetch(`${base}/v1/workspaces/${id}/licences`, { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);
      expect(upstream.received.length).toBe(before + 1);
      expect(upstream.received.at(-1)!.headers['x-packagento-roles']).toBe('owner');
      expect((await fetch(`${base}/v1/workspaces/${id}/licences`)).status).toBe(401);
      expect(upstream.received.length).toBe(before + 1);
    } finally {
      p.child.kill('SIGTERM');
    }
    expect(await p.exited).toBe(0);
    expect(p.output()).toContain('"msg":"shutting down"');
    // Decision lines go to stdout, one JSON object per line, all written out by the time it exits.
    const decisions = p.output().split('\n').filter((l) => l.includes('"decision_id"')).map((l) => JSON.parse(l));
    expect(decisions.map((d) => [d.method, d.result, d.status])).toEqual([
      ['PUT', 'allow', 200],
      ['GET', 'allow', 200],
      ['GET', 'deny', 401],
    ]);
  }, 60_000);

  test('a bad variable stops the start with exit 2 and a message naming it', async () => {
    const p = run(['serve'], { ...env, GATE_PORT: 'eighty', GATE_MODE: 'loud' });
    expect(await p.exited).toBe(2);
    expect(p.output()).toContain('GATE_PORT');
    expect(p.output()).toContain('GATE_MODE');
  }, 30_000);

  test('an invalid policy stops the start with exit 2 and names the file and line', async () => {
    const policies = join(dir, 'bad-policies');
    await cp('policies', policies, { recursive: true });
    await writeFile(join(policies, 'policy.csv'), 'p, viewer, workspace:read, -\np, viewer, workspace:raed, -\n');
    const p = run(['serve'], { ...env, GATE_PORT: '0', GATE_POLICY_DIR: policies });
    expect(await p.exited).toBe(2);
    expect(p.output()).toMatch(/policy\.csv:2: unknown action "workspace:raed"/);
  }, 30_000);

  test('migrate is idempotent', async () => {
    const out: string[] = [];
    const io = { stdout: (s: string) => out.push(s), stderr: (s: string) => out.push(s), env: { GATE_DATABASE_URL: `file:${join(dir, 'migrate.db')}` }, cwd: process.cwd() };
    expect(await main(['migrate', '--create'], io)).toBe(0);
    expect(await main(['migrate'], io)).toBe(0);
    expect(out.join('')).toMatch(/applied migrations 1; schema version 1\nschema is current \(version 1\)/);
  });
});

describe('every command', () => {
  test.each(commands().map((c) => c.name))('%s --help exits 0 with a usage line', async (name) => {
    let stdout = '';
    const code = await main([...name.split(' '), '--help'], { stdout: (s) => (stdout += s), stderr: () => undefined, env: {}, cwd: process.cwd() });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^Usage: packagento-gate /);
  });

  test('an unknown command or option is exit 2 with a one-line reason', async () => {
    let stderr = '';
    const io = { stdout: () => undefined, stderr: (s: string) => (stderr += s), env: {}, cwd: process.cwd() };
    expect(await main(['frobnicate'], io)).toBe(2);
    expect(await main(['migrate', '--nope'], io)).toBe(2);
    expect(stderr.trim().split('\n')).toHaveLength(2);
  });
});
