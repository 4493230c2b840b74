import { normalizeHeaderName } from '../http/headers.ts';

export { headerSafe } from '../http/headers.ts';


/** What the forwarder sends upstream and relays back: hop-by-hop and identity headers, and response checks. */

/** RFC 9110 §7.6.1 hop-by-hop headers, plus the legacy ones proxies still see. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

/**
 * Request headers never forwarded: credentials (the upstream trusts the gateway's
 * identity headers instead), anything the gateway sets itself, and Expect
 * (the gateway answers 100-continue itself).
 */
const NEVER_FORWARDED = new Set([
  'authorization',
  'host',
  'expect',
  'forwarded',
  'x-real-ip',
  'x-client-ip',
  'true-client-ip',
  'x-request-id',
  // The gateway continues the trace with its own span (CONTRACT §8): it sends its own traceparent.
  'traceparent',
]);

/** Every x-forwarded-* header (for, proto, host, port, prefix, uri, path…) is the gateway's to set. */
const FORWARDING_PREFIX = 'x-forwarded-';

export const IDENTITY_PREFIX = 'x-packagento-';

/** Names listed in Connection headers (RFC 9110 §7.6.1), normalized. */
function connectionNominated(rawHeaders: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (normalizeHeaderName(rawHeaders[i]!) !== 'connection') continue;
    for (const token of rawHeaders[i + 1]!.split(',')) {
      const t = token.trim();
      if (t) names.add(normalizeHeaderName(t));
    }
  }
  return names;
}

/**
 * The request headers sent upstream, as a raw name/value list (duplicates kept as
 * separate lines, never joined): what the caller sent minus hop-by-hop,
 * Connection-nominated, credential and `x-packagento-*` headers, plus the gateway's
 * own forwarding and identity headers.
 */
export function upstreamRequestHeaders(
  rawHeaders: readonly string[],
  added: { host: string; forwardedFor: string; forwardedProto: string; forwardedHost: string | undefined },
  identity: Record<string, string>,
  chunked = false,
): string[] {
  const nominated = connectionNominated(rawHeaders);
  const out: string[] = [];
  // A body that arrived chunked is sent chunked, explicitly: Node does not chunk every method by
  // default, and an unframed body would be read by the upstream as the next request.
  if (chunked) out.push('transfer-encoding', 'chunked');
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = normalizeHeaderName(rawHeaders[i]!);
    if (HOP_BY_HOP.has(name) || NEVER_FORWARDED.has(name) || nominated.has(name)) continue;
    if (name.startsWith(IDENTITY_PREFIX) || name.startsWith(FORWARDING_PREFIX)) continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  out.push('host', added.host);
  out.push('x-forwarded-for', added.forwardedFor);
  out.push('x-forwarded-proto', added.forwardedProto);
  if (added.forwardedHost !== undefined) out.push('x-forwarded-host', added.forwardedHost);
  for (const [name, value] of Object.entries(identity)) out.push(name, value);
  return out;
}


/**
 * Response headers passed back: everything but hop-by-hop, Connection-nominated and
 * `x-packagento-*` ones (in any spelling: the identity vocabulary is the gateway's, an
 * upstream never speaks it to a client). With a request id, the response carries the
 * gateway's `x-request-id` (the one in the decision log and sent upstream), as the
 * gateway's own answers do.
 */
export function downstreamResponseHeaders(rawHeaders: readonly string[], requestId?: string): string[] {
  const nominated = connectionNominated(rawHeaders);
  const out: string[] = [];
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = normalizeHeaderName(rawHeaders[i]!);
    if (HOP_BY_HOP.has(name) || nominated.has(name) || name.startsWith(IDENTITY_PREFIX)) continue;
    if (requestId !== undefined && name === 'x-request-id') continue;
    out.push(rawHeaders[i]!, rawHeaders[i + 1]!);
  }
  if (requestId !== undefined) out.push('x-request-id', requestId);
  return out;
}

/** RFC 9110 §5.6.2 token: what a header name may be. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** What Node's writer accepts in a header value or reason phrase (HTAB, SP, VCHAR, obs-text). */
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/**
 * Why an upstream response head cannot be relayed as it is, or undefined when it can.
 * The upstream is untrusted input: Node's client parser is lenient where its server
 * writer is strict (a control byte or DEL in the reason phrase, a status outside
 * 200–599), and a head the writer refuses would throw on the response path.
 */
export function invalidResponseHead(statusCode: number | undefined, statusMessage: string | undefined, rawHeaders: readonly string[]): string | undefined {
  if (statusCode === undefined || !Number.isInteger(statusCode) || statusCode < 200 || statusCode > 599) {
    return `status ${String(statusCode)} is not a final status (200-599) the gateway relays`;
  }
  if (statusMessage !== undefined && !FIELD_VALUE.test(statusMessage)) return 'the reason phrase has forbidden bytes';
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (!TOKEN.test(rawHeaders[i]!)) return 'a header name has forbidden bytes';
    if (!FIELD_VALUE.test(rawHeaders[i + 1]!)) return `header ${rawHeaders[i]!} has forbidden bytes`;
  }
  return undefined;
}
