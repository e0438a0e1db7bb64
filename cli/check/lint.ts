import { analyze, loadAnalyzer, newScriptContext } from '../../analyzer/index.js';
import { makeFinding } from '../../analyzer/findings.js';
import { ruleById } from '../../analyzer/rules/index.js';
import type { Finding, ParseFailure, ScriptContext } from '../../analyzer/types.js';

/**
 * One migration text -> its findings, through the analyzer's public analyze() (which parses once,
 * threads the script context through the statements and runs the rules). This is the only place
 * `check` touches the analyzer.
 */

export interface LintOptions {
  /** server_version_num, e.g. 170000. */
  readonly serverVersion: number;
  /** The migration tool wraps the file in its own transaction. */
  readonly assumeInTransaction: boolean;
}

export interface LintedFinding {
  readonly finding: Finding;
  /** Index of the statement it belongs to (for ignore comments). */
  readonly statement: number;
}

export type LintResult =
  | { readonly ok: true; readonly findings: readonly LintedFinding[]; readonly ranges: readonly { byteStart: number; byteEnd: number }[] }
  | { readonly ok: false; readonly error: ParseFailure };

export async function prepareLinter(): Promise<void> {
  await loadAnalyzer();
}

export function lintText(sql: string, opts: LintOptions): LintResult {
  const context: ScriptContext = newScriptContext();
  context.inTransactionBlock = opts.assumeInTransaction;
  const analysis = analyze(sql, { serverVersion: opts.serverVersion, context });
  if (!analysis.ok) return { ok: false, error: analysis.error };
  const findings: LintedFinding[] = [];
  let openBegin: number | undefined;
  analysis.statements.forEach((s, i) => {
    for (const f of s.findings) findings.push({ finding: f, statement: i });
    if (s.transaction === 'begin') openBegin ??= i;
    else if (s.transaction === 'commit' || s.transaction === 'rollback' || s.transaction === 'prepare') openBegin = undefined;
  });
  // Script-level rule: a BEGIN in this file never ended (only when the file itself opened it).
  const meta = ruleById('uncommitted-transaction');
  if (openBegin !== undefined && context.inTransactionBlock && meta) {
    const s = analysis.statements[openBegin]!;
    findings.push({
      statement: openBegin,
      finding: makeFinding(meta, sql, s.location.byte, { message: 'Transaction opened here is never committed or rolled back in this file.' }),
    });
  }
  return { ok: true, findings, ranges: analysis.statements.map((s) => ({ byteStart: s.byteStart, byteEnd: s.byteEnd })) };
}
