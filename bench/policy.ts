/**
 * bench/policy.ts: what a policy decision costs next to the parse it follows.
 * For each statement: the analyzer's bare parse (libpg-query parseSync), the full analyze(), and
 * evaluate() with the default policy for an agent principal; prints µs per call and the ratios.
 * Run: node --import tsx bench/policy.ts [iterations]
 */
import { parseSync } from 'libpg-query';
import { analyze, loadAnalyzer } from '../analyzer/index.js';
import { statementsOf } from '../governance/policy/analysis.js';
import { evaluate } from '../governance/policy/evaluate.js';
import { loadDefaultPolicy } from '../governance/policy/load.js';
import type { EvaluationInput } from '../governance/policy/types.js';

const iterations = Number(process.argv[2] ?? 50_000);
const statements: [string, string][] = [
  ['pgbench -S SELECT', 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213;'],
  ['pgbench UPDATE', 'UPDATE pgbench_accounts SET abalance = abalance + -4131 WHERE aid = 62315;'],
  ['CREATE INDEX', 'CREATE INDEX orders_customer ON orders (customer_id)'],
  ['3-statement string', 'BEGIN; UPDATE orders SET status = 1 WHERE id = 7; COMMIT'],
];

/**
 * CPU microseconds per call (process.cpuUsage, not wall time: the machine may be shared), the best of
 * several rounds after a warm-up, so a neighbour's load does not skew the ratios.
 */
function timeUs(n: number, fn: () => unknown): number {
  for (let i = 0; i < Math.min(2000, n); i++) fn(); // warm up the JIT
  const rounds = 5;
  const per = Math.max(1, Math.floor(n / rounds));
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < per; i++) fn();
    const c = process.cpuUsage(c0);
    best = Math.min(best, (c.user + c.system) / per);
  }
  return best;
}

await loadAnalyzer();
const policy = loadDefaultPolicy();
const base: Omit<EvaluationInput, 'statements'> = {
  principal: { name: 'unknown', roles: ['agent'] },
  database: 'app',
  environment: 'production',
  now: new Date(),
  session: { searchPath: ['$user', 'public'], user: 'bot' },
};

console.log(`policy evaluate() vs parse, default policy (${policy.rules.length} rules + builtins), agent principal, ${iterations} iterations`);
console.log(`${'statement'.padEnd(20)} ${'parse µs'.padStart(9)} ${'analyze µs'.padStart(11)} ${'evaluate µs'.padStart(12)} ${'eval/parse'.padStart(11)} ${'eval/analyze'.padStart(13)}  decision`);
for (const [label, sql] of statements) {
  const input: EvaluationInput = { ...base, statements: statementsOf(analyze(sql)) };
  const parse = timeUs(iterations, () => parseSync(sql));
  const full = timeUs(Math.ceil(iterations / 2), () => analyze(sql));
  const ev = timeUs(iterations, () => evaluate(input, policy));
  const d = evaluate(input, policy);
  console.log(
    `${label.padEnd(20)} ${parse.toFixed(2).padStart(9)} ${full.toFixed(2).padStart(11)} ${ev.toFixed(2).padStart(12)} ${(ev / parse).toFixed(3).padStart(11)} ${(ev / full).toFixed(3).padStart(13)}  ${d.effect}`,
  );
}
