import { Registry } from 'prom-client';
import { beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import {
  CatalogState, checkExpected, computeImpact, connectByUrl, dependentsOf, describeChain, diffSnapshots, driftAuditInputs, explainRowEstimate,
  readSnapshot, type CatalogObject, type CatalogSnapshot, type DriftEvent,
} from '../../governance/state/index.js';
import { facts, FIXTURE_ROWS_SQL, FIXTURE_SQL, withClient } from './helpers.js';

const db = useTestDatabase();
const SEARCH_PATH = ['$user', 'public'];

function obj<K extends CatalogObject['kind']>(s: CatalogSnapshot, key: string, kind: K): CatalogObject & { kind: K } {
  const o = s.objects.find((x) => x.key === key);
  if (!o) throw new Error(`${key} not in snapshot; have ${s.objects.map((x) => x.key).join(', ')}`);
  expect(o.kind).toBe(kind);
  return o as CatalogObject & { kind: K };
}

const snap = (): Promise<CatalogSnapshot> => withClient(db.url, (c) => readSnapshot(c));

describe.runIf(postgresAvailable())('catalog snapshot', () => {
  let s: CatalogSnapshot;
  beforeAll(async () => {
    await db.query(FIXTURE_SQL);
    await db.query(FIXTURE_ROWS_SQL);
    s = await snapshot();
  });
  const snapshot = snap;

  it('reads tables with row estimates, sizes and analyze times', () => {
    const orders = obj(s, 'table:public.orders', 'table');
    expect(orders.stats.rowEstimate).toBeGreaterThan(45_000);
    expect(orders.stats.rowEstimate).toBeLessThan(55_000);
    expect(orders.stats.totalBytes).toBeGreaterThan(1_000_000);
    expect(orders.stats.lastAnalyze).not.toBeNull();
    const customers = obj(s, 'table:public.customers', 'table');
    expect(customers.stats.rowEstimate).toBeGreaterThan(19_000);
    // A partitioned table: rows and size summed over its partitions; the partitions are tables of their own.
    const events = obj(s, 'table:public.events', 'table');
    expect(events.relkind).toBe('p');
    expect(events.definition).toContain('PARTITION BY RANGE (at)');
    expect(events.stats.rowEstimate).toBeGreaterThan(27_000);
    const p25 = obj(s, 'table:public.events_2025', 'table');
    const p26 = obj(s, 'table:public.events_2026', 'table');
    expect(p25.definition).toContain("PARTITION OF public.events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')");
    expect(events.stats.totalBytes).toBe(p25.stats.totalBytes + p26.stats.totalBytes);
    expect(events.stats.totalBytes).toBeGreaterThan(500_000);
  });

  it('reads columns with types, nullability, defaults and identity', () => {
    const orders = obj(s, 'table:public.orders', 'table');
    expect(orders.columns.map((c) => c.name)).toEqual(['id', 'customer_id', 'total', 'status']);
    expect(orders.columns[0]).toMatchObject({ type: 'integer', notNull: true, identity: 'a' });
    expect(orders.columns[2]).toMatchObject({ type: 'numeric(10,2)', notNull: true, default: '0' });
    expect(orders.columns[3]).toMatchObject({ type: 'text', notNull: false, default: null });
    const customers = obj(s, 'table:public.customers', 'table');
    expect(customers.columns[0]?.default).toContain("nextval('public.customers_id_seq'");
    expect(customers.definition).toContain("name text DEFAULT 'anon'::text");
  });

  it('reads indexes, constraints, views, functions, triggers and sequences', () => {
    expect(obj(s, 'index:public.orders_pkey', 'index')).toMatchObject({ primary: true, unique: true, valid: true, table: 'public.orders' });
    expect(obj(s, 'index:public.orders_customer_idx', 'index').definition).toBe('CREATE INDEX orders_customer_idx ON public.orders USING btree (customer_id)');
    const fk = obj(s, 'constraint:public.orders.orders_customer_id_fkey', 'constraint');
    expect(fk).toMatchObject({ type: 'f', references: 'public.customers' });
    expect(fk.definition).toContain('REFERENCES public.customers(id)');
    expect(obj(s, 'constraint:public.orders.orders_status_check', 'constraint').type).toBe('c');
    expect(obj(s, 'view:public.paid_orders', 'view').viewdef).toContain("'paid'::text");
    expect(obj(s, 'view:public.big_paid', 'view').viewdef).toContain('public.paid_orders');
    expect(obj(s, 'matview:public.order_totals', 'matview').stats.totalBytes).toBeGreaterThan(0);
    expect(obj(s, 'function:public.set_total()', 'function').definition).toContain('coalesce(NEW.total, 0)');
    expect(obj(s, 'function:public.add_one(a integer)', 'function').language).toBe('sql');
    expect(obj(s, 'trigger:public.orders.orders_total', 'trigger')).toMatchObject({ function: 'function:public.set_total()', table: 'public.orders' });
    expect(obj(s, 'sequence:public.invoice_no', 'sequence').definition).toContain('START 1000');
    expect(obj(s, 'sequence:public.customers_id_seq', 'sequence').ownedBy).toBe('public.customers.id');
  });

  it('leaves out pgairlock, pg_catalog, information_schema and pg_toast', () => {
    const schemas = new Set(s.objects.map((o) => o.schema));
    expect(schemas.has('pgairlock')).toBe(false);
    expect(schemas.has('pg_catalog')).toBe(false);
    expect(schemas.has('information_schema')).toBe(false);
    expect([...schemas].some((x) => x.startsWith('pg_toast'))).toBe(false);
    expect(s.objects.some((o) => o.key === 'schema:public')).toBe(true);
    expect(s.cost.queries).toBeLessThanOrEqual(12);
    expect(s.cost.rowsRead).toBeGreaterThan(s.objects.length);
  });

  it('keeps hashes stable across refreshes and statistics changes', async () => {
    await db.query(`INSERT INTO customers (email) SELECT 'more' || g FROM generate_series(1, 5000) g; ANALYZE customers`);
    const again = await snapshot();
    expect(again.schemaHash).toBe(s.schemaHash);
    expect(again.objects.map((o) => `${o.key}=${o.hash}`)).toEqual(s.objects.map((o) => `${o.key}=${o.hash}`));
    expect(obj(again, 'table:public.customers', 'table').stats.rowEstimate).toBeGreaterThan(24_000);
  });

  it('walks dependency chains: view over view over table, foreign key, trigger function', () => {
    const onOrders = dependentsOf(s, 'table:public.orders');
    const big = onOrders.find((d) => d.key === 'view:public.big_paid');
    expect(big?.chain).toEqual(['table:public.orders', 'view:public.paid_orders', 'view:public.big_paid']);
    expect(describeChain(big?.chain ?? [])).toBe('table public.orders <- view public.paid_orders <- view public.big_paid');
    expect(onOrders.map((d) => d.key)).toEqual(expect.arrayContaining(['matview:public.order_totals', 'trigger:public.orders.orders_total', 'index:public.orders_customer_idx']));

    const onCustomers = dependentsOf(s, 'table:public.customers');
    expect(onCustomers.find((d) => d.key === 'constraint:public.orders.orders_customer_id_fkey')).toMatchObject({ via: 'foreign-key', column: 'id', deptype: 'n' });

    expect(dependentsOf(s, 'function:public.set_total()').map((d) => d.key)).toEqual(['trigger:public.orders.orders_total']);

    // Column level: status is used by paid_orders (WHERE) and its check; big_paid only through paid_orders.
    const onStatus = dependentsOf(s, 'table:public.orders', { columns: ['status'] }).map((d) => d.key);
    expect(onStatus).toEqual(expect.arrayContaining(['view:public.paid_orders', 'view:public.big_paid', 'constraint:public.orders.orders_status_check']));
    expect(onStatus).not.toContain('index:public.orders_customer_idx');
    expect(onStatus).not.toContain('matview:public.order_totals');
  });
});

describe.runIf(postgresAvailable())('impact facts', () => {
  let s: CatalogSnapshot;
  beforeAll(async () => {
    s = await snap();
  });

  it('a column type change rewrites a big table and names the views over the column', () => {
    const f = facts({
      node: 'AlterTableStmt',
      relations: [{ relation: { name: 'orders' }, role: 'alter', columns: ['total'] }],
      locks: [{ relation: { name: 'orders' }, mode: 'AccessExclusiveLock', rewrite: true }],
    });
    const impact = computeImpact({ facts: f, snapshot: s, searchPath: SEARCH_PATH, user: 'postgres' });
    expect(impact.lockDuration).toBe('rewrite');
    expect(impact.maxRowEstimate).toBeGreaterThan(45_000);
    const r = impact.relations[0];
    expect(r).toMatchObject({ resolved: { schema: 'public', name: 'orders' }, kind: 'table', lockDuration: 'rewrite' });
    expect(r?.totalBytes).toBeGreaterThan(1_000_000);
    expect(r?.lock?.mode).toBe('AccessExclusiveLock');
    const chain = impact.dependents.find((d) => d.key === 'view:public.big_paid')?.chain;
    expect(chain).toEqual(['table:public.orders', 'view:public.paid_orders', 'view:public.big_paid']);
    expect(impact.dependents.map((d) => d.key)).toContain('matview:public.order_totals');
    expect(impact.touched).toEqual(expect.arrayContaining(['table:public.orders', 'index:public.orders_pkey', 'trigger:public.orders.orders_total']));
  });

  it('CREATE INDEX is proportional, ADD COLUMN is instant, a new table is unresolved', () => {
    const idx = computeImpact({
      snapshot: s, searchPath: SEARCH_PATH,
      facts: facts({ node: 'IndexStmt', relations: [{ relation: { schema: 'public', name: 'customers' }, role: 'reference', columns: ['name'] }], locks: [{ relation: { schema: 'public', name: 'customers' }, mode: 'ShareLock' }] }),
    });
    expect(idx.lockDuration).toBe('proportional');
    expect(idx.maxRowEstimate).toBeGreaterThan(19_000);
    expect(idx.dependents).toEqual([]);

    const add = computeImpact({
      snapshot: s, searchPath: SEARCH_PATH,
      facts: facts({ node: 'AlterTableStmt', relations: [{ relation: { name: 'customers' }, role: 'alter', columns: ['phone'] }], locks: [{ relation: { name: 'customers' }, mode: 'AccessExclusiveLock' }] }),
    });
    expect(add.lockDuration).toBe('instant');
    expect(add.dependents).toEqual([]);

    const created = computeImpact({
      snapshot: s, searchPath: SEARCH_PATH,
      facts: facts({ node: 'CreateStmt', relations: [{ relation: { name: 'brand_new' }, role: 'create' }], locks: [{ relation: { name: 'brand_new' }, mode: 'AccessExclusiveLock' }] }),
    });
    expect(created.unresolved).toEqual([{ name: 'brand_new' }]);
    expect(created.lockDuration).toBe('instant');
    expect(created.relations[0]?.totalBytes).toBeNull();
  });

  it('DROP TABLE lists the foreign keys and TRUNCATE only foreign keys; a search_path without public resolves nothing', () => {
    const drop = computeImpact({
      snapshot: s, searchPath: SEARCH_PATH,
      facts: facts({ node: 'DropStmt', relations: [{ relation: { name: 'customers' }, role: 'drop' }], locks: [{ relation: { name: 'customers' }, mode: 'AccessExclusiveLock' }] }),
    });
    expect(drop.dependents.map((d) => d.key)).toEqual(expect.arrayContaining(['constraint:public.orders.orders_customer_id_fkey', 'sequence:public.customers_id_seq']));
    const trunc = computeImpact({
      snapshot: s, searchPath: SEARCH_PATH,
      facts: facts({ node: 'TruncateStmt', kind: 'write', relations: [{ relation: { name: 'customers' }, role: 'truncate' }], locks: [{ relation: { name: 'customers' }, mode: 'AccessExclusiveLock' }] }),
    });
    expect(trunc.dependents.map((d) => d.via)).toEqual(['foreign-key']);
    const elsewhere = computeImpact({ snapshot: s, searchPath: ['other'], facts: facts({ node: 'DropStmt', relations: [{ relation: { name: 'customers' }, role: 'drop' }] }) });
    expect(elsewhere.unresolved).toHaveLength(1);
    expect(elsewhere.dependents).toEqual([]);
  });

  it('DROP FUNCTION names the trigger that runs it', () => {
    const f = computeImpact({ snapshot: s, searchPath: SEARCH_PATH, facts: facts({ node: 'DropStmt', functions: [{ name: 'set_total' }] }) });
    expect(f.functions[0]?.keys).toEqual(['function:public.set_total()']);
    expect(f.dependents.map((d) => d.key)).toEqual(['trigger:public.orders.orders_total']);
    expect(f.touched).toEqual(['function:public.set_total()']);
  });

  it('explainRowEstimate plans DML without running it, with bound parameters, one statement only', async () => {
    await withClient(db.url, async (c) => {
      const before = (await c.query<{ n: string }>('SELECT count(*) AS n FROM orders')).rows[0]?.n;
      const all = await explainRowEstimate(c, 'DELETE FROM orders');
      expect(all.node).toBe('ModifyTable');
      expect(all.rows).toBeGreaterThan(45_000);
      const one = await explainRowEstimate(c, 'UPDATE orders SET total = 0 WHERE customer_id = $1', ['5']);
      expect(one.rows).toBeLessThan(100);
      await expect(explainRowEstimate(c, 'DELETE FROM orders; DROP TABLE customers')).rejects.toThrow(/multiple commands|cannot insert multiple/i);
      const after = (await c.query<{ n: string }>('SELECT count(*) AS n FROM orders')).rows[0]?.n;
      expect(after).toBe(before);
      expect((await c.query(`SELECT to_regclass('public.customers') AS r`)).rows[0]?.r).toBe('customers');
    });
  });
});

describe.runIf(postgresAvailable())('CatalogState: refresh, drift, expected schema', () => {
  it('detects a hand change as drift naming the object, and not a change that passed through pgairlock', async () => {
    const registry = new Registry();
    const events: DriftEvent[] = [];
    const state = new CatalogState({ connect: connectByUrl(db.url), registry, ddlDebounceMs: 20, onDrift: (e) => events.push(e) });
    try {
      const first = await state.refresh(db.name);
      expect(state.get(db.name)).toBe(first);
      expect(first.readMode).toBe('full');
      // Nothing changed: the catalog fingerprint is equal, so only statistics are re-read (fresh row estimates).
      await db.query(`INSERT INTO orders (customer_id, total, status) SELECT 1, 1, 'new' FROM generate_series(1, 20000); ANALYZE orders`);
      const again = await state.refresh(db.name, 'interval');
      expect(again.readMode).toBe('stats');
      expect(again.cost.queries).toBeLessThanOrEqual(3);
      expect(again.schemaHash).toBe(first.schemaHash);
      const rows = (x: CatalogSnapshot) => x.objects.find((o) => o.key === 'table:public.orders' && o.kind === 'table');
      expect((rows(again) as { stats: { rowEstimate: number } }).stats.rowEstimate).toBeGreaterThan((rows(first) as { stats: { rowEstimate: number } }).stats.rowEstimate + 15_000);
      expect(events).toHaveLength(0);

      // A change made directly on the server, around pgairlock.
      await db.query(`CREATE OR REPLACE VIEW paid_orders AS SELECT id, customer_id, total FROM orders WHERE status = 'paid' AND total > 0`);
      const drifted = await state.refresh(db.name, 'interval');
      expect(drifted.readMode).toBe('full');
      expect(drifted.schemaHash).not.toBe(first.schemaHash);
      expect(events).toHaveLength(1);
      expect(events[0]?.diff.changed.map((c) => c.key)).toEqual(['view:public.paid_orders']);
      expect(events[0]?.diff.changed[0]?.lines?.added.join('\n')).toContain('total > 0');
      const audit = driftAuditInputs(events[0]!);
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ database: db.name, object: 'public.paid_orders', expectedVersion: events[0]?.diff.changed[0]?.before, actualVersion: events[0]?.diff.changed[0]?.after });
      expect(audit[0]?.detail).toContain('view public.paid_orders changed outside pgairlock');
      expect(audit[0]?.detail).toContain('total > 0');
      const counter = await registry.getSingleMetric('pgairlock_schema_drift_total')?.get();
      expect(counter?.values.find((v) => v.labels.database === db.name)?.value).toBe(1);

      // DDL that passed through pgairlock: onDdl, then the debounced refresh picks it up without drift.
      await db.query('ALTER TABLE customers ADD COLUMN phone text');
      state.onDdl(db.name);
      for (let i = 0; i < 200 && state.get(db.name)?.schemaHash === drifted.schemaHash; i++) await new Promise((r) => setTimeout(r, 25));
      const afterDdl = state.get(db.name);
      expect(afterDdl?.schemaHash).not.toBe(drifted.schemaHash);
      expect(afterDdl?.objects.find((o) => o.key === 'table:public.customers')?.definition).toContain('phone text');
      expect(events).toHaveLength(1);

      // Expected schema: the agent still believes in `first`.
      const live = await state.refresh(db.name);
      const find = (h: string) => state.findVersion(db.name, h);
      expect(checkExpected(live, { schemaHash: live.schemaHash }, ['view:public.paid_orders'])).toMatchObject({ stale: false, reason: 'match' });
      const stale = checkExpected(live, { schemaHash: first.schemaHash.slice(0, 16) }, ['view:public.paid_orders'], { findSnapshot: find });
      expect(stale).toMatchObject({ stale: true, reason: 'changed' });
      expect(stale.changes.map((c) => `${c.change} ${c.key}`)).toEqual(['changed view:public.paid_orders']);
      const unrelated = checkExpected(live, { schemaHash: first.schemaHash }, ['table:public.orders', 'index:public.orders_pkey'], { findSnapshot: find });
      expect(unrelated).toMatchObject({ stale: false, reason: 'unrelated-changes' });
      const unknown = checkExpected(live, { schemaHash: 'ab'.repeat(32) }, ['table:public.orders'], { findSnapshot: find });
      expect(unknown).toMatchObject({ stale: true, reason: 'unknown-version' });
      // Per-object expectations (CREATE OR REPLACE VIEW over a view changed by hand).
      const oldView = first.objects.find((o) => o.key === 'view:public.paid_orders')?.hash ?? '';
      const byObject = checkExpected(live, { objects: { 'public.paid_orders': oldView } }, ['view:public.paid_orders']);
      expect(byObject.stale).toBe(true);
      expect(byObject.changes[0]).toMatchObject({ key: 'view:public.paid_orders', change: 'changed', before: oldView });
      const liveView = live.objects.find((o) => o.key === 'view:public.paid_orders')?.hash ?? '';
      expect(checkExpected(live, { objects: { 'view:public.paid_orders': liveView } }, ['view:public.paid_orders']).stale).toBe(false);

      // The whole-schema diff from the first version shows both changes.
      expect(diffSnapshots(first, live).changed.map((c) => c.key)).toEqual(['table:public.customers', 'view:public.paid_orders']);
    } finally {
      await state.stop();
    }
  });

  it('forces a full read after fullReadEvery stats-only refreshes; fastPath false always reads in full', async () => {
    const state = new CatalogState({ connect: connectByUrl(db.url), registry: new Registry(), fullReadEvery: 2 });
    const always = new CatalogState({ connect: connectByUrl(db.url), registry: new Registry(), fastPath: false });
    try {
      const modes: (string | undefined)[] = [];
      for (let i = 0; i < 5; i++) modes.push((await state.refresh(db.name)).readMode);
      expect(modes).toEqual(['full', 'stats', 'stats', 'full', 'stats']);
      await always.refresh(db.name);
      expect((await always.refresh(db.name)).readMode).toBe('full');
    } finally {
      await state.stop();
      await always.stop();
    }
  });

  it('coalesces concurrent refreshes and keeps the previous snapshot when a read fails', async () => {
    let connects = 0;
    const base = connectByUrl(db.url);
    const errors: unknown[] = [];
    const state = new CatalogState({
      connect: (d) => { connects += 1; return base(d); },
      onError: (_db, e) => errors.push(e),
      registry: new Registry(),
    });
    try {
      const [a, b, c] = await Promise.all([state.refresh(db.name), state.refresh(db.name), state.refresh(db.name)]);
      expect(connects).toBe(2); // the running one plus one queued behind it for the two that came during it
      expect(b).toBe(c);
      expect(a.schemaHash).toBe(b.schemaHash);
      await expect(state.refresh('pgairlock_no_such_database_x')).rejects.toThrow(/does not exist/);
      expect(errors).toHaveLength(1);
      expect(state.get(db.name)).toBe(c);
    } finally {
      await state.stop();
    }
  });
});
