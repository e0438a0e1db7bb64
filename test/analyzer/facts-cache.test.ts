/** The analysis cache: exact-text hits, byte bound, version and context separation, context replay. */
import { beforeAll, describe, expect, it } from 'vitest';
import { analysisCacheStats, analyze, AnalysisCache, analyzeCached, configureAnalysisCache, estimateAnalysisBytes, loadAnalyzer, newScriptContext } from '../../analyzer/index.js';

describe('AnalysisCache', () => {
  beforeAll(async () => { await loadAnalyzer(); });

  it('returns the same analysis object for the same text (a hit) and counts hits and misses', () => {
    const cache = new AnalysisCache();
    const a = cache.analyze('SELECT * FROM t WHERE id = 1');
    const b = cache.analyze('SELECT * FROM t WHERE id = 1');
    expect(b).toBe(a);
    const c = cache.analyze('SELECT * FROM t WHERE id = 2');
    expect(c).not.toBe(a);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 2, entries: 2 });
  });

  it('keys on the server version: the same text analysed for another version is a miss with other facts', () => {
    const cache = new AnalysisCache();
    const sql = 'ALTER TABLE t ADD COLUMN c int DEFAULT 0';
    const v10 = cache.analyze(sql, { serverVersion: 100000 });
    const v16 = cache.analyze(sql, { serverVersion: 160000 });
    if (!v10.ok || !v16.ok) throw new Error('parse');
    expect(v10.statements[0]!.locks[0]!.rewrite).toBe(true);
    expect(v16.statements[0]!.locks[0]!.rewrite).toBe(false);
    expect(cache.stats().hits).toBe(0);
  });

  it('stays under its byte bound by evicting the least recently used entries', () => {
    const cache = new AnalysisCache({ maxBytes: 64 * 1024 });
    for (let i = 0; i < 2000; i++) cache.analyze(`SELECT a, b, c FROM t${i} WHERE id = ${i}`);
    const s = cache.stats();
    expect(s.bytes).toBeLessThanOrEqual(64 * 1024);
    expect(s.evictions).toBeGreaterThan(0);
    expect(s.entries).toBeLessThan(2000);
    // the most recent entry is still there, the first one is gone
    cache.analyze('SELECT a, b, c FROM t1999 WHERE id = 1999');
    expect(cache.stats().hits).toBe(1);
    cache.analyze('SELECT a, b, c FROM t0 WHERE id = 0');
    expect(cache.stats().hits).toBe(1);
  });

  it('keeps a recently used entry over older ones (LRU, not FIFO)', () => {
    const one = estimateAnalysisBytes(analyze('SELECT 1 FROM a0'));
    const cache = new AnalysisCache({ maxBytes: Math.ceil(one * 3.5) + 600 });
    cache.analyze('SELECT 1 FROM a0');
    cache.analyze('SELECT 1 FROM a1');
    cache.analyze('SELECT 1 FROM a0'); // touch a0
    cache.analyze('SELECT 1 FROM a2');
    cache.analyze('SELECT 1 FROM a3'); // evicts a1, the least recently used
    const hitsBefore = cache.stats().hits;
    cache.analyze('SELECT 1 FROM a0');
    expect(cache.stats().hits).toBe(hitsBefore + 1);
    cache.analyze('SELECT 1 FROM a1');
    expect(cache.stats().hits).toBe(hitsBefore + 1);
  });

  it('does not cache texts longer than maxTextLength', () => {
    const cache = new AnalysisCache({ maxTextLength: 100 });
    const sql = `SELECT ${'1, '.repeat(60)}1`;
    cache.analyze(sql);
    cache.analyze(sql);
    expect(cache.stats()).toMatchObject({ hits: 0, entries: 0 });
  });

  it('replays context transitions on a hit, exactly as a miss would', () => {
    const cache = new AnalysisCache();
    const c1 = newScriptContext();
    cache.analyze("BEGIN; SET LOCAL lock_timeout = '1s'", { context: c1 });
    const c2 = newScriptContext();
    cache.analyze("BEGIN; SET LOCAL lock_timeout = '1s'", { context: c2 });
    expect(cache.stats().hits).toBe(1);
    expect(c2).toEqual(c1);
    expect(c2.inTransactionBlock).toBe(true);
    expect(c2.lockTimeoutSet).toBe(true);
  });

  it('separates analyses by the context bits findings depend on', () => {
    const cache = new AnalysisCache();
    const sql = 'CREATE INDEX i ON big (a)';
    const outside = cache.analyze(sql, { context: newScriptContext() });
    const ctx = newScriptContext();
    ctx.lockTimeoutSet = true;
    const withTimeout = cache.analyze(sql, { context: ctx });
    expect(withTimeout).not.toBe(outside);
    expect(cache.stats().hits).toBe(0);
    if (!outside.ok || !withTimeout.ok) throw new Error('parse');
    const rules = (a: typeof outside) => (a.ok ? a.statements[0]!.findings.map((f) => f.rule) : []);
    expect(rules(outside)).toContain('missing-lock-timeout');
    expect(rules(withTimeout)).not.toContain('missing-lock-timeout');
  });

  it('neither reuses nor stores an analysis that touches a relation the session created', () => {
    const cache = new AnalysisCache();
    const sql = 'CREATE INDEX i ON fresh (a)';
    cache.analyze(sql); // cached for an empty context
    const ctx = newScriptContext();
    ctx.createdRelations.add('fresh');
    const a = cache.analyze(sql, { context: ctx });
    expect(cache.stats().hits).toBe(0);
    if (!a.ok) throw new Error('parse');
    expect(a.statements[0]!.findings.map((f) => f.rule)).not.toContain('create-index-without-concurrently');
  });

  it('caches parse failures too', () => {
    const cache = new AnalysisCache();
    const a = cache.analyze('SELEC 1');
    const b = cache.analyze('SELEC 1');
    expect(a.ok).toBe(false);
    expect(b).toBe(a);
  });

  it('analyzeCached uses the process-wide cache that configureAnalysisCache replaces', () => {
    configureAnalysisCache({ maxBytes: 1024 * 1024 });
    const sql = 'SELECT * FROM process_wide WHERE id = 1';
    const a = analyzeCached(sql);
    const b = analyzeCached(sql);
    expect(b).toBe(a);
    expect(analysisCacheStats()).toMatchObject({ hits: 1, misses: 1, maxBytes: 1024 * 1024 });
    configureAnalysisCache({ maxBytes: 0 });
    analyzeCached(sql);
    analyzeCached(sql);
    expect(analysisCacheStats()).toMatchObject({ hits: 0, misses: 2, entries: 0 });
  });
});
