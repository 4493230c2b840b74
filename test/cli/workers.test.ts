import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { lineChunks } from '../../src/log/decision-log.ts';
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, userJwt } from '../helpers/jwt.ts';
import { waitUntil } from '../helpers/gate-process.ts';
import { startEchoUpstream, type EchoUpstream } from '../helpers/upstream.ts';

/** `serve --workers 2`: two processes on one port and one database, behind one primary. */
let dir: string;
let upstream: EchoUpstream;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gate-workers-'));
  upstream = await startEchoUpstream();
});
afterAll(async () => {
  await upstream?.close();
  await rm(dir, { recursive: true, force: true });
});

/** One keep-alive connection: every request on it reaches the same worker. */
function connection(base: string) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const request = (method: string, path: string, jwt?: string, body?: unknown) =>
    new Promise<{ status: number; json: any }>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        base + path,
        {
          method,
          agent,
          headers: {
            ...(jwt ? { authorization: `Bearer ${jwt}` } : {}),
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, json: text ? JSON.parse(text) : undefined }));
        },
      );
      req.on('error', reject);
      req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
      req.end(payload);
    });
  return { request, pid: async () => (await request('GET', '/_gate/readyz')).json.pid as number, close: () => agent.destroy() };
}

describe('serve --workers', () => {
  test('a removal through worker A is honoured by worker B on the next request; SIGTERM stops every worker', async () => {
    const port = 20000 + Math.floor(Math.random() * 20000);
    let out = '';
    const child = spawn(process.execPath, ['bin/packagento-gate.mjs', 'serve', '--workers', '2'], {
      env: {
        PATH: process.env['PATH'] ?? '',
        GATE_HOST: '127.0.0.1',
        GATE_PORT: String(port),
        GATE_UPSTREAM_URL: upstream.url,
        GATE_DATABASE_URL: `file:${join(dir, 'gate.db')}`,
        GATE_JWT_ISSUER: TEST_ISSUER,
        GATE_JWT_AUDIENCE: TEST_AUDIENCE,
        GATE_JWT_SECRET: TEST_SECRET,
        GATE_TOKEN_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
        GATE_INVITE_URL: 'https://app.packagento.test/invites/{token}',
        GATE_SHUTDOWN_GRACE_MS: '100',
        GATE_DRAIN_TIMEOUT_MS: '1000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const base = `http://127.0.0.1:${port}`;
    const conns: ReturnType<typeof connection>[] = [];
    try {
      await waitUntil(() => out.includes('all workers listening'), 'both workers', 30_000);
      // Two connections that reach two different workers (the primary hands connections out in turn).
      const a = connection(base);
      conns.push(a);
      const pidA = await a.pid();
      let b = connection(base);
      conns.push(b);
      for (let i = 0; i < 20 && (await b.pid()) === pidA; i++) {
        b = connection(base);
        conns.push(b);
      }
      const pidB = await b.pid();
      expect(pidB).not.toBe(pidA);
      expect([pidA, pidB]).not.toContain(child.pid);

      const alice = await userJwt('alice');
      const bob = await userJwt('bob');
      const ws = (await a.request('PUT', '/v1/me/workspace', alice)).json.id as string;
      const invite = await a.request('POST', `/v1/workspaces/${ws}/invites`, alice, { email: 'bob@example.com', role: 'developer' });
      expect(invite.status).toBe(201);
      const token = new URL(invite.json.accept_url).pathname.split('/').at(-1)!;
      expect((await b.request('POST', `/v1/invites/${token}/accept`, bob)).status).toBe(200);
      // Bob reads through both workers.
      expect((await a.request('GET', `/v1/workspaces/${ws}/licences`, bob)).status).toBe(200);
      expect((await b.request('GET', `/v1/workspaces/${ws}/licences`, bob)).status).toBe(200);
      const forwardedBefore = upstream.received.length;

      // Removed through worker A; worker B's very next decision sees it.
      expect((await a.request('DELETE', `/v1/workspaces/${ws}/members/bob`, alice)).status).toBe(200);
      expect((await b.request('GET', `/v1/workspaces/${ws}/licences`, bob)).status).toBe(404);
      expect((await a.request('GET', `/v1/workspaces/${ws}/licences`, bob)).status).toBe(404);
      expect(upstream.received.length).toBe(forwardedBefore);

      // Decision lines from both workers share stdout whole: every line of it is one JSON object.
      const decisionLines = () => out.split('\n').filter((l) => l.includes('"decision_id"'));
      // Eight decided requests above (operations are not decisions); lines are flushed once per turn.
      await waitUntil(() => decisionLines().length >= 8, 'eight decision lines');
      for (const line of decisionLines()) expect(() => JSON.parse(line)).not.toThrow();

      for (const c of conns) c.close();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(out).toContain('stopping workers');
    } finally {
      for (const c of conns) c.close();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);

  test('a bad --workers value is one line with exit 2', async () => {
    const child = spawn(process.execPath, ['bin/packagento-gate.mjs', 'serve', '--workers', '0'], { env: { PATH: process.env['PATH'] ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c) => (err += c));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(err.trim().split('\n')).toHaveLength(1);
    expect(err).toContain('--workers: must be a whole number from 1 to 64');
  });
});

describe('decision lines written by several processes', () => {
  test('are chunked on line boundaries, each chunk at most PIPE_BUF bytes unless one line is longer', () => {
    const lines = Array.from({ length: 200 }, (_, i) => `{"n":${i},"pad":"${'x'.repeat(i % 97)}"}`);
    const chunks = lineChunks(lines);
    expect(chunks.join('')).toBe(lines.join('\n') + '\n');
    for (const c of chunks) {
      expect(c.endsWith('\n')).toBe(true);
      expect(Buffer.byteLength(c)).toBeLessThanOrEqual(4096);
    }
    const long = 'y'.repeat(5000);
    expect(lineChunks(['a', long, 'b'])).toEqual(['a\n', `${long}\n`, 'b\n']);
  });
});
