/** The small pure pieces behind the fault fixes (issue #9), in-process. */
import { describe, expect, test } from 'vitest';
import { userIdProblem } from '../../src/authn/jwt.ts';
import { foldEmail } from '../../src/domain.ts';
import { downstreamResponseHeaders, headerSafe, invalidResponseHead } from '../../src/pipeline/forward-headers.ts';
import { parseInvariants } from '../../src/policy-tools/invariants.ts';

describe('invalidResponseHead: what the forwarder refuses to relay', () => {
  test.each([
    [200, 'O\x01K', [], /reason/],
    [200, 'O\x7fK', [], /reason/],
    [99, 'X', [], /status/],
    [600, 'X', [], /status/],
    [101, 'Switching Protocols', [], /status/],
    [200, 'OK', ['X A', 'b'], /name/],
    [200, 'OK', ['X-A', 'a\x00b'], /X-A/],
  ] as [number, string, string[], RegExp][])('%i %j %j', (status, reason, headers, why) => {
    expect(invalidResponseHead(status, reason, headers)).toMatch(why);
  });
  test('a normal head, obs-text included, is fine', () => {
    expect(invalidResponseHead(200, 'OK', ['Content-Type', 'text/plain', 'X-Latin', 'caf\u00e9'])).toBeUndefined();
  });
});

describe('downstreamResponseHeaders drops x-packagento-* in every spelling', () => {
  test('dash, underscore, dot, any case', () => {
    const out = downstreamResponseHeaders(['X-Packagento-Principal', 'a', 'x_packagento_roles', 'b', 'X.PACKAGENTO.ACTION', 'c', 'X-Kept', 'd']);
    expect(out).toEqual(['X-Kept', 'd']);
  });
});

describe('headerSafe: opaque user ids as header values', () => {
  test('visible ASCII without % is unchanged', () => {
    expect(headerSafe('user:auth0|abc')).toBe('user:auth0|abc');
    expect(headerSafe('user:https://idp.example.com/u/1')).toBe('user:https://idp.example.com/u/1');
  });
  test('spaces, %, and non-ASCII are percent-encoded and decode back', () => {
    for (const id of ['a b ', '100%', 'ユーザー', 'caf\u00e9', '😀']) {
      const v = headerSafe(`user:${id}`);
      expect(v).toMatch(/^[\x21-\x7e]+$/);
      expect(decodeURIComponent(v.slice(5))).toBe(id);
    }
  });
});

describe('userIdProblem: CONTRACT §3 user ids', () => {
  test.each(['auth0|abc', 'kim@example.com', 'https://idp.example.com/u/1', 'x'.repeat(255), '😀'.repeat(255), 'a b'])('%j is an id', (sub) => {
    expect(userIdProblem(sub)).toBeUndefined();
  });
  test.each(['', 'me', 'x'.repeat(256), '😀'.repeat(256), 'a\nb', 'del\x7f', 'c1\u0085', '\ud800', 42, undefined])('%j is not', (sub) => {
    expect(userIdProblem(sub)).toBeDefined();
  });
});

describe('foldEmail: ASCII only', () => {
  test('A-Z fold, nothing else does', () => {
    expect(foldEmail('Kate@Example.COM')).toBe('kate@example.com');
    expect(foldEmail('\u212Aate@example.com')).toBe('\u212Aate@example.com');
    expect(foldEmail('\u0130van@example.com')).toBe('\u0130van@example.com');
    expect(foldEmail('\u00c5sa@example.com')).toBe('\u00c5sa@example.com');
  });
});

describe('allow invariants parse', () => {
  const file = (rule: string) => `ranks: [owner, admin, developer, billing, viewer]\ninvariants:\n  - id: x\n    description: x\n    ${rule}\n`;
  test('subjects, actions and targets', () => {
    const set = parseInvariants(file('allow: { subjects: [owner], actions: [member:invite], targets: [owner] }'), 'inv.yaml');
    expect(set.invariants[0]!.rule).toMatchObject({ kind: 'allow', subjects: ['owner'], actions: ['member:invite'], targets: ['owner'] });
  });
  test('targets on an action without a target role are refused, with the line', () => {
    expect(() => parseInvariants(file('allow: { subjects: [viewer], actions: [project:list], targets: [owner] }'), 'inv.yaml')).toThrow(/inv\.yaml:\d+.*no target role/);
  });
});
