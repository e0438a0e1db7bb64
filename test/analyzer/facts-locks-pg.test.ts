/**
 * The honest proof of the lock table: run each statement inside a transaction on the real server,
 * read pg_locks for this backend, and compare the strongest mode held on each relation with the
 * analyzer's claim for the server's own version. Where the analyzer claims a rewrite (or claims none),
 * pg_class.relfilenode before and after the statement must agree with it. Everything is rolled back.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer, lockRank, LOCK_MODES, type LockMode } from '../../analyzer/index.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';

const db = useTestDatabase();

const SETUP = `
CREATE TABLE o (id int PRIMARY KEY);
CREATE TABLE t (id int PRIMARY KEY, a int, b text, o_id int, c int);
CREATE INDEX t_a ON t (a);
ALTER TABLE t ADD CONSTRAINT t_c_pos CHECK (c > 0) NOT VALID;
ALTER TABLE t ADD CONSTRAINT t_o_fk FOREIGN KEY (o_id) REFERENCES o (id) NOT VALID;
INSERT INTO o VALUES (1), (2);
INSERT INTO t SELECT g, g, 'x', 1, 1 FROM generate_series(1, 50) g;
CREATE TABLE u (id int, v int);
CREATE TABLE par (id int);
CREATE TABLE p (id int, k int) PARTITION BY RANGE (k);
CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);
CREATE TABLE p2 (id int, k int);
CREATE MATERIALIZED VIEW mv AS SELECT id FROM o;
CREATE UNIQUE INDEX mv_id ON mv (id);
CREATE SEQUENCE seq;
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER t_trg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg();
`;

/** Statements whose lock claims are checked; `rewrite` lists relations whose rewrite claim is checked via relfilenode. */
const CASES: Array<{ sql: string; rewrite?: string[] }> = [
  { sql: 'SELECT * FROM t' },
  { sql: 'SELECT * FROM t JOIN o ON o.id = t.o_id FOR UPDATE OF t' },
  { sql: "INSERT INTO u VALUES (1, 2)" },
  { sql: 'UPDATE t SET a = 1 WHERE id = 1' },
  { sql: 'DELETE FROM u WHERE id = 1' },
  { sql: 'MERGE INTO u USING o ON u.id = o.id WHEN MATCHED THEN DELETE' },
  { sql: 'WITH d AS (DELETE FROM u RETURNING *) SELECT * FROM d JOIN o ON true' },
  { sql: 'ANALYZE t' },
  { sql: 'CREATE INDEX t_b ON t (b)' },
  { sql: 'CREATE TRIGGER t_trg2 AFTER UPDATE ON t FOR EACH ROW EXECUTE FUNCTION trg()' },
  { sql: 'REFRESH MATERIALIZED VIEW CONCURRENTLY mv' },
  { sql: 'REFRESH MATERIALIZED VIEW mv' },
  { sql: 'DROP TABLE u' },
  { sql: 'TRUNCATE u' },
  { sql: 'LOCK TABLE t IN ACCESS SHARE MODE' },
  { sql: 'LOCK TABLE t IN ROW SHARE MODE' },
  { sql: 'LOCK TABLE t IN ROW EXCLUSIVE MODE' },
  { sql: 'LOCK TABLE t IN SHARE UPDATE EXCLUSIVE MODE' },
  { sql: 'LOCK TABLE t IN SHARE MODE' },
  { sql: 'LOCK TABLE t IN SHARE ROW EXCLUSIVE MODE' },
  { sql: 'LOCK TABLE t IN EXCLUSIVE MODE' },
  { sql: 'LOCK TABLE t' },
  { sql: 'ALTER TABLE t ADD COLUMN z int', rewrite: ['t'] },
  { sql: 'ALTER TABLE t ADD COLUMN z int DEFAULT 7', rewrite: ['t'] },
  { sql: 'ALTER TABLE t ADD COLUMN z timestamptz DEFAULT now()', rewrite: ['t'] },
  { sql: 'ALTER TABLE t ADD COLUMN z float8 DEFAULT random()', rewrite: ['t'] },
  { sql: 'ALTER TABLE t ADD COLUMN z uuid DEFAULT gen_random_uuid()', rewrite: ['t'] },
  { sql: 'ALTER TABLE t ADD COLUMN z int GENERATED ALWAYS AS (a * 2) STORED', rewrite: ['t'] },
  { sql: 'ALTER TABLE t DROP COLUMN b', rewrite: ['t'] },
  { sql: 'ALTER TABLE t ALTER COLUMN a TYPE bigint', rewrite: ['t'] },
  { sql: 'ALTER TABLE t ALTER COLUMN a SET DEFAULT 0' },
  { sql: 'ALTER TABLE t ALTER COLUMN a SET NOT NULL', rewrite: ['t'] },
  { sql: 'ALTER TABLE t ALTER COLUMN a DROP NOT NULL' },
  { sql: 'ALTER TABLE t ALTER COLUMN a SET STATISTICS 100' },
  { sql: 'ALTER TABLE t ALTER COLUMN a SET (n_distinct = 10)' },
  { sql: 'ALTER TABLE t ALTER COLUMN b SET STORAGE EXTERNAL' },
  { sql: 'ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0)' },
  { sql: 'ALTER TABLE t ADD CONSTRAINT t_a_pos CHECK (a > 0) NOT VALID' },
  { sql: 'ALTER TABLE u ADD CONSTRAINT u_fk FOREIGN KEY (v) REFERENCES o (id)' },
  { sql: 'ALTER TABLE u ADD CONSTRAINT u_fk FOREIGN KEY (v) REFERENCES o (id) NOT VALID' },
  { sql: 'ALTER TABLE t VALIDATE CONSTRAINT t_c_pos' },
  { sql: 'ALTER TABLE t ADD CONSTRAINT t_a_u UNIQUE (a)' },
  { sql: 'ALTER TABLE t DROP CONSTRAINT t_c_pos' },
  { sql: 'ALTER TABLE t CLUSTER ON t_a' },
  { sql: 'ALTER TABLE t SET WITHOUT CLUSTER' },
  { sql: 'ALTER TABLE t SET (fillfactor = 70)' },
  { sql: 'ALTER TABLE t SET (autovacuum_enabled = false)' },
  { sql: 'ALTER TABLE t SET (user_catalog_table = true)' },
  { sql: 'ALTER TABLE t DISABLE TRIGGER t_trg' },
  { sql: 'ALTER TABLE t ENABLE ROW LEVEL SECURITY' },
  { sql: 'ALTER TABLE t REPLICA IDENTITY FULL' },
  { sql: 'ALTER TABLE t OWNER TO CURRENT_USER' },
  { sql: 'ALTER TABLE u SET UNLOGGED', rewrite: ['u'] },
  { sql: 'ALTER TABLE u INHERIT par' },
  { sql: 'ALTER TABLE p ATTACH PARTITION p2 FOR VALUES FROM (10) TO (20)' },
  { sql: 'ALTER TABLE p DETACH PARTITION p1' },
  { sql: 'ALTER TABLE t RENAME COLUMN a TO aa' },
  { sql: 'ALTER TABLE u RENAME TO u2' },
  { sql: 'ALTER INDEX t_a RENAME TO t_a2' },
  { sql: 'ALTER INDEX t_a SET (fillfactor = 50)' },
  { sql: 'ALTER SEQUENCE seq RESTART' },
  { sql: 'REINDEX INDEX t_a' },
  { sql: 'REINDEX TABLE t' },
  { sql: 'CLUSTER t USING t_a', rewrite: ['t'] },
  { sql: 'DROP INDEX t_a' },
  { sql: 'DROP TRIGGER t_trg ON t' },
  { sql: "COMMENT ON TABLE t IS 'x'" },
  { sql: 'CREATE STATISTICS st ON a, c FROM t' },
  { sql: 'CREATE POLICY pol ON t USING (true)' },
  { sql: 'CREATE RULE r AS ON INSERT TO u DO ALSO NOTIFY ch' },
  { sql: 'CREATE VIEW v AS SELECT a FROM t' },
  { sql: 'CREATE TABLE p3 PARTITION OF p FOR VALUES FROM (20) TO (30)' },
  { sql: 'CREATE TABLE c1 () INHERITS (par)' },
  { sql: 'CREATE TABLE n (x int REFERENCES o (id))' },
];

describe('lock claims against a real PostgreSQL (pg_locks inside a rolled-back transaction)', () => {
  let version = 0;
  beforeAll(async () => {
    await loadAnalyzer();
    if (!postgresAvailable()) return;
    await db.query(SETUP);
    version = (await db.query<{ v: number }>("SELECT current_setting('server_version_num')::int AS v")).rows[0]!.v;
    expect(version).toBeGreaterThanOrEqual(130000);
  });

  for (const c of CASES) {
    it(c.sql, async (ctx) => {
      if (!postgresAvailable()) { ctx.skip(); return; }
      const a = analyze(c.sql, { serverVersion: version });
      if (!a.ok) throw new Error(a.error.message);
      const facts = a.statements[0]!;
      expect(facts.locks.length, 'the analyzer claims at least one lock').toBeGreaterThan(0);
      const names = facts.locks.map((l) => l.relation.name);
      await db.query('BEGIN');
      try {
        await db.query("SET LOCAL lock_timeout = '5s'");
        const before = await db.query<{ relname: string; oid: number; relfilenode: number }>(
          "SELECT relname, oid::int, relfilenode::int FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY($1)", [names]);
        const oidOf = new Map(before.rows.map((r) => [r.relname, r.oid]));
        await db.query(c.sql);
        const held = await db.query<{ relation: number; mode: string }>(
          'SELECT relation::int, mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = $1 AND relation = ANY($2)', ['relation', [...oidOf.values()]]);
        for (const l of facts.locks) {
          const oid = oidOf.get(l.relation.name);
          expect(oid, `relation ${l.relation.name} exists`).toBeDefined();
          const modes = held.rows.filter((h) => h.relation === oid).map((h) => h.mode as LockMode).filter((m) => LOCK_MODES.includes(m));
          const strongest = modes.reduce<LockMode | undefined>((s, m) => (s === undefined || lockRank(m) > lockRank(s) ? m : s), undefined);
          expect(strongest, `${c.sql}: lock on ${l.relation.name} (held: ${modes.join(', ')})`).toBe(l.mode);
        }
        for (const rel of c.rewrite ?? []) {
          const claim = facts.locks.find((l) => l.relation.name === rel);
          const after = await db.query<{ relfilenode: number }>('SELECT relfilenode::int FROM pg_class WHERE oid = $1', [oidOf.get(rel)]);
          const changed = after.rows[0]!.relfilenode !== before.rows.find((r) => r.relname === rel)!.relfilenode;
          expect(changed, `${c.sql}: rewrite of ${rel}`).toBe(claim?.rewrite ?? false);
        }
      } finally {
        await db.query('ROLLBACK');
      }
    });
  }
});
