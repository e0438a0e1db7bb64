import * as crypto from 'node:crypto';
import type { Json } from './types.js';

/**
 * Canonical JSON for the hash chain (spec in docs/audit.md, "Chain format"). It is the JSON Canonicalization
 * Scheme (RFC 8785) restricted to what the log stores: object members sorted by key (UTF-16 code units),
 * no whitespace, strings escaped as JSON.stringify does, numbers as ECMAScript Number::toString, members
 * whose value is undefined omitted. Never change this function: every stored hash depends on it.
 */
export function canonicalJson(value: unknown): string {
  if (value instanceof CanonicalFragment) return value.json;
  const out: string[] = [];
  write(value, out);
  return out.join('');
}

/**
 * A value already in canonical form (canonicalJson of sanitize(x)): written verbatim. The writer uses it
 * for the parts of a record that repeat from statement to statement (the analyzer's facts of a prepared
 * statement, the policy's rules), so they are serialised once, not once per record. It changes nothing in
 * the output: the text is exactly what canonicalJson would write for the value it stands for.
 */
export class CanonicalFragment {
  private constructor(readonly json: string) {}

  static of(value: unknown): CanonicalFragment {
    return new CanonicalFragment(canonicalJson(sanitize(value)));
  }

  /** For JSON.stringify (log mirror, exports): the value it stands for. */
  toJSON(): unknown {
    return JSON.parse(this.json);
  }
}

const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function write(value: unknown, out: string[]): void {
  if (value === null) { out.push('null'); return; }
  if (value instanceof CanonicalFragment) { out.push(value.json); return; }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(`canonicalJson: non-finite number ${value}`);
      out.push(JSON.stringify(value));
      return;
    case 'string':
      out.push(JSON.stringify(value));
      return;
    case 'object': {
      if (Array.isArray(value)) {
        out.push('[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(',');
          const v: unknown = value[i];
          if (v === undefined) out.push('null'); else write(v, out);
        }
        out.push(']');
        return;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort(byCodeUnit);
      out.push('{');
      let first = true;
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        if (!first) out.push(',');
        first = false;
        out.push(JSON.stringify(k), ':');
        write(v, out);
      }
      out.push('}');
      return;
    }
    default:
      throw new TypeError(`canonicalJson: cannot serialise a ${typeof value}`);
  }
}

/**
 * canonicalJson(sanitize(value)) in one pass, without building the sanitized copy: what the writer hashes
 * and stores. Fragments are written verbatim (they are sanitized when made).
 */
export function storableJson(value: unknown): string {
  if (value instanceof CanonicalFragment) return value.json;
  const out: string[] = [];
  writeStorable(value, out);
  return out.join('');
}

function writeStorable(value: unknown, out: string[]): void {
  if (value === null || value === undefined) { out.push('null'); return; }
  switch (typeof value) {
    case 'boolean':
      out.push(value ? 'true' : 'false');
      return;
    case 'number':
      out.push(Number.isFinite(value) ? JSON.stringify(value) : 'null');
      return;
    case 'bigint':
      out.push(JSON.stringify(value.toString()));
      return;
    case 'string':
      out.push(JSON.stringify(wellFormed(value)));
      return;
    case 'object': {
      if (value instanceof CanonicalFragment) { out.push(value.json); return; }
      if (Array.isArray(value)) {
        out.push('[');
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out.push(',');
          writeStorable(value[i], out);
        }
        out.push(']');
        return;
      }
      if (value instanceof Date) { out.push(JSON.stringify(value.toISOString())); return; }
      let members: [string, unknown][] = [];
      let renamed = false;
      for (const k of Object.keys(value)) {
        const v = (value as Record<string, unknown>)[k];
        if (v === undefined || typeof v === 'function') continue;
        const wk = wellFormed(k);
        if (wk !== k) renamed = true;
        members.push([wk, v]);
      }
      // Two keys that sanitize alike: the later one wins, as in sanitize().
      if (renamed) members = [...new Map(members)];
      members.sort((a, b) => byCodeUnit(a[0], b[0]));
      out.push('{');
      for (let i = 0; i < members.length; i++) {
        if (i > 0) out.push(',');
        out.push(JSON.stringify(members[i]![0]), ':');
        writeStorable(members[i]![1], out);
      }
      out.push('}');
      return;
    }
    default:
      out.push('null');
  }
}

/**
 * Makes a value storable in jsonb and stable through a store/load round trip: drops undefined members,
 * replaces NUL (jsonb rejects \u0000) and lone surrogates (jsonb rejects them) with U+FFFD, and turns
 * non-finite numbers into null. The result is what gets hashed AND stored, so verify recomputes the same hash.
 */
export function sanitize(value: unknown): Json {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? (Object.is(value, -0) ? 0 : value) : null;
    case 'bigint':
      return value.toString();
    case 'string':
      return wellFormed(value);
    case 'object': {
      if (value instanceof CanonicalFragment) return value as unknown as Json;
      if (Array.isArray(value)) return value.map((v) => sanitize(v));
      if (value instanceof Date) return value.toISOString();
      const out: Record<string, Json> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (v === undefined || typeof v === 'function') continue;
        out[sanitize(k) as string] = sanitize(v);
      }
      return out;
    }
    default:
      return null;
  }
}

/** Replaces lone UTF-16 surrogates and NUL with U+FFFD (what String#toWellFormed does, plus NUL). */
// NUL or any surrogate: only then is the character-by-character pass needed (rare; the regex is native).
// eslint-disable-next-line no-control-regex -- NUL is exactly what jsonb refuses
const SUSPECT = /[\u0000\ud800-\udfff]/;

function wellFormed(s: string): string {
  if (!SUSPECT.test(s)) return s;
  let out: string[] | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let bad = c === 0;
    if (c >= 0xd800 && c <= 0xdbff) {
      const n = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (n >= 0xdc00 && n <= 0xdfff) { out?.push(s[i]!, s[i + 1]!); i++; continue; }
      bad = true;
    } else if (c >= 0xdc00 && c <= 0xdfff) {
      bad = true;
    }
    if (bad) { out ??= [s.slice(0, i)]; out.push('\uFFFD'); } else out?.push(s[i]!);
  }
  return out ? out.join('') : s;
}

export const GENESIS_HASH = '0'.repeat(64);
export const CHAIN_FORMAT_VERSION = 1;

/** The part of a record the hash covers: everything but the hash itself. */
export interface HashedEnvelope {
  readonly id: string;
  readonly instance: string;
  readonly seq: number;
  readonly time: string;
  readonly kind: string;
  readonly prev_hash: string;
  readonly body: Json;
}

/** sha256 (lowercase hex) of the canonical JSON of {v, id, instance, seq, time, kind, prev_hash, body}. */
export function recordHash(env: HashedEnvelope): string {
  return recordHashWithBody(env, canonicalJson(env.body));
}

/**
 * The same hash, given the body's canonical JSON already (the writer serialises each body once and uses
 * the text both for the hash and for the INSERT). Members in canonical (sorted) order, so the result is
 * byte-identical to canonicalJson of the whole envelope.
 */
export function recordHashWithBody(env: Omit<HashedEnvelope, 'body'>, bodyCanonical: string): string {
  if (!Number.isSafeInteger(env.seq)) throw new TypeError(`recordHash: seq ${env.seq} is not a safe integer`);
  const canonical = `{"body":${bodyCanonical},"id":${JSON.stringify(env.id)},"instance":${JSON.stringify(env.instance)},"kind":${JSON.stringify(env.kind)},"prev_hash":${JSON.stringify(env.prev_hash)},"seq":${env.seq},"time":${JSON.stringify(env.time)},"v":${CHAIN_FORMAT_VERSION}}`;
  return sha256Hex(canonical);
}

// crypto.hash (Node >= 20.12): one call, no Hash object; the same digest.
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'hex') => string }).hash;

/** Lowercase hex SHA-256 of the UTF-8 of `text`. */
export function sha256Hex(text: string): string {
  return oneShot ? oneShot('sha256', text, 'hex') : crypto.createHash('sha256').update(text, 'utf8').digest('hex');
}
