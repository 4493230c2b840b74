/**
 * Forwarding (CONTRACT §4): bodies stream both ways, the canonical path and the raw
 * query are what the upstream gets, upstream failures are 502/504 and a
 * non-idempotent request is never retried, response hop-by-hop headers are dropped,
 * and x-request-id is kept when valid and generated otherwise.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { userJwt } from '../helpers/jwt.ts';
import { headerValues, startEchoUpstream, type EchoUpstream, type Received } from '../helpers/upstream.ts';
import { authorizationFor, decisionOf, expectForwardedOnce, expectRefused, identityOf, MARK, send } from '../security/support.ts';

const REFUND = '/v1/workspaces/acme/licences/l1/refund-requests';
const JSON_TYPE: [string, string] = ['Content-Type', 'application/json'];
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
});
afterAll(async () => {
  await t?.close();
});

/** Runs `fn` with the shared upstream answering differently; restores it afterwards. */
async function withResponder<T>(respond: EchoUpstream['respond'], fn: () => Promise<T>): Promise<T> {
  const original = t.upstream.respond;
  t.upstream.respond = respond;
  try {
    return await fn();
  } finally {
    t.upstream.respond = original;
  }
}

/**
 * A hand-made upstream: `onHead` runs when a request arrives (before its body), `onChunk`
 * for each body chunk; the request is recorded and, unless the handler ended the response,
 * the response is ended when the body is complete. Counts TCP connections.
 */
async function customUpstream(
  onHead: (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => void,
  onChunk?: (res: http.ServerResponse, chunk: Buffer) => void,
): Promise<EchoUpstream & { connections: () => number }> {
  const received: Received[] = [];
  let connections = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    if (onChunk) onHead(req, res, Buffer.alloc(0));
    req.on('data', (c: Buffer) => {
      chunks.push(c);
      onChunk?.(res, c);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      received.push({ method: req.method ?? '', url: req.url ?? '', rawHeaders: req.rawHeaders, headers: req.headers, body });
      if (!onChunk) onHead(req, res, body);
      if (!res.writableEnded) res.end();
    });
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    respond: () => undefined,
    connections: () => connections,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** A request through Node's client (streaming bodies, keep-alive agents), bounded by a timeout. */
function nodeRequest(
  port: number,
  opts: http.RequestOptions,
  onRequest?: (req: http.ClientRequest) => void,
  timeoutMs = 10_000,
): Promise<{ res: http.IncomingMessage; body: Buffer; socket: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, ...opts }, (res) => {
      // Captured now: a keep-alive agent detaches the socket from the response at its end.
      const socket = res.socket;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ res, body: Buffer.concat(chunks), socket });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error('request timed out')), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    if (onRequest) onRequest(req);
    else req.end();
  });
}

describe('the forwarded request', () => {
  it('is the canonical path with the raw query kept byte for byte', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/%61cme/projects/w%65b/licences?page=2&q=a%20b+c&x=%2F&&y=%zz'.replace('%zz', '%7A'), { as: 'vic' });
    expect(res.status).toBe(200);
    expect(expectForwardedOnce(res).url).toBe('/v1/workspaces/acme/projects/web/licences?page=2&q=a%20b+c&x=%2F&&y=%7A');
  });

  it('an empty query is kept as sent', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences?', { as: 'vic' });
    expect(expectForwardedOnce(res).url).toBe('/v1/workspaces/acme/licences?');
  });

  it('carries every identity header once, matching the decision', async () => {
    const res = await send(t, 'POST', REFUND, { as: 'bill', headers: [JSON_TYPE], body: '{"reason":"duplicate"}' });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    const d = decisionOf(res);
    expect(identityOf(got)).toEqual({
      'x-packagento-principal': ['user:bill'],
      'x-packagento-workspace': ['acme'],
      'x-packagento-roles': ['billing'],
      'x-packagento-action': ['licence:refund'],
      'x-packagento-decision-id': [d.decision_id],
      'x-packagento-policy-revision': [d.policy_revision],
    });
    expect(got.method).toBe('POST');
    expect(got.body.toString()).toBe('{"reason":"duplicate"}');
    expect(headerValues(got, 'content-type')).toEqual(['application/json']);
  });

  it('is sent under the path of GATE_UPSTREAM_URL when it has one', async () => {
    const upstream = await startEchoUpstream();
    const g = await startTestGateway({ world: ACME, upstream, env: { GATE_UPSTREAM_URL: `${upstream.url}/base/` } });
    try {
      const res = await send(g, 'GET', '/v1/workspaces/%61cme/licences?x=1', { as: 'vic' });
      expect(res.status).toBe(200);
      expect(expectForwardedOnce(res).url).toBe('/base/v1/workspaces/acme/licences?x=1');
    } finally {
      await g.close();
      await upstream.close();
    }
  });
});

describe('bodies stream both ways', () => {
  it('a large request body (8 MiB, Content-Length) arrives intact, beyond the 64 KiB native limit', async () => {
    const body = randomBytes(8 * 1024 * 1024);
    const res = await send(t, 'POST', REFUND, { as: 'alice', headers: [['Content-Type', 'application/octet-stream']], body, timeoutMs: 20_000 });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(got.body.length).toBe(body.length);
    expect(sha(got.body)).toBe(sha(body));
    expect(headerValues(got, 'content-length')).toEqual([String(body.length)]);
  });

  it('a large chunked request body arrives intact', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const res = await send(t, 'POST', REFUND, { as: 'bill', headers: [['Content-Type', 'application/octet-stream']], body, chunked: 65_536, timeoutMs: 20_000 });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(sha(got.body)).toBe(sha(body));
    expect(headerValues(got, 'content-length')).toEqual([]);
    expect(headerValues(got, 'transfer-encoding')).toEqual(['chunked']);
  });

  it('a large response body (6 MiB) arrives intact', async () => {
    const payload = randomBytes(6 * 1024 * 1024);
    const res = await withResponder(
      (_req, r) => {
        r.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(payload.length) });
        r.end(payload);
      },
      () => send(t, 'GET', '/repo/dist/acme/widget/1.0.0.zip', { as: 't1', timeoutMs: 20_000 }),
    );
    expect(res.status).toBe(200);
    expectForwardedOnce(res);
    expect(sha(res.body)).toBe(sha(payload));
  });

  it('the response streams: the first chunk reaches the client before the upstream has finished', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const auth = await authorizationFor(t, 't1');
    await withResponder(
      (_req, r) => {
        r.writeHead(200, { 'content-type': 'application/octet-stream' });
        r.write('first-chunk;');
        // The upstream finishes only after the client saw the first chunk (bounded by the test timeout).
        void released.then(() => r.end('second-chunk'));
      },
      async () => {
        const seen: string[] = [];
        const { body } = await nodeRequest(t.gw.port, { method: 'GET', path: '/repo/dist/big.zip', headers: { authorization: auth } }, (req) => {
          req.on('response', (res) => {
            res.once('data', (c: Buffer) => {
              seen.push(c.toString());
              release();
            });
          });
          req.end();
        });
        expect(seen[0]).toBe('first-chunk;');
        expect(body.toString()).toBe('first-chunk;second-chunk');
      },
    );
  });

  it('the request streams: the upstream answers part of the body while the client is still sending', async () => {
    // An upstream that echoes each request chunk as it arrives.
    const upstream = await customUpstream((_req, res) => res.writeHead(200, { 'content-type': 'application/octet-stream' }), (res, chunk) => res.write(chunk));
    const received = upstream.received;
    const g = await startTestGateway({ world: ACME, upstream });
    try {
      const auth = `Bearer ${await userJwt('alice')}`;
      const { body } = await nodeRequest(
        g.gw.port,
        { method: 'POST', path: REFUND, headers: { authorization: auth, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' } },
        (req) => {
          req.write('part-one;');
          req.on('response', (res) => {
            res.once('data', (c: Buffer) => {
              // Only now send the rest: the first part made the full round trip first.
              expect(c.toString()).toBe('part-one;');
              req.end('part-two');
            });
          });
        },
      );
      expect(body.toString()).toBe('part-one;part-two');
      expect(received).toHaveLength(1);
      expect(received[0]!.body.toString()).toBe('part-one;part-two');
      expect(headerValues(received[0]!, 'x-packagento-principal')).toEqual(['user:alice']);
    } finally {
      await g.close();
      await upstream.close();
    }
  });
});

describe('responses', () => {
  it('status, body and ordinary headers pass through; hop-by-hop and Connection-nominated ones do not', async () => {
    const res = await withResponder(
      (_req, r) => {
        r.writeHead(418, 'I am a teapot', [
          ['Content-Type', 'application/json'],
          ['Connection', 'X-Upstream-Secret'],
          ['X-Upstream-Secret', 'internal'],
          ['Keep-Alive', 'timeout=1, max=7'],
          ['Proxy-Authenticate', 'Basic realm="internal"'],
          ['Upgrade', 'h2c'],
          ['Trailer', 'X-Checksum'],
          ['Set-Cookie', 'a=1'],
          ['Set-Cookie', 'b=2'],
          ['X-Kept', 'k'],
        ] as unknown as http.OutgoingHttpHeaders);
        r.end('{"teapot":true}');
      },
      () => send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic' }),
    );
    expectForwardedOnce(res);
    expect(res.status).toBe(418);
    expect(res.json()).toEqual({ teapot: true });
    const names = res.rawHeaders.map(([k]) => k.toLowerCase());
    for (const dropped of ['x-upstream-secret', 'proxy-authenticate', 'upgrade', 'trailer']) expect(names, dropped).not.toContain(dropped);
    expect(res.headers['keep-alive'] ?? '').not.toContain('max=7');
    expect(res.rawHeaders.filter(([k]) => k.toLowerCase() === 'set-cookie').map(([, v]) => v)).toEqual(['a=1', 'b=2']);
    expect(res.headers['x-kept']).toBe('k');
  });

  it('an upstream error status is passed through, not turned into a gateway error', async () => {
    const res = await withResponder(
      (_req, r) => {
        r.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '3' });
        r.end('upstream busy');
      },
      () => send(t, 'GET', '/repo/packages.json', { as: 't1' }),
    );
    expectForwardedOnce(res);
    expect(res.status).toBe(503);
    expect(res.text).toBe('upstream busy');
    expect(res.headers['retry-after']).toBe('3');
  });
});

describe('x-request-id', () => {
  it('a valid one is kept: upstream, response and decision line all carry it', async () => {
    const id = `req-${Date.now()}.abc:1`;
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: [['X-Request-Id', id]] });
    const got = expectForwardedOnce(res);
    expect(headerValues(got, 'x-request-id')).toEqual([id]);
    expect(res.headers['x-request-id']).toBe(id);
    expect(decisionOf(res).request_id).toBe(id);
  });

  it.each([
    ['with spaces', ['X-Request-Id', 'a b']],
    ['too long', ['X-Request-Id', 'x'.repeat(129)]],
    ['with a header-injection attempt', ['X-Request-Id', 'abc%0d%0aX-Packagento-Roles:%20owner']],
    ['with quotes', ['X-Request-Id', '"quoted"']],
  ] as [string, [string, string]][])('an invalid one (%s) is replaced by a generated id', async (_name, header) => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: [header] });
    const got = expectForwardedOnce(res);
    const sent = headerValues(got, 'x-request-id');
    expect(sent).toHaveLength(1);
    expect(sent[0]).not.toBe(header[1]);
    expect(sent[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(sent[0]);
    expect(decisionOf(res).request_id).toBe(sent[0]);
  });

  it('two x-request-id headers: one generated id is sent, never both', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: [['X-Request-Id', 'one'], ['X-Request-Id', 'two']] });
    const sent = headerValues(expectForwardedOnce(res), 'x-request-id');
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('an X_Request_Id spelling is not forwarded beside the real one', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: [['X_Request_Id', 'spoofed']] });
    const got = expectForwardedOnce(res);
    expect(got.rawHeaders).not.toContain('spoofed');
    expect(headerValues(got, 'x-request-id')).toHaveLength(1);
  });

  it('a generated id is set when none is sent', async () => {
    const res = await send(t, 'GET', '/repo/packages.json', { as: 't1' });
    const sent = headerValues(expectForwardedOnce(res), 'x-request-id');
    expect(sent[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['x-request-id']).toBe(sent[0]);
  });
});

describe('upstream failures', () => {
  it('upstream down → 502 upstream_unavailable problem+json', async () => {
    // A port that was just free: nothing listens there.
    const closed = await startEchoUpstream();
    const deadUrl = closed.url;
    await closed.close();
    const g = await startTestGateway({ world: ACME, env: { GATE_UPSTREAM_URL: deadUrl } });
    try {
      const res = await send(g, 'GET', '/v1/workspaces/acme/licences', { as: 'vic' });
      expect(res.status).toBe(502);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ status: 502, code: 'upstream_unavailable' });
      expect(res.json().request_id).toBe(res.headers['x-request-id']);
      expect(res.text).not.toContain(deadUrl);
      expect(g.upstream.received).toHaveLength(0);
      // The decision itself was an allow; the forward failed.
      expect(decisionOf(res)).toMatchObject({ result: 'allow' });
    } finally {
      await g.close();
    }
  });

  it('upstream slower than GATE_UPSTREAM_TIMEOUT_MS → 504 upstream_timeout, in bounded time', async () => {
    const g = await startTestGateway({ world: ACME, env: { GATE_UPSTREAM_TIMEOUT_MS: '300' } });
    try {
      g.upstream.respond = () => undefined; // never answers; closed with the upstream
      const started = Date.now();
      const res = await send(g, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', timeoutMs: 5000 });
      const elapsed = Date.now() - started;
      expect(res.status).toBe(504);
      expect(res.json()).toMatchObject({ status: 504, code: 'upstream_timeout' });
      expect(elapsed).toBeGreaterThanOrEqual(250);
      expect(elapsed).toBeLessThan(4000);
      // The upstream did get the request once (and only once: a timeout is not retried).
      expect(g.upstream.received).toHaveLength(1);
    } finally {
      await g.close();
    }
  });

  it('a POST that fails on a reused keep-alive connection is never retried', async () => {
    {
      // Warm a pooled upstream connection with a GET.
      const warm = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'alice' });
      expect(warm.status).toBe(200);
      const res = await withResponder(
        (req) => req.socket.destroy(),
        () => send(t, 'POST', REFUND, { as: 'alice', headers: [JSON_TYPE], body: '{"once":true}' }),
      );
      expect(res.status).toBe(502);
      expect(res.json().code).toBe('upstream_unavailable');
      const posts = res.upstream();
      expect(posts).toHaveLength(1);
      expect(posts[0]!.method).toBe('POST');
    }
  });

  it('a GET that fails the same way is retried at most once', async () => {
    await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'alice' });
    const res = await withResponder(
      (req) => req.socket.destroy(),
      () => send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'alice' }),
    );
    expect(res.status).toBe(502);
    expect(res.upstream().length).toBeGreaterThanOrEqual(1);
    expect(res.upstream().length).toBeLessThanOrEqual(2);
  });
});

describe('connections', () => {
  it('client keep-alive: several forwarded requests on one connection', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const auth = await authorizationFor(t, 't1');
      const sockets = new Set<unknown>();
      for (const path of ['/repo/packages.json', '/repo/p2/acme/a.json', '/repo/p2/acme/b.json']) {
        const { res, socket } = await nodeRequest(t.gw.port, { method: 'GET', path, agent, headers: { authorization: auth, [MARK]: 'keepalive' } });
        expect(res.statusCode).toBe(200);
        expect(socket).toBeTruthy();
        sockets.add(socket);
      }
      expect(sockets.size).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('upstream connections are pooled (kept alive between requests)', async () => {
    const upstream = await customUpstream((req, res, body) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(body);
    });
    const g = await startTestGateway({ world: ACME, upstream });
    try {
      for (let i = 0; i < 6; i++) {
        const res = await send(g, 'GET', '/repo/packages.json', { as: 't1' });
        expect(res.status).toBe(200);
      }
      expect(upstream.received).toHaveLength(6);
      expect(upstream.connections()).toBe(1);
    } finally {
      await g.close();
      await upstream.close();
    }
  });

  // Regression: Hono answers HEAD by wrapping the GET response; the node listener must keep a
  // forwarded (already sent) answer marked as such, or the keep-alive connection is destroyed.
  it('HEAD on a forwarded route keeps the client connection usable', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    // A HEAD answer that states its length, so the client may keep the connection (without one,
    // Node's client drops the socket after a HEAD even when talking to the upstream directly).
    const respond = t.upstream.respond;
    t.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      res.end('{}');
    };
    try {
      const auth = await authorizationFor(t, 't1');
      const head = await nodeRequest(t.gw.port, { method: 'HEAD', path: '/repo/packages.json', agent, headers: { authorization: auth } });
      expect(head.res.statusCode).toBe(200);
      const next = await nodeRequest(t.gw.port, { method: 'GET', path: '/repo/packages.json', agent, headers: { authorization: auth } });
      expect(next.res.statusCode).toBe(200);
      expect(head.socket).toBeTruthy();
      expect(next.socket).toBe(head.socket);
      expect(t.logs.join('\n')).not.toContain('ERR_HTTP_HEADERS_SENT');
    } finally {
      t.upstream.respond = respond;
      agent.destroy();
    }
  });
});

describe('denied requests are answered by the gateway', () => {
  it('a deny carries problem+json with the decision id, and nothing reaches the upstream', async () => {
    const res = await send(t, 'POST', REFUND, { as: 'vic', headers: [JSON_TYPE], body: '{}' });
    expectRefused(res, 403, 'forbidden');
    const body = res.json();
    expect(body).toMatchObject({ type: expect.stringMatching(/^https?:\/\//), title: expect.any(String), detail: expect.any(String), action: 'licence:refund' });
    expect(body.decision_id).toBe(decisionOf(res).decision_id);
    // A deny names the missing action, never the caller's roles or the matched rule.
    expect(res.text).not.toMatch(/viewer|policy\.csv|p, /);
  });
});

describe('GATE_MODE=shadow', () => {
  it('forwards a policy deny marked as such, but never a hygiene, authentication or native-route failure', async () => {
    const g = await startTestGateway({ world: ACME, env: { GATE_MODE: 'shadow' } });
    try {
      const denied = await send(g, 'POST', REFUND, { as: 'vic', headers: [JSON_TYPE], body: '{}' });
      expect(denied.status).toBe(200);
      const got = expectForwardedOnce(denied);
      expect(headerValues(got, 'x-packagento-shadow-decision')).toEqual(['deny']);
      expect(headerValues(got, 'x-packagento-roles')).toEqual(['viewer']);
      expect(decisionOf(denied)).toMatchObject({ result: 'deny', code: 'forbidden', mode: 'shadow' });

      const allowed = await send(g, 'GET', '/v1/workspaces/acme/licences', { as: 'vic' });
      expect(headerValues(expectForwardedOnce(allowed), 'x-packagento-shadow-decision')).toEqual([]);

      expectRefused(await send(g, 'GET', '/v1/workspaces/acme/%2e%2e/globex/licences', { as: 'vic' }), 400, 'bad_path');
      expectRefused(await send(g, 'GET', '/v1/workspaces/acme/licences'), 401, 'unauthenticated');
      expectRefused(await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: 'Bearer x.y.z' }), 401, 'invalid_credentials');
      expectRefused(await send(g, 'GET', '/repo/packages.json', { as: 'tdead' }), 401, 'invalid_credentials');
      expectRefused(await send(g, 'GET', '/v1/workspaces/acme/nothing', { as: 'vic' }), 404, 'not_found');
      expectRefused(await send(g, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: [['X-HTTP-Method-Override', 'POST']] }), 400, 'method_override');
      // Native routes are never shadowed: the gateway's own API still enforces.
      expectRefused(await send(g, 'GET', '/v1/workspaces/acme/projects/web/tokens', { as: 'vic' }), 403, 'forbidden');
    } finally {
      await g.close();
    }
  });
});
