import { beforeAll, describe, expect, it } from 'vitest';
import { AnalysisCache, loadAnalyzer, newScriptContext, type StatementFacts } from '../../analyzer/index.js';
import { MemoryUsageIndex, readSnapshot, recordStatementUse, type CatalogSnapshot } from '../../governance/state/index.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { withClient } from './helpers.js';

/**
 * The hot path resolves a statement's names once per shape (relations list), snapshot, search_path and
 * user: the same facts under another search_path, or rebound from a literal template, are recorded
 * against the right tables.
 */
const db = useTestDatabase();

describe.runIf(postgresAvailable())('usage records memoised per statement shape', () => {
  let s: CatalogSnapshot;
  beforeAll(async () => {
    await loadAnalyzer();
    await db.query('CREATE SCHEMA a; CREATE SCHEMA b; CREATE TABLE a.t(id int, v text); CREATE TABLE b.t(id int, w text)');
    s = await withClient(db.url, (c) => readSnapshot(c));
  });

  const users = async (usage: MemoryUsageIndex, schema: string, column?: string) =>
    (await usage.recentUsers({ database: db.name, schema, table: 't', ...(column ? { column } : {}) }, 0)).map((u) => [u.principal, u.reads]);

  it('the same facts under two search_paths are recorded against the table each one resolves to', async () => {
    const cache = new AnalysisCache();
    const first = cache.analyzeQuery('SELECT v FROM t WHERE id = 1', { context: newScriptContext() });
    const second = cache.analyzeQuery('SELECT v FROM t WHERE id = 2', { context: newScriptContext() });
    if (!first.ok || !second.ok) throw new Error('parse');
    expect(cache.stats().templateHits).toBe(1);
    const f1: StatementFacts = first.statements[0]!;
    const f2: StatementFacts = second.statements[0]!;
    expect(f2.relations).toBe(f1.relations); // one shape: the memo is shared
    const usage = new MemoryUsageIndex({ flushIntervalMs: 60_000 });
    const ctx = (searchPath: string[]) => ({ database: db.name, snapshot: s, searchPath, user: 'postgres' });
    recordStatementUse(usage, { principal: 'p1', application: 'x' }, ctx(['a']), [f1]);
    recordStatementUse(usage, { principal: 'p1', application: 'x' }, ctx(['a']), [f2]);
    recordStatementUse(usage, { principal: 'p2', application: 'x' }, ctx(['b', 'a']), [f2]);
    recordStatementUse(usage, { principal: 'p3', application: 'x' }, ctx(['a']), [f1]);
    await usage.flush();
    expect(await users(usage, 'a')).toEqual(expect.arrayContaining([['p1', 2], ['p3', 1]]));
    expect(await users(usage, 'a')).toHaveLength(2);
    expect(await users(usage, 'b')).toEqual([['p2', 1]]);
    expect(await users(usage, 'a', 'v')).toHaveLength(2);
    expect(await users(usage, 'b', 'v')).toEqual([['p2', 1]]);
    await usage.close();
  });
});
