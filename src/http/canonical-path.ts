/**
 * Request-target hygiene. Most gateway bypasses come from the gateway and the
 * upstream reading one request two ways, so the gateway computes ONE canonical
 * path, decides on it, and forwards exactly it. Anything ambiguous is refused.
 *
 * Unreserved characters (RFC 3986 §2.3) that arrive percent-encoded are decoded
 * (RFC 3986 §6.2.2.2); every other escape is kept, upper-cased (§6.2.2.1).
 */

export const MAX_TARGET_LENGTH = 8192;

export type CanonicalTarget =
  | { ok: true; path: string; segments: string[]; query: string | undefined }
  | { ok: false; code: 'bad_path' | 'uri_too_long'; reason: string };

const HEX = /^[0-9A-Fa-f]{2}$/;

function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) || // A-Z
    (c >= 0x61 && c <= 0x7a) || // a-z
    (c >= 0x30 && c <= 0x39) || // 0-9
    c === 0x2d || // -
    c === 0x2e || // .
    c === 0x5f || // _
    c === 0x7e // ~
  );
}

/**
 * Escapes that are refused even though they are well-formed: an encoded slash or
 * backslash splits segments differently for different readers, an encoded `%`
 * invites double decoding, `#`, `;` and `?` change how the rest is parsed, and
 * control characters and non-ASCII bytes are never part of a Packagento path.
 */
function isRefusedEscape(c: number): boolean {
  return c < 0x20 || c === 0x7f || c >= 0x80 || c === 0x2f || c === 0x5c || c === 0x25 || c === 0x23 || c === 0x3b || c === 0x3f;
}

function fail(reason: string): CanonicalTarget {
  return { ok: false, code: 'bad_path', reason };
}

/** Canonicalizes a raw HTTP request-target (origin-form only). */
export function canonicalizeTarget(raw: string): CanonicalTarget {
  if (raw.length > MAX_TARGET_LENGTH) return { ok: false, code: 'uri_too_long', reason: 'request target too long' };
  if (raw.charCodeAt(0) !== 0x2f) return fail('the request target must be a path starting with /');
  const q = raw.indexOf('?');
  const rawPath = q === -1 ? raw : raw.slice(0, q);
  const query = q === -1 ? undefined : raw.slice(q + 1);

  let out = '';
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f) return fail('control character or space in path');
    if (c >= 0x80) return fail('non-ASCII character in path');
    if (c === 0x5c) return fail('backslash in path');
    if (c === 0x3b) return fail('";" in path');
    if (c === 0x23) return fail('"#" in path');
    if (c === 0x25) {
      const hex = rawPath.slice(i + 1, i + 3);
      if (!HEX.test(hex)) return fail('malformed percent-escape in path');
      const v = parseInt(hex, 16);
      if (isRefusedEscape(v)) return fail(`refused percent-escape %${hex.toUpperCase()} in path`);
      out += isUnreserved(v) ? String.fromCharCode(v) : '%' + hex.toUpperCase();
      i += 2;
      continue;
    }
    out += rawPath[i];
  }

  const segments = out.split('/').slice(1);
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    // A trailing slash leaves one empty last segment: a distinct (unknown) route, not malformed.
    if (s === '' && i < segments.length - 1) return fail('empty path segment');
    if (s === '.' || s === '..') return fail('dot segment in path');
  }

  if (query !== undefined) {
    for (let i = 0; i < query.length; i++) {
      const c = query.charCodeAt(i);
      if (c <= 0x20 || c >= 0x7f || c === 0x23) return fail('control, non-ASCII or "#" character in query');
      if (c === 0x25 && !HEX.test(query.slice(i + 1, i + 3))) return fail('malformed percent-escape in query');
    }
  }
  return { ok: true, path: out, segments, query };
}
