import { timingSafeEqual } from 'node:crypto';
import { problem, type Problem } from '../http/problem.ts';
import type { AccessRepo } from '../db/access-repo.ts';
import { sha256 } from '../crypto/hash.ts';
import type { JwtVerifier } from './jwt.ts';
import { isWellFormedPrivateKey, isWellFormedPublicKey } from './keys.ts';

export type Principal =
  | { kind: 'user'; id: string; email: string | undefined; emailVerified: boolean }
  | { kind: 'token'; id: string; projectId: string; workspaceId: string }
  | { kind: 'anonymous' };

export type Credentials =
  | { scheme: 'bearer'; token: string }
  | { scheme: 'basic'; user: string; password: string }
  | { scheme: 'none' }
  /** An Authorization header that is not one usable credential; the route's authenticator refuses it with its challenge. */
  | { scheme: 'malformed'; refusal: Problem };

export const BEARER_CHALLENGE = 'Bearer realm="Packagento"';
export const BASIC_CHALLENGE = 'Basic realm="Packagento"';

// RFC 6750 §2.1 b64token and RFC 7617 token68: one credential, no spaces or commas.
const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*$/;

/**
 * Parses the raw Authorization headers. Two headers, or one with two credentials,
 * is a 400: a gateway and an upstream may pick different ones. A malformed single
 * credential is returned as `malformed`, so the route's authenticator answers 401
 * with the route's challenge (RFC 9110 §11.6.1: a 401 carries WWW-Authenticate).
 */
export function parseAuthorization(values: string[]): Credentials | Problem {
  if (values.length === 0) return { scheme: 'none' };
  if (values.length > 1) return problem('duplicate_credentials', 'send exactly one Authorization header');
  const value = values[0]!.trim();
  const space = value.indexOf(' ');
  if (space <= 0) {
    return malformed(problem('unauthenticated', 'the Authorization header must be "Bearer <token>" or "Basic <credentials>"'));
  }
  const scheme = value.slice(0, space).toLowerCase();
  const credential = value.slice(space + 1).trim();
  if (!TOKEN68.test(credential)) {
    if (/[\s,]/.test(credential)) return problem('duplicate_credentials', 'the Authorization header holds more than one credential');
    return malformed(problem('invalid_credentials', 'malformed credentials'));
  }
  if (scheme === 'bearer') return { scheme: 'bearer', token: credential };
  if (scheme === 'basic') {
    const decoded = Buffer.from(credential, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return malformed(problem('invalid_credentials', 'malformed Basic credentials'));
    return { scheme: 'basic', user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return malformed(problem('unauthenticated', `unsupported authorization scheme "${value.slice(0, space).slice(0, 20)}"`));
}

function malformed(refusal: Problem): Credentials {
  return { scheme: 'malformed', refusal };
}

function withChallenge(p: Problem, challenge: string): Problem {
  return { ...p, headers: { ...(p.headers ?? {}), 'www-authenticate': challenge } };
}

export interface Authenticator {
  /** A user from a Bearer JWT. */
  user(credentials: Credentials): Promise<Principal | Problem>;
  /** A project token from HTTP Basic (pk_… / sk_…). */
  token(credentials: Credentials): Promise<Principal | Problem>;
}

/** Header-safe ids only: a JWT `sub` becomes a header value upstream. */
const SAFE_SUB = /^[\x21-\x7e]{1,255}$/;

export function createAuthenticator(deps: { jwt: JwtVerifier; access: AccessRepo }): Authenticator {
  const bearer = { 'www-authenticate': BEARER_CHALLENGE };
  const basic = { 'www-authenticate': BASIC_CHALLENGE };
  return {
    async user(credentials) {
      if (credentials.scheme === 'none') return problem('unauthenticated', 'a Bearer token is required', undefined, bearer);
      if (credentials.scheme === 'malformed') return withChallenge(credentials.refusal, BEARER_CHALLENGE);
      if (credentials.scheme !== 'bearer') {
        return problem('unauthenticated', 'this route takes a Bearer token', undefined, bearer);
      }
      const result = await deps.jwt.verify(credentials.token);
      if (!result.ok) {
        return problem('invalid_credentials', 'the Bearer token is invalid or expired', undefined, {
          'www-authenticate': `${BEARER_CHALLENGE}, error="invalid_token"`,
        });
      }
      if (!SAFE_SUB.test(result.user.id)) {
        return problem('invalid_credentials', 'the token subject has unsupported characters', undefined, {
          'www-authenticate': `${BEARER_CHALLENGE}, error="invalid_token"`,
        });
      }
      return { kind: 'user', id: result.user.id, email: result.user.email, emailVerified: result.user.emailVerified };
    },

    async token(credentials) {
      if (credentials.scheme === 'none') return problem('unauthenticated', 'project token credentials are required', undefined, basic);
      if (credentials.scheme === 'malformed') return withChallenge(credentials.refusal, BASIC_CHALLENGE);
      if (credentials.scheme !== 'basic') {
        return problem('unauthenticated', 'this route takes a project token as HTTP Basic credentials', undefined, basic);
      }
      const invalid = problem('invalid_credentials', 'invalid project token', undefined, basic);
      // Format and checksum first: a malformed key never reaches the database.
      if (!isWellFormedPublicKey(credentials.user) || !isWellFormedPrivateKey(credentials.password)) return invalid;
      const record = await deps.access.tokenBySecretHash(sha256(credentials.password));
      if (!record) return invalid;
      const given = Buffer.from(credentials.user, 'utf8');
      const stored = Buffer.from(record.publicKey, 'utf8');
      const sameKey = given.length === stored.length && timingSafeEqual(given, stored);
      if (!sameKey || !record.active || !record.projectLive) return invalid;
      return { kind: 'token', id: record.id, projectId: record.projectId, workspaceId: record.workspaceId };
    },
  };
}
