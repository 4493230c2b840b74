import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { userJwt } from '../helpers/jwt.ts';
import { startEchoUpstream } from '../helpers/upstream.ts';

/**
 * The decision log tells what happened (CONTRACT §7): one line per request, written when
 * the exchange ends, with the status the client got (499 when it went away first), the
 * upstream's time, the trace id, and the mode.
 */
async function lineFor(gate: TestGateway, requestId: string, ms = 3000): Promise<Record<string, any>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const lines = gate.decisions.filter((d) => d['request_id'] === requestId);
    if (lines.length > 0) {
      expect(lines).toHaveLength(1);
      return lines[0]!;
    }
    if (Date.now() > deadline) throw new Error(`no decision line for ${requestId}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('decision log: the status the client got', () => {
  let gate: TestGateway;
  beforeAll(async () => {
    gate = await startTestGateway({ world: ACME });
  });
  afterAll(() => gate.close());

  it('a forwarded request: the upstream\'s status, and upstream_us', async () => {
    gate.upstream.respond = (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"error":"no such licence"}');
    };
    try {
      const res = await gate.request('GET', '/v1/workspaces/acme/licences', { as: 'dave', headers: { 'x-request-id': 'truth-404' } });
      expect(res.status).toBe(404);
      await res.text();
      const line = await lineFor(gate, 'truth-404');
      // No traceparent: the gateway starts a trace of its own (issue #11), so the line has its id.
      expect(line).toMatchObject({ result: 'allow', status: 404, mode: 'enforce', action: 'licence:list', trace_id: expect.stringMatching(/^[0-9a-f]{32}$/) });
      expect(line['upstream_us']).toBeGreaterThanOrEqual(0);
      expect(Object.keys(line)).toEqual([
        'time', 'decision_id', 'request_id', 'principal', 'method', 'path', 'route', 'action', 'target_role', 'workspace',
        'project', 'roles', 'result', 'code', 'status', 'policy_revision', 'mode', 'trace_id', 'duration_us', 'upstream_us',
      ]);
    } finally {
      gate.upstream.respond = (req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ upstream: true, method: req.method, url: req.url }));
      };
    }
  });

  it('the line of an allowed request is written when the exchange ends, not at the decision', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    gate.upstream.respond = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first ');
      void released.then(() => res.end('last'));
    };
    const res = await gate.request('GET', '/v1/workspaces/acme/licences', { as: 'dave', headers: { 'x-request-id': 'truth-slow' } });
    expect(res.status).toBe(200);
    await new Promise((r) => setTimeout(r, 100));
    expect(gate.decisions.filter((d) => d['request_id'] === 'truth-slow')).toEqual([]);
    release();
    expect(await res.text()).toBe('first last');
    expect(await lineFor(gate, 'truth-slow')).toMatchObject({ status: 200, result: 'allow' });
  });

  it('499 when the client went away before the answer', async () => {
    gate.upstream.respond = () => undefined; // never answers
    const ac = new AbortController();
    const pending = fetch(`${gate.gw.url}/v1/workspaces/acme/licences`, {
      headers: { authorization: `Bearer ${await userJwt('dave')}`, 'x-request-id': 'truth-gone' },
      signal: ac.signal,
    }).catch(() => undefined);
    await new Promise((r) => setTimeout(r, 150));
    ac.abort();
    await pending;
    expect(await lineFor(gate, 'truth-gone')).toMatchObject({ status: 499, result: 'allow' });
  });

  it('a deny line is written at once, with its status', async () => {
    const res = await gate.request('POST', '/v1/workspaces/acme/licences/l1/refund-requests', { as: 'dave', headers: { 'x-request-id': 'truth-403' } });
    expect(res.status).toBe(403);
    expect(gate.decisions.filter((d) => d['request_id'] === 'truth-403')).toMatchObject([{ status: 403, result: 'deny', code: 'forbidden', upstream_us: null }]);
  });

  it('a native answer: its own status and the target role the rank rule used', async () => {
    const res = await gate.request('POST', '/v1/workspaces/acme/invites', { as: 'bob', body: { email: 'new@example.com', role: 'developer' }, headers: { 'x-request-id': 'truth-201' } });
    expect(res.status).toBe(201);
    await res.text();
    expect(await lineFor(gate, 'truth-201')).toMatchObject({ status: 201, result: 'allow', target_role: 'developer', upstream_us: null });
    const again = await gate.request('POST', '/v1/workspaces/acme/invites', { as: 'bob', body: { email: 'new@example.com', role: 'developer' }, headers: { 'x-request-id': 'truth-409' } });
    expect(again.status).toBe(409);
    await again.text();
    expect(await lineFor(gate, 'truth-409')).toMatchObject({ status: 409, result: 'allow' });
  });

  it('trace_id comes from traceparent', async () => {
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await gate.request('GET', '/v1/workspaces/acme', { as: 'vic', headers: { traceparent: `00-${trace}-00f067aa0ba902b7-01`, 'x-request-id': 'truth-trace' } });
    expect(res.status).toBe(200);
    await res.text();
    expect((await lineFor(gate, 'truth-trace'))['trace_id']).toBe(trace);
  });
});

describe('decision log: a dead upstream', () => {
  it('a 502 is logged with "status":502', async () => {
    const dead = await startEchoUpstream();
    await dead.close();
    const gate = await startTestGateway({ world: ACME, upstream: dead });
    try {
      const res = await gate.request('GET', '/v1/workspaces/acme/licences', { as: 'dave', headers: { 'x-request-id': 'truth-502' } });
      expect(res.status).toBe(502);
      await res.text();
      const line = await lineFor(gate, 'truth-502');
      expect(line).toMatchObject({ status: 502, result: 'allow', action: 'licence:list' });
      expect(typeof line['upstream_us']).toBe('number');
    } finally {
      await gate.close();
    }
  });
});

