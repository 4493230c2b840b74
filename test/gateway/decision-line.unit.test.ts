import { describe, expect, it } from 'vitest';
import { decisionLine, isoNow } from '../../src/log/decision-log.ts';
import { newDecision, redactPath, type Decision } from '../../src/log/decision.ts';

/** What the decision log wrote before it built lines by template: JSON.stringify of the object. */
function reference(d: Decision, durationUs: number, time: string): string {
  return JSON.stringify({
    time,
    decision_id: d.decision_id,
    request_id: d.request_id,
    principal: d.principal,
    method: d.method,
    path: d.path,
    route: d.route,
    action: d.action,
    target_role: d.target_role,
    workspace: d.workspace,
    project: d.project,
    roles: d.roles,
    result: d.result,
    code: d.code,
    status: d.status,
    policy_revision: d.policy_revision,
    mode: d.mode,
    trace_id: d.trace_id,
    duration_us: durationUs,
    upstream_us: d.upstream_us,
  });
}

describe('a decision line built by template', () => {
  const base = newDecision({ requestId: 'req-1', method: 'GET', path: '/v1/workspaces/acme/licences', policyRevision: '0123456789abcdef', mode: 'enforce' });

  it.each<[string, Partial<Decision>]>([
    ['a fresh deny', {}],
    ['an allow with every field set', { principal: 'user:auth0|abc', route: 'GET /v1/workspaces/{ws}/licences', action: 'licence:list', target_role: 'admin', workspace: 'acme', project: 'web', roles: ['admin', 'guest:viewer'], result: 'allow', status: 200, trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', upstream_us: 812 }],
    ['values with quotes, backslashes, control and non-ASCII characters', { path: '/a"b\\c\u0001\u2028ü/[redacted]', method: 'G"ET', principal: 'user:"}{\n', request_id: 'x\ty', workspace: 'e\u0000vil' }],
  ])('%s: the same bytes as JSON.stringify of the record', (_name, change) => {
    const d = { ...base, ...change } as Decision;
    const time = isoNow();
    const line = decisionLine(d, 17, time);
    expect(line).toBe(reference(d, 17, time));
    expect(JSON.parse(line)).toMatchObject({ time, status: d.status, path: d.path });
  });

  it('the cached timestamp is the current millisecond', () => {
    const before = Date.now();
    const t = Date.parse(isoNow());
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});

describe('path redaction', () => {
  // The three passes redactPath runs when its quick test says a secret may be there.
  const fullPasses = (path: string) =>
    path
      .replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
      .replace(/(invites)[/\\]+[^/\\?#]*/gi, '$1/[redacted]')
      .replace(/sk_[A-Za-z0-9]+/g, 'sk_[redacted]')
      .slice(0, 512);

  it.each([
    ['/v1/invites/QQQQ', '/v1/invites/[redacted]'],
    ['/v1/INVITES\\QQQQ/accept', '/v1/INVITES/[redacted]/accept'],
    ['/v1/invites%2FQQQQ', '/v1/invites/[redacted]'],
    ['/v1/invit%65s/QQQQ', '/v1/invites/[redacted]'],
    ['/repo/sk_abc123/x', '/repo/sk_[redacted]/x'],
    ['/repo/s%6B_abc123', '/repo/sk_[redacted]'],
    ['/v1/workspaces/acme/licences', '/v1/workspaces/acme/licences'],
  ])('%s is logged as %s', (path, logged) => {
    expect(redactPath(path)).toBe(logged);
  });

  it('gives what the full passes give, on paths with and without something to redact', () => {
    const parts = ['/', 'v1', 'invites', 'INVITES', '%2F', '%2f', '%65', '%', 'sk_', 'SK_', 'abc9', '\\', '?', '#', 'x'.repeat(300), 'ü'];
    let seed = 7;
    const next = () => (seed = (seed * 48271) % 2147483647);
    for (let i = 0; i < 5000; i++) {
      let path = '';
      for (let n = next() % 8; n >= 0; n--) path += parts[next() % parts.length];
      expect(redactPath(path)).toBe(fullPasses(path));
    }
  });
});
