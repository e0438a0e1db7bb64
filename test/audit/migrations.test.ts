import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { currentVersion, LATEST_VERSION, migrate, MIGRATIONS } from '../../governance/audit/migrations.js';
import { AuditLog } from '../../governance/audit/log.js';
import { adminQuery, postgresAvailable, urlWithDatabase, useTestDatabase } from '../harness/db.js';
import { allowUpdate } from './fixtures.js';

const db = useTestDatabase();
const clients: pg.Client[] = [];
async function client(url = db.url): Promise<pg.Client> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  clients.push(c);
  return c;
}
afterAll(async () => { await Promise.all(clients.map((c) => c.end().catch(() => undefined))); });

describe.runIf(postgresAvailable())('audit schema migrations', () => {
  it('run concurrently from several replicas: each migration applied exactly once', async () => {
    const cs = await Promise.all([1, 2, 3, 4].map(() => client()));
    const results = await Promise.all(cs.map((c) => migrate(c)));
    expect(results.filter((r) => r.applied.length > 0)).toHaveLength(1);
    expect(results.every((r) => r.to === LATEST_VERSION)).toBe(true);
    const rows = await db.query('SELECT version, count(*)::int AS n FROM pgairlock.migrations GROUP BY version ORDER BY version');
    expect(rows.rows).toEqual(Array.from({ length: LATEST_VERSION }, (_, i) => ({ version: i + 1, n: 1 })));
  });

  it('is idempotent: a second run applies nothing', async () => {
    const c = await client();
    expect(await migrate(c)).toEqual({ from: LATEST_VERSION, to: LATEST_VERSION, applied: [] });
    expect(await currentVersion(c)).toBe(LATEST_VERSION);
  });

  it('migration 2 on a log written at version 1: search columns and indexes gone, records kept, the chain verifies, search and show still find them', async () => {
    const g = `${db.name}_v1`;
    await adminQuery(`CREATE DATABASE "${g}"`);
    const url = urlWithDatabase(db.url, g);
    const c = new pg.Client({ connectionString: url });
    c.on('error', () => undefined);
    try {
      await c.connect();
      // Version 1 exactly as it shipped, then records written by today's writer into it.
      await c.query('CREATE SCHEMA pgairlock');
      await c.query('CREATE TABLE pgairlock.migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())');
      await c.query(MIGRATIONS[0]!.sql);
      await c.query(`INSERT INTO pgairlock.migrations (version, name) VALUES (1, 'v1')`);
      const before = await AuditLog.open({ databaseUrl: url, instance: 'mig-v1', config: { migrate: false } }).catch((e: Error) => e);
      expect(before).toBeInstanceOf(Error); // a v2 pgairlock refuses a v1 schema unless it may migrate
      const v1 = await c.query(`SELECT count(*)::int AS n FROM information_schema.columns WHERE table_schema = 'pgairlock' AND table_name = 'audit_log' AND is_generated = 'ALWAYS'`);
      expect(v1.rows[0]).toEqual({ n: 7 });
      await c.query(`INSERT INTO pgairlock.audit_log (id, instance, seq, time, kind, prev_hash, hash, body)
        VALUES (gen_random_uuid(), 'old', 1, now(), 'session_start', repeat('0', 64), repeat('f', 64), '{"principal":"p"}')`);
      // A DBA pre-builds one of migration 2's indexes CONCURRENTLY (docs/audit.md, "Indexes"): the migration keeps it.
      await c.query(`CREATE INDEX CONCURRENTLY audit_log_outcome_of ON pgairlock.audit_log ((body->>'decision_id')) WHERE kind IN ('outcome', 'approval')`);
      const prebuilt = (await c.query<{ oid: number }>(`SELECT 'pgairlock.audit_log_outcome_of'::regclass::oid AS oid`)).rows[0]!.oid;
      expect(await migrate(c)).toMatchObject({ from: 1, to: LATEST_VERSION, applied: [2] });
      expect((await c.query<{ oid: number }>(`SELECT 'pgairlock.audit_log_outcome_of'::regclass::oid AS oid`)).rows[0]!.oid).toBe(prebuilt);
      const cols = await c.query<{ column_name: string }>(`SELECT column_name FROM information_schema.columns WHERE table_schema = 'pgairlock' AND table_name = 'audit_log' ORDER BY ordinal_position`);
      expect(cols.rows.map((r) => r.column_name)).toEqual(['pos', 'id', 'instance', 'seq', 'time', 'kind', 'prev_hash', 'hash', 'body']);
      const idx = await c.query<{ indexname: string }>(`SELECT indexname FROM pg_indexes WHERE schemaname = 'pgairlock' AND tablename = 'audit_log' ORDER BY 1`);
      expect(idx.rows.map((r) => r.indexname)).toEqual(['audit_log_chain_seq', 'audit_log_outcome_of', 'audit_log_pkey', 'audit_log_pos', 'audit_log_time', 'audit_log_written_ahead']);
      expect((await c.query('SELECT count(*)::int AS n FROM pgairlock.audit_log')).rows[0]).toEqual({ n: 1 });
      // Records written after the migration: linked, searchable by the fields the columns used to hold.
      const log = await AuditLog.open({ databaseUrl: url, instance: 'mig-v2' });
      const receipt = await log.recordDecision(allowUpdate());
      log.recordOutcome(receipt, { status: 'ok', commandTag: 'UPDATE 1', rows: 1, durationMs: 1 });
      await log.close();
      const { AuditQuery } = await import('../../governance/audit/query.js');
      const q = new AuditQuery(url);
      try {
        const shown = await q.show(receipt.id);
        expect(shown?.related.map((e) => e.kind)).toEqual(['outcome']);
        const found = await q.search({ principal: 'agent:billing-bot', decision: 'allow', kind: 'write', instance: 'mig-v2' }, { limit: 10 });
        expect(found.map((e) => e.id)).toEqual([receipt.id]);
        expect((await q.search({ principal: 'nobody' }, { limit: 10 }))).toEqual([]);
        expect((await q.verify({ instance: 'mig-v2' })).ok).toBe(true);
      } finally { await q.close(); }
    } finally {
      await c.end().catch(() => undefined);
      await adminQuery(`DROP DATABASE IF EXISTS "${g}" WITH (FORCE)`);
    }
  });

  it('the trigger refuses UPDATE, DELETE and TRUNCATE even for the owner', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'mig-trigger' });
    await log.recordDecision(allowUpdate());
    await log.close();
    await expect(db.query(`UPDATE pgairlock.audit_log SET kind = 'x'`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('append-only: UPDATE') });
    await expect(db.query('DELETE FROM pgairlock.audit_log')).rejects.toMatchObject({ code: '42501' });
    await expect(db.query('TRUNCATE pgairlock.audit_log')).rejects.toMatchObject({ code: '42501' });
    expect((await db.query('SELECT count(*)::int AS n FROM pgairlock.audit_log')).rows[0]).toEqual({ n: 1 });
  });

  it('the documented grants: a DBA-created owner migrates, a writer with INSERT and SELECT only runs pgairlock and cannot change the log', async () => {
    const g = `${db.name}_g`.slice(0, 63);
    const owner = `${db.name}_o`.slice(0, 60);
    const writer = `${db.name}_w`.slice(0, 60);
    const asRole = (role: string) => { const u = new URL(urlWithDatabase(db.url, g)); u.username = role; u.password = 'pw'; return u.toString(); };
    await adminQuery(`CREATE DATABASE "${g}"`);
    try {
      const su = await client(urlWithDatabase(db.url, g));
      // The DBA setup from docs/audit.md ("Grants"), verbatim apart from names.
      await su.query(`CREATE ROLE "${owner}" LOGIN PASSWORD 'pw'`);
      await su.query(`CREATE ROLE "${writer}" LOGIN PASSWORD 'pw'`);
      await su.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
      await su.query(`CREATE SCHEMA pgairlock AUTHORIZATION "${owner}"`);
      const own = await client(asRole(owner));
      expect((await migrate(own)).applied).toEqual(MIGRATIONS.map((m) => m.version));
      await own.query(`GRANT USAGE ON SCHEMA pgairlock TO "${writer}"`);
      await own.query(`GRANT SELECT ON pgairlock.migrations TO "${writer}"`);
      await own.query(`GRANT SELECT, INSERT ON pgairlock.audit_log TO "${writer}"`);

      // migrate: true is harmless when the schema is current: it needs no CREATE privilege then.
      const log = await AuditLog.open({ databaseUrl: asRole(writer), instance: 'mig-writer' });
      const r = await log.recordDecision(allowUpdate());
      expect(r.committed).toBe(true);
      await log.close();
      const w = await client(asRole(writer));
      await expect(w.query(`UPDATE pgairlock.audit_log SET kind = 'x'`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('permission denied') });
      await expect(w.query('DELETE FROM pgairlock.audit_log')).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('permission denied') });
      await expect(w.query('TRUNCATE pgairlock.audit_log')).rejects.toMatchObject({ code: '42501' });
      await expect(w.query('ALTER TABLE pgairlock.audit_log DISABLE TRIGGER ALL')).rejects.toMatchObject({ code: '42501' });
      // Even the owner cannot change a record while the trigger is enabled.
      await expect(own.query(`DELETE FROM pgairlock.audit_log`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('append-only') });
      for (const c of clients.splice(0)) await c.end();
    } finally {
      await adminQuery(`DROP DATABASE IF EXISTS "${g}" WITH (FORCE)`);
      await adminQuery(`DROP ROLE IF EXISTS "${owner}"`).catch(() => undefined);
      await adminQuery(`DROP ROLE IF EXISTS "${writer}"`).catch(() => undefined);
    }
  });
});
