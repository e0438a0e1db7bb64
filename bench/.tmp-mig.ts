import { parseSync } from 'libpg-query';
import { analyzeText } from '../analyzer/analyze.js';
import { loadAnalyzer, newScriptContext } from '../analyzer/index.js';
import { runRules } from '../analyzer/rules/index.js';
await loadAnalyzer();
const parts: string[] = [];
for (let i = 0; parts.length < 1000; i++) {
  parts.push(`CREATE TABLE IF NOT EXISTS t${i} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
  parts.push(`ALTER TABLE t${i} ADD COLUMN email text`);
  parts.push(`CREATE INDEX CONCURRENTLY IF NOT EXISTS t${i}_email ON t${i} (lower(email))`);
  parts.push(`UPDATE t${i} SET email = lower(email) WHERE email IS NOT NULL`);
}
const m = parts.join(';\n');
const mins = { p: 1e9, n: 1e9, w: 1e9, r: 1e9 };
const tree: any = parseSync(m);
for (let r = 0; r < 12; r++) {
  let t = performance.now(); parseSync(m); mins.p = Math.min(mins.p, performance.now() - t);
  t = performance.now(); analyzeText(m, 180000, undefined, 0); mins.n = Math.min(mins.n, performance.now() - t);
  t = performance.now(); analyzeText(m, 180000, newScriptContext(), 0); mins.w = Math.min(mins.w, performance.now() - t);
  const ctx = newScriptContext();
  t = performance.now(); for (const s of tree.stmts) runRules({ stmt: s.stmt, sql: m, byteStart: s.stmt_location ?? 0, byteEnd: (s.stmt_location ?? 0) + (s.stmt_len ?? 0), serverVersion: 180000, context: ctx }); mins.r = Math.min(mins.r, performance.now() - t);
}
console.log(mins);
