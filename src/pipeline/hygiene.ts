import type { CanonicalTarget } from '../http/canonical-path.ts';
import { normalizeHeaderName } from '../http/headers.ts';
import { problem } from '../http/problem.ts';
import { refuse, type Refusal } from './types.ts';

/** Headers that ask a server to use another method, or another path, than the request line's. */
const METHOD_OVERRIDE_HEADERS = new Set(['x-http-method-override', 'x-http-method', 'x-method-override', 'x-original-method']);
const TARGET_OVERRIDE_HEADERS = new Set(['x-original-url', 'x-rewrite-url', 'x-original-uri']);

/** Host as RFC 9110 §7.2 allows it: a name or IP literal, and an optional port. */
const HOST = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})?)*\.?|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

/** A query parameter some frameworks read as the method (`_method=DELETE`). */
function hasMethodOverrideParam(query: string | undefined): boolean {
  if (query === undefined) return false;
  for (const pair of query.split('&')) {
    const name = pair.split('=', 1)[0]!;
    let decoded = name;
    try {
      decoded = decodeURIComponent(name.replace(/\+/g, ' '));
    } catch {
      // malformed escapes were refused by canonicalization
    }
    if (decoded.trim().toLowerCase() === '_method') return true;
  }
  return false;
}

/** What hygiene learned about a request it let through. */
export interface CleanRequest {
  canonical: Extract<CanonicalTarget, { ok: true }>;
  /** Every Authorization header value, as received. */
  authorization: string[];
  hasBody: boolean;
  /** The one Host value (it becomes X-Forwarded-Host upstream). */
  host: string;
  /** The body is chunked (Transfer-Encoding: chunked); the forwarder re-frames it so upstream. */
  chunked: boolean;
  /** Neither Content-Length nor Transfer-Encoding: nothing to stream upstream. */
  bodyless: boolean;
}

/**
 * Step 1, request hygiene (CONTRACT §4): one canonical path, no method or target
 * overrides, exactly one valid Host, plain chunking only. Every header name is
 * normalized once, here.
 */
export function checkHygiene(canonical: CanonicalTarget, rawHeaders: readonly string[]): CleanRequest | Refusal {
  if (!canonical.ok) return refuse(problem(canonical.code, canonical.reason));
  if (hasMethodOverrideParam(canonical.query)) {
    return refuse(problem('method_override', 'the _method query parameter is not accepted'));
  }
  const authorization: string[] = [];
  const hosts: string[] = [];
  let transferEncoding: string | undefined;
  let transferEncodings = 0;
  let contentLength: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = normalizeHeaderName(rawHeaders[i]!);
    const value = rawHeaders[i + 1]!;
    if (METHOD_OVERRIDE_HEADERS.has(name)) return refuse(problem('method_override', `the ${rawHeaders[i]} header is not accepted`));
    if (TARGET_OVERRIDE_HEADERS.has(name)) return refuse(problem('bad_request', `the ${rawHeaders[i]} header is not accepted`));
    // Node frames the body by Content-Length / Transfer-Encoding spelt with hyphens only, while names
    // here read `_` and `.` as `-`: a framing header in another spelling would make this scan and the
    // parser disagree on the body (and could reach the upstream beside the real one).
    if ((name === 'content-length' || name === 'transfer-encoding') && rawHeaders[i]!.toLowerCase() !== name) {
      return refuse(problem('bad_request', `the ${rawHeaders[i]} header is not accepted (framing headers are spelt Content-Length, Transfer-Encoding)`));
    }
    if (name === 'authorization') authorization.push(value);
    else if (name === 'host') hosts.push(value);
    else if (name === 'transfer-encoding') {
      transferEncoding = value;
      transferEncodings++;
    }
    else if (name === 'content-length') contentLength = value;
  }
  // The Host becomes X-Forwarded-Host upstream: exactly one, well-formed.
  if (hosts.length !== 1 || !HOST.test(hosts[0]!)) return refuse(problem('bad_request', 'send exactly one valid Host header'));
  // Only plain chunking: other transfer-codings would reach the upstream re-framed but still coded.
  // Two Transfer-Encoding lines are one list of codings (`gzip` + `chunked` = `gzip, chunked`).
  if (transferEncodings > 1 || (transferEncoding !== undefined && transferEncoding.trim().toLowerCase() !== 'chunked')) {
    return refuse(problem('bad_request', 'the only transfer-coding accepted is chunked'));
  }
  const hasBody = transferEncoding !== undefined || (contentLength !== undefined && contentLength !== '0');
  return {
    canonical,
    authorization,
    hasBody,
    host: hosts[0]!,
    chunked: transferEncoding !== undefined,
    bodyless: transferEncoding === undefined && contentLength === undefined,
  };
}
