import { createHash, randomBytes } from 'node:crypto';
import { ApprovalError } from './errors.js';

/**
 * Change ids are 8 characters of Crockford base32 (40 random bits): short enough to read out and
 * type into psql, and without I, L, O, U so nobody confuses 1/I/L or 0/O.
 */
export const ID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const ID_LENGTH = 8;

export function newChangeId(random: (n: number) => Uint8Array = randomBytes): string {
  const bytes = random(5); // 40 bits = 8 x 5 bits
  let bits = 0n;
  for (const b of bytes) bits = (bits << 8n) | BigInt(b);
  let out = '';
  for (let i = ID_LENGTH - 1; i >= 0; i--) out += ID_ALPHABET[Number((bits >> BigInt(i * 5)) & 31n)];
  return out;
}

/**
 * Accepts what a person types: lower case, hyphens or spaces, and the letters Crockford maps
 * (O -> 0, I and L -> 1). Returns the canonical id or throws invalid_id.
 */
export function parseChangeId(input: string): string {
  let out = '';
  for (const ch of input.trim().toUpperCase()) {
    if (ch === '-' || ch === ' ') continue;
    const c = ch === 'O' ? '0' : ch === 'I' || ch === 'L' ? '1' : ch;
    if (!ID_ALPHABET.includes(c)) {
      throw new ApprovalError('invalid_id', `"${input}" is not a change id (unexpected character "${ch}")`, 'change ids are 8 characters such as 7KQ2M9XD; SHOW PENDING lists them');
    }
    out += c;
  }
  if (out.length !== ID_LENGTH) {
    throw new ApprovalError('invalid_id', `"${input}" is not a change id (expected ${ID_LENGTH} characters, got ${out.length})`, 'change ids are 8 characters such as 7KQ2M9XD; SHOW PENDING lists them');
  }
  return out;
}

/** sha256 (hex) of the exact statement text as UTF-8: what an approval is bound to. */
export function textHash(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}
