import { lineColumn } from '../../analyzer/findings.js';
import { RULES, type RuleMeta } from '../../analyzer/rules/index.js';
import type { Finding, Severity } from '../../analyzer/types.js';

/**
 * Output formats of `pgairlock check`: text (squawk-like, with a caret), json, SARIF 2.1.0 (GitHub
 * code scanning) and GitHub workflow annotations. Pure: reports in, string out.
 */

export type OutputFormat = 'text' | 'json' | 'sarif' | 'github';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['text', 'json', 'sarif', 'github'];

/** One finding placed in a file: 1-based line, 1-based column in characters (UTF-16 units). */
export interface PlacedFinding {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly lineText: string;
  readonly finding: Finding;
}

export interface PlacedError {
  readonly file: string;
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
  readonly lineText?: string;
  readonly byte?: number;
  readonly char?: number;
}

export interface Report {
  readonly files: readonly string[];
  readonly findings: readonly PlacedFinding[];
  readonly errors: readonly PlacedError[];
}

/** squawk's name for a parse failure; reported as a pseudo-rule in SARIF and annotations. */
export const SYNTAX_ERROR_RULE = 'syntax-error';

export function place(file: string, text: string, finding: Finding): PlacedFinding {
  const { line, column, lineText } = lineColumn(text, finding.location?.char ?? 0);
  return { file, line, column, lineText, finding };
}

export function placeError(file: string, text: string, message: string, loc?: { byte: number; char: number }): PlacedError {
  if (loc === undefined) return { file, message };
  const { line, column, lineText } = lineColumn(text, loc.char);
  return { file, message, line, column, lineText, byte: loc.byte, char: loc.char };
}

export function format(kind: OutputFormat, report: Report, color: boolean): string {
  switch (kind) {
    case 'json':
      return formatJson(report);
    case 'sarif':
      return formatSarif(report);
    case 'github':
      return formatGithub(report);
    default:
      return formatText(report, color);
  }
}

// ---- text ----------------------------------------------------------------------------------

const SGR = { red: '\u001b[31m', yellow: '\u001b[33m', blue: '\u001b[34m', bold: '\u001b[1m', dim: '\u001b[2m', reset: '\u001b[0m' };

/** Spaces (tabs kept) up to column `column` of `line`, so the caret lines up under the character. */
function caretPad(lineText: string, column: number): string {
  let pad = '';
  const upto = Math.min(column - 1, lineText.length);
  for (let i = 0; i < upto; i++) pad += lineText[i] === '\t' ? '\t' : ' ';
  return pad;
}

function snippet(lineNo: number, lineText: string, column: number, paint: (s: string) => string): string[] {
  const gutter = String(lineNo);
  const blank = ' '.repeat(gutter.length);
  return [`  ${gutter} | ${lineText}`, `  ${blank} | ${caretPad(lineText, column)}${paint('^')}`];
}

function formatText(report: Report, color: boolean): string {
  const c = (code: string, s: string) => (color ? `${code}${s}${SGR.reset}` : s);
  const sevColor: Record<Severity, string> = { error: SGR.red, warning: SGR.yellow, info: SGR.blue };
  const out: string[] = [];
  for (const e of report.errors) {
    const where = e.line !== undefined ? `${e.file}:${e.line}:${e.column}` : e.file;
    out.push(`${c(SGR.bold, where)}: ${c(SGR.red, `error[${SYNTAX_ERROR_RULE}]`)} ${e.message}`);
    if (e.line !== undefined && e.lineText !== undefined && e.column !== undefined) {
      out.push(...snippet(e.line, e.lineText, e.column, (s) => c(SGR.red, s)));
    }
    out.push('');
  }
  for (const p of report.findings) {
    const f = p.finding;
    out.push(`${c(SGR.bold, `${p.file}:${p.line}:${p.column}`)}: ${c(sevColor[f.severity], `${f.severity}[${f.rule}]`)} ${f.message}`);
    out.push(...snippet(p.line, p.lineText, p.column, (s) => c(sevColor[f.severity], s)));
    out.push(`  ${c(SGR.dim, 'why:')} ${f.why}`);
    out.push(`  ${c(SGR.dim, 'fix:')} ${f.fix}`);
    out.push('');
  }
  const counts = countBySeverity(report.findings);
  const files = new Set(report.findings.map((p) => p.file)).size;
  if (report.findings.length === 0 && report.errors.length === 0) {
    out.push(`All ${report.files.length} file${report.files.length === 1 ? '' : 's'} passed: no findings.`);
  } else if (report.findings.length === 0) {
    out.push(`${report.errors.length} of ${report.files.length} file${report.files.length === 1 ? '' : 's'} could not be checked; no findings in the rest.`);
  } else {
    const parts = [`${counts.error} error${counts.error === 1 ? '' : 's'}`, `${counts.warning} warning${counts.warning === 1 ? '' : 's'}`, `${counts.info} info`];
    out.push(
      `Found ${report.findings.length} finding${report.findings.length === 1 ? '' : 's'} (${parts.join(', ')}) in ${files} of ${report.files.length} file${report.files.length === 1 ? '' : 's'}` +
        (report.errors.length > 0 ? `; ${report.errors.length} file${report.errors.length === 1 ? '' : 's'} could not be parsed.` : '.'),
    );
  }
  return out.join('\n') + '\n';
}

export function countBySeverity(findings: readonly PlacedFinding[]): Record<Severity, number> {
  const counts: Record<Severity, number> = { error: 0, warning: 0, info: 0 };
  for (const p of findings) counts[p.finding.severity]++;
  return counts;
}

// ---- json ----------------------------------------------------------------------------------

function formatJson(report: Report): string {
  return (
    JSON.stringify(
      {
        version: 1,
        files: report.files,
        findings: report.findings.map((p) => ({
          file: p.file,
          line: p.line,
          column: p.column,
          byte: p.finding.location?.byte,
          char: p.finding.location?.char,
          rule: p.finding.rule,
          severity: p.finding.severity,
          message: p.finding.message,
          why: p.finding.why,
          fix: p.finding.fix,
        })),
        errors: report.errors.map((e) => ({ file: e.file, line: e.line, column: e.column, byte: e.byte, char: e.char, message: e.message })),
        summary: countBySeverity(report.findings),
      },
      null,
      2,
    ) + '\n'
  );
}

// ---- SARIF 2.1.0 ---------------------------------------------------------------------------

const SARIF_LEVEL: Record<Severity, 'error' | 'warning' | 'note'> = { error: 'error', warning: 'warning', info: 'note' };

/** A relative, forward-slash URI for a file path (what code scanning matches against the repo). */
function sarifUri(file: string): string {
  const posix = file.split('\\').join('/');
  return encodeURI(posix.startsWith('./') ? posix.slice(2) : posix);
}

function formatSarif(report: Report): string {
  const rules: RuleMeta[] = [...RULES];
  const index = new Map(rules.map((r, i) => [r.id, i]));
  const syntaxIndex = rules.length;
  const driverRules = [
    ...rules.map((r) => ({
      id: r.id,
      name: r.id,
      shortDescription: { text: r.title },
      fullDescription: { text: r.why },
      help: { text: `${r.why}\n\nSafe alternative: ${r.fix}`, markdown: `${r.why}\n\n**Safe alternative:** ${r.fix}` },
      defaultConfiguration: { level: SARIF_LEVEL[r.severity] },
      properties: { tags: ['postgresql', 'migration'], ...(r.squawk.length > 0 ? { squawk: r.squawk } : {}) },
    })),
    {
      id: SYNTAX_ERROR_RULE,
      name: SYNTAX_ERROR_RULE,
      shortDescription: { text: 'SQL the PostgreSQL parser rejects' },
      fullDescription: { text: 'The file does not parse with the PostgreSQL 18 grammar; nothing in it was checked.' },
      help: { text: 'Fix the syntax error at the position shown.' },
      defaultConfiguration: { level: 'error' },
    },
  ];
  const region = (line: number | undefined, column: number | undefined, byte: number | undefined) => ({
    startLine: line ?? 1,
    startColumn: column ?? 1,
    ...(byte !== undefined ? { byteOffset: byte } : {}),
  });
  const results = [
    ...report.errors.map((e) => ({
      ruleId: SYNTAX_ERROR_RULE,
      ruleIndex: syntaxIndex,
      level: 'error',
      message: { text: e.message },
      locations: [{ physicalLocation: { artifactLocation: { uri: sarifUri(e.file), uriBaseId: '%SRCROOT%' }, region: region(e.line, e.column, e.byte) } }],
    })),
    ...report.findings.map((p) => ({
      ruleId: p.finding.rule,
      ...(index.has(p.finding.rule) ? { ruleIndex: index.get(p.finding.rule) } : {}),
      level: SARIF_LEVEL[p.finding.severity],
      message: { text: `${p.finding.message} Safe alternative: ${p.finding.fix}` },
      locations: [
        {
          physicalLocation: {
            artifactLocation: { uri: sarifUri(p.file), uriBaseId: '%SRCROOT%' },
            region: region(p.line, p.column, p.finding.location?.byte),
          },
        },
      ],
      partialFingerprints: { 'pgairlock/v1': `${p.finding.rule}:${p.lineText.trim()}` },
    })),
  ];
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: { driver: { name: 'pgairlock', version: '0.1.0', semanticVersion: '0.1.0', rules: driverRules } },
        columnKind: 'utf16CodeUnits',
        originalUriBaseIds: { '%SRCROOT%': { uri: pathToFileUri(process.cwd()) } },
        results,
        invocations: [{ executionSuccessful: report.errors.length === 0 }],
      },
    ],
  };
  return JSON.stringify(sarif, null, 2) + '\n';
}

function pathToFileUri(dir: string): string {
  const posix = dir.split('\\').join('/');
  return encodeURI(`file://${posix.startsWith('/') ? '' : '/'}${posix}${posix.endsWith('/') ? '' : '/'}`);
}

// ---- GitHub workflow commands --------------------------------------------------------------

/** Escaping from GitHub's workflow-command rules (@actions/core): data and property values. */
function escapeData(s: string): string {
  return s.split('%').join('%25').split('\r').join('%0D').split('\n').join('%0A');
}
function escapeProperty(s: string): string {
  return escapeData(s).split(':').join('%3A').split(',').join('%2C');
}

const GITHUB_COMMAND: Record<Severity, string> = { error: 'error', warning: 'warning', info: 'notice' };

function formatGithub(report: Report): string {
  const lines: string[] = [];
  for (const e of report.errors) {
    const props = [`file=${escapeProperty(e.file)}`, ...(e.line !== undefined ? [`line=${e.line}`, `col=${e.column ?? 1}`] : []), `title=${escapeProperty(SYNTAX_ERROR_RULE)}`];
    lines.push(`::error ${props.join(',')}::${escapeData(e.message)}`);
  }
  for (const p of report.findings) {
    const f = p.finding;
    const props = [`file=${escapeProperty(p.file)}`, `line=${p.line}`, `col=${p.column}`, `title=${escapeProperty(`${f.rule} (${f.severity})`)}`];
    lines.push(`::${GITHUB_COMMAND[f.severity]} ${props.join(',')}::${escapeData(`${f.message}\nWhy: ${f.why}\nSafe alternative: ${f.fix}`)}`);
  }
  return lines.length > 0 ? lines.join('\n') + '\n' : '';
}
