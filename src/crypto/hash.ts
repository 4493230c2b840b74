import { createHash } from 'node:crypto';

/** SHA-256 of a UTF-8 string: how token secrets and invite links are looked up. */
export function sha256(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
