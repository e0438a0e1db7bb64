import pg from 'pg';
import { register } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CatalogSnapshot, TableObject } from '../../governance/state/types.js';
import { postgresAvailable, upstreamUrl, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';

/**
 * Snapshot refresh after DDL through the proxy (issue 7): no interval refresh is configured, so only the
 * DDL that passed through pgairlock can bring the snapshot up to date; DDL inside a transaction counts once
 * committed, and is not mistaken for drift.
 */
const db = useTestDatabase();

async function metricValue(name: string, labels: Record<string, string>): Promise<number> {
  const m = register.getSingleMetric(name);
  if (!m) return 0;
  const { values } = await m.get();
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((a, v) => a + v.value, 0);
}

async function until<T>(what: string, probe: () => T | undefined, ms = 15_000): Promise<T> {
  for (const end = Date.now() + ms; ; ) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.skipIf(!postgresAvailable())('catalog snapshot refresh after DDL through the proxy', () => {
  let rt: TestRuntime;
  let c: pg.Client;
  const snap = (): CatalogSnapshot | undefined => rt.runtime.governance.catalog!.get(db.name);
  const table = (s: CatalogSnapshot | undefined, name: string) => s?.objects.find((o): o is TableObject => o.key === `table:public.${name}`);

  beforeAll(async () => {
    await db.query('CREATE TABLE widgets (id int PRIMARY KEY)');
    const upstream = upstreamUrl(db.name);
    rt = await startTestRuntime(db.name, {
      upstream: { url: upstream },
      principals: { map: [{ name: 'dba', roles: ['dba'], match: { users: ['postgres'] } }] },
      policy: { default_effect: { global: 'allow' }, rules: [] },
      state: { refresh_interval_ms: 0, ddl_debounce_ms: 50 },
    });
    c = new pg.Client({ connectionString: rt.url(db.name) });
    await c.connect();
  });
  afterAll(async () => {
    await c?.end();
    await rt?.close();
  });

  it('refreshes after autocommit DDL, without an interval refresh or a call to refresh()', async () => {
    const before = await rt.runtime.governance.catalog!.current(db.name);
    expect(table(before, 'gadgets')).toBeUndefined();
    const ddlRefreshes = await metricValue('pgairlock_catalog_refresh_total', { database: db.name, reason: 'ddl', result: 'ok' });
    await c.query('CREATE TABLE gadgets (id int PRIMARY KEY, label text)');
    const after = await until('the new table in the snapshot', () => (table(snap(), 'gadgets') ? snap() : undefined));
    expect(after.schemaHash).not.toBe(before.schemaHash);
    expect(table(after, 'gadgets')?.columns.map((col) => col.name)).toEqual(['id', 'label']);
    expect(await metricValue('pgairlock_catalog_refresh_total', { database: db.name, reason: 'ddl', result: 'ok' })).toBeGreaterThan(ddlRefreshes);
  });

  it('refreshes DDL in a transaction once it commits, and does not count it as drift', async () => {
    const drift = await metricValue('pgairlock_schema_drift_total', { database: db.name });
    await c.query('BEGIN');
    await c.query('ALTER TABLE gadgets ADD COLUMN price numeric');
    // Longer than the debounce: a refresh at forward time would read the catalog before the COMMIT.
    await new Promise((r) => setTimeout(r, 400));
    await c.query('SELECT 1');
    expect(table(snap(), 'gadgets')?.columns.map((col) => col.name)).toEqual(['id', 'label']);
    await c.query('COMMIT');
    const after = await until('the committed column in the snapshot', () => (table(snap(), 'gadgets')?.columns.some((col) => col.name === 'price') ? snap() : undefined));
    // A later refresh (as the interval would run) finds nothing new: the change was ours, not drift.
    const again = await rt.runtime.governance.catalog!.refresh(db.name, 'interval');
    expect(again.schemaHash).toBe(after.schemaHash);
    expect(await metricValue('pgairlock_schema_drift_total', { database: db.name })).toBe(drift);
  });

  it('audits DDL with the catalog version before it (decision) and after it (outcome), also after a COMMIT', async () => {
    type Row = { kind: string; body: { sql?: string; catalog_version_before?: string | null; catalog_version_after?: string | null } };
    const recordsOf = async (sql: string) => {
      for (const end = Date.now() + 15_000; ; ) {
        const { rows } = await db.query<Row>(
          `SELECT d.body AS decision, o.body AS outcome FROM pgairlock.audit_log d
             LEFT JOIN pgairlock.audit_log o ON o.kind = 'outcome' AND o.body->>'decision_id' = d.id::text
            WHERE d.kind = 'decision' AND d.body->>'sql' = $1`,
          [sql],
        );
        const r = rows[0] as unknown as { decision: Row['body']; outcome: Row['body'] | null } | undefined;
        if (r?.outcome || Date.now() > end) return r ?? expect.unreachable(`no decision record for ${sql}`);
        await new Promise((res) => setTimeout(res, 100));
      }
    };
    const before = await rt.runtime.governance.catalog!.current(db.name);
    const autocommit = 'CREATE TABLE sprockets (id int PRIMARY KEY)';
    await c.query(autocommit);
    const a = await recordsOf(autocommit);
    expect(a.decision.catalog_version_before).toBe(before.schemaHash);
    const afterA = await until('sprockets in the snapshot', () => (table(snap(), 'sprockets') ? snap() : undefined));
    expect(a.outcome?.catalog_version_after).toBe(afterA.schemaHash);
    expect(a.outcome?.catalog_version_after).not.toBe(before.schemaHash);

    // In a transaction block the version after is the one read once the transaction committed.
    const inTx = 'ALTER TABLE sprockets ADD COLUMN teeth int';
    await c.query('BEGIN');
    await c.query(inTx);
    await c.query('COMMIT');
    const t = await recordsOf(inTx);
    expect(t.decision.catalog_version_before).toBe(afterA.schemaHash);
    const afterT = await until('the teeth column', () => (table(snap(), 'sprockets')?.columns.some((col) => col.name === 'teeth') ? snap() : undefined));
    expect(t.outcome?.catalog_version_after).toBe(afterT.schemaHash);
    expect(afterT.schemaHash).not.toBe(afterA.schemaHash);
  });

  it('judges a later expect_schema against the refreshed state', async () => {
    const live = snap()!;
    const oldHash = rt.runtime.governance.catalog!.findVersion(db.name, live.schemaHash) ? live.schemaHash : '';
    expect(oldHash).toBe(live.schemaHash);
    const first = rt.runtime.governance.catalog!.findVersion(db.name, live.schemaHash)!;
    // The current version is accepted for DDL on the new table...
    await c.query(`SET pgairlock.expect_schema = '${live.schemaHash}'`);
    await c.query('ALTER TABLE gadgets ADD COLUMN sku text');
    const newer = await until('the sku column', () => (table(snap(), 'gadgets')?.columns.some((col) => col.name === 'sku') ? snap() : undefined));
    expect(newer.schemaHash).not.toBe(first.schemaHash);
    // ...and the version before that DDL is now stale for it, with what changed.
    const other = new pg.Client({ connectionString: rt.url(db.name) });
    await other.connect();
    try {
      await other.query(`SET pgairlock.expect_schema = '${first.schemaHash}'`);
      const e = await other.query('ALTER TABLE gadgets DROP COLUMN label').then(
        () => undefined,
        (err: { code: string; message: string; detail?: string }) => err,
      );
      expect(e?.code).toBe('42501');
      expect(e?.message).toContain('expect_schema');
      expect(e?.detail).toContain('gadgets');
      await other.query(`SET pgairlock.expect_schema = '${newer.schemaHash}'`);
      await other.query('ALTER TABLE gadgets DROP COLUMN label');
    } finally {
      await other.end();
    }
    await until('the dropped column gone', () => (table(snap(), 'gadgets')?.columns.some((col) => col.name === 'label') ? undefined : true));
  });
});
