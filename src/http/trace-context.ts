import { randomFillSync } from 'node:crypto';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the gateway continues the
 * caller's trace as one span of its own. The upstream receives the same trace id with
 * the gateway's span id as its parent; a request without a valid `traceparent` starts a
 * new trace. Ids are random, never derived from request data.
 */
export interface TraceContext {
  /** 32 lowercase hex characters, not all zero. */
  traceId: string;
  /** The gateway's own span: 16 lowercase hex characters. */
  spanId: string;
  /** The caller's span id, when it sent a valid traceparent. */
  parentSpanId: string | undefined;
  /** Trace flags as two hex characters ("01": sampled). */
  flags: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '0'.repeat(32);
const ZERO_SPAN = '0'.repeat(16);

/** A pool of random bytes, refilled in bulk: one syscall per 512 ids instead of one per id. */
const pool = Buffer.alloc(4096);
let offset = pool.length;
function randomHex(bytes: number): string {
  if (offset + bytes > pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

export const newTraceId = (): string => {
  const id = randomHex(16);
  return id === ZERO_TRACE ? newTraceId() : id;
};
export const newSpanId = (): string => {
  const id = randomHex(8);
  return id === ZERO_SPAN ? newSpanId() : id;
};

/**
 * Parses a `traceparent` header value; undefined when it is absent or invalid (then a
 * new trace starts). Version ff is invalid; a higher version is read as version 00,
 * as the spec asks of version-00 parsers. Two traceparent headers are invalid.
 */
export function parseTraceparent(value: string | string[] | undefined): { traceId: string; parentSpanId: string; flags: string } | undefined {
  if (typeof value !== 'string') return undefined;
  const m = TRACEPARENT.exec(value.trim());
  if (!m) return undefined;
  const [, version, traceId, parentSpanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO_TRACE || parentSpanId === ZERO_SPAN) return undefined;
  return { traceId, parentSpanId, flags };
}

/** The gateway's span for a request: continues `traceparent` when valid, else a new sampled trace. */
export function traceFor(traceparent: string | string[] | undefined, spanId: string = newSpanId()): TraceContext {
  const parent = parseTraceparent(traceparent);
  if (parent) return { traceId: parent.traceId, spanId, parentSpanId: parent.parentSpanId, flags: parent.flags };
  return { traceId: newTraceId(), spanId, parentSpanId: undefined, flags: '01' };
}

/** The `traceparent` the upstream receives: the same trace, the gateway's span as parent. */
export function upstreamTraceparent(t: TraceContext): string {
  return `00-${t.traceId}-${t.spanId}-${t.flags}`;
}
