import { createPublicKey } from 'node:crypto';
import {
  createRemoteJWKSet,
  errors as joseErrors,
  importJWK,
  importSPKI,
  jwtVerify,
  type CryptoKey,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import type { JwtKeyConfig } from '../config.ts';
import { foldEmail } from '../domain.ts';

/** Allowed clock skew for exp / nbf / iat, in seconds. */
export const CLOCK_TOLERANCE_S = 5;

export interface VerifiedUser {
  id: string;
  email: string | undefined;
  emailVerified: boolean;
  /** `exp`, seconds since the epoch. */
  exp: number;
}

export type JwtResult = { ok: true; user: VerifiedUser } | { ok: false; reason: string };

export interface JwtVerifier {
  verify(token: string): Promise<JwtResult>;
  readonly algorithms: readonly string[];
}

export interface JwtVerifierOptions {
  key: JwtKeyConfig;
  issuer: string;
  audience: string;
  algorithms?: string[] | undefined;
  /** For tests: a fixed clock. */
  currentDate?: () => Date;
}

function algorithmForKeyObject(pem: string): string {
  const key = createPublicKey(pem);
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    case 'ed25519':
      return 'EdDSA';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return 'ES256';
      if (curve === 'secp384r1') return 'ES384';
      if (curve === 'secp521r1') return 'ES512';
      throw new Error(`unsupported EC curve ${curve}`);
    }
    default:
      throw new Error(`unsupported public key type ${key.asymmetricKeyType}`);
  }
}

function algorithmForJwk(jwk: JWK): string {
  if (typeof jwk.alg === 'string') return jwk.alg;
  if (jwk.kty === 'RSA') return 'RS256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  if (jwk.kty === 'EC') {
    if (jwk.crv === 'P-256') return 'ES256';
    if (jwk.crv === 'P-384') return 'ES384';
    if (jwk.crv === 'P-521') return 'ES512';
  }
  throw new Error(`cannot tell the algorithm of a ${jwk.kty} JWK; set "alg" or GATE_JWT_ALGORITHMS`);
}

/**
 * `email_verified` as identity providers send it: a boolean, or (some providers) the
 * strings "true" / "false". Absent counts as verified (CONTRACT §3: "not false");
 * anything else — "false", 0, null, garbage — does not.
 */
function isVerified(claim: unknown): boolean {
  return claim === undefined || claim === true || claim === 'true';
}

/** The path word for "the caller" in `{user}` segments: never a user id (CONTRACT §3). */
export const ME = 'me';

/** C0 controls, DEL and C1 controls. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Why a `sub` cannot be a user id, or undefined when it can (CONTRACT §3): user ids
 * are opaque — any string of 1–255 characters (code points) without control
 * characters (Auth0's `auth0|…`, e-mail-like, UUIDs, URLs) — except `me`, the path
 * word for the caller, which would make `DELETE …/members/me` ambiguous.
 */
export function userIdProblem(sub: unknown): string | undefined {
  if (typeof sub !== 'string' || sub === '') return 'sub must be a non-empty string';
  let length = 0;
  for (const _ of sub) if (++length > 255) return 'sub is longer than 255 characters';
  if (CONTROL.test(sub)) return 'sub has control characters';
  // A lone surrogate is not a character and cannot be encoded in a path or a header.
  if (/\p{Cs}/u.test(sub)) return 'sub is not well-formed text';
  if (sub === ME) return 'sub "me" is reserved';
  return undefined;
}

export { foldEmail };

/** Keys are imported once, here; a bad key fails at construction, not on a request. */
export async function createJwtVerifier(options: JwtVerifierOptions): Promise<JwtVerifier> {
  let key: CryptoKey | Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  switch (options.key.kind) {
    case 'secret':
      key = new TextEncoder().encode(options.key.secret);
      algorithms = options.algorithms ?? ['HS256'];
      break;
    case 'public-key': {
      const text = options.key.key.trim();
      if (text.startsWith('{')) {
        const jwk = JSON.parse(text) as JWK;
        if ('d' in jwk || jwk.kty === 'oct') throw new Error('GATE_JWT_PUBLIC_KEY must be a public key, not a private or symmetric one');
        const alg = options.algorithms?.[0] ?? algorithmForJwk(jwk);
        algorithms = options.algorithms ?? [alg];
        key = (await importJWK(jwk, alg)) as CryptoKey;
      } else {
        const alg = options.algorithms?.[0] ?? algorithmForKeyObject(text);
        algorithms = options.algorithms ?? [alg];
        key = await importSPKI(text, alg);
      }
      break;
    }
    case 'jwks':
      key = createRemoteJWKSet(new URL(options.key.url), {
        timeoutDuration: 5_000,
        cooldownDuration: 30_000,
        cacheMaxAge: 10 * 60_000,
      });
      algorithms = options.algorithms ?? ['RS256', 'PS256', 'ES256', 'ES384', 'EdDSA'];
      break;
  }

  const verifyOptions = {
    algorithms,
    issuer: options.issuer,
    audience: options.audience,
    // jose checks exp only when present: require it (and sub) explicitly.
    requiredClaims: ['exp', 'sub'],
    clockTolerance: CLOCK_TOLERANCE_S,
  };

  return {
    algorithms,
    async verify(token: string): Promise<JwtResult> {
      try {
        const opts = options.currentDate ? { ...verifyOptions, currentDate: options.currentDate() } : verifyOptions;
        const { payload } = await jwtVerify(token, key as Parameters<typeof jwtVerify>[1], opts);
        const subProblem = userIdProblem(payload.sub);
        if (subProblem !== undefined) return { ok: false, reason: subProblem };
        if (typeof payload.exp !== 'number') return { ok: false, reason: 'exp must be a number' };
        const email = typeof payload['email'] === 'string' ? foldEmail(payload['email'].trim()) : undefined;
        return {
          ok: true,
          user: {
            id: payload.sub as string, // a string: userIdProblem() checked it
            email: email || undefined,
            emailVerified: email !== undefined && isVerified(payload['email_verified']),
            exp: payload.exp,
          },
        };
      } catch (err) {
        if (err instanceof joseErrors.JOSEError) return { ok: false, reason: err.code };
        return { ok: false, reason: 'invalid token' };
      }
    },
  };
}
