/**
 * The decision log (CONTRACT §7): one JSON line per decision with the contract's
 * fields, and no secret ever in it or in the operational log.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, basicAuth, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { signUserJwt, userJwt } from '../helpers/jwt.ts';
import { headerValues } from '../helpers/upstream.ts';
import { decisionOf, expectForwardedOnce, send } from '../security/support.ts';

const FIELDS = [
  'time',
  'decision_id',
  'request_id',
  'principal',
  'method',
  'path',
  'route',
  'action',
  'workspace',
  'project',
  'roles',
  'result',
  'code',
  'policy_revision',
  'mode',
  'duration_us',
] as const;

let t: TestGateway;
beforeAll(async () => {
  t = await startTestGateway({ world: ACME });
});
afterAll(async () => {
  await t?.close();
});

/** A fresh secret-looking invite token (base64url, as link tokens are). */
const inviteToken = (): string => randomBytes(24).toString('base64url').replace(/^[-_]/, 'x');

function everythingLogged(g: TestGateway = t): string {
  return JSON.stringify(g.decisions) + '\n' + g.logs.join('\n');
}

describe('one line per decision, with the contract fields', () => {
  it('an allow, forwarded', async () => {
    const res = await send(t, 'GET', '/v1/workspaces/acme/projects/web/licences', { as: 'dave', headers: [['X-Request-Id', 'log-allow-1']] });
    expect(res.status).toBe(200);
    const d = decisionOf(res);
    for (const f of FIELDS) expect(d, f).toHaveProperty(f);
    expect(d).toMatchObject({
      request_id: 'log-allow-1',
      principal: 'user:dave',
      method: 'GET',
      path: '/v1/workspaces/acme/projects/web/licences',
      route: 'GET /v1/workspaces/{ws}/projects/{p}/licences',
      action: 'licence:list',
      workspace: 'acme',
      project: 'web',
      roles: ['developer'],
      result: 'allow',
      code: 'ok',
      policy_revision: t.gw.policy.current.revision,
      mode: 'enforce',
    });
    expect(new Date(d.time).toISOString()).toBe(d.time);
    expect(d.decision_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number.isInteger(d.duration_us) && d.duration_us >= 0).toBe(true);
    expect(headerValues(expectForwardedOnce(res), 'x-packagento-decision-id')).toEqual([d.decision_id]);
  });

  it('a deny (403) names the action and the roles in the log, not in the response', async () => {
    const res = await send(t, 'POST', '/v1/workspaces/acme/licences/l1/refund-requests', { as: 'vic', headers: [['Content-Type', 'application/json']], body: '{}' });
    expect(res.status).toBe(403);
    const d = decisionOf(res);
    expect(d).toMatchObject({ result: 'deny', code: 'forbidden', action: 'licence:refund', roles: ['viewer'], principal: 'user:vic' });
    expect(res.json().decision_id).toBe(d.decision_id);
    expect(res.upstream()).toHaveLength(0);
  });

  it('a 404 visibility deny, a 401, a bad path and a 405 are each logged once', async () => {
    const cases = [
      { res: await send(t, 'GET', '/v1/workspaces/globex/licences', { as: 'vic' }), code: 'not_found', principal: 'user:vic' },
      { res: await send(t, 'GET', '/v1/workspaces/acme/licences'), code: 'unauthenticated', principal: 'anonymous' },
      { res: await send(t, 'GET', '/v1/workspaces/acme/%2e%2e/globex', { as: 'vic' }), code: 'bad_path', principal: 'anonymous' },
      { res: await send(t, 'DELETE', '/v1/workspaces/acme/licences', { as: 'vic' }), code: 'method_not_allowed', principal: 'anonymous' },
    ];
    for (const { res, code, principal } of cases) {
      const d = decisionOf(res);
      expect(d).toMatchObject({ result: 'deny', code, principal, status: res.status });
      for (const f of FIELDS) expect(d, `${code}: ${f}`).toHaveProperty(f);
    }
  });

  it('a project token decision records the token, its workspace and project', async () => {
    const res = await send(t, 'GET', '/repo/p2/acme/widget.json', { as: 't2' });
    expect(decisionOf(res)).toMatchObject({
      principal: 'token:t2',
      workspace: 'acme',
      project: 'api',
      roles: ['token'],
      action: 'package:install',
      route: 'GET /repo/{path*}',
      result: 'allow',
    });
  });

  it('N requests make exactly N lines, one per request id; operations endpoints make none', async () => {
    const ids = Array.from({ length: 8 }, (_, i) => `count-${i}-${Date.now()}`);
    await Promise.all(ids.map((id, i) => send(t, 'GET', i % 2 ? '/v1/workspaces/acme/licences' : '/v1/workspaces/globex/licences', { as: 'vic', headers: [['X-Request-Id', id]] })));
    for (const id of ids) expect(t.decisions.filter((d) => d.request_id === id), id).toHaveLength(1);
    const health = await send(t, 'GET', '/_gate/healthz', { headers: [['X-Request-Id', `health-${ids[0]}`]] });
    expect(health.status).toBe(200);
    expect(t.decisions.filter((d) => d.request_id === `health-${ids[0]}`)).toHaveLength(0);
  });

  it('the query string is not logged', async () => {
    const secret = `q${randomBytes(12).toString('hex')}`;
    const res = await send(t, 'GET', `/v1/workspaces/acme/licences?signature=${secret}`, { as: 'vic' });
    expect(res.status).toBe(200);
    expect(decisionOf(res).path).toBe('/v1/workspaces/acme/licences');
    expect(everythingLogged()).not.toContain(secret);
  });
});

describe('invite link tokens are redacted', () => {
  it.each<[string, string, (token: string) => string, string | undefined]>([
    ['preview', 'GET', (k) => `/v1/invites/${k}`, undefined],
    ['preview with a query', 'GET', (k) => `/v1/invites/${k}?utm_source=mail`, undefined],
    ['preview, HEAD', 'HEAD', (k) => `/v1/invites/${k}`, undefined],
    ['accept', 'POST', (k) => `/v1/invites/${k}/accept`, 'carol'],
    ['accept, over-encoded first character', 'POST', (k) => `/v1/invites/%${k.charCodeAt(0).toString(16)}${k.slice(1)}/accept`, 'carol'],
    ['an unknown sub-route', 'GET', (k) => `/v1/invites/${k}/details`, undefined],
    ['a trailing slash', 'GET', (k) => `/v1/invites/${k}/`, undefined],
    ['a refused path', 'GET', (k) => `/v1/invites/${k};jsessionid=1`, undefined],
    ['a refused escape after the token', 'GET', (k) => `/v1/invites/${k}%2F..`, undefined],
  ])('%s', async (_name, method, path, as) => {
    const token = inviteToken();
    const res = await send(t, method, path(token), { ...(as ? { as } : {}) });
    expect(res.upstream()).toHaveLength(0);
    const d = decisionOf(res);
    expect(d.path).toMatch(/^\/v1\/invites\/\[redacted\]/);
    expect(everythingLogged()).not.toContain(token);
    expect(everythingLogged()).not.toContain(token.slice(1));
  });

  // Regression: a path refused by hygiene is logged from the raw target; the invite token must
  // be redacted wherever the "invites" segment sits.
  it('an invite token in a path refused for an empty segment is redacted', async () => {
    const token = inviteToken();
    const res = await send(t, 'GET', `//v1/invites/${token}`);
    expect(res.status).toBe(400);
    expect(everythingLogged()).not.toContain(token);
  });
});

describe('no credential ever reaches a log line', () => {
  it('JWTs, Basic pairs and private keys, valid or not', async () => {
    const g = await startTestGateway({ world: ACME });
    try {
      const good = await userJwt('alice');
      const expired = await signUserJwt('alice', { expSeconds: -3600 });
      const forged = await signUserJwt('alice', { secret: 'x'.repeat(40) });
      const t1 = g.seeded.tokens.get('t1')!;
      const dead = g.seeded.tokens.get('tdead')!;
      const badChecksum = t1.privateKey.slice(0, -1) + (t1.privateKey.endsWith('a') ? 'b' : 'a');
      const basic = basicAuth(t1.publicKey, t1.privateKey);
      await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${good}` });
      await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${expired}` });
      await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${forged}` });
      await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${good}, Bearer ${forged}` });
      await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: basic });
      await send(g, 'GET', '/repo/packages.json', { authorization: basic });
      await send(g, 'GET', '/repo/packages.json', { authorization: basicAuth(t1.publicKey, badChecksum) });
      await send(g, 'GET', '/repo/packages.json', { authorization: basicAuth(dead.publicKey, dead.privateKey) });
      await send(g, 'GET', '/repo/packages.json', { authorization: `Bearer ${t1.privateKey}` });
      // And with the decision path failing, so the error log is written too.
      g.gw.db.close();
      const failed = await send(g, 'GET', '/repo/packages.json', { authorization: basic });
      expect(failed.status).toBe(503);
      await send(g, 'GET', '/v1/workspaces/acme/licences', { authorization: `Bearer ${good}` });

      const logged = everythingLogged(g);
      expect(g.decisions.length).toBeGreaterThanOrEqual(9);
      expect(g.logs.some((l) => l.includes('decision failed'))).toBe(true);
      for (const secret of [good, expired, forged, good.split('.')[2]!, forged.split('.')[2]!, basic.slice(6), t1.privateKey, badChecksum, dead.privateKey]) {
        expect(logged).not.toContain(secret);
      }
      expect(logged).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
      expect(logged).not.toMatch(/sk_[0-9A-Za-z]{20,}/);
      expect(logged).not.toMatch(/Bearer |Basic /);
    } finally {
      await g.close();
    }
  });
});
