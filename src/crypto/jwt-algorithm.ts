import { createPublicKey, type KeyObject } from 'node:crypto';

/** The asymmetric JWS algorithms GATE_JWT_ALGORITHMS may name. */
export const ASYMMETRIC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

/**
 * The JWS algorithm a public key verifies by default (GATE_JWT_ALGORITHMS unset), or
 * undefined for a key type or curve the gateway does not accept. One answer for the
 * configuration check and the verifier, so both accept and refuse the same keys.
 */
export function defaultAlgorithmFor(key: KeyObject): string | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'RS256';
    case 'rsa-pss':
      return 'PS256';
    case 'ed25519':
      return 'EdDSA';
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      return curve === 'prime256v1' ? 'ES256' : curve === 'secp384r1' ? 'ES384' : curve === 'secp521r1' ? 'ES512' : undefined;
    }
    default:
      return undefined;
  }
}

/** Which key types each asymmetric algorithm verifies with. */
function algorithmFits(alg: string, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  if (/^RS\d+$/.test(alg)) return type === 'rsa';
  if (/^PS\d+$/.test(alg)) return type === 'rsa' || type === 'rsa-pss';
  if (alg === 'EdDSA') return type === 'ed25519' || type === 'ed448';
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (alg === 'ES256') return type === 'ec' && curve === 'prime256v1';
  if (alg === 'ES384') return type === 'ec' && curve === 'secp384r1';
  if (alg === 'ES512') return type === 'ec' && curve === 'secp521r1';
  return false;
}

/** The algorithm `createJwtVerifier` would pick for a key without GATE_JWT_ALGORITHMS. */
function defaultAlgorithm(key: KeyObject, jwkAlg: unknown): string | undefined {
  return typeof jwkAlg === 'string' ? jwkAlg : defaultAlgorithmFor(key);
}

/**
 * Why GATE_JWT_PUBLIC_KEY would not import as a verification key (undefined: it does).
 * Mirrors what `createJwtVerifier` accepts: an SPKI PEM ("BEGIN PUBLIC KEY") or a public JWK.
 * The message never quotes the key.
 */
export function publicKeyProblem(text: string, algorithms: string[] | undefined): string | undefined {
  const trimmed = text.trim();
  let key: KeyObject;
  let jwkAlg: unknown;
  if (trimmed.startsWith('{')) {
    let jwk: Record<string, unknown>;
    try {
      jwk = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      return 'is neither a PEM public key nor valid JSON for a JWK';
    }
    if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) return 'a JWK must be a JSON object';
    if ('d' in jwk || jwk['kty'] === 'oct') return 'must be a public key, not a private or symmetric one';
    try {
      key = createPublicKey({ key: jwk as never, format: 'jwk' });
    } catch {
      return `is not a valid public JWK (kty ${JSON.stringify(jwk['kty'] ?? null)})`;
    }
    jwkAlg = jwk['alg'];
  } else {
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(trimmed)) return 'must be a public key, not a private one';
    if (!trimmed.startsWith('-----BEGIN PUBLIC KEY-----')) {
      return 'must be a PEM public key (-----BEGIN PUBLIC KEY-----, SPKI) or a public JWK';
    }
    try {
      key = createPublicKey({ key: trimmed, format: 'pem' });
    } catch {
      return 'is not a valid PEM public key (cannot decode it)';
    }
  }
  const alg = algorithms?.[0] ?? defaultAlgorithm(key, jwkAlg);
  if (alg === undefined) return `a ${key.asymmetricKeyType ?? 'unknown'} key is not supported; use RSA, EC (P-256/384/521) or Ed25519`;
  if (!ASYMMETRIC_ALGORITHMS.includes(alg)) return `algorithm ${alg} is not supported`;
  if (!algorithmFits(alg, key)) return `an ${key.asymmetricKeyType} key cannot verify ${alg}`;
  return undefined;
}
