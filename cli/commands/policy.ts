import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { Analysis } from '../../analyzer/types.js';
import type { Config } from '../../governance/config/schema.js';
import type { CompiledPolicy } from '../../governance/policy/compile.js';
import { formatDuration } from '../../governance/policy/duration.js';
import type { Decision, EvaluationInput } from '../../governance/policy/types.js';
import type { Principal } from '../../governance/principal.js';
import type { PrincipalResolver } from '../../governance/principals.js';

/**
 * `pgairlock policy test <cases.yaml>` and `pgairlock policy explain --as <principal> "<sql>"`.
 * Both analyse SQL with the real analyzer and decide with the real engine, exactly as the proxy does.
 * Exit codes: 0 all cases pass / explained; 1 a case mismatched; 2 bad input (config, policy, cases, options).
 */

class InputError extends Error {}

interface Loaded {
  readonly config: Config;
  readonly policy: CompiledPolicy;
  readonly principals: PrincipalResolver;
  readonly analyze: (sql: string) => Analysis;
}

async function load(opts: { config?: string; policy?: string }): Promise<Loaded> {
  const [{ loadConfig }, { policyFromConfig, loadPolicyFile }, { compilePrincipals }, analyzer] = await Promise.all([
    import('../../governance/config/load.js'),
    import('../../governance/policy/load.js'),
    import('../../governance/principals.js'),
    import('../../analyzer/index.js'),
  ]);
  const { config, source } = loadConfig(opts.config !== undefined ? { path: opts.config } : {});
  const policy = opts.policy !== undefined ? loadPolicyFile(opts.policy) : policyFromConfig(config.policy, source);
  await analyzer.loadAnalyzer();
  return { config, policy, principals: compilePrincipals(config.principals), analyze: (sql) => analyzer.analyze(sql) };
}

async function decide(l: Loaded, sql: string, ctx: Omit<EvaluationInput, 'statements'>): Promise<Decision> {
  const [{ evaluate }, { statementsOf }] = await Promise.all([import('../../governance/policy/evaluate.js'), import('../../governance/policy/analysis.js')]);
  return evaluate({ ...ctx, statements: statementsOf(l.analyze(sql)) }, l.policy);
}

function principalFor(l: Loaded, spec: { principal?: string | undefined; roles?: readonly string[] | undefined; user?: string | undefined; database: string; application_name?: string | undefined }): Principal {
  if (spec.roles) return { name: spec.principal ?? 'test', roles: spec.roles };
  if (spec.principal !== undefined) {
    const p = l.principals.byName(spec.principal);
    if (!p) throw new InputError(`unknown principal "${spec.principal}": use a name from principals.map or principals.default_principal, or give roles`);
    return p;
  }
  if (spec.user !== undefined) {
    return l.principals.resolve({ user: spec.user, database: spec.database, ...(spec.application_name !== undefined ? { applicationName: spec.application_name } : {}) }).principal;
  }
  throw new InputError('say who is acting: principal, roles, or user (resolved through principals.map)');
}

function parseInstant(text: string | undefined): Date {
  if (text === undefined) return new Date();
  const d = new Date(text);
  if (Number.isNaN(d.getTime())) throw new InputError(`"${text}" is not a date and time (use ISO 8601, e.g. 2026-11-25T10:00:00Z)`);
  return d;
}

// ---------------------------------------------------------------------------------------------- policy test

const caseSchema = z.strictObject({
  name: z.string().min(1),
  principal: z.string().min(1).optional(),
  roles: z.array(z.string().min(1)).min(1).optional(),
  user: z.string().min(1).optional(),
  application_name: z.string().optional(),
  database: z.string().min(1).optional(),
  environment: z.string().min(1).optional(),
  /** ISO 8601 instant the statement is evaluated at (time windows). */
  at: z.string().optional(),
  search_path: z.array(z.string()).optional(),
  sql: z.string().min(1),
  expect: z.enum(['allow', 'deny', 'hold']),
  /** Rules that must be among the matched ones. */
  rules: z.array(z.string().min(1)).optional(),
  /** Rules that must not match. */
  not_rules: z.array(z.string().min(1)).optional(),
  /** SQLSTATE the refusal must carry. */
  sqlstate: z.string().length(5).optional(),
});
const casesFileSchema = z.strictObject({
  defaults: caseSchema.pick({ principal: true, roles: true, user: true, database: true, environment: true, at: true, search_path: true }).partial().optional(),
  cases: z.array(caseSchema).min(1, 'no cases'),
});
type Case = z.infer<typeof caseSchema>;

function readCases(path: string): z.infer<typeof casesFileSchema> {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InputError(`cannot read cases from ${path}: ${(err as Error).message}`);
  }
  const res = casesFileSchema.safeParse(raw);
  if (!res.success) {
    const lines = res.error.issues.map((i) => {
      const idx = i.path[0] === 'cases' && typeof i.path[1] === 'number' ? i.path[1] : undefined;
      const c = idx !== undefined ? (raw as { cases?: { name?: unknown }[] }).cases?.[idx] : undefined;
      const label = c && typeof c.name === 'string' ? ` (case "${c.name}")` : '';
      return `  ${i.path.map(String).join('.') || '(top level)'}${label}: ${i.message}`;
    });
    throw new InputError(`invalid cases file ${path}:\n${lines.join('\n')}`);
  }
  return res.data;
}

function matchedIds(d: Decision): string[] {
  return d.verdicts.filter((v) => v.matched).map((v) => v.id);
}

function checkCase(c: Case, d: Decision): string[] {
  const problems: string[] = [];
  const decidedBy = d.effect === 'allow' ? d.decidedBy.map((r) => r.id).join(', ') || '(empty)' : d.rule.id;
  if (d.effect !== c.expect) problems.push(`expected ${c.expect}, got ${d.effect} (decided by ${decidedBy})`);
  const matched = matchedIds(d);
  for (const r of c.rules ?? []) if (!matched.includes(r)) problems.push(`expected rule ${r} to match; matched: ${matched.join(', ') || 'none'}`);
  for (const r of c.not_rules ?? []) if (matched.includes(r)) problems.push(`expected rule ${r} not to match: ${d.verdicts.find((v) => v.id === r)?.reason ?? ''}`);
  if (c.sqlstate !== undefined) {
    const got = d.effect === 'allow' ? '(none: allowed)' : d.error.sqlstate;
    if (got !== c.sqlstate) problems.push(`expected SQLSTATE ${c.sqlstate}, got ${got}`);
  }
  return problems;
}

async function runTest(file: string, opts: { config?: string; policy?: string; verbose?: boolean }): Promise<number> {
  const cases = readCases(file);
  const l = await load(opts);
  const out: string[] = [`${file} (policy: ${l.policy.source}):`];
  let failed = 0;
  for (const raw of cases.cases) {
    const c = { ...cases.defaults, ...raw };
    const database = c.database ?? 'postgres';
    const started = process.hrtime.bigint();
    const principal = principalFor(l, { principal: c.principal, roles: c.roles, user: c.user, database, application_name: c.application_name });
    const d = await decide(l, c.sql, {
      principal,
      database,
      environment: c.environment ?? l.config.environment,
      now: parseInstant(c.at),
      session: { ...(c.search_path ? { searchPath: c.search_path } : {}), ...(c.user ? { user: c.user } : {}) },
    });
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const problems = checkCase(c, d);
    if (problems.length === 0) {
      out.push(`PASS: ${c.name} (${d.effect}, ${ms.toFixed(2)}ms)`);
      if (opts.verbose) out.push(`      matched: ${matchedIds(d).join(', ') || 'none'}`);
    } else {
      failed++;
      out.push(`FAIL: ${c.name} (${ms.toFixed(2)}ms)`);
      for (const p of problems) out.push(`      ${p}`);
      out.push(`      sql: ${c.sql.trim()}`);
      out.push(`      principal: ${principal.name} (roles: ${principal.roles.join(', ')})`);
      for (const r of d.reasons) out.push(`      reason: ${r}`);
    }
  }
  const total = cases.cases.length;
  out.push('-'.repeat(80));
  out.push(`PASS: ${total - failed}/${total}`);
  if (failed > 0) out.push(`FAIL: ${failed}/${total}`);
  console.log(out.join('\n'));
  return failed > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------- policy explain

export function formatDecision(d: Decision, sql: string): string {
  const lines: string[] = [];
  lines.push(`principal:   ${d.principal.name} (roles: ${d.principal.roles.join(', ') || 'none'})`);
  lines.push(`database:    ${d.database}    environment: ${d.environment}`);
  lines.push(`sql:         ${sql.trim()}`);
  const decided = d.effect === 'allow' ? d.decidedBy.map((r) => r.id).join(', ') : d.rule.id;
  lines.push(`decision:    ${d.effect.toUpperCase()} (decided by ${decided || 'nothing: empty query'})`);
  if (d.statements.length > 1) {
    for (const s of d.statements) lines.push(`  statement ${s.index + 1}: ${s.effect} (${s.decidedBy.map((r) => r.id).join(', ')})`);
  }
  if (d.effect === 'hold') {
    const h = d.holdSpec;
    lines.push(`hold:        mode ${h.mode}, ${h.approvals} approval(s) by ${h.approverRoles.join(' or ')}, timeout ${formatDuration(h.timeoutMs)}`);
  }
  if (d.effect !== 'allow') {
    lines.push('the client sees:');
    lines.push(`  ERROR:  ${d.error.message}`);
    lines.push(`  SQLSTATE: ${d.error.sqlstate}${d.error.position !== undefined ? `    position: ${d.error.position}` : ''}`);
    for (const [i, l] of d.error.detail.split('\n').entries()) lines.push(`  ${i === 0 ? 'DETAIL: ' : '        '} ${l}`);
    if (d.error.hint) lines.push(`  HINT:    ${d.error.hint}`);
  } else {
    lines.push('reasons:');
    for (const r of d.reasons) lines.push(`  - ${r}`);
  }
  lines.push('rules:');
  const width = Math.max(...d.verdicts.map((v) => v.id.length));
  for (const v of d.verdicts) {
    const mark = v.matched ? 'MATCH' : 'no   ';
    lines.push(`  ${mark} ${v.effect.padEnd(5)} ${v.id.padEnd(width)}  ${v.reason}`);
  }
  return lines.join('\n');
}

async function runExplain(
  sql: string,
  opts: { config?: string; policy?: string; as?: string; roles?: string; user?: string; database?: string; environment?: string; at?: string; searchPath?: string; json?: boolean },
): Promise<number> {
  const l = await load(opts);
  const database = opts.database ?? 'postgres';
  const roles = opts.roles?.split(',').map((r) => r.trim()).filter(Boolean);
  const principal = principalFor(l, { principal: opts.as, roles, user: opts.user, database });
  const { parseSearchPath } = await import('../../governance/policy/units.js');
  const d = await decide(l, sql, {
    principal,
    database,
    environment: opts.environment ?? l.config.environment,
    now: parseInstant(opts.at),
    session: { ...(opts.searchPath !== undefined ? { searchPath: parseSearchPath(opts.searchPath) } : {}), ...(opts.user ? { user: opts.user } : {}) },
  });
  console.log(opts.json ? JSON.stringify(d, null, 2) : formatDecision(d, sql));
  return 0;
}

async function guarded(run: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await run();
  } catch (err) {
    const name = err instanceof Error ? err.name : '';
    if (err instanceof InputError || name === 'ConfigError' || name === 'PolicyError') {
      console.error(`pgairlock policy: ${(err as Error).message}`);
      process.exitCode = 2;
      return;
    }
    throw err;
  }
}

export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('test and explain the policy (docs/policy.md)');
  policy
    .command('test')
    .description('run a policy against example statements with expected decisions (like opa test); exit 1 on a mismatch')
    .argument('<cases>', 'YAML file of cases (see docs/policy.md, "Testing a policy")')
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml)')
    .option('-p, --policy <path>', 'a policy file to test instead of the configured policy')
    .option('-v, --verbose', 'list the matched rules of passing cases too')
    .action((file: string, opts: { config?: string; policy?: string; verbose?: boolean }) => guarded(() => runTest(file, opts)));
  policy
    .command('explain')
    .description("print the decision for one SQL string and every rule's verdict")
    .argument('<sql>', 'the SQL text, as a client would send it')
    .option('--as <principal>', 'a principal named in the config (principals.map or the default principal)')
    .option('--roles <roles>', 'comma-separated roles instead of a configured principal')
    .option('--user <user>', 'resolve the principal from this database user (and use it for $user)')
    .option('-d, --database <name>', 'database the statement runs in', 'postgres')
    .option('-e, --environment <label>', 'environment label (default: the config\'s)')
    .option('--at <time>', 'evaluate at this ISO 8601 time (default: now)')
    .option('--search-path <path>', 'session search_path, e.g. "app, public"')
    .option('--json', 'print the Decision as JSON')
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml)')
    .option('-p, --policy <path>', 'a policy file instead of the configured policy')
    .action((sql: string, opts: Parameters<typeof runExplain>[1]) => guarded(() => runExplain(sql, opts)));
}
