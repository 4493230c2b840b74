import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, basicAuth, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { userJwt } from '../helpers/jwt.ts';
import { startCaddy, startNginx, type ProxyPorts, type RunningProxy } from '../helpers/proxies.ts';
import { rawRequest, type RawResponse } from '../helpers/raw-http.ts';
import type { Received } from '../helpers/upstream.ts';

/**
 * The real nginx (auth_request) and Caddy (forward_auth) from Debian's packages, started with
 * the very files docs/forward-auth/ shows, in front of a recording upstream, with Gate's
 * forward-auth listener deciding. What the upstream received is the evidence.
 */

/** Header names compared as the gateway compares them (lower case, `_` and `.` as `-`). */
const norm = (name: string) => name.toLowerCase().replace(/[_.]/g, '-');
function identityOf(r: Received): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) {
    if (norm(r.rawHeaders[i]!).startsWith('x-packagento-')) out.push([norm(r.rawHeaders[i]!), r.rawHeaders[i + 1]!]);
  }
  return out;
}
const one = (r: Received, name: string) => identityOf(r).filter(([n]) => n === name).map(([, v]) => v);

const PROXIES: [string, (p: ProxyPorts) => Promise<RunningProxy>][] = [
  ['nginx', startNginx],
  ['caddy', startCaddy],
];

describe.each(PROXIES)('%s in front of the upstream, Gate deciding (docs/forward-auth)', (name, start) => {
  let gate: TestGateway;
  let proxy: RunningProxy;
  let seq = 0;

  beforeAll(async () => {
    gate = await startTestGateway({ world: structuredClone(ACME), env: { GATE_AUTHZ_PORT: '0' } });
    proxy = await start({ authzPort: gate.gw.authz!.port, upstreamPort: Number(new URL(gate.upstream.url).port) });
  });
  afterAll(async () => {
    await proxy?.close();
    await gate?.close();
  });

  /** One request through the proxy, exactly as written (header spellings kept), and what reached the upstream. */
  async function send(method: string, target: string, headers: [string, string][] = [], body?: string): Promise<{ res: RawResponse; got: Received[]; requestId: string }> {
    const requestId = `${name}-${++seq}`;
    const before = gate.upstream.received.length;
    const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', `X-Request-Id: ${requestId}`, ...headers.map(([k, v]) => `${k}: ${v}`)];
    if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
    lines.push('Connection: close');
    const res = await rawRequest(proxy.port, lines.join('\r\n') + '\r\n\r\n' + (body ?? ''), 10_000);
    // The upstream records a request when its body ends; the proxy answered after that.
    return { res, got: gate.upstream.received.slice(before), requestId };
  }
  const jwt = async (user: string): Promise<[string, string]> => ['Authorization', `Bearer ${await userJwt(user)}`];
  const decisionOf = (requestId: string) => gate.decisions.filter((d) => d['request_id'] === requestId);

  it('an allowed request arrives upstream with the gateway\'s identity headers, without the caller\'s credentials', async () => {
    const { res, got, requestId } = await send('GET', '/v1/workspaces/acme/licences?page=2', [await jwt('dave')]);
    expect(res.status, proxy.output()).toBe(200);
    expect(res.json()).toMatchObject({ upstream: true, url: '/v1/workspaces/acme/licences?page=2' });
    expect(got).toHaveLength(1);
    const r = got[0]!;
    expect(one(r, 'x-packagento-principal')).toEqual(['user:dave']);
    expect(one(r, 'x-packagento-workspace')).toEqual(['acme']);
    expect(one(r, 'x-packagento-roles')).toEqual(['developer']);
    expect(one(r, 'x-packagento-action')).toEqual(['licence:list']);
    expect(one(r, 'x-packagento-policy-revision')).toEqual([gate.gw.policy.current.revision]);
    expect(r.headers['authorization']).toBeUndefined();
    const [line] = decisionOf(requestId);
    expect(line).toMatchObject({ mode: 'forward-auth', result: 'allow', status: 200, action: 'licence:list' });
    expect(one(r, 'x-packagento-decision-id')).toEqual([line!['decision_id']]);
  });

  it('a body is forwarded to the upstream (the decision never needed it)', async () => {
    const { res, got } = await send('POST', '/v1/workspaces/acme/licences/l1/refund-requests', [await jwt('bill')], '{"reason":"duplicate"}');
    expect(res.status).toBe(200);
    expect(got).toHaveLength(1);
    expect(got[0]!.body.toString()).toBe('{"reason":"duplicate"}');
    expect(one(got[0]!, 'x-packagento-action')).toEqual(['licence:refund']);
  });

  it('a project token (HTTP Basic) installs from the Composer repository', async () => {
    const t = gate.seeded.tokens.get('t1')!;
    const { res, got } = await send('GET', '/repo/packages.json', [['Authorization', basicAuth(t.publicKey, t.privateKey)]]);
    expect(res.status).toBe(200);
    expect(one(got[0]!, 'x-packagento-principal')[0]).toMatch(/^token:/);
    expect(one(got[0]!, 'x-packagento-project')).toEqual(['web']);
  });

  describe('denied requests never reach the upstream, and the client gets the gateway\'s status', () => {
    const cases: [string, string, string, string | undefined, number, string][] = [
      ['no credentials', 'GET', '/v1/workspaces/acme/licences', undefined, 401, 'unauthenticated'],
      ['no role for the action', 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', 'dave', 403, 'forbidden'],
      ['no role in the workspace', 'GET', '/v1/workspaces/acme/licences', 'gwen', 404, 'not_found'],
      ['an unknown route', 'GET', '/v1/workspaces/acme/secrets', 'alice', 404, 'not_found'],
      ['a path trick (encoded dot segment)', 'GET', '/v1/workspaces/globex/%2e%2e/acme/licences', 'dave', 400, 'bad_path'],
      ['a path trick (encoded slash)', 'GET', '/v1/workspaces/acme%2Flicences', 'dave', 400, 'bad_path'],
      ['a method the route does not list', 'DELETE', '/v1/workspaces/acme/licences', 'alice', 405, 'method_not_allowed'],
    ];
    it.each(cases)('%s → %s %s', async (_label, method, target, user, status, code) => {
      const { res, got, requestId } = await send(method, target, user ? [await jwt(user)] : []);
      expect(got).toEqual([]);
      expect(res.status, proxy.output()).toBe(status);
      expect(res.headers['content-type']).toBe('application/problem+json');
      expect(res.json()).toMatchObject({ status, code });
      if (status === 401) expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
      if (status === 405) expect(res.headers['allow']).toBeTruthy();
      expect(decisionOf(requestId)).toEqual([expect.objectContaining({ mode: 'forward-auth', result: 'deny', code, status })]);
    });

    it('a raw dot segment never gets past the proxy with a decision it did not match', async () => {
      const { res, got } = await send('GET', '/v1/workspaces/globex/../acme/licences', [await jwt('dave')]);
      expect(got).toEqual([]);
      expect(res.status).toBe(400);
    });
  });

  it('a caller\'s own X-Packagento-* headers, in any spelling the proxy passes, never reach the upstream', async () => {
    const spellings: [string, string][] = [
      ['X-Packagento-Principal', 'user:alice'],
      ['x-packagento-roles', 'owner'],
      ['X-PACKAGENTO-WORKSPACE', 'globex'],
      ['X_Packagento_Principal', 'user:alice'],
      ['x_packagento_roles', 'owner'],
      ['X.Packagento.Roles', 'owner'],
      ['X-Packagento-Admin', 'true'],
      ['x-packagento_decision-id', 'forged'],
    ];
    const dave = await jwt('dave');
    const outcomes: string[] = [];
    for (const [header, value] of spellings) {
      const { res, got } = await send('GET', '/v1/workspaces/acme/licences', [dave, [header, value]]);
      if (got.length === 0) {
        // nginx cannot remove headers by prefix: the auth subrequest carries it to Gate, which refuses.
        expect(res.status, header).toBe(400);
        outcomes.push(`${header}: refused`);
        continue;
      }
      expect(res.status, header).toBe(200);
      const seen = identityOf(got[0]!);
      expect(seen.filter(([, v]) => v === value), header).toEqual([]);
      expect(one(got[0]!, 'x-packagento-principal'), header).toEqual(['user:dave']);
      expect(one(got[0]!, 'x-packagento-roles'), header).toEqual(['developer']);
      expect(seen.map(([n]) => n).filter((n) => n === 'x-packagento-admin'), header).toEqual([]);
      outcomes.push(`${header}: stripped`);
    }
    // Each proxy's documented way of keeping them out (docs/forward-auth).
    if (name === 'caddy') expect(outcomes.every((o) => o.endsWith('stripped'))).toBe(true);
    if (name === 'nginx') {
      expect(outcomes).toContain('X-Packagento-Principal: refused');
      expect(outcomes).toContain('X_Packagento_Principal: stripped');
      expect(outcomes).toContain('X.Packagento.Roles: stripped');
    }
  });

  it('a caller cannot steer the decision with a forward-auth header of its own', async () => {
    const bill = await jwt('bill');
    for (const extra of [
      ['X-Original-URI', '/v1/workspaces/acme/licences'],
      ['X-Forwarded-Uri', '/v1/workspaces/acme/licences'],
      ['X-Original-Method', 'GET'],
    ] as [string, string][]) {
      // bill has no role in globex: whatever the caller claims, the proxy's own pair decides.
      const { res, got } = await send('GET', '/v1/workspaces/globex/licences', [bill, extra]);
      expect(got, extra[0]).toEqual([]);
      expect([400, 404], extra[0]).toContain(res.status);
    }
  });

  it('a removal is honoured on the very next request', async () => {
    expect((await send('GET', '/v1/workspaces/acme/licences', [await jwt('vic')])).res.status).toBe(200);
    const removed = await fetch(`${gate.gw.url}/v1/workspaces/acme/members/vic`, { method: 'DELETE', headers: { authorization: `Bearer ${await userJwt('alice')}` } });
    expect(removed.status).toBe(200);
    const { res, got } = await send('GET', '/v1/workspaces/acme/licences', [await jwt('vic')]);
    expect(got).toEqual([]);
    expect(res.status).toBe(404);
  });

  it('the proxy runs the file docs/forward-auth shows, with only the loopback ports replaced', () => {
    expect(proxy.config).toContain(`127.0.0.1:${gate.gw.authz!.port}`);
    expect(proxy.config).not.toMatch(/127\.0\.0\.1:(8000|9191|9292)\b/);
  });
});
