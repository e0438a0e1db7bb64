import type { Finding, Severity, SourceLocation } from './types.js';

/**
 * Building findings and positions. libpg_query reports UTF-8 byte offsets; editors, SARIF and
 * the wire's ErrorResponse want characters, so every finding carries both.
 */

/** Static description of a rule: what docs/rules.md lists and `pgairlock check` prints. */
export interface RuleMeta {
  /** Stable kebab-case id used in findings, `--disable`, `check.disabled_rules` and ignore comments. */
  readonly id: string;
  readonly severity: Severity;
  /** One line, e.g. "CREATE INDEX without CONCURRENTLY". */
  readonly title: string;
  /** Why it is dangerous (default text; a rule may specialise it per statement). */
  readonly why: string;
  /** The safe alternative (default text; a rule may specialise it per statement). */
  readonly fix: string;
  /** squawk rule ids this rule covers (https://squawkhq.com/docs/rules). */
  readonly squawk: readonly string[];
  /** strong_migrations checks this rule covers (README section titles). */
  readonly strongMigrations: readonly string[];
  /**
   * Off unless enabled (`pgairlock check --enable id`, config `check.enabled_rules`): application
   * rollback-compatibility checks whose verdict depends on how clients use the object. runRules
   * still reports them; consumers filter.
   */
  readonly optIn?: boolean;
}

export const SEVERITY_RANK: Readonly<Record<Severity, number>> = { info: 0, warning: 1, error: 2 };

/** True when `s` is at least as severe as `threshold`. */
export function severityAtLeast(s: Severity, threshold: Severity): boolean {
  return SEVERITY_RANK[s] >= SEVERITY_RANK[threshold];
}

// One-entry memo: a script's findings all convert against the same text, and the bytes of a
// 1,000-statement migration should be encoded once, not once per finding.
let memoText: string | undefined;
let memoBytes: Buffer | undefined;
let memoAscii = false;

function bytesOf(sql: string): { bytes: Buffer; ascii: boolean } {
  if (memoText !== sql || memoBytes === undefined) {
    memoText = sql;
    memoBytes = Buffer.from(sql, 'utf8');
    memoAscii = memoBytes.length === sql.length;
  }
  return { bytes: memoBytes, ascii: memoAscii };
}

/** 0-based UTF-16 character offset of UTF-8 byte offset `byte` in `sql` (clamped to the text). */
export function byteToChar(sql: string, byte: number): number {
  const { bytes, ascii } = bytesOf(sql);
  const b = Math.max(0, Math.min(byte, bytes.length));
  if (ascii) return b;
  return bytes.subarray(0, b).toString('utf8').length;
}

/** UTF-8 byte offset of 0-based character offset `char` in `sql`. */
export function charToByte(sql: string, char: number): number {
  return Buffer.byteLength(sql.slice(0, Math.max(0, char)), 'utf8');
}

export function locationAt(sql: string, byte: number): SourceLocation {
  return { byte, char: byteToChar(sql, byte) };
}

/** 1-based line and column (in characters) of a 0-based character offset, plus that line's text. */
export function lineColumn(text: string, char: number): { line: number; column: number; lineText: string } {
  let line = 1;
  let lineStart = 0;
  const end = Math.max(0, Math.min(char, text.length));
  for (let i = 0; i < end; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  let lineEnd = text.indexOf('\n', lineStart);
  if (lineEnd < 0) lineEnd = text.length;
  let lineText = text.slice(lineStart, lineEnd);
  if (lineText.endsWith('\r')) lineText = lineText.slice(0, -1);
  return { line, column: end - lineStart + 1, lineText };
}

export interface FindingDetails {
  readonly message: string;
  readonly why?: string;
  readonly fix?: string;
  readonly severity?: Severity;
}

export function makeFinding(meta: RuleMeta, sql: string, byte: number, details: FindingDetails): Finding {
  return {
    rule: meta.id,
    severity: details.severity ?? meta.severity,
    message: details.message,
    why: details.why ?? meta.why,
    fix: details.fix ?? meta.fix,
    location: locationAt(sql, byte),
  };
}
