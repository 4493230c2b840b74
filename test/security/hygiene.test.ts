/**
 * Request hygiene (CONTRACT §4): every ambiguous request-target is refused before
 * anything is forwarded, and what is decided is exactly what is forwarded.
 * Each request carries valid credentials for a route that would be allowed, so a
 * hygiene bypass would show up as a request at the upstream.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { headerValues } from '../helpers/upstream.ts';
import { authorizationFor, decisionOf, expectForwardedOnce, expectRefused, send } from './support.ts';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
});
afterAll(async () => {
  await t?.close();
});

// vic (viewer) may GET /v1/workspaces/acme/licences; t1 may GET /repo/….
const BAD_USER_PATHS: [string, string][] = [
  ['encoded slash', '/v1/workspaces/acme%2Flicences'],
  ['encoded slash, lower-case hex', '/v1/workspaces%2facme/licences'],
  ['encoded slash at the end', '/v1/workspaces/acme/licences%2F'],
  ['encoded backslash', '/v1/workspaces/acme%5Clicences'],
  ['encoded backslash, lower-case hex', '/v1/workspaces/acme/%5clicences'],
  ['dot segment', '/v1/workspaces/acme/./licences'],
  ['dot-dot segment', '/v1/workspaces/globex/../acme/licences'],
  ['trailing dot-dot', '/v1/workspaces/acme/licences/..'],
  ['trailing dot', '/v1/workspaces/acme/licences/.'],
  ['encoded dot-dot', '/v1/workspaces/acme/%2e%2e/globex/licences'],
  ['encoded dot-dot, upper-case', '/v1/workspaces/globex/%2E%2E/acme/licences'],
  ['half-encoded dot-dot', '/v1/workspaces/globex/.%2E/acme/licences'],
  ['encoded dot segment', '/v1/workspaces/acme/%2E/licences'],
  ['semicolon (matrix parameter)', '/v1/workspaces/acme;x=1/licences'],
  ['trailing semicolon', '/v1/workspaces/acme/licences;'],
  ['encoded semicolon', '/v1/workspaces/acme%3B/licences'],
  ['encoded semicolon, lower-case', '/v1/workspaces/acme/licences%3bjsessionid=1'],
  ['raw #', '/v1/workspaces/acme/licences#fragment'],
  ['encoded #', '/v1/workspaces/acme%23/licences'],
  ['encoded NUL', '/v1/workspaces/acme/licences%00'],
  ['encoded LF', '/v1/workspaces/acme%0A/licences'],
  ['encoded CR', '/v1/workspaces/acme/licences%0d'],
  ['encoded TAB', '/v1/workspaces/acme%09/licences'],
  ['encoded DEL', '/v1/workspaces/acme%7F/licences'],
  ['encoded unit separator', '/v1/workspaces/acme%1F/licences'],
  ['empty segment', '/v1//workspaces/acme/licences'],
  ['leading double slash', '//v1/workspaces/acme/licences'],
  ['empty id segment', '/v1/workspaces//licences'],
  ['encoded non-ASCII (é)', '/v1/workspaces/acm%C3%A9/licences'],
  ['encoded high byte', '/v1/workspaces/acme%80/licences'],
  ['encoded 0xFF', '/v1/workspaces/acme/licences%ff'],
  ['lone %', '/v1/workspaces/acme/licences%'],
  ['truncated escape', '/v1/workspaces/acme/licences%2'],
  ['non-hex escape', '/v1/workspaces/acme/%zzlicences'],
  ['half-hex escape', '/v1/workspaces/acme/%G0licences'],
  ['double-encoded slash (%252F)', '/v1/workspaces/acme%252F..%252Fglobex/licences'],
  ['encoded percent', '/v1/workspaces/acme%25/licences'],
  ['encoded question mark', '/v1/workspaces/acme%3F/licences'],
  ['malformed escape in the query', '/v1/workspaces/acme/licences?a=%zz'],
  ['lone % in the query', '/v1/workspaces/acme/licences?a=%'],
  ['# in the query', '/v1/workspaces/acme/licences?a=1#b'],
  ['absolute-form request target', `http://127.0.0.1/v1/workspaces/acme/licences`],
];

describe('refused paths: 400 bad_path, nothing forwarded', () => {
  it.each(BAD_USER_PATHS)('%s: %s', async (_name, target) => {
    const res = await send(t, 'GET', target, { as: 'vic' });
    expectRefused(res, 400, 'bad_path');
    expect(decisionOf(res)).toMatchObject({ result: 'deny', code: 'bad_path', route: null });
  });

  it.each([
    ['encoded dot-dot', '/repo/p2/%2e%2e/packages.json'],
    ['encoded slash', '/repo/dist/acme%2Fweb.zip'],
    ['empty segment', '/repo//packages.json'],
    ['semicolon', '/repo/packages.json;v=1'],
    ['encoded control', '/repo/packages.json%0A'],
    ['malformed escape', '/repo/packages.json%'],
  ])('on /repo with a valid token too (%s: %s)', async (_name, target) => {
    const res = await send(t, 'GET', target, { as: 't1' });
    expectRefused(res, 400, 'bad_path');
  });

  it('hygiene is checked before credentials: a bad path without credentials is 400, not 401', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/%2e%2e/globex');
    expectRefused(res, 400, 'bad_path');
  });

  it('an over-long request target is refused (414) and not forwarded', async () => {
    const res = await send(t, 'GET', `/v1/workspaces/acme/licences?q=${'a'.repeat(9000)}`, { as: 'vic' });
    expectRefused(res, 414, 'uri_too_long');
  });
});

describe('refused before the gateway sees them (the HTTP layer answers 400; nothing forwarded)', () => {
  // Node's HTTP parser and @hono/node-server refuse these before the gate runs: the status is
  // right and nothing is forwarded, but the body is not problem+json (see the known-bug tests below).
  it.each([
    ['raw backslash', Buffer.from('/v1/workspaces/acme\\licences', 'latin1')],
    ['raw non-ASCII (UTF-8 é)', Buffer.from('/v1/workspaces/acmé/licences', 'utf8')],
    ['raw control character', Buffer.from('/v1/workspaces/acme\x01/licences', 'latin1')],
    ['asterisk-form', Buffer.from('*', 'latin1')],
  ])('%s', async (_name, target) => {
    const res = await send(t, 'GET', target, { as: 'vic' });
    expectRefused(res, 400);
  });

  // Regression: @hono/node-server refuses a raw backslash before the app runs; the gateway's
  // errorHandler must answer it as bad_path problem+json with a decision line.
  it('a raw backslash is answered with problem+json code bad_path', async () => {
    const res = await send(t, 'GET', Buffer.from('/v1/workspaces/acme\\licences', 'latin1'), { as: 'vic' });
    expectRefused(res, 400, 'bad_path');
  });
});

describe('over-encoded unreserved characters decide and forward as their decoded form', () => {
  it.each([
    ['/v1/workspaces/%61cme/licences', '/v1/workspaces/acme/licences'],
    ['/v1/workspaces/acme/licen%63es', '/v1/workspaces/acme/licences'],
    ['/v1/%77orkspaces/%61%63%6D%65/licences', '/v1/workspaces/acme/licences'],
    ['/v1/workspaces/acme/projects/w%65b/licences', '/v1/workspaces/acme/projects/web/licences'],
    ['/v1/workspaces/%61cme/licences?b=%2F&a=%61', '/v1/workspaces/acme/licences?b=%2F&a=%61'],
  ])('%s is forwarded as %s', async (target, forwarded) => {
    const res = await send(t, 'GET', target, { as: 'vic' });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(got.url).toBe(forwarded);
    expect(decisionOf(res)).toMatchObject({ result: 'allow', path: forwarded.split('?')[0], workspace: 'acme' });
    expect(headerValues(got, 'x-packagento-workspace')).toEqual(['acme']);
  });

  it('decodes ~ - _ . and keeps reserved escapes upper-cased on /repo', async () => {
    const res = await send(t, 'GET', '/repo/dist/%7evendor/pkg%2D1%5F2%2Ezip%2b1', { as: 't1' });
    expect(res.status).toBe(200);
    expect(expectForwardedOnce(res).url).toBe('/repo/dist/~vendor/pkg-1_2.zip%2B1');
  });

  it('decides on the decoded form: an encoded workspace the caller has no role in is 404', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/%67lobex/licences', { as: 'alice' });
    expectRefused(res, 404, 'not_found');
    expect(decisionOf(res)).toMatchObject({ workspace: 'globex', path: '/v1/workspaces/globex/licences' });
  });
});

describe('matching is case-sensitive and segment-exact', () => {
  it.each([
    ['/V1/workspaces/acme/licences', 'vic'],
    ['/v1/Workspaces/acme/licences', 'vic'],
    ['/v1/workspaces/acme/Licences', 'vic'],
    ['/v1/workspaces/acme/LICENCES', 'vic'],
    ['/v1/workspaces/acme/%4Cicences', 'vic'],
    ['/v1/workspaces/acme/licences/', 'vic'],
    ['/v1/workspaces/acme/projects/web/licences/', 'vic'],
    ['/v1/workspaces/acme/licences/extra', 'vic'],
    ['/v1/workspaces/acme/licence', 'vic'],
    ['/v1/workspaces/acme/licences.json', 'vic'],
    ['/REPO/packages.json', 't1'],
    ['/repo/packages.json/', 't1'],
    ['/repo/', 't1'],
    ['/repo', 't1'],
  ])('%s is an unknown route: 404, never forwarded', async (target, as) => {
    const res = await send(t, 'GET', target, { as });
    expectRefused(res, 404, 'not_found');
  });

  it('a workspace id differing only in case is another workspace (404 for a caller with no role in it)', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/ACME/licences', { as: 'vic' });
    expectRefused(res, 404, 'not_found');
  });

  it.each(['/', '/v1', '/v2/workspaces/acme/licences', '/v1/nothing-here', '/favicon.ico', '/_gate/nothing', '/_gate/healthz/'])(
    'unknown route %s is 404 and never forwarded, even with valid credentials',
    async (target) => {
      const res = await send(t, 'GET', target, { as: 'alice' });
      expectRefused(res, 404, 'not_found');
    },
  );

  it('/_gate/healthz is answered by the gateway, never forwarded', async () => {
    const res = await send(t, 'GET', '/_gate/healthz');
    expect(res.status).toBe(200);
    expect(res.upstream()).toHaveLength(0);
  });
});

describe('methods', () => {
  it('HEAD is authorized as the GET route and forwarded as HEAD', async () => {
    const res = await send(t, 'HEAD', '/v1/workspaces/acme/licences', { as: 'vic' });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(got.method).toBe('HEAD');
    expect(headerValues(got, 'x-packagento-action')).toEqual(['licence:list']);
    expect(decisionOf(res)).toMatchObject({ method: 'HEAD', route: 'GET /v1/workspaces/{ws}/licences', action: 'licence:list', result: 'allow' });
  });

  it('HEAD on /repo with a project token is forwarded as HEAD', async () => {
    const res = await send(t, 'HEAD', '/repo/packages.json', { as: 't1' });
    expect(res.status).toBe(200);
    expect(expectForwardedOnce(res).method).toBe('HEAD');
  });

  it('HEAD is denied exactly as GET would be', async () => {
    const res = await send(t, 'HEAD', '/v1/workspaces/acme/licences', { as: 'gwen' });
    expect(res.status).toBe(404);
    expect(res.upstream()).toHaveLength(0);
  });

  it.each([
    ['DELETE', '/v1/workspaces/acme/licences', 'GET, HEAD'],
    ['PUT', '/v1/workspaces/acme/licences', 'GET, HEAD'],
    ['PATCH', '/v1/workspaces/acme/projects/web/licences', 'GET, HEAD'],
    ['POST', '/v1/workspaces/acme/licences', 'GET, HEAD'],
    ['OPTIONS', '/v1/workspaces/acme/licences', 'GET, HEAD'],
    ['TRACE', '/v1/workspaces/acme/licences', 'GET, HEAD'],
    ['PROPFIND', '/v1/workspaces/acme/licences', 'GET, HEAD'],
    ['GET', '/v1/workspaces/acme/licences/l1/refund-requests', 'POST'],
    ['DELETE', '/v1/workspaces/acme/subscriptions/s1/cancel', 'POST'],
    ['POST', '/repo/packages.json', 'GET, HEAD'],
    ['PUT', '/repo/dist/acme/web.zip', 'GET, HEAD'],
  ])('%s %s is 405 with Allow: %s, never forwarded', async (method, target, allow) => {
    const res = await send(t, method, target, { as: method === 'POST' && target.startsWith('/repo') ? 't1' : 'alice' });
    expectRefused(res, 405, 'method_not_allowed');
    expect(res.headers['allow']).toBe(allow);
  });
});

describe('credentials and method overrides', () => {
  it.each([
    ['the same JWT twice', 'same'],
    ['a JWT and Basic credentials', 'basic'],
    ['two JWTs in one header', 'comma'],
    ['a JWT with a trailing credential', 'space'],
    ['a second header spelled in lower case', 'lower'],
  ])('%s: 400 duplicate_credentials, nothing forwarded', async (_name, kind) => {
    const jwt = await authorizationFor(t, 'vic');
    const basic = await authorizationFor(t, 't1');
    const headers: [string, string][] =
      kind === 'same'
        ? [['Authorization', jwt], ['Authorization', jwt]]
        : kind === 'basic'
          ? [['Authorization', jwt], ['Authorization', basic]]
          : kind === 'comma'
            ? [['Authorization', `${jwt}, ${jwt}`]]
            : kind === 'space'
              ? [['Authorization', `${jwt} ${jwt.slice(7)}`]]
              : [['Authorization', jwt], ['authorization', jwt]];
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { headers });
    expectRefused(res, 400, 'duplicate_credentials');
  });

  it('two Basic credentials on /repo are 400 too', async () => {
    const basic = await authorizationFor(t, 't1');
    const res = await send(t, 'GET', '/repo/packages.json', { headers: [['Authorization', basic], ['Authorization', basic]] });
    expectRefused(res, 400, 'duplicate_credentials');
  });

  it.each([
    'X-HTTP-Method-Override',
    'X-HTTP-Method',
    'X-Method-Override',
    'x-http-method-override',
    'X_HTTP_Method_Override',
    'X_HTTP_METHOD',
    'x_method_override',
    'X.HTTP.Method.Override',
  ])('%s is refused with 400 method_override, nothing forwarded', async (name) => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: [[name, 'GET']] });
    expectRefused(res, 400, 'method_override');
  });

  it('a method override that would escalate a POST is refused, not honoured', async () => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
      as: 'alice',
      headers: [['X-HTTP-Method-Override', 'DELETE'], ['Content-Type', 'application/json']],
      body: '{}',
    });
    expectRefused(res, 400, 'method_override');
  });
});

describe('body limits on native routes (64 KiB)', () => {
  const invite = (size: number): string => {
    const base = { email: 'new@example.com', role: 'developer', pad: '' };
    const overhead = Buffer.byteLength(JSON.stringify(base));
    return JSON.stringify({ ...base, pad: 'a'.repeat(size - overhead) });
  };

  it('a Content-Length body over 64 KiB is 413', async () => {
    const body = invite(64 * 1024 + 1);
    const res = await send(t, 'POST', '/v1/workspaces/acme/invites', { as: 'alice', headers: [['Content-Type', 'application/json']], body });
    expectRefused(res, 413, 'payload_too_large');
    expect(decisionOf(res)).toMatchObject({ result: 'deny', code: 'payload_too_large' });
  });

  it('a chunked body over 64 KiB is 413', async () => {
    const body = invite(70 * 1024);
    const res = await send(t, 'POST', '/v1/workspaces/acme/invites', { as: 'alice', headers: [['Content-Type', 'application/json']], body, chunked: 4096 });
    expectRefused(res, 413, 'payload_too_large');
  });

  it('a huge declared Content-Length is refused without reading it', async () => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/invites', {
      as: 'alice',
      headers: [['Content-Type', 'application/json'], ['Content-Length', String(50 * 1024 * 1024)]],
      body: '{"role":"developer"',
    });
    expectRefused(res, 413, 'payload_too_large');
  });

  it('exactly 64 KiB is accepted by the body limit (the decision goes on)', async () => {
    const body = invite(64 * 1024);
    expect(Buffer.byteLength(body)).toBe(64 * 1024);
    const res = await send(t, 'POST', '/v1/workspaces/acme/invites', { as: 'alice', headers: [['Content-Type', 'application/json']], body });
    expect(res.status).not.toBe(413);
    expect(decisionOf(res)).toMatchObject({ result: 'allow', action: 'member:invite', target_role: 'developer' });
  });
});
