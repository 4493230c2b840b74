import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM for stored token secrets. The ciphertext is bound to the row it
 * belongs to (associated data = row id + key id), so a ciphertext copied onto
 * another row fails to decrypt. The key id (a hash prefix of the key) is stored
 * beside each ciphertext, so GATE_TOKEN_ENCRYPTION_KEY can be rotated later by
 * keeping the old key around for decryption.
 *
 * Layout: version (1 byte, = 1) | IV (12 bytes) | tag (16 bytes) | ciphertext.
 */
export interface SecretBox {
  readonly keyId: string;
  seal(plaintext: string, rowId: string): Buffer;
  open(sealed: Uint8Array, rowId: string, keyId: string): string;
}

const VERSION = 1;

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('packagento-gate/token-key/').update(key).digest('hex').slice(0, 12);
}

export function createSecretBox(key: Buffer, oldKeys: Buffer[] = []): SecretBox {
  if (key.length !== 32) throw new Error('the token encryption key must be 32 bytes');
  const keys = new Map<string, Buffer>([[keyIdOf(key), key], ...oldKeys.map((k) => [keyIdOf(k), k] as const)]);
  const keyId = keyIdOf(key);
  const aad = (rowId: string, kid: string) => Buffer.from(`packagento-gate/token/${rowId}/${kid}`, 'utf8');
  return {
    keyId,
    seal(plaintext, rowId) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(aad(rowId, keyId));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), ct]);
    },
    open(sealed, rowId, kid) {
      const buf = Buffer.from(sealed);
      const k = keys.get(kid);
      if (!k) throw new Error(`no key with id ${kid} is configured`);
      if (buf.length < 29 || buf[0] !== VERSION) throw new Error('unknown ciphertext format');
      const decipher = createDecipheriv('aes-256-gcm', k, buf.subarray(1, 13));
      decipher.setAAD(aad(rowId, kid));
      decipher.setAuthTag(buf.subarray(13, 29));
      return Buffer.concat([decipher.update(buf.subarray(29)), decipher.final()]).toString('utf8');
    },
  };
}
