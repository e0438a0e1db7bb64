import { createHash } from 'node:crypto';

/**
 * Bound parameter values of a held statement (extended protocol, decided at its Execute with the Bind's
 * values): what the approval is bound to next to the text, and what approvers are shown.
 *
 * A statement such as `DELETE FROM t WHERE id > $1` may be held for one set of values (the planner's
 * estimate with $1 = 10 is above a threshold) and be harmless, or much worse, with others: an approval
 * given for one set of values must never run the text with another. The binding is a sha256 over a
 * canonical encoding of the text, the declared parameter types, and every value with its format, as raw
 * bytes (so values that differ in any byte, NULL and '' , or text and binary of the same bytes never match).
 */

/** Bind's values as the client sent them: raw bytes (never decoded: the binding must be byte-exact). */
export interface BoundParameters {
  /** Parameter type OIDs as the Parse declared them (0 or missing: the server infers the type). */
  readonly types: readonly number[];
  /** Each value's format code, resolved per value (0 text, 1 binary); ignored for NULL. */
  readonly formats: readonly number[];
  /** null is SQL NULL. */
  readonly values: readonly (Uint8Array | null)[];
}

/** One parameter as approvers see it. */
export interface ShownParam {
  /** 1 for $1. */
  readonly n: number;
  /** Declared type OID, 0 when unspecified (the server inferred it). */
  readonly type: number;
  /** null for a NULL value. */
  readonly format: 'text' | 'binary' | null;
  /**
   * Text-format values as text; binary values (and text-format values that are not valid UTF-8) as hex,
   * `\x...`; null for NULL. Cut at PARAM_SHOW_BYTES bytes of the value (`truncated`).
   */
  readonly value: string | null;
  /** The value's full size in bytes (0 for NULL). */
  readonly bytes: number;
  readonly hex?: true;
  readonly truncated?: true;
}

/** The parameters recorded with a change request (`ChangeRequest.params`). */
export interface ChangeParams {
  readonly count: number;
  readonly shown: ShownParam[];
  /** Parameters left out because the display budget (PARAMS_SHOW_TOTAL_BYTES) was spent; still bound by the hash. */
  readonly omitted?: number;
}

/** At most this many bytes of one value are kept for display (the binding always covers every byte). */
export const PARAM_SHOW_BYTES = 1024;
/** At most this many bytes of values, all parameters together, are kept for display. */
export const PARAMS_SHOW_TOTAL_BYTES = 16384;

const VERSION = 'pgairlock/bind/v1\n';

const u32 = (n: number): Buffer => {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};

/**
 * sha256 (hex) of the canonical encoding of (text, parameter types, values with their formats):
 *   "pgairlock/bind/v1\n" | u32 len text | text (UTF-8) | u32 #types | u32 type... | u32 #values |
 *   per value: 0xFF (NULL) | 0x00 (text) u32 len bytes | 0x01 (binary) u32 len bytes
 * Lengths prefix every variable part, so no two different inputs share an encoding.
 */
export function paramsHash(sql: string, params: BoundParameters): string {
  const h = createHash('sha256');
  const text = Buffer.from(sql, 'utf8');
  h.update(VERSION);
  h.update(u32(text.length));
  h.update(text);
  h.update(u32(params.types.length));
  for (const t of params.types) h.update(u32(t));
  h.update(u32(params.values.length));
  params.values.forEach((v, i) => {
    if (v === null) {
      h.update(Buffer.of(0xff));
      return;
    }
    h.update(Buffer.of(params.formats[i] === 1 ? 1 : 0));
    h.update(u32(v.length));
    h.update(v);
  });
  return h.digest('hex');
}

/** True when there is something to bind: statements without parameters are bound to their text alone. */
export const hasParams = (p: BoundParameters | undefined): p is BoundParameters => p !== undefined && p.values.length > 0;

const hex = (b: Uint8Array): string => `\\x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`;

/** Valid UTF-8 (decoding does not replace anything). */
function utf8(b: Uint8Array): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(b);
  } catch {
    return undefined;
  }
}

/** What approvers are shown: every value up to the display caps (see PARAM_SHOW_BYTES). */
export function showParams(params: BoundParameters): ChangeParams {
  const shown: ShownParam[] = [];
  let budget = PARAMS_SHOW_TOTAL_BYTES;
  for (let i = 0; i < params.values.length; i++) {
    const v = params.values[i]!;
    const type = params.types[i] ?? 0;
    if (v === null) {
      shown.push({ n: i + 1, type, format: null, value: null, bytes: 0 });
      continue;
    }
    const cap = Math.min(PARAM_SHOW_BYTES, budget);
    if (cap <= 0 && v.length > 0) break;
    const binary = params.formats[i] === 1;
    const cut = v.length > cap;
    const part = cut ? v.subarray(0, cap) : v;
    budget -= part.length;
    let text = binary ? undefined : utf8(part);
    // A cut may split a multi-byte character: back off to the last whole one.
    if (!binary && text === undefined && cut) {
      for (let k = 1; k <= 3 && text === undefined && part.length > k; k++) text = utf8(part.subarray(0, part.length - k));
    }
    shown.push({
      n: i + 1,
      type,
      format: binary ? 'binary' : 'text',
      value: text ?? hex(part),
      bytes: v.length,
      ...(text === undefined ? { hex: true as const } : {}),
      ...(cut ? { truncated: true as const } : {}),
    });
  }
  const omitted = params.values.length - shown.length;
  return { count: params.values.length, shown, ...(omitted > 0 ? { omitted } : {}) };
}

/** One line per parameter, for SHOW CHANGE and the CLI: `$1 (text, type 23) = 100`. */
export function paramLines(p: ChangeParams): string[] {
  const lines = p.shown.map((s) => {
    const what = s.format === null ? 'NULL' : `${s.format}${s.type ? `, type ${s.type}` : ''}${s.hex && s.format === 'text' ? ', not UTF-8: hex' : ''}`;
    if (s.value === null) return `$${s.n} = NULL${s.type ? ` (type ${s.type})` : ''}`;
    const tail = s.truncated ? ` … (${s.bytes} bytes, truncated)` : '';
    // Text quoted as a SQL literal, so '' and ' 1' read unambiguously next to NULL.
    const value = s.hex ? s.value : `'${s.value.replaceAll("'", "''")}'`;
    return `$${s.n} (${what}) = ${value}${tail}`;
  });
  if (p.omitted) lines.push(`… ${p.omitted} more parameter(s) not shown (display limit of ${PARAMS_SHOW_TOTAL_BYTES} bytes); the approval covers all ${p.count}`);
  return lines;
}
