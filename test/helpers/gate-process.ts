import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seedWorld, type SeededWorld, type World } from '../../src/policy-tools/world.ts';
import { createSecretBox } from '../../src/crypto/secret-box.ts';
import { openDb } from '../../src/db/client.ts';
import { migrate } from '../../src/db/migrations.ts';
import { basicAuth } from './gateway.ts';
import { TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET, userJwt } from './jwt.ts';

/**
 * `packagento-gate serve` as a real child process (so a crash is a dead process, not a
 * failed test runner), on 127.0.0.1 with a port it picks, a real libSQL file seeded
 * before it starts, decision lines from its stdout and log lines from its stderr.
 */
export interface GateProcess {
  child: ChildProcess;
  url: string;
  port: number;
  dir: string;
  dbPath: string;
  seeded: SeededWorld;
  /** Decision-log lines (stdout), parsed. */
  decisions: Record<string, any>[];
  /** Operational log lines (stderr), parsed where they are JSON. */
  logs: Record<string, any>[];
  /** stderr as text (also non-JSON lines such as a crash's stack). */
  stderr(): string;
  exited: Promise<number | null>;
  /** Still running and answering `/_gate/healthz` with 200. */
  alive(): Promise<boolean>;
  /** Authorization header for a seeded token name (Basic) or a user name (a signed JWT). */
  auth(as: string): Promise<string>;
  request(method: string, path: string, opts?: { as?: string; headers?: Record<string, string>; body?: string; signal?: AbortSignal }): Promise<Response>;
  /** SIGTERM, then SIGKILL after `ms`; resolves with the exit code. */
  stop(ms?: number): Promise<number | null>;
}

export interface GateProcessOptions {
  upstreamUrl: string;
  world?: World;
  env?: Record<string, string>;
  /** Where stdout goes: 'pipe' (collected) or 'ignore'. */
  stdout?: 'pipe' | 'ignore';
  dir?: string;
}

export async function startGateProcess(opts: GateProcessOptions): Promise<GateProcess> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'gate-fault-')));
  const dbPath = join(dir, 'gate.db');
  const encryptionKey = randomBytes(32);
  const db = await openDb({ url: `file:${dbPath}` });
  let seeded: SeededWorld = { users: new Set(), tokens: new Map() };
  try {
    await migrate(db);
    if (opts.world) seeded = await seedWorld(db, opts.world, createSecretBox(encryptionKey));
  } finally {
    db.close();
  }
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '',
    GATE_HOST: '127.0.0.1',
    GATE_PORT: '0',
    GATE_UPSTREAM_URL: opts.upstreamUrl,
    GATE_DATABASE_URL: `file:${dbPath}`,
    GATE_POLICY_DIR: 'policies',
    GATE_JWT_ISSUER: TEST_ISSUER,
    GATE_JWT_AUDIENCE: TEST_AUDIENCE,
    GATE_JWT_SECRET: TEST_SECRET,
    GATE_TOKEN_ENCRYPTION_KEY: encryptionKey.toString('base64'),
    GATE_INVITE_URL: 'https://app.packagento.test/invites/{token}',
    GATE_UPSTREAM_TIMEOUT_MS: '2000',
    GATE_LOG_LEVEL: 'info',
    ...(opts.env ?? {}),
  };
  const child = spawn(process.execPath, ['bin/packagento-gate.mjs', 'serve'], {
    env,
    stdio: ['ignore', opts.stdout ?? 'pipe', 'pipe'],
  });
  const decisions: Record<string, any>[] = [];
  const logs: Record<string, any>[] = [];
  let err = '';
  let outRest = '';
  child.stdout?.on('data', (c: Buffer) => {
    outRest += c.toString('utf8');
    const lines = outRest.split('\n');
    outRest = lines.pop()!;
    for (const l of lines) if (l.trim()) decisions.push(safeJson(l));
  });
  let errRest = '';
  child.stderr!.on('data', (c: Buffer) => {
    const text = c.toString('utf8');
    err += text;
    errRest += text;
    const lines = errRest.split('\n');
    errRest = lines.pop()!;
    for (const l of lines) if (l.trim().startsWith('{')) logs.push(safeJson(l));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let dead = false;
  void exited.then(() => (dead = true));

  const deadline = Date.now() + 30_000;
  let url = '';
  while (!url) {
    const line = logs.find((l) => l.msg === 'listening');
    if (line) url = String(line.url);
    else if (dead) throw new Error('gateway exited before listening: ' + err.slice(0, 2000));
    else if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('gateway did not start: ' + err.slice(0, 2000));
    } else await sleep(25);
  }
  const port = Number(new URL(url).port);

  const auth = async (as: string) => {
    const token = seeded.tokens.get(as);
    return token ? basicAuth(token.publicKey, token.privateKey) : `Bearer ${await userJwt(as)}`;
  };
  return {
    child,
    url,
    port,
    dir,
    dbPath,
    seeded,
    decisions,
    logs,
    stderr: () => err,
    exited,
    async alive() {
      if (dead || child.exitCode !== null) return false;
      try {
        const r = await fetch(url + '/_gate/healthz', { signal: AbortSignal.timeout(2000) });
        return r.status === 200;
      } catch {
        return false;
      }
    },
    auth,
    async request(method, path, o = {}) {
      const headers: Record<string, string> = { ...(o.headers ?? {}) };
      if (o.as !== undefined) headers['authorization'] = await auth(o.as);
      return fetch(url + path, {
        method,
        headers,
        ...(o.body !== undefined ? { body: o.body } : {}),
        signal: o.signal ?? AbortSignal.timeout(10_000),
      });
    },
    async stop(ms = 10_000) {
      if (!dead) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), ms);
        const code = await exited;
        clearTimeout(timer);
        if (!opts.dir) await rm(dir, { recursive: true, force: true });
        return code;
      }
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
      return exited;
    },
  };
}

function safeJson(line: string): Record<string, any> {
  try {
    return JSON.parse(line) as Record<string, any>;
  } catch {
    return { unparsed: line };
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` every 20 ms until it holds, bounded by `ms`. */
export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}
