/**
 * canonicalizeTarget on its own: the one canonical path the gateway decides on and forwards.
 */
import { describe, expect, it } from 'vitest';
import { canonicalizeTarget, MAX_TARGET_LENGTH } from '../../src/http/canonical-path.ts';

describe('canonical forms', () => {
  it.each([
    ['/v1/workspaces/acme/licences', '/v1/workspaces/acme/licences', undefined],
    ['/v1/workspaces/%61cme/licences', '/v1/workspaces/acme/licences', undefined],
    ['/v1/workspaces/%61%63%6d%65/licences', '/v1/workspaces/acme/licences', undefined],
    ['/repo/%7Evendor/%2D%2E%5F', '/repo/~vendor/-._', undefined],
    ['/repo/a%2bb', '/repo/a%2Bb', undefined],
    ['/repo/a%40b%3ac', '/repo/a%40b%3Ac', undefined],
    ['/repo/a%20b', '/repo/a%20b', undefined],
    ['/x?', '/x', ''],
    ['/x?a=%2F&b=%61', '/x', 'a=%2F&b=%61'],
    ['/x?a=/../b', '/x', 'a=/../b'],
    ['/x/', '/x/', undefined],
    ['/', '/', undefined],
  ])('%s → %s (query %s)', (raw, path, query) => {
    const c = canonicalizeTarget(raw);
    expect(c).toMatchObject({ ok: true, path, query });
  });

  it('segments are the canonical path split on "/" (a trailing slash leaves an empty last one)', () => {
    expect(canonicalizeTarget('/v1/workspaces/%61cme/')).toMatchObject({ ok: true, segments: ['v1', 'workspaces', 'acme', ''] });
    expect(canonicalizeTarget('/repo/p2/x.json')).toMatchObject({ ok: true, segments: ['repo', 'p2', 'x.json'] });
  });
});

describe('refusals', () => {
  it.each([
    'v1/no-leading-slash',
    'http://host/v1/x',
    '*',
    '',
    '/a%2Fb',
    '/a%2fb',
    '/a%5Cb',
    '/a\\b',
    '/a/./b',
    '/a/../b',
    '/a/%2e%2e/b',
    '/a/.%2e/b',
    '/a/%2E/b',
    '/a/..',
    '/a/.',
    '/..',
    '/a;b',
    '/a%3Bb',
    '/a#b',
    '/a%23b',
    '/a%00',
    '/a%0a',
    '/a%0D',
    '/a%7f',
    '/a%1f',
    '/a\x00',
    '/a\tb',
    '/a b',
    '/a\x7f',
    '//a',
    '/a//b',
    '/a///',
    '/caf\u00e9',
    '/caf%C3%A9',
    '/a%80',
    '/a%FF',
    '/a%',
    '/a%2',
    '/a%g0',
    '/a%0g',
    '/a%%32%46',
    '/a%252F',
    '/a%3F',
    '/x?a=%',
    '/x?a=%zz',
    '/x?a=b#c',
    '/x?a=\x01',
    '/x?a=\u00e9',
    '/x?a b',
  ])('%j is bad_path', (raw) => {
    expect(canonicalizeTarget(raw)).toMatchObject({ ok: false, code: 'bad_path' });
  });

  it('an over-long target is uri_too_long; the limit itself is fine', () => {
    expect(canonicalizeTarget('/' + 'a'.repeat(MAX_TARGET_LENGTH))).toMatchObject({ ok: false, code: 'uri_too_long' });
    expect(canonicalizeTarget('/' + 'a'.repeat(MAX_TARGET_LENGTH - 1))).toMatchObject({ ok: true });
  });
});

describe('properties over generated targets', () => {
  // Tricky pieces that readers disagree on; targets are random concatenations of them.
  const PIECES = ['/', '//', '.', '..', '%2e', '%2E', '%2f', '%2F', '%5c', '\\', ';', '%3b', '#', '%23', 'a', 'B', '%61', '%41', '%7e', '~', '%', '%z', '%25', '%00', '%0a', '%c3%a9', '\u00e9', '%20', '%2b', '-', '_', '?', '&', '='];
  /** A small deterministic PRNG (mulberry32), so a failure is reproducible. */
  function rng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
    };
  }
  const random = rng(20240601);
  const targets = Array.from({ length: 5000 }, () => {
    let s = '/';
    const n = 1 + Math.floor(random() * 8);
    for (let i = 0; i < n; i++) s += PIECES[Math.floor(random() * PIECES.length)];
    return s;
  });

  it('an accepted path is unambiguous: no encoded or raw separators, dots, controls or non-ASCII', () => {
    let accepted = 0;
    for (const raw of targets) {
      const c = canonicalizeTarget(raw);
      if (!c.ok) continue;
      accepted++;
      expect(c.path, raw).not.toMatch(/%(2F|5C|25|23|3B|3F|[01][0-9A-F]|7F|[89A-F][0-9A-F])/i);
      expect(c.path, raw).not.toMatch(/[\\;#\x00-\x20\x7f-\uffff]/);
      expect(c.path, raw).not.toMatch(/%[0-9A-F]?[a-f]/); // escapes are upper-case
      expect(c.path, raw).not.toMatch(/%(4[1-9A-F]|5[0-9AF]|6[1-9A-F]|7[0-9AE]|3[0-9]|2D|2E)/); // unreserved are decoded
      c.segments.forEach((s, i) => {
        expect(s === '.' || s === '..', raw).toBe(false);
        if (i < c.segments.length - 1) expect(s, raw).not.toBe('');
      });
    }
    expect(accepted).toBeGreaterThan(100);
  });

  it('canonicalization is idempotent: the forwarded target reads the same to a second strict reader', () => {
    for (const raw of targets) {
      const c = canonicalizeTarget(raw);
      if (!c.ok) continue;
      const forwarded = c.path + (c.query !== undefined ? `?${c.query}` : '');
      expect(canonicalizeTarget(forwarded), raw).toEqual(c);
    }
  });

  it('agrees with the WHATWG URL parser on every accepted path (no dot or slash it would re-interpret)', () => {
    for (const raw of targets) {
      const c = canonicalizeTarget(raw);
      if (!c.ok) continue;
      expect(new URL(c.path, 'http://x').pathname, raw).toBe(c.path);
    }
  });
});
