/**
 * bench/analyzer.ts: what the analyzer costs next to a bare parse of the same text.
 *  1. cache misses: full analyze() (parse + one walk + migration rules) vs libpg-query parseSync, per
 *     statement kind, interleaved rounds, medians; also analysis without rules and with the (lazy)
 *     fingerprint + normalized text read, so each part's cost is visible.
 *  2. cache hits: analyzeCached() on a text already analysed.
 *  3. a 1,000-statement migration analysed in one call (target < 100 ms).
 * Run: node --import tsx bench/analyzer.ts [rounds]
 */
import os from 'node:os';
import { parseSync } from 'libpg-query';
import { analyzeText } from '../analyzer/analyze.js';
import { AnalysisCache, analyze, loadAnalyzer, newScriptContext } from '../analyzer/index.js';

const rounds = Number(process.argv[2] ?? 7);
const PER_ROUND = 3000;

const inputs: Array<[string, string]> = [
  ['pgbench -S SELECT', 'SELECT abalance FROM pgbench_accounts WHERE aid = 48213'],
  ['pgbench UPDATE', 'UPDATE pgbench_accounts SET abalance = abalance + -4131 WHERE aid = 62315'],
  ['INSERT ... RETURNING', "INSERT INTO orders (customer_id, total, note) VALUES (42, 19.99, 'x') RETURNING id"],
  ['join + aggregate', "SELECT u.id, u.name, count(o.id) FROM users u LEFT JOIN orders o ON o.user_id = u.id WHERE u.created_at > now() - interval '7 days' GROUP BY u.id, u.name ORDER BY 3 DESC LIMIT 10"],
  ['CTE with DELETE', 'WITH d AS (DELETE FROM sessions WHERE expires_at < now() RETURNING user_id) SELECT count(*) FROM d'],
  ['ALTER TABLE ADD COLUMN', "ALTER TABLE users ADD COLUMN email text NOT NULL DEFAULT ''"],
  ['CREATE INDEX', 'CREATE INDEX CONCURRENTLY orders_customer ON orders (customer_id)'],
  ['TPC-B transaction (7 statements)', 'BEGIN; UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 1; SELECT abalance FROM pgbench_accounts WHERE aid = 1; UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = 1; UPDATE pgbench_branches SET bbalance = bbalance + 1 WHERE bid = 1; INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, CURRENT_TIMESTAMP); END'],
];

/**
 * µs of this process's CPU time (user + system) per call. CPU time, not wall time: on a shared machine
 * (2 cores, other work running) wall time mostly measures the scheduler; CPU time measures the code.
 */
function timeUs(n: number, fn: (i: number) => unknown): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) fn(i);
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / n;
}
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const f1 = (x: number): string => x.toFixed(1);
const f2 = (x: number): string => x.toFixed(2);

await loadAnalyzer();
const texts = inputs.map(([, sql]) => sql);

// Warm up the JIT on every path.
for (let i = 0; i < 3000; i++) {
  const sql = texts[i % texts.length]!;
  parseSync(sql);
  analyze(sql);
  analyzeText(sql, 180000, undefined, 0);
}

type Path = 'parse' | 'analyze' | 'noRules' | 'withFingerprint';
const samples: Record<string, Record<Path, number[]>> = {};
for (const [name] of inputs) samples[name] = { parse: [], analyze: [], noRules: [], withFingerprint: [] };

for (let r = 0; r < rounds; r++) {
  for (const [name, sql] of inputs) {
    const s = samples[name]!;
    // Interleaved, so machine noise hits every path alike.
    s.parse.push(timeUs(PER_ROUND, () => parseSync(sql)));
    s.analyze.push(timeUs(PER_ROUND, () => analyze(sql)));
    s.noRules.push(timeUs(PER_ROUND, () => analyzeText(sql, 180000, undefined, 0)));
    s.withFingerprint.push(timeUs(PER_ROUND, () => {
      const a = analyze(sql);
      if (a.ok) for (const f of a.statements) { void f.fingerprint; void f.normalized; }
    }));
  }
}

console.log(`# Analyzer benchmark (${os.cpus().length} cores, ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}, load ${os.loadavg().map(f2).join(' ')})`);
console.log(`# ${rounds} interleaved rounds x ${PER_ROUND} calls; medians of process CPU µs per call (per text)`);
console.log('| input | parseSync µs | analyze µs | ratio | without rules | ratio | + fingerprint & normalized | ratio |');
console.log('|---|---|---|---|---|---|---|---|');
let sumParse = 0, sumAnalyze = 0, sumNoRules = 0, sumFp = 0;
for (const [name] of inputs) {
  const s = samples[name]!;
  const p = median(s.parse), a = median(s.analyze), n = median(s.noRules), fp = median(s.withFingerprint);
  sumParse += p; sumAnalyze += a; sumNoRules += n; sumFp += fp;
  console.log(`| ${name} | ${f1(p)} | ${f1(a)} | ${f2(a / p)}x | ${f1(n)} | ${f2(n / p)}x | ${f1(fp)} | ${f2(fp / p)}x |`);
}
console.log(`| **all inputs (sum)** | ${f1(sumParse)} | ${f1(sumAnalyze)} | **${f2(sumAnalyze / sumParse)}x** | ${f1(sumNoRules)} | ${f2(sumNoRules / sumParse)}x | ${f1(sumFp)} | ${f2(sumFp / sumParse)}x |`);

// 2. cache hits
const cache = new AnalysisCache();
for (const sql of texts) cache.analyze(sql);
const hitSamples: number[] = [];
const ctxHitSamples: number[] = [];
const parseRef: number[] = [];
for (let r = 0; r < rounds; r++) {
  parseRef.push(timeUs(PER_ROUND * 4, (i) => parseSync(texts[i % texts.length]!)));
  hitSamples.push(timeUs(PER_ROUND * 4, (i) => cache.analyze(texts[i % texts.length]!)));
  const ctx = newScriptContext();
  ctxHitSamples.push(timeUs(PER_ROUND * 4, (i) => cache.analyze(texts[i % texts.length]!, { context: ctx })));
}
const hit = median(hitSamples), ctxHit = median(ctxHitSamples), pref = median(parseRef);
console.log('');
console.log('| cache | µs per call | vs parseSync of the same texts |');
console.log('|---|---|---|');
console.log(`| hit (no context) | ${f2(hit)} | ${f2(hit / pref)}x |`);
console.log(`| hit (session context replayed) | ${f2(ctxHit)} | ${f2(ctxHit / pref)}x |`);
console.log(`| parseSync (reference) | ${f2(pref)} | 1.00x |`);
console.log(`cache after the run: ${JSON.stringify(cache.stats())}`);

// 3. a 1,000-statement migration
const parts: string[] = ["SET lock_timeout = '5s'"];
for (let i = 0; parts.length < 1000; i++) {
  parts.push(`CREATE TABLE IF NOT EXISTS t${i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
  parts.push(`ALTER TABLE t${i} ADD COLUMN email text`);
  parts.push(`CREATE INDEX CONCURRENTLY IF NOT EXISTS t${i}_email ON t${i} (lower(email))`);
  parts.push(`INSERT INTO t${i} (name, email) SELECT name, email FROM legacy_users WHERE shard = ${i}`);
  parts.push(`UPDATE t${i} SET email = lower(email) WHERE email IS NOT NULL`);
  parts.push(`COMMENT ON TABLE t${i} IS 'migrated table ${i}'`);
  parts.push(`ALTER TABLE t${i} ADD CONSTRAINT t${i}_name_len CHECK (length(name) < 200) NOT VALID`);
  parts.push(`ALTER TABLE t${i} VALIDATE CONSTRAINT t${i}_name_len`);
}
const migration = `${parts.slice(0, 1000).join(';\n')};\n`;
const migSamples: number[] = [];
const migParse: number[] = [];
let statements = 0;
for (let r = 0; r < rounds; r++) {
  migParse.push(timeUs(1, () => parseSync(migration)) / 1000);
  migSamples.push(timeUs(1, () => {
    const a = analyze(migration);
    statements = a.ok ? a.statements.length : -1;
  }) / 1000);
}
const mig = median(migSamples), migP = median(migParse);
console.log('');
console.log(`| 1,000-statement migration (${(migration.length / 1024).toFixed(0)} KiB, ${statements} statements) | ms |`);
console.log('|---|---|');
console.log(`| parseSync | ${f1(migP)} |`);
console.log(`| analyze (with rules, script context) | ${f1(mig)} (${f2(mig / migP)}x; target < 100 ms: ${mig < 100 ? 'met' : 'NOT met'}) |`);
