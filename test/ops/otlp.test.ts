import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACME, startTestGateway } from '../helpers/gateway.ts';

/** A local OTLP/HTTP receiver: records every POST to /v1/traces. */
interface Receiver {
  url: string;
  posts: { path: string; contentType: string; body: Buffer }[];
  close(): Promise<void>;
}

async function startReceiver(): Promise<Receiver> {
  const posts: Receiver['posts'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    posts,
    close: () => new Promise<void>((ok) => server.close(() => ok())),
  };
}

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: { key: string; value: Record<string, unknown> }[];
}

/** OTLP/JSON (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding): ids are hex strings. */
function spansOf(posts: Receiver['posts']): { spans: OtlpSpan[]; resource: Record<string, unknown> } {
  const spans: OtlpSpan[] = [];
  let resource: Record<string, unknown> = {};
  for (const p of posts) {
    expect(p.path).toBe('/v1/traces');
    expect(p.contentType).toMatch(/^application\/json/);
    const body = JSON.parse(p.body.toString('utf8')) as { resourceSpans: { resource: { attributes: OtlpSpan['attributes'] }; scopeSpans: { spans: OtlpSpan[] }[] }[] };
    for (const rs of body.resourceSpans) {
      resource = Object.fromEntries(rs.resource.attributes.map((a) => [a.key, Object.values(a.value)[0]]));
      for (const ss of rs.scopeSpans) spans.push(...ss.spans);
    }
  }
  return { spans, resource };
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v === undefined ? undefined : Object.values(v)[0];
};

describe('OTLP/HTTP export (OTEL_EXPORTER_OTLP_ENDPOINT)', () => {
  let receiver: Receiver;
  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(() => receiver.close());

  it('exports one SERVER span per request, in the caller’s trace, with the span id the upstream got as parent', async () => {
    const t = await startTestGateway({ world: ACME, env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url } });
    const TRACE = '0af7651916cd43dd8448eb211c80319c';
    const PARENT = 'b7ad6b7169203331';
    let upstreamParent: string;
    try {
      expect((await t.request('GET', '/v1/workspaces/acme/licences', { as: 'vic', headers: { traceparent: `00-${TRACE}-${PARENT}-01` } })).status).toBe(200);
      upstreamParent = String(t.upstream.received.at(-1)!.headers['traceparent']).split('-')[2]!;
      expect((await t.request('GET', '/v1/workspaces/acme/licences')).status).toBe(401);
      expect((await t.request('GET', '/v1/workspaces/acme', { as: 'bob' })).status).toBe(200);
    } finally {
      // Shutdown flushes the batch.
      await t.close();
    }
    const { spans, resource } = spansOf(receiver.posts);
    expect(resource['service.name']).toBe('packagento-gate');
    expect(spans).toHaveLength(3);
    const forwarded = spans.find((s) => s.traceId === TRACE)!;
    expect(forwarded).toMatchObject({ traceId: TRACE, parentSpanId: PARENT, spanId: upstreamParent!, name: 'GET /v1/workspaces/{ws}/licences', kind: 2 });
    expect(attr(forwarded, 'http.response.status_code')).toBe(200);
    expect(attr(forwarded, 'packagento.decision.result')).toBe('allow');
    const denied = spans.find((s) => attr(s, 'http.response.status_code') === 401)!;
    expect(denied.traceId).not.toBe(TRACE);
    expect(denied.parentSpanId ?? '').toBe('');
    expect(attr(denied, 'packagento.decision.result')).toBe('deny');
    // The decision log carries the same trace ids as the spans.
    expect(new Set(t.decisions.map((d) => d.trace_id))).toEqual(new Set(spans.map((s) => s.traceId)));
  });

  it('an unreachable receiver never stops the gateway: the export failure is a warn line', async () => {
    const dead = await new Promise<number>((ok) => {
      const s = http.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as AddressInfo;
        s.close(() => ok(port));
      });
    });
    const t = await startTestGateway({ world: ACME, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${dead}` } });
    try {
      expect((await t.request('GET', '/v1/workspaces/acme/licences', { as: 'vic' })).status).toBe(200);
    } finally {
      await t.close();
    }
    expect(t.logs.some((l) => JSON.parse(l).msg === 'OTLP export failed' && JSON.parse(l).level === 40)).toBe(true);
  });
});
