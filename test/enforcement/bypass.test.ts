import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { errorFields, RawConnection, typedMessage } from '../harness/wire.js';

/**
 * The bypass suite (issue 4): attempts to get a forbidden change past the gate. Each attempt must
 * be refused and leave the data and schema as they were; each has an allowed twin that must pass,
 * so the gate is not simply refusing everything that looks odd.
 */
const db = useTestDatabase();
const AGENT = 'airlock_bypass_agent';

const PRINCIPALS = {
  map: [
    { name: 'dba', roles: ['dba'], match: { users: ['postgres'] } },
    { name: 'agent:{user}', roles: ['agent'], match: { users: [AGENT] } },
  ],
};

interface Attempt {
  readonly name: string;
  /** One or more statement strings sent in order (simple protocol); one of them must be refused (the gate may stop it early). */
  readonly refused: string | readonly string[];
  /** The harmless twin: must succeed. */
  readonly allowed: string | readonly string[];
}

const ATTEMPTS: readonly Attempt[] = [
  { name: 'mixed case and comments inside keywords', refused: 'dRoP/* hide */TaBlE/**/victim', allowed: 'sElEcT/* hi */count(*)/**/FROM victim' },
  { name: 'line comments and newlines between keywords', refused: 'DROP -- just kidding\n TABLE\nvictim', allowed: 'SELECT -- hi\n 1' },
  { name: 'quoted identifier', refused: 'DROP TABLE "victim"', allowed: 'SELECT count(*) FROM "victim"' },
  { name: 'U& escaped identifier', refused: 'DROP TABLE U&"\\0076ictim"', allowed: 'SELECT count(*) FROM U&"\\0076ictim"' },
  { name: 'schema-qualified and quoted schema', refused: 'TRUNCATE "public".victim', allowed: 'SELECT count(*) FROM "public".victim' },
  { name: 'dangerous statement last in a multi-statement string', refused: 'SELECT 1; SELECT 2; DELETE FROM victim', allowed: 'SELECT 1; SELECT 2; SELECT count(*) FROM victim' },
  { name: 'dollar-quoted text that looks like SQL is only text', refused: "SELECT $$harmless$$; DROP TABLE victim", allowed: 'SELECT $$; DROP TABLE victim; $$ AS s' },
  { name: "E'' string hiding a quote", refused: "SELECT E'\\''; DELETE FROM victim", allowed: "SELECT E'\\'; DROP TABLE victim; --' AS s" },
  { name: 'DML in a CTE', refused: 'WITH d AS (DELETE FROM victim RETURNING *) SELECT count(*) FROM d', allowed: 'WITH d AS (SELECT * FROM victim) SELECT count(*) FROM d' },
  { name: 'EXPLAIN ANALYZE executes its statement', refused: 'EXPLAIN ANALYZE DELETE FROM victim', allowed: 'EXPLAIN SELECT * FROM victim' },
  { name: 'CREATE TABLE AS', refused: 'CREATE TABLE stolen AS SELECT * FROM victim', allowed: 'SELECT * FROM victim LIMIT 1' },
  { name: 'SELECT ... INTO creates a table', refused: 'SELECT * INTO stolen2 FROM victim', allowed: 'SELECT * FROM victim LIMIT 1' },
  { name: 'PREPARE of a DELETE', refused: 'PREPARE p_wipe AS DELETE FROM victim', allowed: ['PREPARE p_read AS SELECT count(*) FROM victim', 'EXECUTE p_read', 'DEALLOCATE p_read'] },
  { name: 'DO block', refused: 'DO $$ BEGIN DELETE FROM victim; END $$', allowed: 'SELECT 1' },
  { name: 'DO block with dynamic SQL', refused: "DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'victim'; END $$", allowed: 'SELECT 1' },
  { name: 'creating a function whose body drops the table', refused: 'CREATE FUNCTION boom() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE victim; END $$', allowed: 'SELECT 1' },
  { name: 'calling a function a DBA created that drops the table', refused: 'SELECT dba_made_boom()', allowed: "SELECT lower('X')" },
  { name: 'CREATE RULE that deletes', refused: 'CREATE RULE r AS ON INSERT TO victim DO ALSO DELETE FROM victim', allowed: 'SELECT 1' },
  { name: 'CREATE TRIGGER', refused: 'CREATE TRIGGER trg AFTER INSERT ON victim FOR EACH ROW EXECUTE FUNCTION dba_made_boom_trigger()', allowed: 'SELECT 1' },
  { name: 'search_path trick into the pgairlock schema', refused: ['SET search_path = pgairlock', 'SELECT * FROM audit_log'], allowed: ['SET search_path = public', 'SELECT count(*) FROM victim'] },
  { name: 'DISCARD PLANS keeps the search_path (only DISCARD ALL resets it)', refused: ['SET search_path = pgairlock', 'DISCARD PLANS', 'SELECT * FROM audit_log'], allowed: ['SET search_path = public', 'DISCARD PLANS', 'SELECT count(*) FROM victim'] },
  { name: 'quoted and upper-case pgairlock schema', refused: 'SELECT * FROM "pgairlock".AUDIT_LOG', allowed: 'SELECT count(*) FROM public.victim' },
  { name: 'SET ROLE postgres', refused: 'SET ROLE postgres', allowed: 'SET application_name = harmless' },
  { name: 'SET SESSION AUTHORIZATION', refused: 'SET SESSION AUTHORIZATION postgres', allowed: 'SET statement_timeout = 5000' },
  { name: 'COPY PROGRAM', refused: "COPY victim TO PROGRAM 'cat > /dev/null'", allowed: 'SELECT count(*) FROM victim' },
  { name: 'COPY to a server file', refused: "COPY victim TO '/tmp/pgairlock-bypass.csv'", allowed: 'SELECT count(*) FROM victim' },
  { name: 'server file read function', refused: "SELECT pg_read_file('/etc/passwd')", allowed: "SELECT length('abc')" },
  { name: 'terminating other backends', refused: 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity', allowed: 'SELECT count(*) FROM pg_stat_activity' },
  { name: 'ALTER SYSTEM', refused: "ALTER SYSTEM SET work_mem = '1GB'", allowed: 'SHOW work_mem' },
  { name: 'UPDATE without WHERE', refused: "UPDATE victim SET v = 'gone'", allowed: "UPDATE victim SET v = v WHERE id = 1" },
  { name: 'DELETE with an always-true OR branch', refused: 'DELETE FROM victim WHERE id = 1 OR 1 = 1', allowed: 'DELETE FROM victim WHERE id = -1 OR id = -2' },
  { name: 'UPDATE with a column compared to itself', refused: "UPDATE victim SET v = 'gone' WHERE id = id", allowed: "UPDATE victim SET v = v WHERE id = 1 AND true" },
  { name: 'blocking index build', refused: 'CREATE INDEX victim_v ON victim (v)', allowed: 'SELECT 1' },
  { name: 'unparseable text is never forwarded unexamined', refused: 'DROP TABEL victim', allowed: 'SELECT 1' },
];

const list = (x: string | readonly string[]): readonly string[] => (typeof x === 'string' ? [x] : x);

describe.skipIf(!postgresAvailable())('bypass suite', () => {
  let rt: TestRuntime;

  const state = async () => {
    const r = await db.query<{ n: number; tables: string; v: string }>(
      `SELECT (SELECT count(*)::int FROM victim) AS n,
              (SELECT string_agg(relname, ',' ORDER BY relname) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace) AS tables,
              (SELECT v FROM victim WHERE id = 2) AS v`,
    );
    return r.rows[0];
  };

  beforeAll(async () => {
    await db.loginRole(AGENT);
    await db.query(`CREATE TABLE victim(id int primary key, v text); INSERT INTO victim SELECT g, 'v' || g FROM generate_series(1, 10) g;
      GRANT ALL ON victim TO ${AGENT}; GRANT CREATE, USAGE ON SCHEMA public TO ${AGENT};
      CREATE FUNCTION dba_made_boom() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DELETE FROM victim; END $$;
      CREATE FUNCTION dba_made_boom_trigger() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN DELETE FROM victim; RETURN NULL; END $$;
      GRANT EXECUTE ON FUNCTION dba_made_boom() TO ${AGENT}`);
    rt = await startTestRuntime(db.name, { principals: PRINCIPALS });
  });
  afterAll(async () => rt?.close());

  for (const a of ATTEMPTS) {
    it(`refuses: ${a.name}; allows its twin`, async () => {
      const before = await state();
      const c = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
      await c.connect();
      try {
        const steps = list(a.refused);
        let error: { code?: string; message?: string } | undefined;
        for (const s of steps) {
          try {
            await c.query(s);
          } catch (err) {
            error = err as { code?: string; message?: string };
            break;
          }
        }
        expect(error, `"${steps.join('; ')}" must be refused`).toBeDefined();
        expect(['42501', '42601']).toContain(error!.code);
        expect(error!.message).toMatch(/pgairlock|syntax error/);
        await c.query('ROLLBACK').catch(() => undefined);
        for (const s of list(a.allowed)) await c.query(s);
      } finally {
        await c.end();
      }
      expect(await state()).toEqual(before);
    });
  }

  it('refuses the legacy FunctionCall message (it bypasses SQL) and the session stays usable', async () => {
    const oid = (await db.query<{ oid: number }>("SELECT 'dba_made_boom'::regproc::oid::int AS oid")).rows[0]!.oid;
    const before = await state();
    const conn = await RawConnection.connect(rt.port);
    try {
      await conn.startup({ user: AGENT, database: db.name });
      const body = Buffer.alloc(4 + 2 + 2 + 2);
      body.writeInt32BE(oid, 0); // function oid
      body.writeInt16BE(0, 4); // no argument format codes
      body.writeInt16BE(0, 6); // no arguments
      body.writeInt16BE(0, 8); // result format text
      const seen = conn.messages.length;
      conn.write(typedMessage('F', body));
      const err = await conn.waitForMessage((m) => m.type === 'E' && conn.messages.indexOf(m) >= seen);
      const f = errorFields(err.body);
      expect(f.C).toBe('42501');
      expect(f.M).toContain('pgairlock');
      await conn.waitForMessage((m) => m.type === 'Z' && conn.messages.indexOf(m) > conn.messages.indexOf(err));
    } finally {
      conn.destroy();
    }
    expect(await state()).toEqual(before);
  });
});
