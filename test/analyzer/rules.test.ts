/**
 * Table-driven tests of the migration-safety rules (analyzer/rules/): each rule fires on its unsafe
 * forms and stays quiet on the safe ones, including SQL written to fool a naive text filter.
 * Pure: libpg_query parse + runRules, no database.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadModule, parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { byteToChar } from '../../analyzer/findings.js';
import { canonicalRuleId, collectIgnores, isIgnored, parseDirective } from '../../analyzer/rules/ignore.js';
import { RULES, ruleById, runRules } from '../../analyzer/rules/index.js';
import type { Finding, ScriptContext } from '../../analyzer/types.js';

beforeAll(async () => {
  await loadModule();
});

interface Opts {
  /** PostgreSQL major version (default 18). */
  v?: number;
  /** lock_timeout already set (default true, so missing-lock-timeout stays out of unrelated cases). */
  lt?: boolean;
  /** Start inside a transaction block. */
  tx?: boolean;
  /** Relations created earlier in the script. */
  created?: string[];
}

/**
 * Runs the rules over every statement, threading a minimal script context the way the analyzer
 * does (BEGIN/COMMIT, SET lock_timeout, CREATE TABLE/INDEX/MATERIALIZED VIEW): enough for these cases.
 */
function lint(sql: string, o: Opts = {}): Finding[] {
  const ctx: ScriptContext = { inTransactionBlock: o.tx ?? false, lockTimeoutSet: o.lt ?? true, createdRelations: new Set(o.created ?? []) };
  const out: Finding[] = [];
  const stmts = parseSync(sql).stmts ?? [];
  const total = Buffer.byteLength(sql);
  for (const raw of stmts) {
    const stmt = raw.stmt as unknown as Record<string, unknown>;
    const byteStart = raw.stmt_location ?? 0;
    const byteEnd = raw.stmt_len ? byteStart + raw.stmt_len : total;
    out.push(...runRules({ stmt, sql, byteStart, byteEnd, serverVersion: (o.v ?? 18) * 10000, context: ctx }));
    const s = stmt as Record<string, Record<string, unknown> | undefined>;
    const tx = s.TransactionStmt?.kind;
    if (tx === 'TRANS_STMT_BEGIN' || tx === 'TRANS_STMT_START') ctx.inTransactionBlock = true;
    if (tx === 'TRANS_STMT_COMMIT' || tx === 'TRANS_STMT_ROLLBACK') ctx.inTransactionBlock = false;
    if (s.VariableSetStmt?.name === 'lock_timeout') ctx.lockTimeoutSet = true;
    const rel = (s.CreateStmt?.relation ?? (s.CreateTableAsStmt?.into as { rel?: unknown } | undefined)?.rel) as { relname?: string; schemaname?: string } | undefined;
    if (rel?.relname) ctx.createdRelations.add(rel.schemaname ? `${rel.schemaname}.${rel.relname}` : rel.relname);
    if (typeof s.IndexStmt?.idxname === 'string') ctx.createdRelations.add(s.IndexStmt.idxname);
  }
  return out;
}

const ids = (fs: Finding[]) => fs.map((f) => f.rule);
/** Rules on by default (opt-in compatibility rules are off unless enabled). */
const defaultOn = (fs: Finding[]) => fs.filter((f) => ruleById(f.rule)?.optIn !== true);

type Case = readonly [name: string, sql: string, fires: readonly string[], quiet: readonly string[], opts?: Opts];

const CASES: readonly Case[] = [
  // create-index-without-concurrently
  ['plain create index', 'CREATE INDEX i ON t (a);', ['create-index-without-concurrently'], []],
  ['unique index, mixed case, comment between keywords', 'create /* hi */ UNIQUE index "I" on "Weird Table" (a);', ['create-index-without-concurrently'], []],
  ['concurrently is safe', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);', [], ['create-index-without-concurrently']],
  ['index on a table created earlier', 'CREATE TABLE n (a bigint); CREATE INDEX i ON n (a);', [], ['create-index-without-concurrently', 'missing-lock-timeout'], { lt: false }],
  ['index on schema-qualified new table', 'CREATE TABLE app.n (a bigint); CREATE INDEX ON app.n (a);', [], ['create-index-without-concurrently']],
  ['CONCURRENTLY inside a string does not count', "CREATE INDEX i ON t ((a || 'CONCURRENTLY'));", ['create-index-without-concurrently'], []],
  // drop-index-without-concurrently
  ['plain drop index', 'DROP INDEX i;', ['drop-index-without-concurrently'], []],
  ['drop index if exists, qualified', 'drop index if exists s.i cascade;', ['drop-index-without-concurrently'], []],
  ['drop index concurrently', 'DROP INDEX CONCURRENTLY IF EXISTS i;', [], ['drop-index-without-concurrently']],
  ['drop index created in the script', 'CREATE INDEX CONCURRENTLY i ON t (a); DROP INDEX i;', [], ['drop-index-without-concurrently']],
  // concurrent-index-in-transaction
  ['CIC after BEGIN', 'BEGIN; CREATE INDEX CONCURRENTLY i ON t (a); COMMIT;', ['concurrent-index-in-transaction'], []],
  ['DROP INDEX CONCURRENTLY in tx context', 'DROP INDEX CONCURRENTLY i;', ['concurrent-index-in-transaction'], [], { tx: true }],
  ['REINDEX CONCURRENTLY in tx', 'START TRANSACTION; REINDEX (CONCURRENTLY) TABLE t;', ['concurrent-index-in-transaction'], []],
  ['DETACH CONCURRENTLY in tx', 'ALTER TABLE p DETACH PARTITION c CONCURRENTLY;', ['concurrent-index-in-transaction'], [], { tx: true }],
  ['CIC after COMMIT is fine', 'BEGIN; SELECT 1; COMMIT; CREATE INDEX CONCURRENTLY i ON t (a);', [], ['concurrent-index-in-transaction']],
  ['CIC without any transaction', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);', [], ['concurrent-index-in-transaction']],
  ['plain index in tx is not this rule', 'CREATE INDEX i ON t (a);', [], ['concurrent-index-in-transaction'], { tx: true }],
  // add-column-volatile-default
  ['gen_random_uuid default', 'ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid();', ['add-column-volatile-default'], []],
  ['clock_timestamp default, qualified', 'alter table "T" add c timestamptz default pg_catalog.clock_timestamp();', ['add-column-volatile-default'], []],
  ['random() inside an expression', 'ALTER TABLE t ADD COLUMN r float8 DEFAULT (random() * 10)::int;', ['add-column-volatile-default'], []],
  ['now() is stable: no rewrite', 'ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now();', [], ['add-column-volatile-default']],
  ['constant default', "ALTER TABLE t ADD COLUMN c text DEFAULT 'gen_random_uuid()';", [], ['add-column-volatile-default']],
  ['CURRENT_TIMESTAMP default', 'ALTER TABLE t ADD COLUMN c timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP;', [], ['add-column-volatile-default', 'add-not-null-column-without-default']],
  ['volatile default on a new table', 'CREATE TABLE n (id bigint); ALTER TABLE n ADD COLUMN u uuid DEFAULT gen_random_uuid();', [], ['add-column-volatile-default']],
  ['volatile default in CREATE TABLE', 'CREATE TABLE n (u uuid DEFAULT gen_random_uuid());', [], ['add-column-volatile-default']],
  // add-not-null-column-without-default
  ['not null without default', 'ALTER TABLE t ADD COLUMN c text NOT NULL;', ['add-not-null-column-without-default'], []],
  ['inline primary key without default', 'ALTER TABLE t ADD COLUMN c bigint PRIMARY KEY;', ['add-not-null-column-without-default'], []],
  ['not null with default', "ALTER TABLE t ADD COLUMN c text NOT NULL DEFAULT '';", [], ['add-not-null-column-without-default']],
  ['nullable column', 'ALTER TABLE t ADD COLUMN c text;', [], ['add-not-null-column-without-default']],
  ['not null identity fills values', 'ALTER TABLE t ADD COLUMN c bigint NOT NULL GENERATED ALWAYS AS IDENTITY;', ['add-column-auto-increment'], ['add-not-null-column-without-default']],
  // set-not-null
  ['set not null', 'ALTER TABLE t ALTER COLUMN c SET NOT NULL;', ['set-not-null'], []],
  ['PG18 ADD CONSTRAINT NOT NULL (validated)', 'ALTER TABLE t ADD CONSTRAINT c_nn NOT NULL c;', ['set-not-null'], []],
  ['PG18 NOT NULL NOT VALID', 'ALTER TABLE t ADD CONSTRAINT c_nn NOT NULL c NOT VALID;', [], ['set-not-null']],
  ['drop not null is not set-not-null', 'ALTER TABLE t ALTER COLUMN c DROP NOT NULL;', ['drop-not-null'], ['set-not-null']],
  ['set not null after a validated CHECK (IS NOT NULL): the safe recipe', 'ALTER TABLE t ADD CONSTRAINT nn CHECK (c IS NOT NULL) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT nn; ALTER TABLE t ALTER c SET NOT NULL;', [], ['set-not-null']],
  ['set not null after a CHECK never validated', 'ALTER TABLE t ADD CONSTRAINT nn CHECK (c IS NOT NULL) NOT VALID; ALTER TABLE t ALTER c SET NOT NULL;', ['set-not-null'], []],
  ['validated CHECK on another column does not help', 'ALTER TABLE t ADD CONSTRAINT nn CHECK (d IS NOT NULL) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT nn; ALTER TABLE t ALTER c SET NOT NULL;', ['set-not-null'], []],
  ['validated CHECK does not help before 12', 'ALTER TABLE t ADD CONSTRAINT nn CHECK (c IS NOT NULL) NOT VALID; ALTER TABLE t VALIDATE CONSTRAINT nn; ALTER TABLE t ALTER c SET NOT NULL;', ['set-not-null'], [], { v: 11 }],
  ['set not null on a new table', 'CREATE TABLE n (c int8); ALTER TABLE n ALTER c SET NOT NULL;', [], ['set-not-null']],
  // add-foreign-key-without-not-valid
  ['fk without not valid', 'ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id);', ['add-foreign-key-without-not-valid'], []],
  ['inline REFERENCES on ADD COLUMN', 'ALTER TABLE t ADD COLUMN u bigint REFERENCES u;', ['add-foreign-key-without-not-valid'], []],
  ['fk NOT VALID', 'ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id) NOT VALID;', [], ['add-foreign-key-without-not-valid']],
  ['validate constraint is the safe second step', 'ALTER TABLE t VALIDATE CONSTRAINT f;', [], ['add-foreign-key-without-not-valid', 'missing-lock-timeout'], { lt: false }],
  ['fk in CREATE TABLE', 'CREATE TABLE n (u bigint REFERENCES u (id));', [], ['add-foreign-key-without-not-valid']],
  // add-check-without-not-valid
  ['check without not valid', 'ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0);', ['add-check-without-not-valid'], []],
  ['check, mixed case with comment', 'alter TABLE t add /* x */ check (a>0)', ['add-check-without-not-valid'], []],
  ['check NOT VALID', 'ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;', [], ['add-check-without-not-valid']],
  ['check on a new table', 'CREATE TABLE n (a int8); ALTER TABLE n ADD CHECK (a > 0);', [], ['add-check-without-not-valid']],
  // unique-constraint-without-index
  ['add unique', 'ALTER TABLE t ADD CONSTRAINT u UNIQUE (a);', ['unique-constraint-without-index'], []],
  ['add primary key', 'ALTER TABLE t ADD PRIMARY KEY (id);', ['unique-constraint-without-index'], []],
  ['unique using index', 'ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX u_idx;', [], ['unique-constraint-without-index']],
  ['primary key using index', 'ALTER TABLE t ADD CONSTRAINT p PRIMARY KEY USING INDEX p_idx;', [], ['unique-constraint-without-index']],
  // change-column-type
  ['alter type', 'ALTER TABLE t ALTER COLUMN a TYPE bigint;', ['change-column-type'], []],
  ['set data type with using', 'ALTER TABLE t ALTER a SET DATA TYPE text USING a::text;', ['change-column-type'], []],
  ['type change on a new table', 'CREATE TABLE n (a int8); ALTER TABLE n ALTER a TYPE text;', [], ['change-column-type']],
  ['set default is not a type change', 'ALTER TABLE t ALTER a SET DEFAULT 1;', [], ['change-column-type']],
  // rename-column / rename-table
  ['rename column', 'ALTER TABLE t RENAME COLUMN a TO b;', ['rename-column'], []],
  ['rename column, no COLUMN keyword, quoted', 'ALTER TABLE "t" RENAME "A" TO "B";', ['rename-column'], []],
  ['rename column on a new table', 'CREATE TABLE n (a int8); ALTER TABLE n RENAME a TO b;', [], ['rename-column']],
  ['rename table', 'ALTER TABLE t RENAME TO u;', ['rename-table'], ['rename-column']],
  ['rename table if exists, qualified', 'alter table if exists s.t rename to u', ['rename-table'], []],
  ['rename a new table', 'CREATE TABLE n (a int8); ALTER TABLE n RENAME TO m;', [], ['rename-table']],
  ['rename index is not rename-table', 'ALTER INDEX i RENAME TO j;', [], ['rename-table']],
  // drop-column
  ['drop column', 'ALTER TABLE t DROP COLUMN a;', ['drop-column'], []],
  ['drop column if exists cascade', 'ALTER TABLE t DROP IF EXISTS a CASCADE;', ['drop-column'], []],
  ['drop column on a new table', 'CREATE TABLE n (a int8, b int8); ALTER TABLE n DROP b;', [], ['drop-column']],
  ['drop constraint is not drop column', 'ALTER TABLE t DROP CONSTRAINT a;', [], ['drop-column']],
  // drop-table / drop-database
  ['drop table', 'DROP TABLE t;', ['drop-table'], []],
  ['drop several tables cascade', 'drop table if exists a, s.b cascade', ['drop-table'], []],
  ['drop a table created in the script', 'CREATE TABLE n (a int8); DROP TABLE n;', [], ['drop-table']],
  ['drop view is not drop table', 'DROP VIEW v;', ['drop-object'], ['drop-table']],
  ['drop database', 'DROP DATABASE prod;', ['drop-database'], []],
  ['drop database if exists with force', 'DROP DATABASE IF EXISTS "Prod" WITH (FORCE);', ['drop-database'], []],
  ['create database is not drop', 'CREATE DATABASE x;', [], ['drop-database']],
  ['drop schema cascade is drop-object (error)', 'DROP SCHEMA s CASCADE;', ['drop-object'], ['drop-database']],
  // truncate / truncate-cascade
  ['truncate', 'TRUNCATE t;', ['truncate'], ['truncate-cascade']],
  ['truncate table only, restart identity', 'truncate table only t restart identity', ['truncate'], []],
  ['truncate cascade', 'TRUNCATE a, b CASCADE;', ['truncate', 'truncate-cascade'], []],
  ['truncate a new table', 'CREATE TABLE n (a int8); TRUNCATE n;', [], ['truncate', 'truncate-cascade']],
  ['truncate cascade, quoted, comment inside', 'TRUNCATE TABLE "Mixed" /* all */ CASCADE;', ['truncate-cascade'], []],
  ['truncate restrict', 'TRUNCATE t RESTRICT;', ['truncate'], ['truncate-cascade']],
  ['delete all is not truncate', 'DELETE FROM t;', ['delete-without-where'], ['truncate']],
  // delete-without-where / update-without-where
  ['delete without where', 'DELETE FROM t;', ['delete-without-where'], []],
  ['delete hidden in a CTE', 'WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d;', ['delete-without-where'], []],
  ['delete inside EXPLAIN ANALYZE runs', 'EXPLAIN (ANALYZE, BUFFERS) DELETE FROM t;', ['delete-without-where'], []],
  ['delete with where', 'DELETE FROM t WHERE id = 1;', [], ['delete-without-where']],
  ['plain EXPLAIN does not run the delete', 'EXPLAIN DELETE FROM t;', [], ['delete-without-where']],
  ['delete where inside a string only', "DELETE FROM t -- WHERE id = 1\n;", ['delete-without-where'], []],
  ['update without where', 'UPDATE t SET a = 1;', ['update-without-where'], []],
  ['update in PREPARE', 'PREPARE p AS UPDATE t SET a = $1;', ['update-without-where'], []],
  ['update with where', 'UPDATE t SET a = 1 WHERE id = 2;', [], ['update-without-where']],
  ['update where current of', 'UPDATE t SET a = 1 WHERE CURRENT OF c;', [], ['update-without-where']],
  ['update in dollar-quoted function body is not run', "CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN UPDATE t SET a = 1; END $$;", [], ['update-without-where']],
  ['select with where text in a string', "SELECT 'UPDATE t SET a = 1';", [], ['update-without-where']],
  ['delete from new table', 'CREATE TABLE n (a int8); DELETE FROM n;', [], ['delete-without-where']],
  // missing-lock-timeout
  ['alter table without lock_timeout', 'ALTER TABLE t ADD COLUMN c text;', ['missing-lock-timeout'], [], { lt: false }],
  ['create index without lock_timeout', 'CREATE INDEX i ON t (a);', ['missing-lock-timeout'], [], { lt: false }],
  ['lock_timeout set earlier in the script', "SET lock_timeout = '2s'; ALTER TABLE t ADD COLUMN c text;", [], ['missing-lock-timeout'], { lt: false }],
  ['SET LOCAL lock_timeout in a transaction', "BEGIN; SET LOCAL lock_timeout TO '1s'; ALTER TABLE t DROP COLUMN c; COMMIT;", [], ['missing-lock-timeout'], { lt: false }],
  ['CIC needs no lock_timeout', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);', [], ['missing-lock-timeout'], { lt: false }],
  ['DML needs no lock_timeout', 'INSERT INTO t VALUES (1);', [], ['missing-lock-timeout'], { lt: false }],
  ['new table with FK locks the referenced table', 'CREATE TABLE n (u bigint REFERENCES users (id));', ['missing-lock-timeout'], [], { lt: false }],
  ['FK from a new table locks the existing referenced one', 'CREATE TABLE n (u bigint); ALTER TABLE n ADD FOREIGN KEY (u) REFERENCES users (id);', ['missing-lock-timeout'], ['add-foreign-key-without-not-valid'], { lt: false }],
  ['FK between two new tables', 'CREATE TABLE m (id bigint PRIMARY KEY); CREATE TABLE n (u bigint); ALTER TABLE n ADD FOREIGN KEY (u) REFERENCES m (id);', [], ['missing-lock-timeout'], { lt: false }],
  ['dropping a table created in the script needs no lock_timeout', 'CREATE TABLE n (a bigint); DROP TABLE n;', [], ['missing-lock-timeout'], { lt: false }],
  ['new table without FK', 'CREATE TABLE n (u bigint);', [], ['missing-lock-timeout'], { lt: false }],
  // prefer-bigint
  ['int column', 'CREATE TABLE app.n (a int);', ['prefer-bigint'], []],
  ['smallint in ADD COLUMN', 'ALTER TABLE t ADD COLUMN a smallint;', ['prefer-bigint'], []],
  ['integer primary key is a warning', 'CREATE TABLE app.n (id integer PRIMARY KEY);', ['prefer-bigint'], []],
  ['bigint is fine', 'CREATE TABLE app.n (id bigint PRIMARY KEY);', [], ['prefer-bigint']],
  ['user type named int in another schema', 'CREATE TABLE app.n (a myschema.int4);', [], ['prefer-bigint']],
  // prefer-identity
  ['serial', 'CREATE TABLE app.n (id serial PRIMARY KEY);', ['prefer-identity', 'prefer-bigint'], []],
  ['bigserial', 'CREATE TABLE app.n (id BIGSERIAL);', ['prefer-identity'], ['prefer-bigint']],
  ['identity', 'CREATE TABLE app.n (id bigint GENERATED BY DEFAULT AS IDENTITY);', [], ['prefer-identity', 'prefer-bigint']],
  ['column named serial', 'CREATE TABLE app.n (serial bigint);', [], ['prefer-identity']],
  // prefer-text
  ['varchar(n)', 'CREATE TABLE app.n (a varchar(20));', ['prefer-text'], []],
  ['character varying(n) on ADD COLUMN', 'ALTER TABLE t ADD COLUMN a character varying(5);', ['prefer-text'], []],
  ['varchar without length', 'CREATE TABLE app.n (a varchar);', [], ['prefer-text']],
  ['text', 'CREATE TABLE app.n (a text);', [], ['prefer-text']],
  // prefer-timestamptz
  ['timestamp', 'CREATE TABLE app.n (a timestamp);', ['prefer-timestamptz'], []],
  ['timestamp without time zone on ALTER TYPE', 'ALTER TABLE t ALTER a TYPE timestamp without time zone;', ['prefer-timestamptz'], []],
  ['timestamptz', 'CREATE TABLE app.n (a timestamptz);', [], ['prefer-timestamptz']],
  ['timestamp with time zone', 'CREATE TABLE app.n (a timestamp with time zone);', [], ['prefer-timestamptz']],
  // ban-char
  ['char(n)', 'CREATE TABLE app.n (a char(3));', ['ban-char'], []],
  ['character', 'ALTER TABLE t ADD COLUMN a character;', ['ban-char'], []],
  ['quoted "char" is the internal one-byte type', 'CREATE TABLE app.n (a "char");', [], ['ban-char']],
  ['varchar is not char', 'CREATE TABLE app.n (a varchar);', [], ['ban-char']],
  // json-column
  ['json column', 'CREATE TABLE app.n (a json);', ['json-column'], []],
  ['json on ADD COLUMN, upper case', 'ALTER TABLE t ADD COLUMN a JSON;', ['json-column'], []],
  ['jsonb', 'CREATE TABLE app.n (a jsonb);', [], ['json-column']],
  ['json cast in a query', "SELECT '{}'::json;", [], ['json-column']],
  // vacuum-full / cluster
  ['vacuum full', 'VACUUM FULL t;', ['vacuum-full'], []],
  ['vacuum (full, analyze)', 'vacuum (FULL, ANALYZE) t;', ['vacuum-full'], []],
  ['plain vacuum', 'VACUUM (ANALYZE) t;', [], ['vacuum-full']],
  ['vacuum (full false)', 'VACUUM (FULL false) t;', [], ['vacuum-full']],
  ['cluster', 'CLUSTER t USING t_pkey;', ['cluster'], []],
  ['cluster all', 'CLUSTER;', ['cluster'], []],
  ['cluster a new table', 'CREATE TABLE n (a int8); CLUSTER n USING n_pkey;', [], ['cluster']],
  ['analyze is not cluster', 'ANALYZE t;', [], ['cluster', 'vacuum-full']],
  // lock-table
  ['lock table default mode', 'LOCK TABLE t;', ['lock-table'], []],
  ['lock in share mode', 'lock t in share mode', ['lock-table'], []],
  ['lock in access share mode', 'LOCK TABLE t IN ACCESS SHARE MODE;', [], ['lock-table']],
  ['lock in row exclusive mode', 'LOCK TABLE t IN ROW EXCLUSIVE MODE;', [], ['lock-table']],
  // refresh-matview-without-concurrently
  ['refresh matview', 'REFRESH MATERIALIZED VIEW m;', ['refresh-matview-without-concurrently'], []],
  ['refresh matview qualified', 'refresh materialized view s.m with data', ['refresh-matview-without-concurrently'], []],
  ['refresh concurrently', 'REFRESH MATERIALIZED VIEW CONCURRENTLY m;', [], ['refresh-matview-without-concurrently']],
  ['refresh with no data', 'REFRESH MATERIALIZED VIEW m WITH NO DATA;', [], ['refresh-matview-without-concurrently']],
  // enum-add-value-in-transaction
  ['add enum value in tx', "BEGIN; ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok'; COMMIT;", ['enum-add-value-in-transaction'], []],
  ['add enum value in tx context', "ALTER TYPE s.mood ADD VALUE IF NOT EXISTS 'meh' BEFORE 'sad';", ['enum-add-value-in-transaction'], [], { tx: true }],
  ['add enum value outside tx', "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok';", [], ['enum-add-value-in-transaction']],
  ['rename enum value in tx', "ALTER TYPE mood RENAME VALUE 'a' TO 'b';", [], ['enum-add-value-in-transaction', 'enum-value-ordering'], { tx: true }],
  ['enum value without BEFORE/AFTER', "ALTER TYPE mood ADD VALUE 'meh';", ['enum-value-ordering'], []],
  // transaction-nesting / uncommitted
  ['nested BEGIN', 'BEGIN; BEGIN; COMMIT;', ['transaction-nesting'], []],
  ['BEGIN when the tool already opened one', 'BEGIN;', ['transaction-nesting'], [], { tx: true }],
  ['one BEGIN/COMMIT', 'BEGIN; SELECT 1; COMMIT;', [], ['transaction-nesting']],
  ['savepoints nest fine', 'BEGIN; SAVEPOINT a; RELEASE a; COMMIT;', [], ['transaction-nesting']],
  // reindex / detach / others
  ['reindex table', 'REINDEX TABLE t;', ['reindex-without-concurrently'], []],
  ['reindex concurrently', 'REINDEX TABLE CONCURRENTLY t;', [], ['reindex-without-concurrently']],
  ['detach partition', 'ALTER TABLE p DETACH PARTITION c;', ['detach-partition-without-concurrently'], []],
  ['detach partition on 13: nothing better exists', 'ALTER TABLE p DETACH PARTITION c;', [], ['detach-partition-without-concurrently'], { v: 13 }],
  ['detach concurrently', 'ALTER TABLE p DETACH PARTITION c CONCURRENTLY;', [], ['detach-partition-without-concurrently']],
  ['add serial column', 'ALTER TABLE t ADD COLUMN id bigserial;', ['add-column-auto-increment'], []],
  ['add stored generated column', 'ALTER TABLE t ADD COLUMN g int8 GENERATED ALWAYS AS (a * 2) STORED;', ['add-column-stored-generated'], []],
  ['add virtual generated column (18)', 'ALTER TABLE t ADD COLUMN g int8 GENERATED ALWAYS AS (a * 2) VIRTUAL;', [], ['add-column-stored-generated']],
  ['exclusion constraint', 'ALTER TABLE t ADD EXCLUDE USING gist (r WITH &&);', ['add-exclusion-constraint'], []],
  ['domain with check', 'CREATE DOMAIN pos AS int8 CHECK (VALUE > 0);', ['create-domain-with-constraint'], []],
  ['domain without check', 'CREATE DOMAIN email AS text;', [], ['create-domain-with-constraint']],
  ['alter domain add constraint', 'ALTER DOMAIN pos ADD CONSTRAINT c CHECK (VALUE > 0);', ['alter-domain-add-constraint'], []],
  ['alter domain add constraint not valid', 'ALTER DOMAIN pos ADD CONSTRAINT c CHECK (VALUE > 0) NOT VALID;', [], ['alter-domain-add-constraint']],
  ['identifier too long', `CREATE TABLE app.${'x'.repeat(64)} (a bigint);`, ['identifier-too-long'], []],
  ['63-byte identifier is fine', `CREATE TABLE app.${'x'.repeat(63)} (a bigint);`, [], ['identifier-too-long']],
  ['multi-byte identifier over 63 bytes', `CREATE TABLE app."${'é'.repeat(32)}" (a bigint);`, ['identifier-too-long'], []],
  ['duplicate assignment', 'UPDATE t SET a = 1, a = 2 WHERE id = 1;', ['duplicate-column-assignment'], []],
  ['distinct assignments', 'UPDATE t SET a = 1, b = 2 WHERE id = 1;', [], ['duplicate-column-assignment']],
  ['non-unique index on 4 columns', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a, b, c, d);', ['index-too-many-columns'], []],
  ['CIC without IF NOT EXISTS', 'CREATE INDEX CONCURRENTLY i ON t (a);', ['prefer-robust-stmts'], []],
  // written to fool a naive text filter
  ['Unicode-escaped identifier', 'CREATE INDEX i ON U&"t\\0061ble" (a);', ['create-index-without-concurrently'], []],
  ['E-string holding DDL is just a string', "SELECT E'DROP TABLE t;\\nTRUNCATE u CASCADE';", [], ['drop-table', 'truncate', 'truncate-cascade']],
  ['dynamic SQL in DO is opaque, not a DROP TABLE', "DO $$ BEGIN EXECUTE 'DROP TABLE t'; END $$;", [], ['drop-table']],
  ['multi-statement string: the middle one is caught', 'SELECT 1; DrOp TaBlE "t"; SELECT 2;', ['drop-table'], []],
  ['comment holding a DELETE before a safe DELETE', '/* DELETE FROM t */ DELETE FROM t WHERE id = 1;', [], ['delete-without-where']],
  ['nested dollar quotes with a tag', 'SELECT $a$ $$ VACUUM FULL t $$ $a$;', [], ['vacuum-full']],
  ['keywords split by comments', 'ALTER/**/TABLE t -- x\n ALTER /* y */ COLUMN c SET/**/NOT NULL;', ['set-not-null'], []],
  ['drop view cascade', 'DROP VIEW v CASCADE;', ['drop-object'], []],
  ['drop function', 'DROP FUNCTION f(int);', ['drop-object'], []],
];

describe('migration-safety rules (table)', () => {
  it('has enough cases, and every required rule has positive and negative ones', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(100);
    const required = [
      'create-index-without-concurrently', 'drop-index-without-concurrently', 'concurrent-index-in-transaction', 'add-column-volatile-default',
      'add-not-null-column-without-default', 'set-not-null', 'add-foreign-key-without-not-valid', 'add-check-without-not-valid',
      'unique-constraint-without-index', 'change-column-type', 'rename-column', 'rename-table', 'drop-column', 'drop-table', 'drop-database',
      'truncate', 'truncate-cascade', 'delete-without-where', 'update-without-where', 'missing-lock-timeout', 'prefer-bigint', 'prefer-identity',
      'prefer-text', 'prefer-timestamptz', 'ban-char', 'json-column', 'vacuum-full', 'cluster', 'lock-table', 'refresh-matview-without-concurrently',
      'enum-add-value-in-transaction', 'transaction-nesting',
    ];
    for (const id of required) {
      expect(ruleById(id), id).toBeDefined();
      expect(CASES.filter((c) => c[2].includes(id)).length, `${id} positives`).toBeGreaterThanOrEqual(2);
      expect(CASES.filter((c) => c[3].includes(id)).length, `${id} negatives`).toBeGreaterThanOrEqual(2);
    }
  });

  it.each(CASES.map((c) => ({ name: c[0], c })))('$name', ({ c }) => {
    const [, sql, fires, quiet, opts] = c;
    const got = ids(lint(sql, opts));
    for (const id of fires) expect(got, `expected ${id} for: ${sql}`).toContain(id);
    for (const id of quiet) expect(got, `did not expect ${id} for: ${sql}`).not.toContain(id);
  });
});

describe('safe statements produce no findings', () => {
  const SAFE = [
    'SELECT * FROM t WHERE id = 1;',
    'INSERT INTO t (a) VALUES (1) ON CONFLICT DO NOTHING;',
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);',
    'DROP INDEX CONCURRENTLY IF EXISTS i;',
    'ALTER TABLE t ADD COLUMN c text;',
    'ALTER TABLE t ADD COLUMN c bigint DEFAULT 0;',
    'ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (u) REFERENCES u (id) NOT VALID;',
    'ALTER TABLE t VALIDATE CONSTRAINT f;',
    'ALTER TABLE t ADD CONSTRAINT c CHECK (a > 0) NOT VALID;',
    'ALTER TABLE t ADD CONSTRAINT u UNIQUE USING INDEX u_idx;',
    'CREATE TABLE app.orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text, at timestamptz NOT NULL DEFAULT now(), doc jsonb);',
    'REFRESH MATERIALIZED VIEW CONCURRENTLY m;',
    'REINDEX INDEX CONCURRENTLY i;',
    "SET lock_timeout = '2s';",
    "SELECT 'DROP TABLE t; DELETE FROM t' AS s;",
    'SELECT $q$ TRUNCATE t CASCADE $q$;',
    "SELECT E'VACUUM FULL\\n';",
    '/* DROP DATABASE x */ SELECT 1; -- DROP TABLE y',
    'UPDATE t SET a = 1 WHERE id = 7;',
    'DELETE FROM t WHERE created_at < now() - interval \'30 days\';',
    'BEGIN; SELECT 1; COMMIT;',
    'VACUUM (ANALYZE) t;',
  ];
  it.each(SAFE)('%s', (sql) => {
    expect(defaultOn(lint(sql))).toEqual([]);
  });
});

describe('versions change verdicts', () => {
  it('DETACH PARTITION: no CONCURRENTLY before 14, so only 14+ flags it', () => {
    expect(ids(lint('ALTER TABLE p DETACH PARTITION c;', { v: 13 }))).not.toContain('detach-partition-without-concurrently');
    expect(ids(lint('ALTER TABLE p DETACH PARTITION c;', { v: 14 }))).toContain('detach-partition-without-concurrently');
  });
  it('any DEFAULT rewrote before 11; a constant one does not since', () => {
    expect(ids(lint('ALTER TABLE t ADD COLUMN c int8 DEFAULT 0;', { v: 10 }))).toContain('add-column-volatile-default');
    expect(ids(lint('ALTER TABLE t ADD COLUMN c int8 DEFAULT 0;', { v: 11 }))).not.toContain('add-column-volatile-default');
  });
  it('set-not-null advice follows the version (18: NOT NULL NOT VALID; 12-17: CHECK)', () => {
    const on18 = lint('ALTER TABLE t ALTER c SET NOT NULL;', { v: 18 }).find((f) => f.rule === 'set-not-null');
    const on15 = lint('ALTER TABLE t ALTER c SET NOT NULL;', { v: 15 }).find((f) => f.rule === 'set-not-null');
    expect(on18?.fix).toContain('NOT NULL col NOT VALID');
    expect(on15?.fix).toContain('CHECK (col IS NOT NULL) NOT VALID');
  });
  it('enum ADD VALUE in a transaction: an error before 12, a warning since', () => {
    expect(lint("ALTER TYPE e ADD VALUE 'x' AFTER 'y';", { v: 11, tx: true }).find((f) => f.rule === 'enum-add-value-in-transaction')?.severity).toBe('error');
    expect(lint("ALTER TYPE e ADD VALUE 'x' AFTER 'y';", { v: 13, tx: true }).find((f) => f.rule === 'enum-add-value-in-transaction')?.severity).toBe('warning');
  });
});

describe('findings carry positions and words', () => {
  it('byte and char offsets differ after multi-byte text, and point at the relation', () => {
    const sql = "SELECT 'héllo wörld 🎉';\nCREATE INDEX i ON tbl (a);";
    const f = lint(sql).find((x) => x.rule === 'create-index-without-concurrently');
    expect(f?.location).toBeDefined();
    const { byte, char } = f!.location!;
    expect(byte).toBe(Buffer.byteLength(sql.slice(0, sql.indexOf('tbl'))));
    expect(char).toBe(sql.indexOf('tbl'));
    expect(byte).toBeGreaterThan(char);
    expect(byteToChar(sql, byte)).toBe(char);
  });
  it('every finding has message, why and fix, and a declared rule', () => {
    const all = lint(
      'DROP TABLE t; TRUNCATE t CASCADE; ALTER TABLE t ADD COLUMN c int NOT NULL, ALTER d TYPE text, DROP e; CREATE INDEX ON t (a); VACUUM FULL t; LOCK t;',
      { lt: false },
    );
    expect(all.length).toBeGreaterThan(8);
    for (const f of all) {
      expect(ruleById(f.rule)).toBeDefined();
      expect(f.message.length).toBeGreaterThan(10);
      expect(f.why.length).toBeGreaterThan(10);
      expect(f.fix.length).toBeGreaterThan(5);
    }
  });
  it('RULES ids are unique kebab-case, with squawk/strong_migrations lists', () => {
    const seen = new Set<string>();
    for (const r of RULES) {
      expect(seen.has(r.id), r.id).toBe(false);
      seen.add(r.id);
      for (const ch of r.id) expect('abcdefghijklmnopqrstuvwxyz0123456789-'.includes(ch), r.id).toBe(true);
      expect(Array.isArray(r.squawk) && Array.isArray(r.strongMigrations)).toBe(true);
    }
  });
});

describe('ignore comments', () => {
  it('parses directives, with squawk ids as aliases', () => {
    expect(parseDirective('-- pgairlock:ignore drop-table, truncate')?.rules).toEqual(['drop-table', 'truncate']);
    expect(parseDirective('/* pgairlock:ignore ban-drop-table */')?.rules).toEqual(['drop-table']);
    expect(parseDirective('-- pgairlock:ignore-file')).toEqual({ file: true, rules: [] });
    expect(parseDirective('-- pgairlock:ignored x')).toBeUndefined();
    expect(parseDirective('-- just a comment')).toBeUndefined();
    expect(canonicalRuleId('Require-Concurrent-Index-Creation')).toBe('create-index-without-concurrently');
  });

  const ranges = (sql: string) => {
    const total = Buffer.byteLength(sql);
    return (parseSync(sql).stmts ?? []).map((s) => ({ byteStart: s.stmt_location ?? 0, byteEnd: s.stmt_len ? (s.stmt_location ?? 0) + s.stmt_len : total }));
  };

  it('applies to the statement after the comment, inside it, or ending on its line', () => {
    const sql = [
      'DROP TABLE a;',
      '-- pgairlock:ignore drop-table',
      'DROP TABLE b;',
      'DROP /* pgairlock:ignore drop-table */ TABLE c;',
      'DROP TABLE d; -- pgairlock:ignore drop-table',
      'DROP TABLE e;',
    ].join('\n');
    const d = collectIgnores(sql, ranges(sql));
    expect([0, 1, 2, 3, 4].map((i) => isIgnored(d, i, 'drop-table'))).toEqual([false, true, true, true, false]);
  });

  it('a comment between two statements on one line belongs to the one after it', () => {
    const sql = 'DROP TABLE a; /* pgairlock:ignore drop-table */ DROP TABLE b;';
    const d = collectIgnores(sql, ranges(sql));
    expect([isIgnored(d, 0, 'drop-table'), isIgnored(d, 1, 'drop-table')]).toEqual([false, true]);
  });

  it('text that only looks like a directive (in a string or dollar quote) is not one', () => {
    const sql = "SELECT '-- pgairlock:ignore drop-table';\nDROP TABLE a;\nSELECT $$ /* pgairlock:ignore drop-table */ $$;\nDROP TABLE b;";
    const d = collectIgnores(sql, ranges(sql));
    expect(isIgnored(d, 1, 'drop-table')).toBe(false);
    expect(isIgnored(d, 3, 'drop-table')).toBe(false);
  });

  it('ignore-file and bare ignore cover every rule', () => {
    const sql = '-- pgairlock:ignore\nDROP TABLE a;\nTRUNCATE b;';
    const d = collectIgnores(sql, ranges(sql));
    expect(isIgnored(d, 0, 'drop-table')).toBe(true);
    expect(isIgnored(d, 1, 'truncate')).toBe(false);
    const f = '-- pgairlock:ignore-file truncate\nDROP TABLE a;\nTRUNCATE b;';
    const df = collectIgnores(f, ranges(f));
    expect(isIgnored(df, 1, 'truncate')).toBe(true);
    expect(isIgnored(df, 0, 'drop-table')).toBe(false);
  });
});

describe('docs/rules.md', () => {
  const doc = readFileSync(resolve(import.meta.dirname, '../../docs/rules.md'), 'utf8');
  const sections = new Map<string, string>();
  for (const part of doc.split('\n### ').slice(1)) {
    const id = part.slice(0, part.indexOf('\n')).trim();
    const open = part.indexOf('```sql\n');
    const close = part.indexOf('\n```', open + 7);
    if (open >= 0 && close > open) sections.set(id, part.slice(open + 7, close));
  }

  it('documents every rule, with the code\'s own why and fix, and maps every squawk id it claims', () => {
    const squawkSection = doc.slice(doc.indexOf('## Mapping from squawk'), doc.indexOf('## Mapping from strong_migrations'));
    for (const r of RULES) {
      expect(sections.has(r.id), r.id).toBe(true);
      expect(doc, `${r.id} why`).toContain(r.why);
      expect(doc, `${r.id} fix`).toContain(r.fix);
      for (const sq of r.squawk) expect(squawkSection, `${r.id} <- ${sq}`).toContain(sq);
    }
  });

  // The examples cannot drift from the code: "flagged" fires the rule, "instead" does not.
  it.each(RULES.map((r) => ({ id: r.id })))('example for $id', ({ id }) => {
    const block = sections.get(id)!;
    const [bad, good] = block.split('-- instead\n') as [string, string];
    const opts = { lt: id !== 'missing-lock-timeout' };
    if (id !== 'uncommitted-transaction') expect(ids(lint(bad.replace('-- flagged\n', ''), opts))).toContain(id);
    expect(ids(lint(good, opts))).not.toContain(id);
  });
});
