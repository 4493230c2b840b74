/**
 * One benchmark server per child process, so the load generator, the upstream
 * and the server under test never share an event loop. Prints one JSON line
 * `{"url": …, "pid": …}` on stdout when listening, then serves until killed.
 *
 *   tsx bench/servers.ts upstream
 *   tsx bench/servers.ts bare-proxy    UPSTREAM_URL
 *   tsx bench/servers.ts undici-proxy  UPSTREAM_URL
 *   tsx bench/servers.ts hono-proxy    UPSTREAM_URL
 *   tsx bench/servers.ts cerbos-proxy  UPSTREAM_URL PDP_URL
 *   tsx bench/servers.ts gateway       UPSTREAM_URL DB_FILE
 *
 * The gateway runs as `serve` does, unless BENCH_STAGE_OFF or BENCH_FORWARDER is set: then it is
 * the cost ledger's composition with stand-ins (bench/ledger-gateway.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { proxy } from 'hono/proxy';
import { serve } from '@hono/node-server';
import { Pool } from 'undici';
import { loadConfig, requireServeConfig } from '../src/config.ts';
import { startGateway } from '../src/main.ts';
import { stagesOff, startLedgerGateway } from './ledger-gateway.ts';
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

/** A bare undici proxy: node:http in front, an undici Pool (`stream`) to the upstream. */
function undiciProxy(target: URL): void {
  const pool = new Pool(target.origin, { connections: 256, keepAliveTimeout: 60_000 });
  const server = http.createServer((req, res) => {
    const headers: http.IncomingHttpHeaders = { ...req.headers, host: target.host };
    delete headers['connection'];
    delete headers['keep-alive'];
    const bodyless = req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined;
    pool.stream(
      { path: req.url ?? '/', method: (req.method ?? 'GET') as 'GET', headers, body: bodyless ? null : req },
      ({ statusCode, headers: h }) => {
        res.writeHead(statusCode, h);
        return res;
      },
      (err) => {
        if (!err) return;
        if (!res.headersSent) res.writeHead(502);
        res.end();
      },
    );
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => ready(server));
}

/**
 * The bare node:http proxy asking a Cerbos PDP per request (HTTP keep-alive, one
 * CheckResources call): what a team would build with a PDP. Roles are given statically
 * (viewer), no JWT, no database; the resource is the workspace in the path.
 */
function cerbosProxy(target: URL, pdp: URL): void {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  const pdpAgent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let n = 0;
  const forward = (req: http.IncomingMessage, res: http.ServerResponse) => {
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
  };
  const deny = (res: http.ServerResponse, status: number) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end('{"result":"deny"}');
  };
  const server = http.createServer((req, res) => {
    const ws = (req.url ?? '').split('/')[3] ?? '';
    const body = JSON.stringify({
      requestId: String(++n),
      principal: { id: 'vic', roles: ['viewer'] },
      resources: [{ actions: ['licence:list'], resource: { kind: 'workspace', id: ws } }],
    });
    const check = http.request(
      { agent: pdpAgent, hostname: pdp.hostname, port: pdp.port, method: 'POST', path: '/api/check/resources', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (r) => {
        let text = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (text += c));
        r.on('end', () => {
          let allowed = false;
          try {
            const parsed = JSON.parse(text) as { results?: { actions?: Record<string, string> }[] };
            allowed = r.statusCode === 200 && parsed.results?.[0]?.actions?.['licence:list'] === 'EFFECT_ALLOW';
          } catch {
            allowed = false;
          }
          if (allowed) forward(req, res);
          else deny(res, 403);
        });
      },
    );
    check.on('error', () => deny(res, 503));
    check.end(body);
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
  if (process.env['BENCH_STAGE_OFF'] || process.env['BENCH_FORWARDER']) {
    const forwarder = process.env['BENCH_FORWARDER'] === 'undici' ? 'undici' : process.env['BENCH_FORWARDER'] === 'simple' ? 'simple' : 'node';
    ready(await startLedgerGateway(config, stagesOff(process.env['BENCH_STAGE_OFF']), forwarder));
    return;
  }
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
  case 'undici-proxy':
    undiciProxy(new URL(upstreamUrl!));
    break;
  case 'cerbos-proxy':
    cerbosProxy(new URL(upstreamUrl!), new URL(dbFile!));
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
