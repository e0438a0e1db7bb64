/**
 * The literal cache (AnalysisCache.analyzeQuery): a simple-protocol statement reuses the facts of an
 * earlier text of the same shape only when no decision can depend on the literals the key hides.
 * Proven two ways: pairs whose decisions must differ never share a cached analysis, and over a corpus
 * (the analyzer's and policy's test statements with their literals changed) the cached path gives
 * exactly the uncached facts and decisions.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  analyze, AnalysisCache, inertLiteralLocations, loadAnalyzer, newScriptContext, parseSql, scanLiterals,
  type Analysis, type ScriptContext,
} from '../../analyzer/index.js';
import { evaluate } from '../../governance/policy/evaluate.js';
import { loadDefaultPolicy } from '../../governance/policy/load.js';
import type { Principal } from '../../governance/principal.js';
import { needsState } from '../../governance/state/policy-state.js';

const AGENT: Principal = { name: 'agent:bot', roles: ['agent'] };
const DBA: Principal = { name: 'alice', roles: ['dba'] };
const DEVELOPER: Principal = { name: 'dev', roles: ['developer'] };
const reusable = (f: Parameters<typeof needsState>[0][number]) => !needsState([f]);

function decisionOf(a: Analysis, principal: Principal): unknown {
  const d = evaluate(
    {
      statements: a.ok ? a.statements : { parseError: a.error },
      principal,
      database: 'app',
      environment: 'test',
      now: new Date('2026-11-25T10:00:00Z'),
      session: { searchPath: undefined, user: 'bot', prepared: new Map() },
    },
    loadDefaultPolicy(),
  );
  return JSON.parse(JSON.stringify(d));
}

const json = (a: Analysis): unknown => JSON.parse(JSON.stringify(a));

/** Replaces every literal the scanner sees with another of its class (integers +7, strings 'zz_other'). */
function vary(sql: string): string | undefined {
  const scan = scanLiterals(sql);
  if (!scan) return undefined;
  let out = '';
  let last = 0;
  for (const start of scan.starts) {
    out += sql.slice(last, start);
    if (sql[start] === "'") {
      let i = start + 1;
      for (;;) {
        if (sql[i] === "'" && sql[i + 1] === "'") { i += 2; continue; }
        if (sql[i] === "'") break;
        i++;
      }
      out += "'zz_other'";
      last = i + 1;
    } else {
      let i = start;
      while (i < sql.length && /[0-9.]/.test(sql[i]!)) i++;
      const lit = sql.slice(start, i);
      out += lit.includes('.') ? `${Number(lit) + 1.25}` : `${Number(lit) + 7}`;
      last = i;
    }
  }
  return out + sql.slice(last);
}

/** The cached path for `second` after `first` warmed the cache, and the uncached analysis of `second`. */
function both(first: string, second: string, context: () => ScriptContext | undefined = newScriptContext) {
  const cache = new AnalysisCache();
  const warm = cache.analyzeQuery(first, { context: context() }, reusable);
  // Computed on the template before it serves (a rebound copy keeps the template's fingerprint).
  if (warm.ok) for (const f of warm.statements) void f.fingerprint;
  const cached = cache.analyzeQuery(second, { context: context() }, reusable);
  const uncached = analyze(second, { context: context() });
  return { cached, uncached, stats: cache.stats() };
}

describe('literal cache', () => {
  beforeAll(async () => { await loadAnalyzer(); });

  it('serves a read that differs only in its literals from the template, with its own text', () => {
    const { cached, uncached, stats } = both(
      'SELECT abalance FROM pgbench_accounts WHERE aid = 123;',
      'SELECT abalance FROM pgbench_accounts WHERE aid = 98765;',
    );
    expect(stats.templateHits).toBe(1);
    expect(stats.entries).toBe(0); // texts with inert literals never fill the exact-text map
    if (!cached.ok) throw new Error('parse');
    expect(cached.sql).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = 98765;');
    expect(cached.statements[0]!.text).toBe('SELECT abalance FROM pgbench_accounts WHERE aid = 98765');
    expect(cached.statements[0]!.byteEnd).toBe(55);
    expect(json(cached)).toEqual(json(uncached));
  });

  it('keys only what the scanner understands exactly', () => {
    expect(scanLiterals("SELECT a FROM t WHERE b = 'x' AND c = 5")?.key).toBe("SELECT a FROM t WHERE b = \0s AND c = \0i");
    expect(scanLiterals('SELECT a FROM t WHERE b = 1.5')?.key).toBe('SELECT a FROM t WHERE b = \0d');
    expect(scanLiterals('SELECT a1, "x 2" FROM t2 -- 3\n WHERE /* 4 */ b = 1')?.starts).toHaveLength(1);
    for (const sql of [
      'SELECT a FROM t', // no literal
      'SELECT a FROM t WHERE b = $1', // parameter
      "SELECT a FROM t WHERE b = E'x'", // prefixed string
      "SELECT a FROM t WHERE b = U&'x'",
      "SELECT a FROM t WHERE b = X'1f'",
      "SELECT a FROM t WHERE b = 'x\\'", // backslash
      'SELECT a FROM t WHERE b = 1e5',
      'SELECT a FROM t WHERE b = 0x1f',
      'SELECT a FROM t WHERE b = 1_000',
      'SELECT a FROM t WHERE b = .5',
      "SELECT a FROM t WHERE b = 'é'", // non-ASCII
      "SELECT a FROM t WHERE b = 'unterminated",
      'SELECT $$x$$',
    ]) expect(scanLiterals(sql), sql).toBeUndefined();
  });

  it('allows literals only in inert positions of plain DML', () => {
    const inert = (sql: string) => {
      const p = parseSql(sql);
      if (!p.ok) throw new Error(sql);
      return inertLiteralLocations(p.stmts[0]!.stmt) !== undefined;
    };
    for (const sql of [
      'SELECT a FROM t WHERE b = 1 AND c IN (1, 2) AND d BETWEEN 1 AND 2 AND e LIKE \'x%\' LIMIT 5 OFFSET 10',
      "SELECT a FROM t WHERE b = 'x'::int4 AND c > a + 1",
      "INSERT INTO t (a, b) VALUES (1, 'x'), (2, 'y')",
      "UPDATE t SET a = 5, b = 'x' WHERE c = 1",
      'DELETE FROM t WHERE id = -1',
    ]) expect(inert(sql), sql).toBe(true);
    for (const sql of [
      'SELECT 1', // constant target
      'SELECT a FROM t WHERE 1 = 1', // constant-only expression
      'SELECT a FROM t WHERE b = 1 OR true',
      "SELECT a FROM t WHERE oid = 'pgairlock.x'::regclass", // object-naming cast
      "SELECT a FROM t WHERE b = 'x'::varchar(10)", // type modifier
      "SELECT nextval('a')", // function argument
      "SELECT a FROM t WHERE b = lower('X')",
      "SELECT a FROM t WHERE b = CASE WHEN c = 1 THEN 'x' END",
      'SELECT a FROM t ORDER BY 1',
      "SELECT a INTO x FROM t WHERE b = 1", // SELECT INTO
      "SET search_path = 'a'", // not DML
      "COPY t FROM PROGRAM 'x'",
    ]) expect(inert(sql), sql).toBe(false);
  });

  // Pairs with the same literal key (or none) whose facts or decisions differ: never shared.
  const PAIRS: readonly (readonly [string, string])[] = [
    ["SELECT 'pgairlock.x'::regclass", "SELECT 'public.t'::regclass"],
    ["SELECT * FROM pg_class WHERE oid = 'pgairlock.audit_log'::regclass", "SELECT * FROM pg_class WHERE oid = 'public.t'::regclass"],
    ["SELECT set_config('role', 'postgres', false)", "SELECT set_config('application_name', 'x', false)"],
    ["SELECT set_config('application_name', 'x', false)", "SELECT set_config('role', 'postgres', false)"],
    ['DELETE FROM t WHERE 1=1', 'DELETE FROM t WHERE 1=2'],
    ['SELECT * FROM t WHERE 1 = 1', 'SELECT * FROM t WHERE 1 = 2'],
    ['DELETE FROM t WHERE id = 1 OR 1 = 1', 'DELETE FROM t WHERE id = 1 OR 1 = 2'],
    ['SELECT pg_terminate_backend(123)', 'SELECT pg_terminate_backend(456)'],
    ["SELECT lo_import('/etc/passwd')", "SELECT lo_import('/tmp/harmless')"],
    ["SELECT nextval('a')", "SELECT nextval('b')"],
    ["SELECT nextval('pgairlock.s')", "SELECT nextval('public.s')"],
    ["COPY t FROM PROGRAM 'rm -rf /'", "COPY t FROM PROGRAM 'cat /dev/null'"],
    ["COPY t FROM '/etc/passwd'", "COPY t FROM '/tmp/x'"],
    ["SET ROLE 'postgres'", "SET ROLE 'agent'"],
    ["SET search_path = 'pgairlock'", "SET search_path = 'public'"],
    ["SET lock_timeout = '0'", "SET lock_timeout = '5s'"],
    ["SELECT 'x'::varchar(10)", "SELECT 'x'::varchar(20)"],
    ["SELECT a FROM t WHERE b = 'x'::varchar(10)", "SELECT a FROM t WHERE b = 'x'::varchar(20)"],
    ["SELECT * FROM t WHERE pg_read_file('/etc/passwd') IS NOT NULL AND id = 1", "SELECT * FROM t WHERE pg_read_file('x') IS NOT NULL AND id = 2"],
    ["SELECT dblink_exec('host=a', 'DROP TABLE x')", "SELECT dblink_exec('host=a', 'SELECT 1')"],
    ["SELECT * FROM t WHERE id = 1; DROP TABLE t", "SELECT * FROM t WHERE id = 2; DROP TABLE t"],
    ["PREPARE p AS SELECT * FROM t WHERE id = 1", "PREPARE p AS SELECT * FROM t WHERE id = 2"],
    ["ALTER TABLE t ADD COLUMN c int DEFAULT 1", "ALTER TABLE t ADD COLUMN c int DEFAULT 2"],
    ["UPDATE t SET a = 1 WHERE id = 1", "UPDATE t SET a = 2 WHERE id = 3"], // a write: the policy may need live state
  ];

  it.each(PAIRS)('never shares a cached analysis between %s and %s', (first, second) => {
    const k1 = scanLiterals(first)?.key;
    const k2 = scanLiterals(second)?.key;
    if (k1 !== undefined || k2 !== undefined) expect(k1).toBe(k2); // the pair really collides on the key
    for (const context of [newScriptContext, () => ({ ...newScriptContext(), inTransactionBlock: true })]) {
      const { cached, uncached, stats } = both(first, second, context);
      expect(stats.templateHits).toBe(0);
      expect(json(cached)).toEqual(json(uncached));
      for (const p of [AGENT, DEVELOPER, DBA]) expect(decisionOf(cached, p)).toEqual(decisionOf(uncached, p));
    }
  });

  it('gives the same facts and decisions as the uncached path over a corpus of statements with changed literals', () => {
    const corpus = collectCorpus();
    expect(corpus.length).toBeGreaterThan(200);
    let compared = 0;
    let served = 0;
    for (const sql of corpus) {
      const variant = vary(sql);
      if (variant === undefined || variant === sql) continue;
      for (const context of [newScriptContext, () => ({ ...newScriptContext(), inTransactionBlock: true, lockTimeoutSet: true })]) {
        const { cached, uncached, stats } = both(sql, variant, context);
        served += stats.templateHits;
        compared++;
        expect(json(cached), variant).toEqual(json(uncached));
        for (const p of [AGENT, DBA]) expect(decisionOf(cached, p), variant).toEqual(decisionOf(uncached, p));
        // The reverse direction too: the variant as template, the original served.
        const back = both(variant, sql, context);
        expect(json(back.cached), sql).toEqual(json(back.uncached));
      }
    }
    expect(compared).toBeGreaterThan(100);
    // The corpus exercises the cached path, not only the fallbacks.
    expect(served).toBeGreaterThan(30);
  });

  it('replays the context like a miss and keeps slots per context', () => {
    const cache = new AnalysisCache();
    const ctx = newScriptContext();
    cache.analyzeQuery('SELECT a FROM t WHERE id = 1', { context: ctx }, reusable);
    const inBlock = { ...newScriptContext(), inTransactionBlock: true };
    cache.analyzeQuery('SELECT a FROM t WHERE id = 2', { context: inBlock }, reusable);
    expect(cache.stats().templateHits).toBe(0); // another context slot
    cache.analyzeQuery('SELECT a FROM t WHERE id = 3', { context: { ...newScriptContext(), inTransactionBlock: true } }, reusable);
    expect(cache.stats().templateHits).toBe(1);
  });

  it('is off with literals: false, and bounded by the shared byte budget', () => {
    const off = new AnalysisCache({ literals: false });
    off.analyzeQuery('SELECT a FROM t WHERE id = 1');
    off.analyzeQuery('SELECT a FROM t WHERE id = 2');
    expect(off.stats()).toMatchObject({ templates: 0, templateHits: 0, entries: 2 });
    const small = new AnalysisCache({ maxBytes: 32 * 1024 });
    for (let i = 0; i < 500; i++) small.analyzeQuery(`SELECT a FROM t${i} WHERE id = ${i}`);
    expect(small.stats().bytes).toBeLessThanOrEqual(32 * 1024);
    expect(small.stats().templates).toBeLessThan(500);
  });
});

/** SQL statements quoted in the analyzer, policy and enforcement tests and the default policy's cases. */
function collectCorpus(): string[] {
  const root = path.resolve(import.meta.dirname, '..', '..');
  const files = [
    ...['test/analyzer', 'test/policy', 'test/enforcement'].flatMap((d) =>
      readdirSync(path.join(root, d)).filter((f) => f.endsWith('.ts')).map((f) => path.join(root, d, f)),
    ),
    path.join(root, 'docs/default-policy.cases.yaml'),
  ];
  const start = /^\s*(SELECT|INSERT|UPDATE|DELETE|WITH|VALUES|TABLE|EXPLAIN|SET|RESET|COPY|CREATE|ALTER|DROP|DO|CALL|PREPARE|EXECUTE|TRUNCATE|GRANT|REVOKE|BEGIN|LOCK|VACUUM|MERGE|SHOW)\b/i;
  const out = new Set<string>();
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/"((?:[^"\\\n]|\\.)*)"|`([^`$\\]*)`|'((?:[^'\\\n]|\\.)*)'/g)) {
      const s = m[1] ?? m[2] ?? m[3];
      if (s !== undefined && start.test(s)) out.add(s);
    }
    for (const m of text.matchAll(/^\s*sql:\s*(.+)$/gm)) if (start.test(m[1]!)) out.add(m[1]!.trim());
  }
  return [...out];
}
