/**
 * Command tags checked against the real server: each statement runs inside BEGIN ... ROLLBACK over a
 * raw wire connection, and the CommandComplete tag (without its row counts) must equal the analyzer's
 * `commandTag`.
 */
import { beforeAll, afterAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer } from '../../analyzer/index.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { ADMIN_DATABASE_URL } from '../harness/env.js';
import { RawConnection, queryMessage, errorFields } from '../harness/wire.js';

const db = useTestDatabase();

const SETUP = `
CREATE TABLE t (id int PRIMARY KEY, a int, b text);
INSERT INTO t VALUES (1, 1, 'x'), (2, 2, 'y');
CREATE TABLE s (id int, a int);
CREATE MATERIALIZED VIEW mv AS SELECT id FROM t;
CREATE SEQUENCE seq;
CREATE FUNCTION trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE PROCEDURE noop() LANGUAGE sql AS 'SELECT 1';
`;

/** A statement, or [statement, what must run before it in the same transaction]. */
const STATEMENTS: Array<string | [string, string]> = [
  'SELECT * FROM t', 'VALUES (1)', 'TABLE t', 'INSERT INTO s VALUES (1, 2)', 'UPDATE t SET a = 3 WHERE id = 1', 'DELETE FROM s',
  'MERGE INTO s USING t ON s.id = t.id WHEN NOT MATCHED THEN INSERT VALUES (t.id, t.a)',
  'WITH d AS (DELETE FROM s RETURNING *) SELECT * FROM d', 'SELECT * INTO s2 FROM t', 'CREATE TABLE c AS SELECT * FROM t',
  'CREATE MATERIALIZED VIEW mv2 AS SELECT 1', 'CREATE MATERIALIZED VIEW mv4 AS SELECT 1 WITH NO DATA', 'CREATE TABLE c2 AS SELECT 1 WITH NO DATA', 'TRUNCATE s', 'COPY (SELECT 1) TO STDOUT',
  'CREATE TABLE n (a int)', 'CREATE INDEX i ON t (a)', 'CREATE VIEW v AS SELECT 1', 'CREATE SEQUENCE seq2', 'ALTER SEQUENCE seq RESTART',
  'ALTER TABLE t ADD COLUMN c int', 'ALTER TABLE t RENAME COLUMN a TO aa', 'ALTER TABLE t RENAME TO t2', 'ALTER INDEX t_pkey RENAME TO t_pk',
  'ALTER MATERIALIZED VIEW mv RENAME TO mv3', 'ALTER TABLE t SET SCHEMA public', 'ALTER TABLE t OWNER TO CURRENT_USER', 'DROP TABLE s', 'DROP VIEW IF EXISTS nothing',
  'DROP INDEX IF EXISTS nothing', 'CREATE SCHEMA sc', 'DROP SCHEMA IF EXISTS nothing', "COMMENT ON TABLE t IS 'x'",
  'CREATE TRIGGER tg BEFORE INSERT ON t FOR EACH ROW EXECUTE FUNCTION trg()', 'CREATE RULE r AS ON INSERT TO s DO ALSO NOTIFY ch',
  'CREATE POLICY p ON t USING (true)', 'CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$SELECT 1$$', 'CREATE PROCEDURE pr() LANGUAGE sql AS $$SELECT 1$$',
  'CALL noop()', 'DO $$ BEGIN END $$', "CREATE TYPE mood AS ENUM ('a')", 'CREATE DOMAIN pos AS int', 'CREATE STATISTICS st ON id, a FROM t',
  'REFRESH MATERIALIZED VIEW mv', 'ANALYZE t', 'CLUSTER t USING t_pkey', 'REINDEX TABLE t', 'LOCK TABLE t', 'GRANT SELECT ON t TO PUBLIC', 'REVOKE SELECT ON t FROM PUBLIC',
  "SET lock_timeout = '1s'", 'RESET lock_timeout', 'SHOW search_path', 'SAVEPOINT x', ['RELEASE SAVEPOINT x', 'SAVEPOINT x'], ['ROLLBACK TO SAVEPOINT x', 'SAVEPOINT x'], 'SET CONSTRAINTS ALL DEFERRED',
  'DECLARE cur CURSOR FOR SELECT 1', 'LISTEN ch', 'UNLISTEN ch', "NOTIFY ch, 'x'", 'PREPARE pp AS SELECT 1', 'DEALLOCATE ALL',
  'EXPLAIN SELECT 1', ['DROP OWNED BY pgairlock_tag_test_role', 'CREATE ROLE pgairlock_tag_test_role'], 'CREATE ROLE pgairlock_tag_test_role', 'SET ROLE NONE',
];

describe('command tags against a real PostgreSQL', () => {
  let conn: RawConnection | undefined;
  beforeAll(async () => {
    await loadAnalyzer();
    if (!postgresAvailable()) return;
    await db.query(SETUP);
    const u = new URL(ADMIN_DATABASE_URL);
    conn = await RawConnection.connect(Number(u.port || 5432), u.hostname);
    await conn.startup({ user: decodeURIComponent(u.username || 'postgres'), database: db.name });
  });
  afterAll(() => { conn?.socket.destroy(); });

  const run = async (c: RawConnection, text: string) => {
    const from = c.messages.length;
    c.write(queryMessage(text));
    await c.waitForMessage((m) => m.type === 'Z' && c.messages.indexOf(m) >= from);
    return c.messages.slice(from);
  };
  /** The tag without its row counts ("INSERT 0 1" -> "INSERT"). */
  const tagWords = (tag: string): string => {
    const words = tag.split(' ');
    const numeric = (w: string) => w.length > 0 && [...w].every((ch) => ch >= '0' && ch <= '9');
    while (words.length > 1 && numeric(words[words.length - 1]!)) words.pop();
    return words.join(' ');
  };

  for (const item of STATEMENTS) {
    const [sql, pre] = typeof item === 'string' ? [item, undefined] : item;
    it(sql, async (ctx) => {
      if (!postgresAvailable() || !conn) { ctx.skip(); return; }
      const a = analyze(sql);
      if (!a.ok) throw new Error(a.error.message);
      const mine = await run(conn, `BEGIN; ${pre ? `${pre}; ` : ''}${sql}`);
      await run(conn, 'ROLLBACK'); // also after an error, so the next case starts clean
      const err = mine.find((m) => m.type === 'E');
      expect(err ? errorFields(err.body).M : undefined, 'the statement runs').toBeUndefined();
      const tags = mine.filter((m) => m.type === 'C').map((m) => m.body.toString('utf8', 0, m.body.length - 1));
      expect(tags.length).toBe(pre ? 3 : 2);
      expect(a.statements[0]!.commandTag).toBe(tagWords(tags[tags.length - 1]!));
    });
  }
});
