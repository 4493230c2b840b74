/**
 * The bench's reference servers that are not Node: nginx (`proxy_pass` with upstream
 * keep-alive, one worker) when /usr/sbin/nginx exists, and a Cerbos PDP from the npm package
 * `@cerbos/cerbos-linux-x64` (fetched once with `npm pack` into bench-results/, never a
 * dependency of the project). Each either starts or says why not; nothing listens beyond
 * 127.0.0.1.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startProcess, type BenchServer } from './spawn.ts';

const run = promisify(execFile);

export const NGINX_BIN = '/usr/sbin/nginx';
export const CERBOS_VERSION = '0.55.0';
const CERBOS_PACKAGE = '@cerbos/cerbos-linux-x64';

export type Started = { ok: true; server: BenchServer; version: string } | { ok: false; reason: string };

/** A free loopback port (closed again before use: a tiny race, acceptable in a bench). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolvePort(port));
    });
  });
}

/** nginx in front of the upstream: 1 worker, upstream keep-alive, no access log, files in `dir`. */
export async function startNginx(upstreamUrl: string, dir: string): Promise<Started> {
  if (!existsSync(NGINX_BIN)) return { ok: false, reason: `absent (${NGINX_BIN} not installed)` };
  const version = (await run(NGINX_BIN, ['-v']).catch((e: { stderr?: string }) => ({ stderr: e.stderr ?? '' }))).stderr.trim().replace(/^nginx version: /, '');
  const up = new URL(upstreamUrl);
  const port = await freePort();
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    `daemon off;
master_process on;
worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${join(dir, 'body')};
  proxy_temp_path ${join(dir, 'proxy')};
  fastcgi_temp_path ${join(dir, 'fastcgi')};
  uwsgi_temp_path ${join(dir, 'uwsgi')};
  scgi_temp_path ${join(dir, 'scgi')};
  keepalive_requests 1000000;
  upstream app { server ${up.hostname}:${up.port}; keepalive 64; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }
  }
}
`,
  );
  try {
    const server = await startProcess('nginx', NGINX_BIN, ['-e', join(dir, 'error.log'), '-p', dir, '-c', conf], port);
    return { ok: true, server, version };
  } catch (err) {
    return { ok: false, reason: `could not start: ${(err as Error).message}` };
  }
}

/** The Cerbos binary: $CERBOS_BIN, or the npm package unpacked into `cacheDir` (fetched once). */
async function cerbosBinary(cacheDir: string): Promise<string | { reason: string }> {
  if (process.env['CERBOS_BIN']) return process.env['CERBOS_BIN'];
  if (process.platform !== 'linux' || process.arch !== 'x64') return { reason: `no ${CERBOS_PACKAGE} for ${process.platform}-${process.arch}` };
  const dir = resolve(cacheDir, `cerbos-${CERBOS_VERSION}`);
  const bin = join(dir, 'package', 'cerbos-linux-x64');
  if (existsSync(bin)) return bin;
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  try {
    await run('npm', ['pack', `${CERBOS_PACKAGE}@${CERBOS_VERSION}`, '--pack-destination', dir, '--silent'], { timeout: 180_000 });
    const tgz = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
    if (!tgz) return { reason: 'npm pack produced no archive' };
    await run('tar', ['-xzf', join(dir, tgz), '-C', dir], { timeout: 60_000 });
    await rm(join(dir, tgz));
    await chmod(bin, 0o755);
    return bin;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    return { reason: `could not fetch ${CERBOS_PACKAGE}@${CERBOS_VERSION}: ${(err as Error).message.split('\n')[0]}` };
  }
}

/** A Cerbos PDP serving bench/cerbos/policies over HTTP on a loopback port. */
export async function startCerbos(cacheDir: string): Promise<Started> {
  const bin = await cerbosBinary(cacheDir);
  if (typeof bin !== 'string') return { ok: false, reason: bin.reason };
  const [http, grpc] = [await freePort(), await freePort()];
  let output = '';
  try {
    const version = (await run(bin, ['--version'])).stdout.split('\n')[0]!.trim();
    const server = await startProcess(
      'cerbos',
      bin,
      [
        'server',
        '--config=bench/cerbos/config.yaml',
        `--set=server.httpListenAddr=127.0.0.1:${http}`,
        `--set=server.grpcListenAddr=127.0.0.1:${grpc}`,
        '--log-level=error',
      ],
      http,
      { env: { CERBOS_NO_TELEMETRY: '1' }, onOutput: (c) => (output = (output + c).slice(-2000)) },
    );
    return { ok: true, server, version };
  } catch (err) {
    return { ok: false, reason: `could not start: ${(err as Error).message}${output ? ` (${output.trim().split('\n').pop()})` : ''}` };
  }
}
