import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/**
 * Real nginx and Caddy in front of a test upstream, started from the very configuration
 * files the docs show (docs/forward-auth/). The docs use three placeholder addresses; the
 * tests replace them with free loopback ports, and nothing else in the file changes.
 */

export const NGINX_BIN = '/usr/sbin/nginx';
export const CADDY_BIN = '/usr/bin/caddy';
export const hasNginx = existsSync(NGINX_BIN);
export const hasCaddy = existsSync(CADDY_BIN);

/** The placeholder addresses used in docs/forward-auth/* (each must appear in the file). */
export const DOC_ADDRESSES = {
  /** Where the proxy listens for clients. */
  listen: '127.0.0.1:8000',
  /** Gate's forward-auth listener. */
  authz: '127.0.0.1:9191',
  /** The protected API. */
  upstream: '127.0.0.1:9292',
} as const;

export interface ProxyPorts {
  /** Port of Gate's forward-auth listener (127.0.0.1). */
  authzPort: number;
  /** Port of the upstream API (127.0.0.1). */
  upstreamPort: number;
}

export interface RunningProxy {
  name: 'nginx' | 'caddy';
  port: number;
  url: string;
  /** The configuration actually started (the doc file with the ports substituted). */
  config: string;
  /** What the process wrote to stdout/stderr so far (for failure messages). */
  output(): string;
  close(): Promise<void>;
}

const STARTUP_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** A port that was free a moment ago on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolvePort(port));
    });
  });
}

/** The doc file with its placeholder addresses replaced. Throws if a placeholder is missing. */
export async function docConfig(file: string, ports: ProxyPorts & { listenPort: number }): Promise<string> {
  const text = await readFile(resolve('docs/forward-auth', file), 'utf8');
  const replacements: [string, string][] = [
    [DOC_ADDRESSES.listen, `127.0.0.1:${ports.listenPort}`],
    [DOC_ADDRESSES.authz, `127.0.0.1:${ports.authzPort}`],
    [DOC_ADDRESSES.upstream, `127.0.0.1:${ports.upstreamPort}`],
  ];
  let out = text;
  for (const [token, value] of replacements) {
    if (!out.includes(token)) throw new Error(`docs/forward-auth/${file} no longer contains the placeholder ${token}`);
    out = out.replaceAll(token, value);
  }
  return out;
}

/** nginx, non-root friendly: its own prefix folder, `daemon off`, pid and temp paths in tmp. */
export async function startNginx(ports: ProxyPorts): Promise<RunningProxy> {
  const listenPort = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'gate-nginx-'));
  // Workers run as `nobody` when the tests run as root: they must be able to use the temp paths.
  await chmod(dir, 0o755);
  const temps = ['body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
  for (const t of temps) {
    await mkdir(join(dir, t));
    await chmod(join(dir, t), 0o777);
  }
  const site = await docConfig('nginx.conf', { ...ports, listenPort });
  await writeFile(join(dir, 'site.conf'), site);
  const main = [
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    'error_log stderr warn;',
    'events { worker_connections 128; }',
    'http {',
    '  access_log off;',
    ...temps.map((t) => `  ${t === 'body' ? 'client_body' : t}_temp_path ${join(dir, t)};`),
    `  include ${join(dir, 'site.conf')};`,
    '}',
    '',
  ].join('\n');
  await writeFile(join(dir, 'nginx.conf'), main);
  const child = spawn(NGINX_BIN, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return running('nginx', child, listenPort, site, dir);
}

/** Caddy with the Caddyfile from docs/ (admin endpoint off there), config and data folders in tmp. */
export async function startCaddy(ports: ProxyPorts): Promise<RunningProxy> {
  const listenPort = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'gate-caddy-'));
  const site = await docConfig('Caddyfile', { ...ports, listenPort });
  const file = join(dir, 'Caddyfile');
  await writeFile(file, site);
  const child = spawn(CADDY_BIN, ['run', '--config', file, '--adapter', 'caddyfile'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: dir,
      XDG_CONFIG_HOME: join(dir, 'config'),
      XDG_DATA_HOME: join(dir, 'data'),
    },
  });
  return running('caddy', child, listenPort, site, dir);
}

async function running(name: 'nginx' | 'caddy', child: ChildProcess, port: number, config: string, dir: string): Promise<RunningProxy> {
  let output = '';
  const keep = (c: Buffer) => {
    output += c.toString('utf8');
    if (output.length > 64_000) output = output.slice(-32_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((r) => child.once('exit', () => ((exited = true), r())));
  child.once('error', (e) => {
    output += `\nspawn error: ${e.message}`;
  });

  const close = async () => {
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exit;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      await close();
      throw new Error(`${name} exited during startup:\n${output}`);
    }
    if (await canConnect(port)) break;
    if (Date.now() > deadline) {
      await close();
      throw new Error(`${name} did not listen on 127.0.0.1:${port} within ${STARTUP_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { name, port, url: `http://127.0.0.1:${port}`, config, output: () => output, close };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = net.connect(port, '127.0.0.1');
    const done = (ok: boolean) => {
      s.destroy();
      r(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}
