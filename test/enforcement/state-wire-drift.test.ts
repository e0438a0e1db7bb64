import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, upstreamUrl, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';

/**
 * Drift found on a refresh (issue 7): a change made directly on the server, around pgairlock, is recorded in
 * the audit trail with the changed definition lines, and counted in pgairlock_schema_drift_total, which the
 * runtime serves at GET /metrics.
 */
const db = useTestDatabase();

const driftLine = (text: string, database: string): number => {
  const m = new RegExp(`^pgairlock_schema_drift_total\\{database="${database}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
};

describe.skipIf(!postgresAvailable())('drift found on a refresh: audit record and metric', () => {
  let rt: TestRuntime;
  const scrape = async (path = '/metrics') => fetch(`http://127.0.0.1:${rt.runtime.metrics!.address.port}${path}`);

  beforeAll(async () => {
    await db.query('CREATE TABLE accounts (id int PRIMARY KEY, email text); CREATE VIEW account_emails AS SELECT id, email FROM accounts');
    const upstream = upstreamUrl(db.name);
    rt = await startTestRuntime(db.name, {
      upstream: { url: upstream },
      principals: { map: [{ name: 'dba', roles: ['dba'], match: { users: ['postgres'] } }] },
      state: { refresh_interval_ms: 0 },
      metrics: { listen: '127.0.0.1:0' },
    });
  });
  afterAll(async () => rt?.close());

  it('serves Prometheus text at /metrics only', async () => {
    const res = await scrape();
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toContain('# TYPE pgairlock_schema_drift_total counter');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    expect((await scrape('/other')).status).toBe(404);
  });

  it('a hand change on the server is counted and audited with what changed; DDL through pgairlock is not', async () => {
    const catalog = rt.runtime.governance.catalog!;
    await catalog.refresh(db.name, 'interval');
    const before = driftLine(await (await scrape()).text(), db.name);
    // Through pgairlock: not drift.
    const c = new pg.Client({ connectionString: rt.url(db.name) });
    await c.connect();
    await c.query('ALTER TABLE accounts ADD COLUMN name text');
    await c.end();
    await new Promise((r) => setTimeout(r, 500)); // the DDL refresh (debounced) runs
    await catalog.refresh(db.name, 'interval');
    expect(driftLine(await (await scrape()).text(), db.name)).toBe(before);
    // Around pgairlock: drift.
    await db.query('CREATE OR REPLACE VIEW account_emails AS SELECT id, email, 1 AS by_hand FROM accounts');
    await catalog.refresh(db.name, 'interval');
    expect(driftLine(await (await scrape()).text(), db.name)).toBe(before + 1);
    const q = rt.runtime.governance.auditQuery!;
    let records = await q.search({ kind: 'drift' });
    for (const end = Date.now() + 10_000; !records.some((r) => JSON.stringify(r.body).includes('by_hand')) && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 100)); // drift records are group-committed
      records = await q.search({ kind: 'drift' });
    }
    const rec = records.find((r) => JSON.stringify(r.body).includes('account_emails'));
    expect(rec).toBeDefined();
    const body = rec!.body as { object: string; detail: string; expected_version: string | null; actual_version: string | null };
    expect(body.object).toBe('public.account_emails');
    expect(body.detail).toMatch(/changed outside pgairlock \(found by the interval refresh/);
    expect(body.detail).toContain('by_hand');
    expect(body.expected_version).not.toBe(body.actual_version);
    // The column added through pgairlock is no drift record.
    expect(records.some((r) => (r.body as { object?: string }).object === 'public.accounts')).toBe(false);
  });
});
