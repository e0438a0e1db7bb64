import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { refusal } from '../harness/tools.js';

/**
 * Enforcement semantics on the wire (issue 4): what a refused statement looks like to a real
 * client, in and out of transactions, in the simple and extended protocols.
 */
const db = useTestDatabase();
const AGENT = 'airlock_sem_agent';

const PRINCIPALS = {
  map: [
    { name: 'dba', roles: ['dba'], match: { users: ['postgres'] } },
    { name: 'agent:{user}', roles: ['agent'], match: { users: [AGENT] } },
  ],
};

describe.skipIf(!postgresAvailable())('enforcement semantics', () => {
  let rt: TestRuntime;
  let agent: pg.Client;

  beforeAll(async () => {
    await db.loginRole(AGENT);
    await db.query(`CREATE TABLE t(id int primary key, v text); INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 20) g;
      GRANT ALL ON t TO ${AGENT}; GRANT CREATE, USAGE ON SCHEMA public TO ${AGENT}`);
    rt = await startTestRuntime(db.name, { principals: PRINCIPALS });
    agent = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
    await agent.connect();
  });
  afterAll(async () => {
    await agent?.end();
    await rt?.close();
  });

  const count = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM t')).rows[0]?.n;

  it('refuses with SQLSTATE, a message naming the rule, DETAIL, HINT and position; the session stays usable', async () => {
    const e = await refusal(agent.query('SELECT 1; CREATE INDEX t_v ON t (v)'));
    expect(e.code).toBe('42501');
    expect(e.message).toContain('blocking-index-build-denied');
    expect(e.detail).toContain('create-index-without-concurrently');
    expect(e.hint).toContain('CONCURRENTLY');
    // Position points into the string at the refused statement (1-based characters).
    expect(Number(e.position)).toBeGreaterThan('SELECT 1; '.length);
    const r = await agent.query('SELECT count(*)::int AS n FROM t');
    expect(r.rows[0].n).toBe(20);
  });

  it('a refusal outside a transaction leaves none open', async () => {
    await refusal(agent.query('DROP TABLE t'));
    const r = await agent.query('SELECT txid_current_if_assigned() IS NULL AS none, now() = statement_timestamp() AS fresh');
    expect(r.rows[0]).toEqual({ none: true, fresh: true });
  });

  it('inside a transaction, a refusal aborts it on both sides: the server answers 25P02 next', async () => {
    await agent.query('BEGIN');
    await agent.query('UPDATE t SET v = v WHERE id = 1');
    const e = await refusal(agent.query('DROP TABLE t'));
    expect(e.code).toBe('42501');
    const next = await refusal(agent.query('SELECT 1'));
    expect(next.code).toBe('25P02');
    await agent.query('ROLLBACK');
    expect((await agent.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    expect(await count()).toBe(20);
  });

  it('one refused statement refuses the whole multi-statement string (nothing of it runs)', async () => {
    const e = await refusal(agent.query("UPDATE t SET v = 'changed' WHERE id = 2; DELETE FROM t"));
    expect(e.message).toMatch(/held for approval|denied/);
    const r = await db.query<{ v: string }>('SELECT v FROM t WHERE id = 2');
    expect(r.rows[0]?.v).toBe('v2');
    expect(await count()).toBe(20);
  });

  it('extended protocol: refused at Parse, messages skipped to Sync, the next query works', async () => {
    const e = await refusal(agent.query({ text: 'TRUNCATE t', queryMode: 'extended' } as pg.QueryConfig));
    expect(e.code).toBe('42501');
    expect(await count()).toBe(20);
    const r = await agent.query({ text: 'SELECT v FROM t WHERE id = $1', values: [3] });
    expect(r.rows[0].v).toBe('v3');
  });

  it('postgres.js pipelined batch keeps order and results around a refused statement', async () => {
    const sql = postgres(rt.url(db.name, AGENT), { max: 1, onnotice: () => undefined });
    try {
      const results = await Promise.allSettled([
        sql`SELECT 1 AS a`,
        sql`SELECT v FROM t WHERE id = ${4}`,
        sql.unsafe('TRUNCATE t'),
        sql`SELECT 2 AS b`,
      ]);
      expect(results[0]).toMatchObject({ status: 'fulfilled', value: [{ a: 1 }] });
      expect(results[1]).toMatchObject({ status: 'fulfilled', value: [{ v: 'v4' }] });
      expect(results[2]).toMatchObject({ status: 'rejected', reason: { code: '42501' } });
      expect(results[3]).toMatchObject({ status: 'fulfilled', value: [{ b: 2 }] });
      expect(await count()).toBe(20);
    } finally {
      await sql.end();
    }
  });

  it('PREPARE then EXECUTE is judged by what it runs', async () => {
    const e = await refusal(agent.query('PREPARE wipe AS DELETE FROM t'));
    expect(e.code).toBe('42501');
    // A harmless PREPARE passes, and its EXECUTE is allowed.
    await agent.query('PREPARE one_row(int) AS SELECT v FROM t WHERE id = $1');
    expect((await agent.query('EXECUTE one_row(5)')).rows[0].v).toBe('v5');
    await agent.query('DEALLOCATE one_row');
  });

  it('protocol-level named prepared statements are judged at Parse and reuse their decision', async () => {
    const q = { name: 'by_id', text: 'SELECT v FROM t WHERE id = $1', values: [6] };
    expect((await agent.query(q)).rows[0].v).toBe('v6');
    expect((await agent.query({ ...q, values: [7] })).rows[0].v).toBe('v7');
    const e = await refusal(agent.query({ name: 'wipe_all', text: 'DELETE FROM t', values: [] }));
    expect(e.code).toBe('42501');
    expect(await count()).toBe(20);
  });

  it('every execution of a prepared change gets its own committed decision record and outcome', async () => {
    const q = { name: 'touch_row', text: 'UPDATE t SET v = v WHERE id = $1', values: [8] };
    for (let i = 0; i < 3; i++) expect((await agent.query(q)).rowCount).toBe(1);
    await rt.runtime.governance.audit!.flush();
    const r = await db.query<{ decisions: number; write_ahead: number; outcomes: number }>(
      `SELECT count(*) FILTER (WHERE kind = 'decision')::int AS decisions,
              count(*) FILTER (WHERE kind = 'decision' AND (body->>'write_ahead')::boolean)::int AS write_ahead,
              count(*) FILTER (WHERE kind = 'outcome' AND body->'decision_id' IS NOT NULL
                               AND body->>'decision_id' IN (SELECT id::text FROM pgairlock.audit_log WHERE body->>'sql' = $1))::int AS outcomes
         FROM pgairlock.audit_log WHERE body->>'sql' = $1 OR kind = 'outcome'`,
      [q.text],
    );
    expect(r.rows[0]).toEqual({ decisions: 3, write_ahead: 3, outcomes: 3 });
  });

  it('refuses a statement over analyzer.max_statement_bytes before parsing it (54000), session usable', async () => {
    const big = `SELECT 1 /* ${'x'.repeat(1024 * 1024 + 10)} */`;
    const e = await refusal(agent.query(big));
    expect(e.code).toBe('54000');
    expect(e.message).toContain('max_statement_bytes');
    expect((await agent.query('SELECT 2 AS two')).rows[0].two).toBe(2);
  });

  it('SET ROLE is privileged and refused for agents', async () => {
    const e = await refusal(agent.query('SET ROLE postgres'));
    expect(e.code).toBe('42501');
    expect((await agent.query('SELECT current_user AS u')).rows[0].u).toBe(AGENT);
  });

  it("pgairlock's own schema can be neither read nor written, whatever the policy says", async () => {
    const e = await refusal(agent.query('SELECT * FROM pgairlock.audit_log LIMIT 1'));
    expect(e.message).toContain('builtin-protect-pgairlock-schema');
    const viaPath = await refusal(agent.query('SET search_path = pgairlock, public; SELECT * FROM audit_log'));
    expect(viaPath.code).toBe('42501');
    const dba = new pg.Client({ connectionString: rt.url(db.name, 'postgres') });
    await dba.connect();
    try {
      const d = await refusal(dba.query('SELECT count(*) FROM pgairlock.audit_log'));
      expect(d.message).toContain('builtin-protect-pgairlock-schema');
    } finally {
      await dba.end();
    }
  });

  it('SQL the parser rejects is refused for agents with the parser message and position', async () => {
    const e = await refusal(agent.query('SELEC v FROM t'));
    expect(e.code).toBe('42601');
    expect(e.message).toContain('syntax error');
    expect(Number(e.position)).toBe(1);
  });

  it('COPY FROM STDIN is a write to the table named; COPY PROGRAM is privileged', async () => {
    const e = await refusal(agent.query("COPY t FROM PROGRAM 'echo 99,x' WITH (FORMAT csv)"));
    expect(e.code).toBe('42501');
    expect(e.detail).toMatch(/PROGRAM|privileged/i);
  });

  it('a DBA may run DDL, and it is audited', async () => {
    const dba = new pg.Client({ connectionString: rt.url(db.name, 'postgres') });
    await dba.connect();
    try {
      await dba.query('CREATE TABLE dba_made(a int)');
      await dba.query('DROP TABLE dba_made');
    } finally {
      await dba.end();
    }
    await rt.runtime.governance.audit!.flush();
    const rows = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pgairlock.audit_log WHERE kind = 'decision' AND body->>'sql' LIKE '%dba_made%' AND body->'decision'->>'effect' = 'allow'",
    );
    expect(rows.rows[0]?.n).toBe(2);
  });
});
