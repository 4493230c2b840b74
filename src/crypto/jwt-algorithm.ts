import type { KeyObject } from 'node:crypto';

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
