import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/**
 * Project-token key formats. Both keys carry a prefix so secret scanners can
 * match them; the private key also carries a CRC-32 checksum so a mistyped or
 * truncated key is refused before any database lookup.
 *
 *   public  pk_ + 22 base62 chars (128 random bits)
 *   private sk_ + 43 base62 chars (256 random bits) + 6 base62 chars (CRC-32 of what precedes)
 */

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function toBase62(bytes: Buffer, length: number): string {
  let n = BigInt('0x' + (bytes.length > 0 ? bytes.toString('hex') : '0'));
  let out = '';
  while (n > 0n) {
    out = BASE62[Number(n % 62n)] + out;
    n /= 62n;
  }
  if (out.length > length) throw new Error('value does not fit');
  return out.padStart(length, '0');
}

function checksum(body: string): string {
  const c = crc32(body);
  const buf = Buffer.alloc(4);
  buf.writeUInt32BE(c >>> 0);
  return toBase62(buf, 6);
}

export const PUBLIC_KEY_PATTERN = /^pk_[0-9A-Za-z]{22}$/;
export const PRIVATE_KEY_PATTERN = /^sk_[0-9A-Za-z]{49}$/;

export function generatePublicKey(): string {
  return 'pk_' + toBase62(randomBytes(16), 22);
}

export function generatePrivateKey(): string {
  const body = 'sk_' + toBase62(randomBytes(32), 43);
  return body + checksum(body);
}

export function isWellFormedPublicKey(value: string): boolean {
  return PUBLIC_KEY_PATTERN.test(value);
}

/** Format and checksum only; says nothing about whether the key exists. */
export function isWellFormedPrivateKey(value: string): boolean {
  if (!PRIVATE_KEY_PATTERN.test(value)) return false;
  return checksum(value.slice(0, -6)) === value.slice(-6);
}
