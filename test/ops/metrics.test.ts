import { describe, expect, it } from 'vitest';
import { createMetrics, MAX_ROUTE_LABELS } from '../../src/telemetry/metrics.ts';
import { KNOWN_DEFAULT_METRIC_LINT, promtoolCheck } from '../helpers/promtool.ts';

/** The sample lines of one metric family (no comments). */
const samples = (text: string, name: string) => text.split('\n').filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '));

function exercise(m: ReturnType<typeof createMetrics>) {
  m.request({ route: 'licences.list', action: 'licence:list', result: 'allow', status: 200 });
  m.request({ route: 'licences.list', action: 'licence:list', result: 'deny', status: 403 });
  m.request({ route: undefined, action: undefined, result: 'deny', status: 404 });
  m.decision(0.00003);
  m.upstream(0.012);
  m.upstreamError('timeout');
  m.policyReload('ok');
  m.policyInfo('0123456789abcdef');
  m.dbBusy();
  m.logDropped(3);
  m.outboxDelivery('webhook', 'delivered');
  m.outboxPending(() => 4);
}

describe('metrics', () => {
  it('the gate_* families pass promtool check metrics with no finding', async () => {
    const m = createMetrics({ processMetrics: false });
    exercise(m);
    const text = await m.render();
    expect(promtoolCheck(text)).toEqual({ status: 0, problems: [] });
  });

  it('a full scrape (with the default process metrics) parses; only prom-client’s known names are linted', async () => {
    const m = createMetrics();
    exercise(m);
    const text = await m.render();
    const r = promtoolCheck(text);
    expect(r.status === 0 || r.status === 3).toBe(true);
    for (const p of r.problems) expect(KNOWN_DEFAULT_METRIC_LINT).toContain(p);
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      expect(text).toContain(`# TYPE ${name} `);
    }
  });

  it('has the CONTRACT §8 names and labels, and counts what it is told', async () => {
    const m = createMetrics({ processMetrics: false });
    exercise(m);
    const text = await m.render();
    expect(samples(text, 'gate_requests_total')).toEqual([
      'gate_requests_total{route="licences.list",action="licence:list",result="allow",status="200"} 1',
      'gate_requests_total{route="licences.list",action="licence:list",result="deny",status="403"} 1',
      'gate_requests_total{route="none",action="none",result="deny",status="404"} 1',
    ]);
    expect(samples(text, 'gate_upstream_errors_total')).toContain('gate_upstream_errors_total{kind="timeout"} 1');
    expect(samples(text, 'gate_upstream_errors_total')).toContain('gate_upstream_errors_total{kind="connect"} 0');
    expect(samples(text, 'gate_policy_reloads_total')).toEqual([
      'gate_policy_reloads_total{result="ok"} 1',
      'gate_policy_reloads_total{result="rejected"} 0',
      'gate_policy_reloads_total{result="unchanged"} 0',
    ]);
    expect(samples(text, 'gate_policy_info')).toEqual(['gate_policy_info{revision="0123456789abcdef"} 1']);
    expect(samples(text, 'gate_db_busy_total')).toEqual(['gate_db_busy_total 1']);
    expect(samples(text, 'gate_decision_log_dropped_total')).toEqual(['gate_decision_log_dropped_total 3']);
    expect(samples(text, 'gate_outbox_pending')).toEqual(['gate_outbox_pending 4']);
    expect(samples(text, 'gate_outbox_deliveries_total')).toContain('gate_outbox_deliveries_total{channel="webhook",result="delivered"} 1');
    expect(samples(text, 'gate_outbox_deliveries_total')).toContain('gate_outbox_deliveries_total{channel="email",result="dead"} 0');
    expect(samples(text, 'gate_upstream_duration_seconds_count')).toEqual(['gate_upstream_duration_seconds_count 1']);
  });

  it('decision buckets tell 8 µs, 30 µs and 70 µs apart', async () => {
    const m = createMetrics({ processMetrics: false });
    m.decision(0.000008);
    m.decision(0.00003);
    m.decision(0.00007);
    const text = await m.render();
    const bucket = (le: string) => samples(text, 'gate_decision_duration_seconds_bucket').find((l) => l.includes(`le="${le}"`));
    expect(bucket('0.00001')).toMatch(/ 1$/);
    expect(bucket('0.000025')).toMatch(/ 1$/);
    expect(bucket('0.00005')).toMatch(/ 2$/);
    expect(bucket('0.0001')).toMatch(/ 3$/);
  });

  it('labels stay bounded: raw paths and user ids become "other", and so do routes past the cap', async () => {
    const m = createMetrics({ processMetrics: false });
    m.request({ route: '/v1/workspaces/acme/members/auth0|123', action: 'member:list', result: 'allow', status: 200 });
    m.request({ route: 'x', action: 'y', result: 'allow', status: 1234 });
    for (let i = 0; i < MAX_ROUTE_LABELS + 50; i++) m.request({ route: `route-${i}`, action: 'a', result: 'allow', status: 200 });
    const text = await m.render();
    const lines = samples(text, 'gate_requests_total');
    expect(lines).toContain('gate_requests_total{route="other",action="member:list",result="allow",status="200"} 1');
    expect(lines).toContain('gate_requests_total{route="x",action="y",result="allow",status="other"} 1');
    expect(lines.some((l) => l.includes('/v1/'))).toBe(false);
    // x, y, member:list, a and the first routes fill the cap; the rest fold into "other".
    const routes = new Set(lines.map((l) => /route="([^"]*)"/.exec(l)![1]));
    expect(routes.size).toBeLessThanOrEqual(MAX_ROUTE_LABELS + 1);
    expect(lines.find((l) => l.startsWith('gate_requests_total{route="other",action="a"'))).toMatch(/ \d+$/);
  });

  it('gate_policy_info names only the revision in force', async () => {
    const m = createMetrics({ processMetrics: false });
    m.policyInfo('aaaaaaaaaaaaaaaa');
    m.policyInfo('bbbbbbbbbbbbbbbb');
    expect(samples(await m.render(), 'gate_policy_info')).toEqual(['gate_policy_info{revision="bbbbbbbbbbbbbbbb"} 1']);
  });

  it('an outbox count that cannot be read is NaN, and the scrape still answers', async () => {
    const m = createMetrics({ processMetrics: false });
    m.outboxPending(async () => {
      throw new Error('database is locked');
    });
    const text = await m.render();
    // prom-client writes "Nan"; Prometheus parses floats case-insensitively (promtool below).
    expect(samples(text, 'gate_outbox_pending')).toEqual([expect.stringMatching(/^gate_outbox_pending nan$/i)]);
    expect(promtoolCheck(text).status).toBe(0);
  });

  it('two gateways in one process keep separate counters', async () => {
    const a = createMetrics({ processMetrics: false });
    const b = createMetrics({ processMetrics: false });
    a.dbBusy();
    expect(samples(await b.render(), 'gate_db_busy_total')).toEqual(['gate_db_busy_total 0']);
  });
});
