import { describe, expect, test } from 'vitest';
import { createCachedJwtVerifier } from '../../src/authn/jwt-cache.ts';
import { createJwtVerifier, type JwtVerifier } from '../../src/authn/jwt.ts';
import { signUserJwt, TEST_AUDIENCE, TEST_ISSUER, TEST_SECRET } from '../helpers/jwt.ts';

/** Counts how often the real (jose) verifier is asked. */
async function counted(currentDate?: () => Date): Promise<{ verifier: JwtVerifier; calls: () => number }> {
  const inner = await createJwtVerifier({
    key: { kind: 'secret', secret: TEST_SECRET },
    issuer: TEST_ISSUER,
    audience: TEST_AUDIENCE,
    ...(currentDate ? { currentDate } : {}),
  });
  let n = 0;
  return {
    verifier: { algorithms: inner.algorithms, verify: (t) => (n++, inner.verify(t)) },
    calls: () => n,
  };
}

describe('the verified-JWT cache', () => {
  test('a verified token is served from the cache until its exp, and never after', async () => {
    let clock = Date.now();
    const { verifier, calls } = await counted(() => new Date(clock));
    const cached = createCachedJwtVerifier(verifier, { now: () => clock });
    const token = await signUserJwt('vic', { expSeconds: 60 });
    const exp = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).exp as number;

    expect((await cached.verify(token)).ok).toBe(true);
    expect((await cached.verify(token)).ok).toBe(true);
    expect(calls()).toBe(1);

    clock = exp * 1000 - 1; // the last millisecond before exp: still cached
    expect((await cached.verify(token)).ok).toBe(true);
    expect(calls()).toBe(1);

    clock = exp * 1000; // at exp the entry is dropped and jose decides (inside its 5 s tolerance: still valid)
    expect((await cached.verify(token)).ok).toBe(true);
    expect(calls()).toBe(2);
    expect(cached.size).toBe(0); // not re-cached: it is already at or past exp

    clock = exp * 1000 + 60_000; // well past exp: refused
    const late = await cached.verify(token);
    expect(late.ok).toBe(false);
    expect(calls()).toBe(3);
  });

  test('failures are never cached, and the cache is bounded', async () => {
    const { verifier, calls } = await counted();
    const cached = createCachedJwtVerifier(verifier, { maxEntries: 3 });
    const bad = await signUserJwt('vic', { secret: 'another-secret-that-is-long-enough-000000' });
    expect((await cached.verify(bad)).ok).toBe(false);
    expect((await cached.verify(bad)).ok).toBe(false);
    expect(calls()).toBe(2);
    for (const u of ['a', 'b', 'c', 'd', 'e']) expect((await cached.verify(await signUserJwt(u))).ok).toBe(true);
    expect(cached.size).toBe(3);
  });

  test('a cached identity is the same identity: another token never hits another user\'s entry', async () => {
    const { verifier } = await counted();
    const cached = createCachedJwtVerifier(verifier);
    const a = await cached.verify(await signUserJwt('alice', { email: 'alice@example.com' }));
    const b = await cached.verify(await signUserJwt('bob', { email: 'bob@example.com' }));
    expect(a.ok && a.user.id).toBe('alice');
    expect(b.ok && b.user.id).toBe('bob');
  });
});
