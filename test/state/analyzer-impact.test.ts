import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer, type StatementFacts } from '../../analyzer/index.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { checkExpected, computeImpact, MemoryUsageIndex, prefetchUsage, readSnapshot, recordStatementUse, tableUsesFromStats, type CatalogSnapshot } from '../../governance/state/index.js';
import { FIXTURE_ROWS_SQL, FIXTURE_SQL, withClient } from './helpers.js';

/** The real analyzer's facts joined with a real snapshot: the contract between analyzer/ and governance/state. */

const db = useTestDatabase();
const SEARCH_PATH = ['$user', 'public'];

function one(sql: string): StatementFacts {
  const a = analyze(sql, { serverVersion: 150000 });
  if (!a.ok) throw new Error(a.error.message);
  const f = a.statements[0];
  if (!f) throw new Error('no statement');
  return f;
}

describe.runIf(postgresAvailable())('impact from real analyzer facts', () => {
  let s: CatalogSnapshot;
  beforeAll(async () => {
    await loadAnalyzer();
    await db.query(FIXTURE_SQL);
    await db.query(FIXTURE_ROWS_SQL);
    s = await withClient(db.url, (c) => readSnapshot(c));
  });
  const impact = (sql: string) => computeImpact({ facts: one(sql), snapshot: s, searchPath: SEARCH_PATH, user: 'postgres' });

  it('ALTER COLUMN TYPE: full rewrite of a big table, views over the column in the chain', () => {
    const i = impact('ALTER TABLE orders ALTER COLUMN total TYPE numeric(14,2)');
    expect(i.lockDuration).toBe('rewrite');
    expect(i.maxRowEstimate).toBeGreaterThan(45_000);
    expect(i.dependents.find((d) => d.key === 'view:public.big_paid')?.chain).toEqual(['table:public.orders', 'view:public.paid_orders', 'view:public.big_paid']);
    expect(i.touched).toContain('table:public.orders');
  });

  it('CREATE INDEX without CONCURRENTLY is proportional to a table of 20k rows; ADD COLUMN is instant', () => {
    const idx = impact('CREATE INDEX customers_name_idx ON customers (name)');
    expect(idx.lockDuration).toBe('proportional');
    expect(idx.maxRowEstimate).toBeGreaterThan(19_000);
    const add = impact('ALTER TABLE customers ADD COLUMN phone text');
    expect(add.lockDuration).toBe('instant');
  });

  it('RENAME COLUMN and DROP COLUMN name what depends on the column', () => {
    const ren = impact('ALTER TABLE orders RENAME COLUMN status TO state');
    expect(ren.dependents.map((d) => d.key)).toEqual(expect.arrayContaining(['view:public.paid_orders', 'view:public.big_paid']));
    const drop = impact('ALTER TABLE customers DROP COLUMN email');
    expect(drop.dependents.map((d) => d.key)).toContain('constraint:public.customers.customers_email_key');
    expect(drop.dependents.map((d) => d.key)).not.toContain('view:public.paid_orders');
  });

  it('CREATE OR REPLACE VIEW touches the live view: a hand-changed view is stale against the expected hash', () => {
    const i = impact(`CREATE OR REPLACE VIEW paid_orders AS SELECT id, customer_id, total FROM orders WHERE status = 'paid'`);
    expect(i.touched).toContain('view:public.paid_orders');
    expect(i.dependents.map((d) => d.key)).toContain('view:public.big_paid');
    const expectedHash = s.objects.find((o) => o.key === 'view:public.paid_orders')?.hash ?? '';
    const tampered: CatalogSnapshot = { ...s, objects: s.objects.map((o) => (o.key === 'view:public.paid_orders' ? { ...o, hash: 'f'.repeat(64) } : o)) };
    expect(checkExpected(tampered, { objects: { 'view:public.paid_orders': expectedHash } }, i.touched)).toMatchObject({ stale: true, reason: 'changed' });
  });

  it('DROP FUNCTION of a trigger function names the trigger', () => {
    const i = impact('DROP FUNCTION set_total()');
    expect(i.dependents.map((d) => d.key)).toContain('trigger:public.orders.orders_total');
  });

  it('usage glue: reads recorded from facts; a column rename finds who read that column, excluding the renamer', async () => {
    const usage = new MemoryUsageIndex({ flushIntervalMs: 60_000 });
    const ctx = { database: db.name, snapshot: s, searchPath: SEARCH_PATH, user: 'postgres' };
    const stmts = (sql: string) => {
      const a = analyze(sql);
      if (!a.ok) throw new Error(a.error.message);
      return a.statements;
    };
    recordStatementUse(usage, { principal: 'svc:web', application: 'web' }, ctx, stmts(`SELECT id, status FROM orders WHERE status = 'paid'`));
    recordStatementUse(usage, { principal: 'agent:migrator', application: 'claude' }, ctx, stmts('SELECT status FROM public.orders'));
    recordStatementUse(usage, { principal: 'svc:billing', application: 'billing' }, ctx, stmts('UPDATE customers SET name = $1 WHERE id = $2'));
    const since = Date.now() - 24 * 3_600_000;
    const rename = await prefetchUsage(usage, ctx, stmts('ALTER TABLE orders RENAME COLUMN status TO state'), since, 'agent:migrator');
    expect([...rename.keys()]).toEqual(['public.orders']);
    expect(rename.get('public.orders')?.map((u) => [u.principal, u.application])).toEqual([['svc:web', 'web']]);
    const other = await prefetchUsage(usage, ctx, stmts('ALTER TABLE orders RENAME COLUMN total TO amount'), since, 'agent:migrator');
    expect(other.size).toBe(0);
    const drop = await prefetchUsage(usage, ctx, stmts('DROP TABLE customers'), since);
    expect(drop.get('public.customers')?.map((u) => u.principal)).toEqual(['svc:billing']);
    await usage.close();
  });

  it('tableUsesFromStats turns pg_stat_statements texts into table and column uses by role', () => {
    const uses = tableUsesFromStats(
      [
        { role: 'web', queryid: '1', query: 'SELECT email FROM customers WHERE id = $1', calls: 7, rows: 7, totalExecMs: 1 },
        { role: 'batch', queryid: '2', query: 'UPDATE orders SET status = $1 WHERE id = $2', calls: 3, rows: 3, totalExecMs: 1 },
        { role: 'x', queryid: '3', query: 'this is not sql', calls: 1, rows: 0, totalExecMs: 0 },
      ],
      (sql) => {
        const a = analyze(sql);
        if (!a.ok) throw new Error(a.error.message);
        return a.statements;
      },
    );
    expect(uses.find((u) => u.role === 'web')).toMatchObject({ table: 'customers', mode: 'read', calls: 7 });
    expect(uses.find((u) => u.role === 'web')?.columns).toContain('email');
    expect(uses.find((u) => u.role === 'batch' && u.mode === 'write')).toMatchObject({ table: 'orders', calls: 3 });
    expect(uses.some((u) => u.role === 'x')).toBe(false);
  });
});
