/**
 * Policy and lifecycle faults (issue #9 faults 12 and 13), against real gateway processes:
 * an empty or truncated policy.csv never goes live (its invariants' `allow:` rules fail,
 * at start and on reload), and SIGTERM keeps serving through a grace period before the
 * listener closes and in-flight requests drain.
 */
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../../src/config.ts';
import { tuningOf } from '../../src/main.ts';
import { ACME } from '../helpers/gateway.ts';
import { sleep, startGateProcess, waitUntil } from '../helpers/gate-process.ts';
import { exchange, rawRequestText } from '../helpers/raw-exchange.ts';
import { ok, startRawUpstream, type RawUpstream } from '../helpers/raw-upstream.ts';

let up: RawUpstream;
let dirs: string[] = [];
beforeAll(async () => {
  up = await startRawUpstream();
});
afterAll(async () => {
  await up?.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function policyCopy(change?: (csv: string) => string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gate-faults-policy-'));
  dirs.push(dir);
  await cp('policies', dir, { recursive: true });
  if (change) await writeFile(join(dir, 'policy.csv'), change(await readFile(join(dir, 'policy.csv'), 'utf8')));
  return dir;
}

const empty = () => '';
/** The first third of the lines: what a copy cut short by a full disk leaves behind. */
const truncated = (csv: string) => {
  const lines = csv.split('\n');
  return lines.slice(0, Math.floor(lines.length / 3)).join('\n') + '\n';
};

/** Runs the CLI; resolves with its exit code and stderr. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/packagento-gate.mjs', ...args], {
      env: { PATH: process.env['PATH'] ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('fault 12: an empty or truncated policy.csv never goes live', () => {
  test.each([
    ['empty', empty],
    ['truncated', truncated],
  ])('%s: `check` fails (exit 1) naming the allow rule that no longer holds', async (_name, change) => {
    const dir = await policyCopy(change);
    const r = await cli(['check', '--policies', dir]);
    expect(r.code, r.output).toBe(1);
    expect(r.output).toMatch(/owners-invite-owners|developers-install-and-read-tokens|tokens-install-packages|viewers-list-licences/);
    expect(r.output).toMatch(/→ deny \(expected allow\)/);
  }, 40_000);

  test.each([
    ['empty', empty],
    ['truncated', truncated],
  ])('%s: `serve` refuses to start (exit 2, invalid policy)', async (_name, change) => {
    const dir = await policyCopy(change);
    await expect(startGateProcess({ upstreamUrl: up.url, world: ACME, env: { GATE_POLICY_DIR: dir } })).rejects.toThrow(/invalid policy/);
  }, 40_000);

  test('on reload (file change and SIGHUP) an empty, then a truncated policy.csv is rejected; the last good policy stays', async () => {
    const dir = await policyCopy();
    const gate = await startGateProcess({ upstreamUrl: up.url, world: ACME, env: { GATE_POLICY_DIR: dir } });
    try {
      up.script = ok('GOOD');
      const licences = async () => (await gate.request('GET', '/v1/workspaces/acme/licences', { as: 'alice' })).status;
      expect(await licences()).toBe(200);
      const rejected = () => gate.logs.filter((l) => /reload rejected/.test(String(l.msg))).length;

      await writeFile(join(dir, 'policy.csv'), '');
      await waitUntil(() => rejected() >= 1, 'the empty policy to be rejected', 10_000);
      expect(await licences()).toBe(200);

      const good = await readFile('policies/policy.csv', 'utf8');
      await writeFile(join(dir, 'policy.csv'), truncated(good));
      gate.child.kill('SIGHUP');
      await waitUntil(() => rejected() >= 2, 'the truncated policy to be rejected', 10_000);
      expect(await licences()).toBe(200);
      expect(gate.logs.some((l) => /policy reloaded/.test(String(l.msg)))).toBe(false);
    } finally {
      await gate.stop();
    }
  }, 60_000);
});

describe('fault 13: SIGTERM behind a client that keeps connecting', () => {
  test('readyz 503 at once, new connections served through the grace period, then refused; in-flight requests drain', async () => {
    const env = { GATE_SHUTDOWN_GRACE_MS: '1500', GATE_DRAIN_TIMEOUT_MS: '3000', GATE_UPSTREAM_TIMEOUT_MS: '20000' };
    // What the gateway will use (the CONTRACT §2 defaults, 5 s and 8 s, where the config does not read the variables).
    const { shutdownGraceMs: GRACE, drainTimeoutMs: DRAIN } = tuningOf(loadConfig(env));
    const gate = await startGateProcess({ upstreamUrl: up.url, world: ACME, env });
    const token = await gate.auth('t1');
    up.script = (s, seen, ctx) => {
      const answer = () => !s.destroyed && s.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nGOOD');
      if (seen.target === '/repo/p2/slow.json') ctx.later(GRACE + 1000, answer);
      else answer();
    };
    // In flight across the whole grace period, answered during the drain.
    const slow = exchange(gate.port, rawRequestText('GET', '/repo/p2/slow.json', { Authorization: token, Connection: 'close' }), { timeoutMs: GRACE + DRAIN + 3000 });
    await waitUntil(() => up.seen.some((s) => s.target === '/repo/p2/slow.json'), 'the slow request upstream', 5000);

    const results: { at: number; status: number | 'refused' | 'error' }[] = [];
    const termAt = Date.now();
    gate.child.kill('SIGTERM');
    // Once the process has taken the signal (its log says so), readyz is 503 from its next answer on.
    await waitUntil(() => gate.logs.some((l) => /^draining/.test(String(l.msg))), 'the signal to be taken', 2000);
    const ready = await fetch(gate.url + '/_gate/readyz').then((r) => r.status, () => 0);
    let stop = false;
    const connector = (async () => {
      while (!stop && Date.now() - termAt < GRACE + 1500) {
        const at = Date.now() - termAt;
        const status = await new Promise<number | 'refused' | 'error'>((resolve) => {
          const probe = net.connect(gate.port, '127.0.0.1');
          probe.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'error'));
          probe.once('connect', () => {
            probe.destroy();
            resolve(0);
          });
        });
        if (status === 0) {
          const r = await exchange(gate.port, rawRequestText('GET', '/repo/packages.json', { Authorization: token, Connection: 'close' }), { timeoutMs: 3000 });
          results.push({ at, status: r.status || 'error' });
        } else results.push({ at, status });
        await sleep(50);
      }
    })();
    const code = await gate.exited;
    const exitedAfter = Date.now() - termAt;
    await connector;
    stop = true;
    const slowAnswer = await slow;
    await gate.stop();

    expect(ready).toBe(503);
    const inGrace = results.filter((r) => r.at < GRACE - 300);
    expect(inGrace.length).toBeGreaterThan(3);
    expect(inGrace.every((r) => r.status === 200), JSON.stringify(inGrace)).toBe(true);
    const afterGrace = results.filter((r) => r.at > GRACE + 500);
    expect(afterGrace.length).toBeGreaterThan(0);
    expect(afterGrace.every((r) => r.status === 'refused'), JSON.stringify(afterGrace)).toBe(true);
    expect(slowAnswer.status).toBe(200);
    expect(slowAnswer.body).toBe('GOOD');
    expect(code).toBe(0);
    expect(exitedAfter).toBeLessThan(GRACE + DRAIN + 2000);
  }, 60_000);
});
