import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, upstreamUrl, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { refusal } from '../harness/tools.js';

/**
 * The planner's row estimate on the wire (issue 7): a rule with `state.min_estimated_rows` makes pgairlock run
 * EXPLAIN (without ANALYZE) on its own connection, with the session's search_path and, in the extended
 * protocol, with each execution's Bind values.
 */
const db = useTestDatabase();
const ROWS = 20_000;

describe.skipIf(!postgresAvailable())('planner row estimates through the proxy', () => {
  let rt: TestRuntime;
  let client: pg.Client;

  const explainConnections = async () =>
    Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'pgairlock-explain'`, [db.name])).rows[0]?.n);
  const remaining = async (table: string) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n);

  beforeAll(async () => {
    await db.query(`CREATE TABLE big (id int PRIMARY KEY, v int); INSERT INTO big SELECT g, g % 7 FROM generate_series(1, ${ROWS}) g;
      CREATE SCHEMA "App Data"; CREATE TABLE "App Data".items (id int PRIMARY KEY); INSERT INTO "App Data".items SELECT generate_series(1, ${ROWS});
      CREATE TABLE log (id int); ANALYZE big; ANALYZE "App Data".items;
      CREATE TABLE huge (id int, v int); INSERT INTO huge SELECT g, g % 100 FROM generate_series(1, 120000) g; ANALYZE huge;
      CREATE TABLE shelf (id int PRIMARY KEY, v int); CREATE VIEW shelf_v AS SELECT id, v FROM shelf; CREATE VIEW shelf_vv AS SELECT v FROM shelf_v`);
    const upstream = upstreamUrl(db.name);
    rt = await startTestRuntime(db.name, {
      upstream: { url: upstream },
      principals: { map: [{ name: 'dba', roles: ['dba'], match: { users: ['postgres'] } }] },
      policy: {
        default_effect: { global: 'allow' },
        rules: [
          {
            id: 'big-delete-denied',
            description: 'A DELETE the planner expects to touch 1,000 rows or more is refused.',
            match: { commands: ['DELETE'], state: { min_estimated_rows: 1000 } },
            effect: 'deny',
          },
          {
            id: 'big-table-blocking-index-held',
            description: 'An index build that blocks writes on a table of 100k rows or more needs an approval.',
            match: { findings: { rules: ['create-index-without-concurrently'] }, state: { min_rows: 100000 } },
            effect: 'hold',
            hold: { mode: 'defer', approvals: 1, approver_roles: ['dba'], timeout: '10m' },
          },
          {
            id: 'ddl-on-depended-denied',
            description: 'ALTER TABLE on a table other objects depend on is refused.',
            match: { commands: ['ALTER TABLE'], state: { has_dependents: true } },
            effect: 'deny',
          },
        ],
      },
      state: { refresh_interval_ms: 0 },
    });
    client = new pg.Client({ connectionString: rt.url(db.name) });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await rt?.close();
  });

  it('plans nothing while no rule asks (other commands), on its own connection once one does', async () => {
    await client.query('INSERT INTO log VALUES (1)');
    await client.query('UPDATE big SET v = v WHERE id = 1');
    await client.query('INSERT INTO log VALUES ($1)', [2]);
    expect(await explainConnections()).toBe(0);
    await client.query(`DELETE FROM big WHERE id > ${ROWS - 3}`);
    expect(await explainConnections()).toBeGreaterThanOrEqual(1);
  });

  it('simple protocol: a DELETE of few rows runs, one of many is refused with the estimate', async () => {
    const small = await client.query(`DELETE FROM big WHERE id > ${ROWS - 10} AND id <= ${ROWS - 3}`);
    expect(small.rowCount).toBe(7);
    const before = await remaining('big');
    const e = await refusal(client.query('DELETE FROM big WHERE id > 100'));
    expect(e.code).toBe('42501');
    expect(e.message).toContain('big-delete-denied');
    expect(e.detail).toMatch(/the planner estimates \d+ rows \(at least 1000\)/);
    expect(await remaining('big')).toBe(before);
  });

  it('extended protocol (node-postgres): each execution is judged with its own Bind values', async () => {
    const few = await client.query('DELETE FROM big WHERE id > $1 AND id <= $2', [ROWS - 20, ROWS - 10]);
    expect(few.rowCount).toBe(10);
    const before = await remaining('big');
    const e = await refusal(client.query('DELETE FROM big WHERE id > $1', [50]));
    expect(e.code).toBe('42501');
    expect(e.detail).toMatch(/the planner estimates \d+ rows/);
    // The same named prepared statement, executed again: small runs, large is refused, small runs again.
    const named = { name: 'del_range', text: 'DELETE FROM big WHERE id > $1 AND id <= $2' };
    expect((await client.query({ ...named, values: [ROWS - 30, ROWS - 25] })).rowCount).toBe(5);
    await expect(client.query({ ...named, values: [0, ROWS] })).rejects.toMatchObject({ code: '42501' });
    expect((await client.query({ ...named, values: [ROWS - 25, ROWS - 20] })).rowCount).toBe(5);
    expect(await remaining('big')).toBe(before - 10);
  });

  it('extended protocol with declared parameter types (postgres.js)', async () => {
    const sql = postgres(rt.url(db.name), { max: 1, onnotice: () => undefined });
    try {
      const before = await remaining('big');
      const few = await sql`DELETE FROM big WHERE id > ${ROWS - 40} AND id <= ${ROWS - 30}`;
      expect(few.count).toBe(10);
      const e = await refusal(sql`DELETE FROM big WHERE id > ${200}`);
      expect(e.code).toBe('42501');
      expect(e.message).toContain('big-delete-denied');
      // Prepared (postgres.js names and reuses statements): a second small run with other values.
      expect((await sql`DELETE FROM big WHERE id > ${ROWS - 50} AND id <= ${ROWS - 40}`).count).toBe(10);
      expect(await remaining('big')).toBe(before - 20);
    } finally {
      await sql.end();
    }
  });

  it("plans with the session's search_path (quoted schema names included)", async () => {
    const c = new pg.Client({ connectionString: rt.url(db.name) });
    await c.connect();
    try {
      await c.query('SET search_path = "App Data"');
      expect((await c.query('DELETE FROM items WHERE id <= 3')).rowCount).toBe(3);
      const e = await refusal(c.query('DELETE FROM items WHERE id > $1', [10]));
      expect(e.code).toBe('42501');
      expect(e.detail).toMatch(/the planner estimates \d+ rows/);
    } finally {
      await c.end();
    }
  });

  it('size threshold: a blocking index build is held on a table with 100k+ rows, not on a small one', async () => {
    const e = await refusal(client.query('CREATE INDEX huge_v ON huge (v)'));
    expect(e.code).toBe('42501');
    expect(e.message).toContain('big-table-blocking-index-held');
    expect(e.message).toContain('held for approval');
    expect(e.detail).toMatch(/huge has about 120000 rows \(at least 100000\)/);
    expect((await db.query(`SELECT to_regclass('huge_v') AS r`)).rows[0]?.r).toBeNull();
    await client.query('CREATE INDEX log_id ON log (id)');
    expect((await db.query(`SELECT to_regclass('log_id')::text AS r`)).rows[0]?.r).toBe('log_id');
  });

  it('keeps the impact facts the decision used in the audit record', async () => {
    const q = rt.runtime.governance.auditQuery!;
    const c = new pg.Client({ connectionString: rt.url(db.name) });
    await c.connect();
    try {
      await c.query('DELETE FROM big WHERE id = $1', [ROWS - 60]);
      await refusal(c.query('DELETE FROM big WHERE id > 300'));
      await c.query('INSERT INTO log VALUES (3)');
      const e = await refusal(c.query('ALTER TABLE shelf RENAME COLUMN v TO w'));
      expect(e.message).toContain('ddl-on-depended-denied');
    } finally {
      await c.end();
    }
    type Impact = { schema_hash: string; relations: { name: string; rows: number | null; lock: string | null; lock_duration: string }[]; estimated_rows: number | null; dependents: { name: string; chain: string }[]; dependents_total: number };
    type Body = { sql: string; impact?: Impact; catalog_version_before: string | null; decision: { effect: string } };
    const find = async (sql: string): Promise<Body> => {
      for (const end = Date.now() + 10_000; ; ) {
        const hit = (await q.search({ kind: 'decision' }, { limit: 200, order: 'desc' })).map((r) => r.body as unknown as Body).find((b) => b.sql === sql);
        if (hit || Date.now() > end) return hit ?? expect.unreachable(`no decision record for ${sql}`);
        await new Promise((r) => setTimeout(r, 100)); // refusals are group-committed
      }
    };
    const small = await find('DELETE FROM big WHERE id = $1');
    expect(small.decision.effect).toBe('allow');
    expect(small.impact?.estimated_rows).toBeLessThan(10);
    expect(small.impact?.relations).toEqual([expect.objectContaining({ name: 'public.big', lock: 'RowExclusiveLock', lock_duration: 'instant' })]);
    expect(small.impact?.relations[0]?.rows).toBeGreaterThan(ROWS / 2);
    expect(small.catalog_version_before).toBe(small.impact?.schema_hash);
    // A schema version pgairlock read (a DDL refresh from an earlier test may have come since).
    expect(rt.runtime.governance.catalog!.findVersion(db.name, small.impact!.schema_hash)?.schemaHash).toBe(small.impact?.schema_hash);
    const big = await find('DELETE FROM big WHERE id > 300');
    expect(big.decision.effect).toBe('deny');
    expect(big.impact?.estimated_rows).toBeGreaterThanOrEqual(1000);
    // The policy read no live state for the INSERT: no impact in its record.
    expect((await find('INSERT INTO log VALUES (3)')).impact).toBeUndefined();
    const ddl = await find('ALTER TABLE shelf RENAME COLUMN v TO w');
    expect(ddl.decision.effect).toBe('deny');
    expect(ddl.impact?.relations[0]).toMatchObject({ name: 'public.shelf', lock: 'AccessExclusiveLock' });
    expect(ddl.impact?.dependents.map((d) => d.chain)).toEqual(expect.arrayContaining(['table public.shelf <- view public.shelf_v <- view public.shelf_vv']));
    expect(ddl.impact?.estimated_rows).toBeNull();
  });

  it('fails closed when EXPLAIN fails, saying why', async () => {
    const c = new pg.Client({ connectionString: rt.url(db.name) });
    await c.connect();
    try {
      // A temporary table exists only in the client's session: pgairlock's connection cannot plan it.
      await c.query('CREATE TEMP TABLE scratch AS SELECT generate_series(1, 5) AS id');
      const e = await refusal(c.query('DELETE FROM scratch WHERE id = 1'));
      expect(e.code).toBe('42501');
      expect(e.message).toContain('big-delete-denied');
      expect(e.detail).toMatch(/row estimate is unknown: EXPLAIN failed on pgairlock's service connection \(SQLSTATE 42P01\)/);
      expect(e.hint).toMatch(/EXPLAIN \(without ANALYZE\) run as pgairlock's service user/);
      expect((await c.query('SELECT count(*)::int AS n FROM scratch')).rows[0]?.n).toBe(5);
      // Same in the extended protocol, at Execute.
      const x = await refusal(c.query('DELETE FROM scratch WHERE id = $1', [1]));
      expect(x.code).toBe('42501');
      expect(x.detail).toContain('SQLSTATE 42P01');
    } finally {
      await c.end();
    }
  });
});
