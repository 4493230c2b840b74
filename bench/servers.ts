/**
 * One benchmark server per child process, so the load generator, the upstream
 * and the server under test never share an event loop. Prints one JSON line
 * `{"url": …, "pid": …}` on stdout when listening, then serves until killed.
 *
 *   tsx bench/servers.ts upstream
 *   tsx bench/servers.ts bare-proxy  UPSTREAM_URL
 *   tsx bench/servers.ts hono-proxy  UPSTREAM_URL
 *   tsx bench/servers.ts gateway     UPSTREAM_URL DB_FILE
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { proxy } from 'hono/proxy';
import { serve } from '@hono/node-server';
import { loadConfig, requireServeConfig } from '../src/config.ts';
import { startGateway } from '../src/main.ts';
import { BENCH_AUDIENCE, BENCH_ENCRYPTION_KEY, BENCH_ISSUER, BENCH_SECRET } from './world.ts';

const [kind, upstreamUrl, dbFile] = process.argv.slice(2);

function ready(server: http.Server | { address(): AddressInfo | string | null }): void {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid }) + '\n');
}

/** (a) The upstream: a small JSON answer, keep-alive. */
function upstream(): void {
  const body = JSON.stringify({ licences: [{ id: 'lic_1001', package: 'acme/hello', status: 'active' }] });
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready(server));
}

/** (b) A bare node:http keep-alive reverse proxy: the floor any proxy in Node can reach. */
function bareProxy(target: URL): void {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, host: target.host };
    delete headers['connection'];
    const up = http.request({ agent, hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready(server));
}

/** (c) A Hono app forwarding with the hono/proxy helper (global fetch). */
function honoProxy(target: URL): void {
  const app = new Hono();
  app.all('*', (c) => {
    const url = new URL(c.req.url);
    return proxy(`${target.origin}${url.pathname}${url.search}`, {
      ...c.req,
      headers: { ...c.req.header(), 'x-forwarded-for': '127.0.0.1', authorization: undefined },
    });
  });
  const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => ready(server as http.Server)) as http.Server;
  server.keepAliveTimeout = 60_000;
}

/** (d)/(e) The gateway itself, as `serve` runs it (decision log to stdout, which the harness discards). */
async function gateway(target: string, file: string): Promise<void> {
  const config = loadConfig({
    GATE_HOST: '127.0.0.1',
    GATE_PORT: '0',
    GATE_UPSTREAM_URL: target,
    GATE_DATABASE_URL: `file:${file}`,
    GATE_JWT_ISSUER: BENCH_ISSUER,
    GATE_JWT_AUDIENCE: BENCH_AUDIENCE,
    GATE_JWT_SECRET: BENCH_SECRET,
    GATE_TOKEN_ENCRYPTION_KEY: BENCH_ENCRYPTION_KEY.toString('base64'),
    GATE_LOG_LEVEL: 'warn',
  });
  requireServeConfig(config);
  const gw = await startGateway(config);
  gw.server.keepAliveTimeout = 60_000;
  ready(gw.server);
}

switch (kind) {
  case 'upstream':
    upstream();
    break;
  case 'bare-proxy':
    bareProxy(new URL(upstreamUrl!));
    break;
  case 'hono-proxy':
    honoProxy(new URL(upstreamUrl!));
    break;
  case 'gateway':
    await gateway(upstreamUrl!, dbFile!);
    break;
  default:
    process.stderr.write(`unknown server kind ${kind}\n`);
    process.exitCode = 2;
}

// Exit cleanly on SIGTERM so `--cpu-prof` (see bench/profile.ts) can write its profile.
process.on('SIGTERM', () => process.exit(0));
