import { scanSync } from 'libpg-query';
import { RULES } from './index.js';

/**
 * Ignore comments, found with libpg_query's scanner (SQL_COMMENT and C_COMMENT tokens), so text
 * inside strings, dollar-quoted bodies and identifiers never counts as a comment:
 *
 *   -- pgairlock:ignore rule-id[, rule-id ...]   the statement it sits inside; else the next
 *                                               statement when that starts on the comment's last
 *                                               line; else the statement ending on the comment's
 *                                               first line; else the next statement
 *   -- pgairlock:ignore                          every rule, for that statement
 *   -- pgairlock:ignore-file rule-id[, ...]      the whole text (no ids: every rule)
 *
 * squawk's rule ids are accepted as aliases of ours. These are for `pgairlock check`; a governed
 * proxy should not let the statement's author switch off its own checks.
 */

export const ALL_RULES = '*';

export interface StatementRange {
  readonly byteStart: number;
  readonly byteEnd: number;
}

export interface IgnoreDirectives {
  /** Per statement (same order as the ranges given): rule ids ignored, ALL_RULES for all. */
  readonly perStatement: ReadonlyArray<ReadonlySet<string>>;
  /** Rule ids ignored for the whole text. */
  readonly file: ReadonlySet<string>;
}

const ALIASES: ReadonlyMap<string, string> = (() => {
  const m = new Map<string, string>();
  for (const r of RULES) for (const s of r.squawk) if (!m.has(s)) m.set(s, r.id);
  return m;
})();

/** Our rule id for `id` (itself, or the rule a squawk id maps to); unknown ids pass through. */
export function canonicalRuleId(id: string): string {
  const lower = id.trim().toLowerCase();
  return ALIASES.get(lower) ?? lower;
}

interface Directive {
  readonly file: boolean;
  readonly rules: readonly string[];
}

/** Reads one comment's text; undefined when it is not a pgairlock directive. */
export function parseDirective(comment: string): Directive | undefined {
  let body = comment;
  if (body.startsWith('--')) body = body.slice(2);
  else if (body.startsWith('/*')) body = body.slice(2, body.endsWith('*/') ? -2 : undefined);
  body = body.trim();
  const lower = body.toLowerCase();
  let rest: string;
  let file = false;
  if (lower.startsWith('pgairlock:ignore-file')) {
    rest = body.slice('pgairlock:ignore-file'.length);
    file = true;
  } else if (lower.startsWith('pgairlock:ignore')) {
    rest = body.slice('pgairlock:ignore'.length);
  } else {
    return undefined;
  }
  // The directive word must end here ("pgairlock:ignored" is not a directive).
  if (rest.length > 0 && !isSeparator(rest[0]!)) return undefined;
  const rules: string[] = [];
  let current = '';
  for (const ch of rest) {
    if (isSeparator(ch)) {
      if (current) rules.push(canonicalRuleId(current));
      current = '';
    } else {
      current += ch;
    }
  }
  if (current) rules.push(canonicalRuleId(current));
  return { file, rules };
}

function isSeparator(ch: string): boolean {
  return ch === ',' || ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r';
}

/**
 * Which rules each statement ignores. `ranges` are the statements' byte ranges in `sql`, in order
 * (as from analyze()). Scans `sql` once; call only for text that parsed.
 */
export function collectIgnores(sql: string, ranges: readonly StatementRange[]): IgnoreDirectives {
  const perStatement = ranges.map(() => new Set<string>());
  const file = new Set<string>();
  let tokens: { start: number; end: number; text: string; tokenName: string }[];
  try {
    tokens = scanSync(sql).tokens;
  } catch {
    return { perStatement, file };
  }
  const bytes = Buffer.from(sql, 'utf8');
  for (const tok of tokens) {
    if (tok.tokenName !== 'SQL_COMMENT' && tok.tokenName !== 'C_COMMENT') continue;
    const d = parseDirective(tok.text);
    if (d === undefined) continue;
    const rules = d.rules.length === 0 ? [ALL_RULES] : d.rules;
    if (d.file) {
      for (const r of rules) file.add(r);
      continue;
    }
    const target = targetStatement(ranges, bytes, tok.start, tok.end);
    if (target !== undefined) for (const r of rules) perStatement[target]!.add(r);
  }
  return { perStatement, file };
}

/** Index of the statement a comment at [start, end) applies to. */
function targetStatement(ranges: readonly StatementRange[], bytes: Buffer, start: number, end: number): number | undefined {
  let next: number | undefined;
  for (let i = 0; i < ranges.length; i++) {
    const r = ranges[i]!;
    if (start >= r.byteStart && start < r.byteEnd) return i;
    if (r.byteStart >= end) {
      next = i;
      break;
    }
  }
  // A comment with the next statement on its own line belongs to that statement ("/* x */ DROP ...").
  if (next !== undefined && !bytes.subarray(end, ranges[next]!.byteStart).includes(10)) return next;
  // Trailing comment on the line where the previous statement ends ("...; -- pgairlock:ignore x").
  const prev = next === undefined ? ranges.length - 1 : next - 1;
  if (prev >= 0) {
    const p = ranges[prev]!;
    if (p.byteEnd <= start && !bytes.subarray(p.byteEnd, start).includes(10)) return prev;
  }
  return next;
}

/** True when `rule` is ignored for statement `index`. */
export function isIgnored(d: IgnoreDirectives, index: number, rule: string): boolean {
  if (d.file.has(ALL_RULES) || d.file.has(rule)) return true;
  const s = d.perStatement[index];
  return s !== undefined && (s.has(ALL_RULES) || s.has(rule));
}
