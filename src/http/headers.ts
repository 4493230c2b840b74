/**
 * The value of the one header named `lowerName` among raw name/value pairs (as Node's parser
 * gives them); undefined when it is absent or sent more than once. Names are compared as
 * Node compares them for `incoming.headers` (lower-cased), without building that object.
 */
export function singleRawHeader(rawHeaders: readonly string[], lowerName: string): string | undefined {
  let found: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.length !== lowerName.length || name.toLowerCase() !== lowerName) continue;
    if (found !== undefined) return undefined;
    found = rawHeaders[i + 1];
  }
  return found;
}

/** Header names are compared after lower-casing and mapping `_` and `.` to `-` (CONTRACT §4). */
export function normalizeHeaderName(name: string): string {
  return name.toLowerCase().replace(/[_.]/g, '-');
}

/**
 * An identity value as a header value: user ids are opaque (CONTRACT §3) and may hold
 * characters a header cannot carry, so every character outside visible ASCII (a space
 * too: a trailing one would be trimmed by the upstream's parser, making `x ` read as
 * `x`), and `%` itself, is percent-encoded as UTF-8 (`decodeURIComponent` gives the id
 * back). Visible-ASCII values without `%` are unchanged.
 */
export function headerSafe(value: string): string {
  return /^[\x21-\x24\x26-\x7e]*$/.test(value) ? value : value.replace(/[^\x21-\x24\x26-\x7e]/gu, (c) => encodeURIComponent(c));
}
