/**
 * The only door to libpg_query (the real PostgreSQL 18 parser compiled to wasm).
 * `loadAnalyzer()` once at start-up, then everything here is synchronous.
 *
 * Units, because libpg_query mixes them (docs/analyzer.md, "Offsets"):
 * - `stmt_location` / `stmt_len` and node `location`s are UTF-8 BYTE offsets into the text;
 *   a missing `stmt_location` is 0, a missing or 0 `stmt_len` means "to the end of the text".
 * - a parse error's `cursorPosition` is a 0-based CHARACTER (code point) offset.
 * JS strings index UTF-16 code units; `SourceLocation.char` uses those.
 */
import {
  fingerprintSync,
  loadModule,
  normalizeSync,
  parsePlPgSQLSync,
  parseSync,
  scanSync,
  type ParseResult,
} from 'libpg-query';
import type { ParseFailure, SourceLocation } from './types.js';

let loaded = false;
let loading: Promise<void> | undefined;

/** Loads the parser's wasm module (about 30 ms). Safe to call many times; the work happens once. */
export function loadAnalyzer(): Promise<void> {
  if (loaded) return Promise.resolve();
  loading ??= loadModule().then(() => { loaded = true; });
  return loading;
}

export const analyzerLoaded = (): boolean => loaded;

function ensureLoaded(): void {
  if (!loaded) throw new Error('pgairlock analyzer used before loadAnalyzer() resolved: await loadAnalyzer() once at start-up');
}

/** One raw statement of libpg_query's output: the node wrapper `{ SelectStmt: {...} }` and its byte range. */
export interface RawStatement {
  readonly stmt: Record<string, unknown>;
  readonly stmt_location?: number;
  readonly stmt_len?: number;
}

export type ParseOutcome =
  | { readonly ok: true; readonly stmts: readonly RawStatement[] }
  | { readonly ok: false; readonly error: ParseFailure };

/**
 * Parses SQL text. Never throws for bad SQL: a syntax error comes back as `ok: false` with the
 * parser's message and position. Empty, whitespace-only and comment-only texts give 0 statements.
 */
export function parseSql(sql: string): ParseOutcome {
  ensureLoaded();
  if (sql.length === 0) return { ok: true, stmts: [] };
  let result: ParseResult;
  try {
    result = parseSync(sql);
  } catch (err) {
    return { ok: false, error: parseFailure(err, sql) };
  }
  return { ok: true, stmts: (result.stmts ?? []) as unknown as RawStatement[] };
}

/** The bare parser, for benchmarks that compare against it. */
export function bareParse(sql: string): unknown {
  return parseSync(sql);
}

function parseFailure(err: unknown, sql: string): ParseFailure {
  const message = err instanceof Error ? err.message : String(err);
  const details = (err as { sqlDetails?: { cursorPosition?: number } }).sqlDetails;
  const cp = details?.cursorPosition;
  if (typeof cp !== 'number' || cp < 0) return { message };
  const char = codePointToUnitIndex(sql, cp);
  return { message, location: { char, byte: Buffer.byteLength(sql.slice(0, char), 'utf8') } };
}

/** Parses a PL/pgSQL function (a whole CREATE FUNCTION statement). Throws on a body the PL/pgSQL parser rejects. */
export function parsePlpgsql(createFunctionSql: string): { plpgsql_funcs?: unknown[] } {
  ensureLoaded();
  return parsePlPgSQLSync(createFunctionSql) as unknown as { plpgsql_funcs?: unknown[] };
}

/** libpg_query's fingerprint (hex). Throws on text that does not parse. */
export function fingerprint(sql: string): string {
  ensureLoaded();
  return fingerprintSync(sql);
}

/** libpg_query's normalized text (constants replaced by $n). Throws on text that does not parse. */
export function normalize(sql: string): string {
  ensureLoaded();
  return normalizeSync(sql);
}

/** True when the text is pure ASCII, so byte offsets equal UTF-16 offsets (the common, fast case). */
export function isAscii(sql: string): boolean {
  return Buffer.byteLength(sql, 'utf8') === sql.length;
}

/**
 * Converts UTF-8 byte offsets of one text into UTF-16 offsets, in increasing order, in one pass overall.
 * Create one per text; call `toChar` with non-decreasing byte offsets (any order works, but backwards
 * calls restart from 0).
 */
export class OffsetMap {
  private readonly buf: Buffer | undefined;
  private lastByte = 0;
  private lastChar = 0;
  constructor(private readonly sql: string, ascii = isAscii(sql)) {
    this.buf = ascii ? undefined : Buffer.from(sql, 'utf8');
  }
  get byteLength(): number { return this.buf ? this.buf.length : this.sql.length; }
  toChar(byte: number): number {
    if (!this.buf) return byte;
    if (byte < this.lastByte) { this.lastByte = 0; this.lastChar = 0; }
    this.lastChar += this.buf.toString('utf8', this.lastByte, byte).length;
    this.lastByte = byte;
    return this.lastChar;
  }
  location(byte: number): SourceLocation { return { byte, char: this.toChar(byte) }; }
}

/** UTF-16 index of the `cp`-th code point (PostgreSQL counts characters as code points). */
export function codePointToUnitIndex(s: string, cp: number): number {
  let units = 0;
  for (let n = 0; n < cp && units < s.length; n++) {
    const c = s.charCodeAt(units);
    units += c >= 0xd800 && c <= 0xdbff && units + 1 < s.length ? 2 : 1;
  }
  return units;
}

/**
 * Index of the first character of the first token at or after `from`: skips whitespace, `--` line
 * comments and (nested) block comments, the way PostgreSQL's scanner does. Used to point at a
 * statement's first keyword rather than at the comments libpg_query includes in its range.
 */
export function skipSpaceAndComments(s: string, from: number, to = s.length): number {
  let i = from;
  while (i < to) {
    const c = s.charCodeAt(i);
    if (c === 32 || (c >= 9 && c <= 13)) { i++; continue; }
    if (c === 45 /* - */ && s.charCodeAt(i + 1) === 45) {
      i += 2;
      while (i < to && s.charCodeAt(i) !== 10 && s.charCodeAt(i) !== 13) i++;
      continue;
    }
    if (c === 47 /* / */ && s.charCodeAt(i + 1) === 42 /* * */) {
      let depth = 1;
      i += 2;
      while (i < to && depth > 0) {
        if (s.charCodeAt(i) === 47 && s.charCodeAt(i + 1) === 42) { depth++; i += 2; }
        else if (s.charCodeAt(i) === 42 && s.charCodeAt(i + 1) === 47) { depth--; i += 2; }
        else i++;
      }
      continue;
    }
    break;
  }
  return Math.min(i, to);
}

/**
 * The value part of a PL/pgSQL assignment (`x := a + 1`, `r.f = 2`, `arr[i] := v`): everything after the
 * first `:=` or `=` token, found with the real scanner (not by searching the text).
 */
export function plpgsqlAssignmentValue(assignment: string): string | undefined {
  ensureLoaded();
  let tokens: Array<{ start: number; end: number; tokenName: string; text?: string }>;
  try {
    tokens = scanSync(assignment).tokens;
  } catch {
    return undefined;
  }
  for (const t of tokens) {
    // libpg-query names the ':=' token UNKNOWN; its scanned text is what identifies it.
    if (t.tokenName === 'COLON_EQUALS' || t.text === ':=' || t.text === '=') {
      const buf = Buffer.from(assignment, 'utf8');
      return buf.toString('utf8', t.end);
    }
  }
  return undefined;
}
