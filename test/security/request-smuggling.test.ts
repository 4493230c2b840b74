import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { userJwt } from '../helpers/jwt.ts';
import { rawRequest } from '../helpers/raw-http.ts';
import { expectRefused, send } from './support.ts';

/**
 * What a proxy and an upstream could read differently: a body on GET/HEAD (request
 * smuggling), target- and method-rewriting headers, forwarding headers from the
 * caller, a malformed Host, and an invite token in a refused path (kept out of the log).
 * Every case here only reads, so the one gateway is shared.
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

  it.each([
    ['in one line', [['Transfer-Encoding', 'gzip, chunked']]],
    // Two lines are one list of codings.
    ['in two lines', [['Transfer-Encoding', 'gzip'], ['Transfer-Encoding', 'chunked']]],
  ] as [string, [string, string][]][])('a transfer-coding other than chunked (gzip then chunked, %s) is refused and nothing is forwarded', async (_name, headers) => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', { as: 'bill', headers, body: '0\r\n\r\n' });
    expectRefused(res, 400, 'bad_request');
    expect(res.upstream()).toHaveLength(0);
  });

  it.each([
    ['Transfer_Encoding: chunked beside a real Content-Length', [['Transfer_Encoding', 'chunked']], '{}'],
    ['Transfer.Encoding: chunked beside a real Content-Length', [['Transfer.Encoding', 'chunked']], '{}'],
    ['Content_Length beside the real one', [['Content_Length', '999']], '{}'],
  ] as [string, [string, string][], string][])(
    'a framing header in another spelling (%s) is refused and nothing is forwarded',
    async (_name, headers, body) => {
      // Node frames the body by the real header only; hygiene reads names with _ and . as -, so the
      // two would disagree on the framing, and the upstream could be told both.
      const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
        as: 'bill',
        headers: [['Content-Type', 'application/json'], ...headers],
        body,
      });
      expectRefused(res, 400, 'bad_request');
      expect(res.upstream()).toHaveLength(0);
    },
  );

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

describe('invite links in refused paths', () => {
  it('an invite token in a path refused for an encoded slash is redacted in the log', async () => {
    const token = 'Q'.repeat(43);
    const res = await send(t, 'GET', `/v1/invites%2F${token}`);
    expectRefused(res, 400, 'bad_path');
    expect(JSON.stringify(t.decisions)).not.toContain(token);
  });
});

