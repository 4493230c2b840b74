import { randomBytes } from 'node:crypto';

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** A new id: prefix + 16 base62 characters (~95 random bits). */
export function newId(prefix: 'ws' | 'prj' | 'tok' | 'inv'): string {
  const bytes = randomBytes(16);
  let out = '';
  for (let i = 0; i < 16; i++) out += BASE62[bytes[i]! % 62];
  return `${prefix}_${out}`;
}
