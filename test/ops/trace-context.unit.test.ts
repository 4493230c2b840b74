import { describe, expect, it } from 'vitest';
import { newSpanId, newTraceId, parseTraceparent, traceFor, upstreamTraceparent } from '../../src/http/trace-context.ts';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';

describe('W3C traceparent', () => {
  it('parses a valid version-00 header', () => {
    expect(parseTraceparent(`00-${TRACE}-${SPAN}-01`)).toEqual({ traceId: TRACE, parentSpanId: SPAN, flags: '01' });
    expect(parseTraceparent(` 00-${TRACE}-${SPAN}-00 `)).toEqual({ traceId: TRACE, parentSpanId: SPAN, flags: '00' });
  });

  it.each([
    ['absent', undefined],
    ['two headers', [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${SPAN}-01`]],
    ['joined duplicates', `00-${TRACE}-${SPAN}-01, 00-${TRACE}-${SPAN}-01`],
    ['upper-case hex', `00-${TRACE.toUpperCase()}-${SPAN}-01`],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${SPAN}-01`],
    ['all-zero span id', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${TRACE}-${SPAN}-01`],
    ['version 00 with more fields', `00-${TRACE}-${SPAN}-01-extra`],
    ['short trace id', `00-${TRACE.slice(2)}-${SPAN}-01`],
    ['garbage', 'not a traceparent'],
  ])('refuses %s', (_name, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('reads a future version as version 00, ignoring what follows', () => {
    expect(parseTraceparent(`01-${TRACE}-${SPAN}-01-future`)).toEqual({ traceId: TRACE, parentSpanId: SPAN, flags: '01' });
  });

  it('continues a trace with a new span id of its own, or starts a sampled one', () => {
    const continued = traceFor(`00-${TRACE}-${SPAN}-01`);
    expect(continued).toMatchObject({ traceId: TRACE, parentSpanId: SPAN, flags: '01' });
    expect(continued.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(continued.spanId).not.toBe(SPAN);
    expect(upstreamTraceparent(continued)).toBe(`00-${TRACE}-${continued.spanId}-01`);
    const fresh = traceFor(undefined);
    expect(fresh.parentSpanId).toBeUndefined();
    expect(upstreamTraceparent(fresh)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it('draws distinct ids (10,000 of each, across pool refills)', () => {
    const traces = new Set(Array.from({ length: 10_000 }, newTraceId));
    const spans = new Set(Array.from({ length: 10_000 }, newSpanId));
    expect(traces.size).toBe(10_000);
    expect(spans.size).toBe(10_000);
    for (const t of traces) expect(t).toMatch(/^[0-9a-f]{32}$/);
  });
});
