import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { currentVersion, LATEST_VERSION, migrate } from '../../governance/audit/migrations.js';
import { AuditLog } from '../../governance/audit/log.js';
import { postgresAvailable, urlWithDatabase, useTestDatabase } from '../harness/db.js';
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

  it('the trigger refuses UPDATE, DELETE and TRUNCATE even for the owner', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'mig-trigger' });
    await log.recordDecision(allowUpdate());
    await log.close();
    await expect(db.query(`UPDATE pgairlock.audit_log SET kind = 'x'`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('append-only: UPDATE') });
    await expect(db.query('DELETE FROM pgairlock.audit_log')).rejects.toMatchObject({ code: '42501' });
    await expect(db.query('TRUNCATE pgairlock.audit_log')).rejects.toMatchObject({ code: '42501' });
    expect((await db.query('SELECT count(*)::int AS n FROM pgairlock.audit_log')).rows[0]).toEqual({ n: 1 });
  });

  it('the documented grants: a role with INSERT and SELECT only can run pgairlock, and cannot change the log', async () => {
    const role = `${db.name}_w`.slice(0, 60);
    // The DBA setup from docs/audit.md ("Grants").
    await db.query(`CREATE ROLE "${role}" LOGIN PASSWORD 'pw'`);
    await db.query(`GRANT CONNECT ON DATABASE "${db.name}" TO "${role}"`);
    await db.query(`GRANT USAGE ON SCHEMA pgairlock TO "${role}"`);
    await db.query(`GRANT SELECT ON pgairlock.migrations TO "${role}"`);
    await db.query(`GRANT SELECT, INSERT ON pgairlock.audit_log TO "${role}"`);
    try {
      const u = new URL(urlWithDatabase(db.url, db.name));
      u.username = role;
      u.password = 'pw';
      // migrate: true is harmless when the schema is current: it needs no CREATE privilege then.
      const log = await AuditLog.open({ databaseUrl: u.toString(), instance: 'mig-writer' });
      const r = await log.recordDecision(allowUpdate());
      expect(r.committed).toBe(true);
      await log.close();
      const w = await client(u.toString());
      await expect(w.query(`UPDATE pgairlock.audit_log SET kind = 'x'`)).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('permission denied') });
      await expect(w.query('DELETE FROM pgairlock.audit_log')).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('permission denied') });
      await expect(w.query('TRUNCATE pgairlock.audit_log')).rejects.toMatchObject({ code: '42501' });
      await expect(w.query('ALTER TABLE pgairlock.audit_log DISABLE TRIGGER ALL')).rejects.toMatchObject({ code: '42501' });
      await w.end();
      clients.splice(clients.indexOf(w), 1);
    } finally {
      await db.query(`REASSIGN OWNED BY "${role}" TO postgres; DROP OWNED BY "${role}"`).catch(() => undefined);
      await db.query(`DROP ROLE IF EXISTS "${role}"`).catch(() => undefined);
    }
  });
});
