import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway, type TestGateway } from '../helpers/gateway.ts';
import { KNOWN_DEFAULT_METRIC_LINT, promtoolCheck } from '../helpers/promtool.ts';

/** The value of one sample line (`name{labels} value`), 0 when absent. */
function sample(text: string, line: string): number {
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  return found ? Number(found.slice(line.length + 1)) : 0;
}

const scrape = async (t: TestGateway) => {
  const res = await fetch(`${t.gw.url}/_gate/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  return res.text();
};

describe('/_gate/metrics', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ world: ACME });
  });
  afterAll(() => t.close());

  it('counters move with requests; a scrape taken under load passes promtool', async () => {
    const LIC = 'GET /v1/workspaces/{ws}/licences';
    const before = await scrape(t);
    const allowLine = `gate_requests_total{route="${LIC}",action="licence:list",result="allow",status="200"}`;
    const denyLine = `gate_requests_total{route="${LIC}",action="licence:list",result="deny",status="401"}`;
    const base = { allow: sample(before, allowLine), deny: sample(before, denyLine), decisions: sample(before, 'gate_decision_duration_seconds_count') };
    const upstreamBefore = sample(before, 'gate_upstream_duration_seconds_count');

    // 40 requests in flight while the metrics are scraped.
    const load = [
      ...Array.from({ length: 20 }, () => t.request('GET', '/v1/workspaces/acme/licences', { as: 'vic' })),
      ...Array.from({ length: 10 }, () => t.request('GET', '/v1/workspaces/acme/licences')),
      ...Array.from({ length: 10 }, () => t.request('GET', '/v1/workspaces/acme', { as: 'bob' })),
    ];
    const during = await scrape(t);
    const statuses = (await Promise.all(load)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(30);
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);

    const r = promtoolCheck(during);
    expect([0, 3]).toContain(r.status);
    for (const p of r.problems) expect(KNOWN_DEFAULT_METRIC_LINT).toContain(p);

    const after = await scrape(t);
    expect(sample(after, allowLine) - base.allow).toBe(20);
    expect(sample(after, denyLine) - base.deny).toBe(10);
    expect(sample(after, 'gate_requests_total{route="GET /v1/workspaces/{ws}",action="workspace:read",result="allow",status="200"}')).toBeGreaterThanOrEqual(10);
    expect(sample(after, 'gate_decision_duration_seconds_count') - base.decisions).toBe(40);
    expect(sample(after, 'gate_upstream_duration_seconds_count') - upstreamBefore).toBe(20);
    expect(after).toContain(`gate_policy_info{revision="${t.gw.policy.current.revision}"} 1`);
    // No raw path or user id ever becomes a label.
    expect(after).not.toMatch(/route="\/v1|acme"|vic/);
    expect(promtoolCheck(after).problems.filter((p) => !KNOWN_DEFAULT_METRIC_LINT.includes(p))).toEqual([]);
  });

  it('a SIGHUP-style reload with nothing changed is counted and logged', async () => {
    const before = sample(await scrape(t), 'gate_policy_reloads_total{result="unchanged"}');
    await t.gw.policy.reload();
    expect(sample(await scrape(t), 'gate_policy_reloads_total{result="unchanged"}')).toBe(before + 1);
    const line = t.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'policy reload: no change');
    expect(line).toMatchObject({ level: 30, revision: t.gw.policy.current.revision });
  });

  it('is never forwarded, and needs no credentials', async () => {
    const n = t.upstream.received.length;
    expect((await fetch(`${t.gw.url}/_gate/metrics`)).status).toBe(200);
    expect(t.upstream.received.length).toBe(n);
  });
});

describe('trace context', () => {
  let t: TestGateway;
  beforeAll(async () => {
    t = await startTestGateway({ world: ACME });
  });
  afterAll(() => t.close());

  const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
  const PARENT = '00f067aa0ba902b7';

  it('continues the caller’s traceparent with the gateway’s own span id; the same trace id is in the decision line', async () => {
    const res = await t.request('GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=x' } });
    expect(res.status).toBe(200);
    const got = t.upstream.received.at(-1)!;
    const sent = got.rawHeaders.filter((_, i) => i % 2 === 0 && got.rawHeaders[i]!.toLowerCase() === 'traceparent');
    expect(sent).toHaveLength(1);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(got.headers['traceparent']));
    expect(m).not.toBeNull();
    expect(m![1]).toBe(TRACE);
    expect(m![2]).not.toBe(PARENT);
    expect(got.headers['tracestate']).toBe('vendor=x');
    const decision = t.decisions.find((d) => d.request_id === res.headers.get('x-request-id'));
    expect(decision?.trace_id).toBe(TRACE);
  });

  it('starts a new trace when traceparent is absent or invalid', async () => {
    for (const traceparent of [undefined, `00-${'0'.repeat(32)}-${PARENT}-01`, 'garbage', `ff-${TRACE}-${PARENT}-01`]) {
      const res = await t.request('GET', '/v1/workspaces/acme/licences', { as: 'vic', ...(traceparent ? { headers: { traceparent } } : {}) });
      const got = t.upstream.received.at(-1)!;
      const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(String(got.headers['traceparent']));
      expect(m).not.toBeNull();
      expect(m![1]).not.toBe(TRACE);
      expect(m![1]).not.toBe('0'.repeat(32));
      expect(t.decisions.find((d) => d.request_id === res.headers.get('x-request-id'))?.trace_id).toBe(m![1]);
    }
  });

  it('a failed upstream exchange is logged at warn with the trace id and counted by kind', async () => {
    // An upstream that is not there: a port taken and released.
    const dead = await new Promise<number>((ok) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => ok(port));
      });
    });
    const g = await startTestGateway({ world: ACME, env: { GATE_UPSTREAM_URL: `http://127.0.0.1:${dead}` } });
    try {
      const res = await g.request('GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: { traceparent: `00-${TRACE}-${PARENT}-01` } });
      expect(res.status).toBe(502);
      const warn = g.logs.map((l) => JSON.parse(l)).find((l) => l.msg === 'upstream request failed');
      expect(warn).toMatchObject({ level: 40, kind: 'connect', trace_id: TRACE, request_id: res.headers.get('x-request-id'), cause: expect.stringMatching(/ECONNREFUSED/) });
      const text = await (await fetch(`${g.gw.url}/_gate/metrics`)).text();
      expect(sample(text, 'gate_upstream_errors_total{kind="connect"}')).toBe(1);
      expect(sample(text, 'gate_requests_total{route="GET /v1/workspaces/{ws}/licences",action="licence:list",result="allow",status="502"}')).toBe(1);
    } finally {
      await g.close();
    }
  });
});
