import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, ConfigError } from '../../src/config.ts';
import { ACME, basicAuth, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { userJwt } from '../helpers/jwt.ts';
import { rawRequest } from '../helpers/raw-http.ts';

/**
 * The forward-auth listener (CONTRACT §4b), asked directly the way nginx, Caddy, Traefik
 * and Envoy ask it. The recording upstream proves nothing is ever forwarded from here.
 */
const IDENTITY = [
  'x-packagento-principal',
  'x-packagento-workspace',
  'x-packagento-project',
  'x-packagento-roles',
  'x-packagento-action',
  'x-packagento-decision-id',
  'x-packagento-policy-revision',
  'x-packagento-shadow-decision',
  'x-request-id',
];

let gate: TestGateway;
let authz: string;

beforeAll(async () => {
  gate = await startTestGateway({ world: ACME, env: { GATE_AUTHZ_PORT: '0' } });
  authz = gate.gw.authz!.url;
});
afterAll(() => gate.close());

const bearer = async (user: string) => ({ authorization: `Bearer ${await userJwt(user)}` });
const ask = (headers: Record<string, string>, path = '/_gate/authz', method = 'GET') => fetch(authz + path, { method, headers });
const forwarded = (method: string, uri: string, extra: Record<string, string> = {}) => ({ 'x-forwarded-method': method, 'x-forwarded-uri': uri, ...extra });

describe('forward-auth: allow', () => {
  it('Traefik/Caddy style: 200, empty body, every identity header, nothing forwarded', async () => {
    const before = gate.upstream.received.length;
    const res = await ask(forwarded('GET', '/v1/workspaces/acme/licences', await bearer('dave')));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
    for (const name of IDENTITY) expect(res.headers.has(name), name).toBe(true);
    expect(res.headers.get('x-packagento-principal')).toBe('user:dave');
    expect(res.headers.get('x-packagento-workspace')).toBe('acme');
    expect(res.headers.get('x-packagento-project')).toBe('');
    expect(res.headers.get('x-packagento-roles')).toBe('developer');
    expect(res.headers.get('x-packagento-action')).toBe('licence:list');
    expect(res.headers.get('x-packagento-shadow-decision')).toBe('');
    expect(res.headers.get('x-packagento-policy-revision')).toBe(gate.gw.policy.current.revision);
    expect(gate.upstream.received.length).toBe(before);
    const line = gate.decisions.find((d) => d['decision_id'] === res.headers.get('x-packagento-decision-id'));
    expect(line).toMatchObject({ mode: 'forward-auth', result: 'allow', status: 200, action: 'licence:list', path: '/v1/workspaces/acme/licences', principal: 'user:dave' });
  });

  it('nginx style (X-Original-Method / X-Original-URI), and both pairs when they agree', async () => {
    const h = { 'x-original-method': 'GET', 'x-original-uri': '/v1/workspaces/acme/projects/web/licences?page=2', ...(await bearer('gina')) };
    const res = await ask(h);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-packagento-roles')).toBe('guest:developer');
    expect(res.headers.get('x-packagento-project')).toBe('web');
    const both = await ask({ ...h, 'x-forwarded-method': 'GET', 'x-forwarded-uri': h['x-original-uri'] });
    expect(both.status).toBe(200);
  });

  it('Envoy style: the original method on /_gate/authz/<path and query>', async () => {
    const res = await ask(await bearer('bill'), '/_gate/authz/v1/workspaces/acme/licences/l1/refund-requests?x=1', 'POST');
    expect(res.status).toBe(200);
    expect(res.headers.get('x-packagento-action')).toBe('licence:refund');
    const refused = await ask(await bearer('vic'), '/_gate/authz/v1/workspaces/acme/licences/l1/refund-requests', 'POST');
    expect(refused.status).toBe(403);
  });

  it('a project token on the Composer repository (HTTP Basic passed along)', async () => {
    const t = gate.seeded.tokens.get('t1')!;
    const res = await ask(forwarded('GET', '/repo/packages.json', { authorization: basicAuth(t.publicKey, t.privateKey) }));
    expect(res.status).toBe(200);
    expect(res.headers.get('x-packagento-principal')).toMatch(/^token:/);
    expect(res.headers.get('x-packagento-project')).toBe('web');
    expect(res.headers.get('x-packagento-action')).toBe('package:install');
  });
});

describe('forward-auth: deny with the status forwarding would give', () => {
  const cases: [string, () => Promise<Record<string, string>>, number, string][] = [
    ['no credentials', async () => forwarded('GET', '/v1/workspaces/acme/licences'), 401, 'unauthenticated'],
    ['no role for the action', async () => forwarded('POST', '/v1/workspaces/acme/licences/l1/refund-requests', await bearer('dave')), 403, 'forbidden'],
    ['no role in the workspace', async () => forwarded('GET', '/v1/workspaces/acme/licences', await bearer('gwen')), 404, 'not_found'],
    ['an unknown route', async () => forwarded('GET', '/v1/nothing-here', await bearer('dave')), 404, 'not_found'],
    ['a path trick in the original URI', async () => forwarded('GET', '/v1/workspaces/acme/%2e%2e/acme/licences', await bearer('dave')), 400, 'bad_path'],
    ['an encoded slash', async () => forwarded('GET', '/v1/workspaces/acme%2Flicences', await bearer('dave')), 400, 'bad_path'],
    ['a method the route does not list', async () => forwarded('DELETE', '/v1/workspaces/acme/licences', await bearer('alice')), 405, 'method_not_allowed'],
    ['a method override header of the caller', async () => forwarded('GET', '/v1/workspaces/acme/licences', { ...(await bearer('dave')), 'x-http-method-override': 'DELETE' }), 400, 'method_override'],
    ['a rank rule on the body (cannot be decided here)', async () => forwarded('POST', '/v1/workspaces/acme/invites', await bearer('alice')), 403, 'body_required'],
  ];
  it.each(cases)('%s', async (_name, headers, status, code) => {
    const before = gate.upstream.received.length;
    const res = await ask(await headers());
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const body = (await res.json()) as { code: string; status: number };
    expect(body.code).toBe(code);
    expect(JSON.parse(res.headers.get('x-gate-problem')!)).toEqual(body);
    for (const name of IDENTITY.slice(0, -1)) expect(res.headers.has(name), name).toBe(false);
    if (status === 401) expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    if (status === 405) expect(res.headers.get('allow')).toBeTruthy();
    expect(gate.upstream.received.length).toBe(before);
    const line = gate.decisions.find((d) => d['request_id'] === res.headers.get('x-request-id'));
    expect(line).toMatchObject({ mode: 'forward-auth', result: 'deny', code, status });
  });

  it('401 on /repo asks for Basic, as forwarding does', async () => {
    const res = await ask(forwarded('GET', '/repo/packages.json'));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="Packagento"');
  });
});

describe('forward-auth: what the listener trusts, and refuses', () => {
  it('refuses a request that does not name the original request, or names two', async () => {
    const dave = await bearer('dave');
    for (const headers of [
      dave,
      { ...dave, 'x-forwarded-method': 'GET' },
      { ...dave, 'x-original-uri': '/v1/workspaces/acme/licences' },
      // A caller's own X-Original-* pair beside the proxy's X-Forwarded-* pair.
      { ...forwarded('GET', '/v1/workspaces/acme/licences', dave), 'x-original-method': 'GET', 'x-original-uri': '/v1/workspaces/globex/licences' },
      forwarded('GET', 'http://elsewhere/v1/workspaces/acme/licences', dave),
    ]) {
      const res = await ask(headers);
      expect([400]).toContain(res.status);
    }
  });

  it('refuses a caller\'s x-packagento-* header in any spelling it sees (it cannot strip it from the proxy\'s request)', async () => {
    for (const name of ['X-Packagento-Principal', 'x_packagento_roles', 'X.Packagento.Workspace', 'x-packagento-anything']) {
      const res = await ask(forwarded('GET', '/v1/workspaces/acme/licences', { ...(await bearer('dave')), [name]: 'user:alice' }));
      expect(res.status, name).toBe(400);
      expect(res.headers.has('x-packagento-principal')).toBe(false);
    }
  });

  it('answers only /_gate/authz', async () => {
    const res = await ask(forwarded('GET', '/v1/workspaces/acme/licences', await bearer('dave')), '/v1/workspaces/acme/licences');
    expect(res.status).toBe(404);
  });

  it('is not reachable from the public port, and never forwards from there', async () => {
    const before = gate.upstream.received.length;
    const dave = await bearer('dave');
    for (const path of ['/_gate/authz', '/_gate/authz/v1/workspaces/acme/licences']) {
      const res = await fetch(gate.gw.url + path, { headers: forwarded('GET', '/v1/workspaces/acme/licences', dave) });
      expect(res.status, path).toBe(404);
      expect(res.headers.has('x-packagento-principal')).toBe(false);
    }
    expect(gate.upstream.received.length).toBe(before);
    expect(gate.gw.authz!.port).not.toBe(gate.gw.port);
  });

  it('keeps connections alive between decisions (a proxy reuses them)', async () => {
    const dave = (await bearer('dave')).authorization;
    const req = `GET /_gate/authz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Method: GET\r\nX-Forwarded-Uri: /v1/workspaces/acme/licences\r\nAuthorization: ${dave}\r\n\r\n`;
    const r = await rawRequest(gate.gw.authz!.port, req);
    expect(r.status).toBe(200);
    expect(r.headers['connection'] ?? 'keep-alive').toBe('keep-alive');
  });

  it('GATE_AUTHZ_PORT equal to GATE_PORT is refused at start, naming the variable', () => {
    expect(() => loadConfig({ GATE_PORT: '8080', GATE_AUTHZ_PORT: '8080' })).toThrow(ConfigError);
    expect(() => loadConfig({ GATE_PORT: '8080', GATE_AUTHZ_PORT: '8080' })).toThrow(/GATE_AUTHZ_PORT/);
    expect(loadConfig({ GATE_AUTHZ_PORT: '9191' })).toMatchObject({ authzPort: 9191, authzHost: '127.0.0.1' });
    expect(loadConfig({})).toMatchObject({ authzPort: undefined });
  });
});
