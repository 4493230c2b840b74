import { SignJWT, type JWTPayload } from 'jose';

export const TEST_ISSUER = 'https://id.packagento.test';
export const TEST_AUDIENCE = 'packagento-gate';
export const TEST_SECRET = 'test-only-secret-that-is-long-enough-0123456789';

/** Signs a real HS256 JWT with the test secret (override anything for negative tests). */
export async function signUserJwt(
  sub: string | undefined,
  opts: { email?: string; emailVerified?: boolean; expSeconds?: number | null; claims?: JWTPayload; secret?: string; issuer?: string; audience?: string; nbf?: number } = {},
): Promise<string> {
  const payload: JWTPayload = { ...(opts.claims ?? {}) };
  if (opts.email !== undefined) payload['email'] = opts.email;
  if (opts.emailVerified !== undefined) payload['email_verified'] = opts.emailVerified;
  let jwt = new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setIssuer(opts.issuer ?? TEST_ISSUER).setAudience(opts.audience ?? TEST_AUDIENCE);
  if (sub !== undefined) jwt = jwt.setSubject(sub);
  if (opts.expSeconds !== null) jwt = jwt.setExpirationTime(Math.floor(Date.now() / 1000) + (opts.expSeconds ?? 600));
  if (opts.nbf !== undefined) jwt = jwt.setNotBefore(opts.nbf);
  return jwt.sign(new TextEncoder().encode(opts.secret ?? TEST_SECRET));
}

/** A JWT for a fixture user: sub = name, email = name@example.com. */
export function userJwt(name: string): Promise<string> {
  return signUserJwt(name, { email: `${name}@example.com`, emailVerified: true });
}
