/**
 * Header hygiene on forwarding (CONTRACT §4): the upstream trusts the gateway's
 * identity headers, so nothing a caller sends may look like one, credentials never
 * leave the gateway, hop-by-hop and Connection-nominated headers are dropped, and
 * X-Forwarded-* are the gateway's own. Every assertion is on what the upstream received.
 */
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { headerValues, type Received } from '../helpers/upstream.ts';
import { decisionOf, expectForwardedOnce, expectRefused, identityOf, MARK, send } from './support.ts';

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
});
afterAll(async () => {
  await t?.close();
});

const SPOOFED: [string, string][] = [
  ['X-Packagento-Principal', 'user:alice'],
  ['x-packagento-roles', 'owner'],
  ['X-PACKAGENTO-ACTION', 'licence:refund'],
  ['X_Packagento_Principal', 'user:alice-underscore'],
  ['x.packagento.roles', 'owner-dot'],
  ['X_PACKAGENTO_ROLES', 'owner-upper-underscore'],
  ['x-packagento_workspace', 'globex-mixed'],
  ['X-Packagento-Workspace', 'globex'],
  ['X-Packagento-Project', 'shop'],
  ['X-Packagento-Decision-Id', 'forged-decision'],
  ['X-Packagento-Policy-Revision', 'forged-revision'],
  ['X-Packagento-Shadow-Decision', 'allow'],
  ['X-Packagento-Anything-Else', 'forged-extra'],
];

/** Every raw header value the upstream received, for "this value is nowhere" checks. */
function allValues(r: Received): string[] {
  return r.rawHeaders.filter((_, i) => i % 2 === 1);
}

const GATEWAY_IDENTITY = [
  'x-packagento-action',
  'x-packagento-decision-id',
  'x-packagento-policy-revision',
  'x-packagento-principal',
  'x-packagento-roles',
  'x-packagento-workspace',
];

describe('incoming x-packagento-* headers never reach the upstream', () => {
  it('on a user route: only the gateway identity arrives, one value each', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: SPOOFED });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    const id = identityOf(got);
    expect(Object.keys(id).sort()).toEqual(GATEWAY_IDENTITY);
    const decision = decisionOf(res);
    expect(id).toEqual({
      'x-packagento-principal': ['user:vic'],
      'x-packagento-roles': ['viewer'],
      'x-packagento-workspace': ['acme'],
      'x-packagento-action': ['licence:list'],
      'x-packagento-decision-id': [decision.decision_id],
      'x-packagento-policy-revision': [t.gw.policy.current.revision],
    });
    for (const [, value] of SPOOFED) expect(allValues(got)).not.toContain(value);
    // The spoofed names themselves are gone, whatever their spelling.
    const names = got.rawHeaders.filter((_, i) => i % 2 === 0);
    for (const [name] of SPOOFED) if (name !== name.toLowerCase() || /[_.]/.test(name)) expect(names).not.toContain(name);
  });

  it('on a project route: the project header is the route project, not the spoofed one', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/projects/web/licences', { as: 'gina', headers: SPOOFED });
    expect(res.status).toBe(200);
    const id = identityOf(expectForwardedOnce(res));
    expect(id['x-packagento-project']).toEqual(['web']);
    expect(id['x-packagento-workspace']).toEqual(['acme']);
    expect(id['x-packagento-roles']).toEqual(['guest:developer']);
    expect(id['x-packagento-principal']).toEqual(['user:gina']);
  });

  it('on /repo with a project token', async () => {
    const res = await send(t, 'GET', '/repo/packages.json', { as: 't1', headers: SPOOFED });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    const id = identityOf(got);
    expect(id['x-packagento-principal']).toEqual(['token:t1']);
    expect(id['x-packagento-roles']).toEqual(['token']);
    expect(id['x-packagento-project']).toEqual(['web']);
    for (const [, value] of SPOOFED) expect(allValues(got)).not.toContain(value);
  });

  it('a spoofed identity does not change the decision (viewer claiming owner via headers gets 403)', async () => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
      as: 'vic',
      headers: [...SPOOFED, ['Content-Type', 'application/json']],
      body: '{}',
    });
    expectRefused(res, 403, 'forbidden');
  });

  it('naming gateway headers in Connection cannot strip the gateway identity', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', {
      as: 'vic',
      headers: [['Connection', 'x-packagento-principal, x-packagento-roles, x-forwarded-for, x-request-id, host']],
    });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(headerValues(got, 'x-packagento-principal')).toEqual(['user:vic']);
    expect(headerValues(got, 'x-packagento-roles')).toEqual(['viewer']);
    expect(headerValues(got, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(headerValues(got, 'x-request-id')).toHaveLength(1);
    expect(headerValues(got, 'host')).toEqual([new URL(t.upstream.url).host]);
  });
});

describe('credentials are never forwarded', () => {
  it('a Bearer JWT stays at the gateway', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: [['Proxy-Authorization', 'Basic Zm9vOmJhcg==']] });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(headerValues(got, 'authorization')).toEqual([]);
    expect(headerValues(got, 'proxy-authorization')).toEqual([]);
    expect(allValues(got).some((v) => v.startsWith('Bearer ') || v.includes('eyJ'))).toBe(false);
  });

  it('project token keys stay at the gateway', async () => {
    const res = await send(t, 'GET', '/repo/packages.json', { as: 't1' });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    const { publicKey, privateKey } = t.seeded.tokens.get('t1')!;
    expect(headerValues(got, 'authorization')).toEqual([]);
    const everything = got.rawHeaders.join('\n') + got.url;
    expect(everything).not.toContain(privateKey);
    expect(everything).not.toContain(publicKey);
    expect(everything).not.toContain(Buffer.from(`${publicKey}:${privateKey}`).toString('base64'));
  });
});

describe('hop-by-hop and Connection-nominated headers are dropped', () => {
  it('standard hop-by-hop headers', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', {
      as: 'vic',
      headers: [
        ['Keep-Alive', 'timeout=5, max=100'],
        ['TE', 'trailers'],
        ['Trailer', 'X-Checksum'],
        ['Upgrade', 'h2c'],
        ['Proxy-Connection', 'keep-alive'],
        ['X-Ordinary', 'kept'],
      ],
    });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    for (const name of ['keep-alive', 'te', 'trailer', 'upgrade', 'proxy-connection']) expect(headerValues(got, name), name).toEqual([]);
    expect(headerValues(got, 'x-ordinary')).toEqual(['kept']);
    // The caller's Connection header itself is not forwarded (Node's agent sets its own).
    expect(headerValues(got, 'connection').join(',')).not.toMatch(/close|x-/i);
  });

  it('headers named in Connection are dropped, in any spelling', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', {
      as: 'vic',
      headers: [
        ['Connection', 'X-Secret-One, x_secret_two'],
        ['Connection', 'keep-alive, X.Secret.Three'],
        ['X-Secret-One', '1'],
        ['X-Secret-Two', '2'],
        ['x-secret-three', '3'],
        ['X-Not-Named', 'kept'],
      ],
    });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(headerValues(got, 'x-secret-one')).toEqual([]);
    expect(headerValues(got, 'x-secret-two')).toEqual([]);
    expect(headerValues(got, 'x-secret-three')).toEqual([]);
    expect(headerValues(got, 'x-not-named')).toEqual(['kept']);
  });
});

describe('X-Forwarded-* are set by the gateway, never trusted from the caller', () => {
  it('caller values are absent; the gateway values are present once', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', {
      as: 'vic',
      headers: [
        ['X-Forwarded-For', '6.6.6.6'],
        ['X-Forwarded-For', '7.7.7.7'],
        ['X_Forwarded_For', '8.8.8.8'],
        ['X-Forwarded-Proto', 'https'],
        ['X-Forwarded-Host', 'evil.example'],
        ['X-Forwarded-Port', '443'],
        ['X-Forwarded-Prefix', '/admin'],
        ['Forwarded', 'for=6.6.6.6;proto=https;host=evil.example'],
        ['X-Real-IP', '6.6.6.6'],
      ],
    });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(headerValues(got, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(headerValues(got, 'x-forwarded-proto')).toEqual(['http']);
    expect(headerValues(got, 'x-forwarded-host')).toEqual([`127.0.0.1:${t.gw.port}`]);
    for (const name of ['forwarded', 'x-real-ip', 'x-forwarded-port', 'x-forwarded-prefix', 'x_forwarded_for']) expect(headerValues(got, name), name).toEqual([]);
    for (const v of ['6.6.6.6', '7.7.7.7', '8.8.8.8', 'evil.example', 'https', '/admin']) expect(allValues(got).join('\n')).not.toContain(v);
  });

  it('the Host sent upstream is the upstream host', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', { as: 'vic' });
    expect(headerValues(expectForwardedOnce(res), 'host')).toEqual([new URL(t.upstream.url).host]);
  });
});

describe('ordinary headers are forwarded as sent', () => {
  it('duplicates stay separate lines, in order, never joined', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/licences', {
      as: 'vic',
      headers: [
        ['X-Custom', 'a'],
        ['Accept', 'application/json'],
        ['X-Custom', 'b, c'],
        ['Accept', 'text/html'],
        ['Cookie', 'a=1'],
        ['Cookie', 'b=2'],
        ['X-Custom', 'd'],
      ],
    });
    expect(res.status).toBe(200);
    const got = expectForwardedOnce(res);
    expect(headerValues(got, 'x-custom')).toEqual(['a', 'b, c', 'd']);
    expect(headerValues(got, 'accept')).toEqual(['application/json', 'text/html']);
    expect(headerValues(got, 'cookie')).toEqual(['a=1', 'b=2']);
  });

  it('header name case is preserved and User-Agent / If-None-Match pass through', async () => {
    const res = await send(t, 'GET', '/repo/packages.json', {
      as: 't1',
      headers: [['User-Agent', 'Composer/2.7.1'], ['If-None-Match', '"abc"'], ['X-MiXeD-CaSe', 'v']],
    });
    const got = expectForwardedOnce(res);
    expect(headerValues(got, 'user-agent')).toEqual(['Composer/2.7.1']);
    expect(headerValues(got, 'if-none-match')).toEqual(['"abc"']);
    expect(got.rawHeaders).toContain('X-MiXeD-CaSe');
  });
});

describe('request framing cannot smuggle a second request', () => {
  it('Content-Length together with Transfer-Encoding is refused and nothing is forwarded', async () => {
    const smuggled = `0\r\n\r\nGET /v1/workspaces/globex/licences HTTP/1.1\r\nHost: x\r\n${MARK}: smuggled\r\n\r\n`;
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
      as: 'alice',
      headers: [['Content-Type', 'application/json'], ['Content-Length', '4'], ['Transfer-Encoding', 'chunked']],
      body: smuggled,
    });
    expect(res.status).toBe(400);
    expect(res.upstream()).toHaveLength(0);
    expect(t.upstream.received.filter((r) => r.headers[MARK] === 'smuggled' || r.url.includes('globex'))).toHaveLength(0);
  });

  it('two different Content-Length values are refused and nothing is forwarded', async () => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
      as: 'alice',
      headers: [['Content-Type', 'application/json'], ['Content-Length', '2'], ['Content-Length', '30']],
      body: '{}',
    });
    expect(res.status).toBe(400);
    expect(res.upstream()).toHaveLength(0);
  });

  it('request trailers are not forwarded (a trailer cannot add an identity header)', async () => {
    const trailers: Record<string, string[]> = {};
    const original = t.upstream.respond;
    t.upstream.respond = (req: IncomingMessage, res, body) => {
      trailers[String(req.headers[MARK])] = req.rawTrailers;
      original(req, res, body);
    };
    try {
      const body = '4\r\n{"a"\r\n3\r\n:1}\r\n0\r\nX-Packagento-Principal: user:alice\r\nX-Packagento-Roles: owner\r\n\r\n';
      const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', {
        as: 'bill',
        headers: [['Content-Type', 'application/json'], ['Transfer-Encoding', 'chunked'], ['Trailer', 'X-Packagento-Principal, X-Packagento-Roles']],
        body,
      });
      expect(res.status).toBe(200);
      const got = expectForwardedOnce(res);
      expect(got.body.toString()).toBe('{"a":1}');
      expect(trailers[res.mark] ?? []).toEqual([]);
      expect(identityOf(got)['x-packagento-principal']).toEqual(['user:bill']);
    } finally {
      t.upstream.respond = original;
    }
  });
});
