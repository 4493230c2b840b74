import { createHash } from 'node:crypto';
import type { JwtResult, JwtVerifier, VerifiedUser } from './jwt.ts';

export interface JwtCacheOptions {
  /** Most entries kept; the oldest is evicted first. */
  maxEntries?: number;
  now?: () => number;
}

/**
 * A bounded cache of *successfully verified* JWTs, keyed by a SHA-256 of the token
 * (the token itself is never kept as a key). An entry is used only while the
 * current time is before the token's `exp`, never beyond (jose's clock tolerance
 * is not extended to cached entries). Failures are never cached. Only identity is
 * cached: roles are read from the database on every request.
 */
export function createCachedJwtVerifier(inner: JwtVerifier, options: JwtCacheOptions = {}): JwtVerifier & { readonly size: number } {
  const maxEntries = options.maxEntries ?? 10_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, VerifiedUser>();
  return {
    algorithms: inner.algorithms,
    get size() {
      return cache.size;
    },
    async verify(token: string): Promise<JwtResult> {
      const key = createHash('sha256').update(token).digest('base64');
      const hit = cache.get(key);
      if (hit !== undefined) {
        if (now() < hit.exp * 1000) return { ok: true, user: hit };
        cache.delete(key);
      }
      const result = await inner.verify(token);
      if (result.ok && maxEntries > 0 && now() < result.user.exp * 1000) {
        if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
        cache.set(key, result.user);
      }
      return result;
    },
  };
}
