import { readFileSync } from 'node:fs';
import { severityAtLeast } from '../../analyzer/findings.js';
import { canonicalRuleId, collectIgnores, isIgnored } from '../../analyzer/rules/ignore.js';
import { RULES, ruleById } from '../../analyzer/rules/index.js';
import type { Severity } from '../../analyzer/types.js';
import { ConfigError, loadConfig } from '../../governance/config/load.js';
import { format, OUTPUT_FORMATS, place, placeError, type OutputFormat, type PlacedError, type PlacedFinding } from './format.js';
import { lintText, prepareLinter } from './lint.js';

/**
 * `pgairlock check [files...]`: the offline migration linter. Reads each file (stdin for none or
 * `-`), analyses it as one script, filters findings (disabled rules, opt-in rules, ignore comments),
 * prints them and decides the exit code: 0 clean, 1 findings at or above --fail-on, 2 usage, I/O or
 * parse errors.
 */

export interface CheckOptions {
  readonly format?: string;
  readonly pgVersion?: string;
  readonly failOn?: string;
  readonly disable?: string[];
  readonly enable?: string[];
  readonly config?: string;
  readonly assumeInTransaction?: boolean;
  readonly stdinName?: string;
  readonly color?: boolean;
}

export interface CheckIo {
  readonly stdout: (s: string) => void;
  readonly stderr: (s: string) => void;
  readonly readStdin: () => string;
  readonly readFile: (path: string) => string;
  readonly isTty: boolean;
}

export const EXIT_CLEAN = 0;
export const EXIT_FINDINGS = 1;
export const EXIT_USAGE = 2;

class UsageError extends Error {}

const SEVERITIES: readonly Severity[] = ['error', 'warning', 'info'];

/** Splits repeated / comma-separated rule lists and validates every id (ours or squawk's). */
function ruleList(values: readonly string[] | undefined, what: string): Set<string> {
  const out = new Set<string>();
  for (const v of values ?? []) {
    for (const part of v.split(',')) {
      const id = part.trim();
      if (!id) continue;
      const canon = canonicalRuleId(id);
      if (!ruleById(canon)) throw new UsageError(`${what}: unknown rule "${id}" (see docs/rules.md or \`pgairlock check --list-rules\`)`);
      out.add(canon);
    }
  }
  return out;
}

export async function runCheck(files: readonly string[], opts: CheckOptions, io: CheckIo): Promise<number> {
  try {
    return await runCheckInner(files, opts, io);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError) {
      io.stderr(`pgairlock check: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
}

async function runCheckInner(files: readonly string[], opts: CheckOptions, io: CheckIo): Promise<number> {
  const { config } = loadConfig(opts.config !== undefined ? { path: opts.config } : {});
  const cfg = config.check;

  const fmt = (opts.format ?? 'text') as OutputFormat;
  if (!OUTPUT_FORMATS.includes(fmt)) throw new UsageError(`--format must be one of ${OUTPUT_FORMATS.join(', ')} (got "${opts.format}")`);

  let major = cfg.pg_version;
  if (opts.pgVersion !== undefined) {
    const n = Number(opts.pgVersion);
    if (!Number.isInteger(n) || n < 13 || n > 18) throw new UsageError(`--pg-version must be a PostgreSQL major version from 13 to 18 (got "${opts.pgVersion}")`);
    major = n;
  }
  const failOn = (opts.failOn ?? cfg.fail_on) as Severity;
  if (!SEVERITIES.includes(failOn)) throw new UsageError(`--fail-on must be one of error, warning, info (got "${opts.failOn}")`);

  const disabled = new Set([...ruleList(cfg.disabled_rules, 'check.disabled_rules'), ...ruleList(opts.disable, '--disable')]);
  const enabled = new Set([...ruleList(cfg.enabled_rules, 'check.enabled_rules'), ...ruleList(opts.enable, '--enable')]);
  const active = (id: string) => !disabled.has(id) && (ruleById(id)?.optIn !== true || enabled.has(id));

  await prepareLinter();
  const inputs = files.length === 0 ? ['-'] : files;
  const shown: string[] = [];
  const findings: PlacedFinding[] = [];
  const errors: PlacedError[] = [];
  for (const input of inputs) {
    const name = input === '-' ? (opts.stdinName ?? 'stdin') : input;
    shown.push(name);
    let text: string;
    try {
      text = input === '-' ? io.readStdin() : io.readFile(input);
    } catch (err) {
      errors.push({ file: name, message: `cannot read: ${err instanceof Error ? err.message : String(err)}` });
      continue;
    }
    const result = lintText(text, { serverVersion: major * 10000, assumeInTransaction: opts.assumeInTransaction ?? cfg.assume_in_transaction });
    if (!result.ok) {
      errors.push(placeError(name, text, result.error.message, result.error.location));
      continue;
    }
    const ignores = collectIgnores(text, result.ranges);
    for (const lf of result.findings) {
      if (!active(lf.finding.rule) || isIgnored(ignores, lf.statement, lf.finding.rule)) continue;
      findings.push(place(name, text, lf.finding));
    }
  }
  const color = opts.color ?? (io.isTty && process.env.NO_COLOR === undefined);
  io.stdout(format(fmt, { files: shown, findings, errors }, color));
  if (errors.length > 0) return EXIT_USAGE;
  return findings.some((p) => severityAtLeast(p.finding.severity, failOn)) ? EXIT_FINDINGS : EXIT_CLEAN;
}

/** `--list-rules`: id, severity and title of every rule. */
export function listRules(): string {
  const width = Math.max(...RULES.map((r) => r.id.length));
  return RULES.map((r) => `${r.id.padEnd(width)}  ${r.severity.padEnd(7)}  ${r.optIn ? '(opt-in) ' : ''}${r.title}`).join('\n') + '\n';
}

export function defaultIo(): CheckIo {
  return {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    readStdin: () => readFileSync(0, 'utf8'),
    readFile: (p) => readFileSync(p, 'utf8'),
    isTty: process.stdout.isTTY === true,
  };
}
