import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { basic, call, linkToken } from '../helpers/api.ts';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signUserJwt, userJwt } from '../helpers/jwt.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { expectRefused, send } from './support.ts';

/**
 * Regressions for what a security review found: request smuggling through a body on
 * GET/HEAD, target- and method-rewriting headers, a bad Host, a string email_verified,
 * tokens surviving a demotion, a preview disagreeing with accept, an invite token in a
 * refused path, and a drain that waited on keep-alive connections.
 */
let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
});
afterAll(async () => t?.close());

const SMUGGLED =
  'POST /v1/workspaces/globex/subscriptions/s1/cancel HTTP/1.1\r\nHost: up\r\n' +
  'x-packagento-principal: user:gwen\r\nx-packagento-roles: owner\r\nContent-Length: 0\r\n\r\n';

describe('no request can be smuggled to the upstream in a body', () => {
  it.each([
    ['a chunked GET on a forwarded route', 'GET', '/v1/workspaces/acme/licences', 'vic'],
    ['a chunked HEAD on /repo with a project token', 'HEAD', '/repo/packages.json', 't1'],
  ])('%s is refused and nothing reaches the upstream', async (_name, method, path, as) => {
    const res = await send(t, method, path, { as, body: SMUGGLED, chunked: 64 });
    expect(res.status).toBe(400);
    expect(res.upstream()).toHaveLength(0);
    expect(res.decisions().map((d) => d.code)).toEqual(['unexpected_body']);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.upstream.received.some((r) => r.url.includes('globex'))).toBe(false);
  });

  it('a GET with a Content-Length body is refused too', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', body: 'abc' });
    expectRefused(res, 400, 'unexpected_body');
  });

  it('a transfer-coding other than chunked is refused', async () => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
      as: 'bill',
      headers: [['Transfer-Encoding', 'gzip, chunked']],
      body: '0\r\n\r\n',
    });
    expectRefused(res, 400, 'bad_request');
  });

  it('a chunked POST is forwarded as exactly one request, with explicit chunked framing and the same body', async () => {
    const body = '{"reason":"' + 'x'.repeat(5000) + '"}' + SMUGGLED;
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
      as: 'bill',
      headers: [['Content-Type', 'application/json']],
      body,
      chunked: 700,
    });
    expect(res.status).toBe(200);
    const got = res.upstream();
    expect(got).toHaveLength(1);
    expect(got[0]!.headers['transfer-encoding']).toBe('chunked');
    expect(got[0]!.body.toString()).toBe(body);
    await new Promise((r) => setTimeout(r, 200));
    expect(t.upstream.received.some((r) => r.url.includes('globex'))).toBe(false);
  });
});

describe('headers and parameters that rewrite the target or the method', () => {
  it.each(['X-Original-URL', 'X-Rewrite-URL', 'X-Original-URI'])('%s is refused', async (header) => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', { as: 'bill', headers: [[header, '/admin']], body: '{}' });
    expectRefused(res, 400, 'bad_request');
  });

  it('X-Original-Method is refused like the other method overrides', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: [['X-Original-Method', 'DELETE']] });
    expectRefused(res, 400, 'method_override');
  });

  it.each(['_method=DELETE', 'a=1&_METHOD=put', '%5Fmethod=PATCH'])('the query parameter in ?%s is refused', async (query) => {
    const res = await send(t, 'POST', `/v1/workspaces/acme/licences/l1/refund-requests?${query}`, { as: 'bill', body: '{}' });
    expectRefused(res, 400, 'method_override');
  });

  it('every x-forwarded-* and client-IP header from the caller is dropped', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', {
      as: 'vic',
      headers: [
        ['X-Forwarded-Uri', '/admin'],
        ['X-Forwarded-Path', '/admin'],
        ['X-Forwarded-Server', 'evil'],
        ['True-Client-IP', '1.2.3.4'],
        ['X-Client-IP', '1.2.3.4'],
      ],
    });
    expect(res.status).toBe(200);
    const names = res.upstream()[0]!.rawHeaders.filter((_v, i) => i % 2 === 0).map((n) => n.toLowerCase());
    expect(names.filter((n) => n.startsWith('x-forwarded-')).sort()).toEqual(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);
    expect(names).not.toContain('true-client-ip');
    expect(names).not.toContain('x-client-ip');
  });
});

describe('the Host header', () => {
  it.each([
    ['a malformed Host on a forwarded route', '/v1/workspaces/acme/licences', 'evil host/x'],
    ['a malformed Host on a native route', '/v1/workspaces/acme', 'a b'],
  ])('%s is one 400 and one decision line', async (_name, path, host) => {
    const jwt = await userJwt('vic');
    const before = t.decisions.length;
    const res = await rawRequest(t.gw.port, `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${jwt}\r\nConnection: close\r\n\r\n`);
    expect(res.status).toBe(400);
    expect(res.json().code).toBe('bad_request');
    expect(t.decisions.length - before).toBe(1);
  });
});

describe('identity and tokens', () => {
  it('email_verified "false" (a string, as some providers send it) is not verified', async () => {
    const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/invites', { as: 'alice', body: { email: 'eve@example.com', role: 'developer' } });
    const jwt = await signUserJwt('mallory', { email: 'eve@example.com', claims: { email_verified: 'false' } });
    const res = await call(t.gw.url, 'POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { headers: { authorization: `Bearer ${jwt}` } });
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('invite_email_mismatch');
    const stringTrue = await signUserJwt('eve', { email: 'eve@example.com', claims: { email_verified: 'true' } });
    expect((await call(t.gw.url, 'POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { headers: { authorization: `Bearer ${stringTrue}` } })).status).toBe(200);
  });

  it('a member demoted to a role without token access loses the tokens they minted as a member', async () => {
    const t1 = t.seeded.tokens.get('t1')!; // minted by dave (developer)
    const creds = basic(t1.publicKey, t1.privateKey);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(200);
    const demoted = await call(t.gw.url, 'PATCH', '/v1/workspaces/acme/members/dave', { as: 'bob', body: { role: 'viewer' } });
    expect(demoted.status).toBe(200);
    expect(demoted.body).toMatchObject({ role: 'viewer', deactivated_tokens: 1 });
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
    // A promotion or a sideways move between token-holding roles touches nothing.
    const t2 = t.seeded.tokens.get('t2')!; // minted by bob (admin)
    expect((await call(t.gw.url, 'PATCH', '/v1/workspaces/acme/members/bob', { as: 'alice', body: { role: 'developer' } })).body.deactivated_tokens).toBe(0);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: basic(t2.publicKey, t2.privateKey) })).status).toBe(200);
  });

  it('a guest re-invited as a viewer loses the tokens minted with the developer grant', async () => {
    const tok = await call(t.gw.url, 'POST', '/v1/workspaces/acme/projects/web/tokens', { as: 'gina', body: { name: 'laptop' } });
    expect(tok.status).toBe(201);
    const creds = basic(tok.body.token.public_key, tok.body.token.private_key);
    const inv = await call(t.gw.url, 'POST', '/v1/workspaces/acme/projects/web/guests', { as: 'alice', body: { email: 'gina2@example.com', role: 'viewer' } });
    // The invite goes to gina's (other) address; she accepts it signed in with that address.
    const jwt = await signUserJwt('gina', { email: 'gina2@example.com', emailVerified: true });
    expect((await call(t.gw.url, 'POST', `/v1/invites/${linkToken(inv.body.accept_url)}/accept`, { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);
    expect((await call(t.gw.url, 'GET', '/repo/packages.json', { headers: creds })).status).toBe(401);
  });
});

describe('invites', () => {
  it('the preview answers 410 when the sender can no longer grant the role, as accept does', async () => {
    const g = await startTestGateway({ world: { workspaces: { w: { members: { olive: 'owner', amos: 'admin' } } } } });
    try {
      const inv = await call(g.gw.url, 'POST', '/v1/workspaces/w/invites', { as: 'amos', body: { email: 'x@example.com', role: 'admin' } });
      expect((await call(g.gw.url, 'GET', `/v1/invites/${linkToken(inv.body.accept_url)}`)).status).toBe(200);
      expect((await call(g.gw.url, 'PATCH', '/v1/workspaces/w/members/amos', { as: 'olive', body: { role: 'developer' } })).status).toBe(200);
      const preview = await call(g.gw.url, 'GET', `/v1/invites/${linkToken(inv.body.accept_url)}`);
      expect(preview.status).toBe(410);
      expect(preview.body.code).toBe('invite_revoked');
    } finally {
      await g.close();
    }
  });

  it('an invite token in a path refused for an encoded slash is redacted in the log', async () => {
    const token = 'Q'.repeat(43);
    const res = await send(t, 'GET', `/v1/invites%2F${token}`);
    expectRefused(res, 400, 'bad_path');
    expect(JSON.stringify(t.decisions)).not.toContain(token);
  });
});

describe('configuration', () => {
  it('a JWKS URL over plain HTTP is refused unless it is on loopback', () => {
    expect(() => loadConfig({ GATE_JWKS_URL: 'http://idp.example.com/jwks.json' })).toThrow(ConfigError);
    expect(() => loadConfig({ GATE_JWKS_URL: 'http://127.0.0.1:9000/jwks.json' })).not.toThrow();
    expect(() => loadConfig({ GATE_JWKS_URL: 'https://idp.example.com/jwks.json' })).not.toThrow();
  });
});

describe('shutdown', () => {
  it('drains: an in-flight request on a keep-alive connection completes, then close returns promptly', async () => {
    const g = await startTestGateway({ world: ACME });
    g.upstream.respond = (_req, res) => {
      setTimeout(() => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
        res.end('ok');
      }, 300);
    };
    const agent = new http.Agent({ keepAlive: true });
    try {
      const jwt = await userJwt('vic');
      const inFlight = new Promise<{ status: number; connection: string | undefined }>((resolve) => {
        http.get(g.gw.url + '/v1/workspaces/acme/licences', { agent, headers: { authorization: `Bearer ${jwt}` } }, (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection }));
        });
      });
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      const closed = g.gw.close(5_000).then(() => Date.now() - started);
      expect(await inFlight).toEqual({ status: 200, connection: 'close' });
      expect(await closed).toBeLessThan(3_000);
    } finally {
      agent.destroy();
      await g.upstream.close();
    }
  });
});
