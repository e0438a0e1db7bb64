/**
 * The rules' claims, checked on the real PostgreSQL server: a statement the rules call a rewrite
 * really gets a new relfilenode (and one they call safe keeps it); one they call an error really fails;
 * the lock a rule's "why" names is the lock pg_locks shows. Rules run at the server's own version.
 */
import { loadModule, parseSync } from 'libpg-query';
import { beforeAll, describe, expect, it } from 'vitest';
import { runRules } from '../../analyzer/rules/index.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';

const db = useTestDatabase('rules_pg');
let version = 180000;

beforeAll(async () => {
  await loadModule();
  if (!postgresAvailable()) return;
  version = Number((await db.query<{ v: string }>('SHOW server_version_num')).rows[0]!.v);
});

function rules(sql: string, inTransactionBlock = false): string[] {
  const out: string[] = [];
  for (const raw of parseSync(sql).stmts ?? []) {
    const byteStart = raw.stmt_location ?? 0;
    const context = { inTransactionBlock, lockTimeoutSet: true, createdRelations: new Set<string>() };
    const found = runRules({ stmt: raw.stmt as unknown as Record<string, unknown>, sql, byteStart, byteEnd: byteStart + (raw.stmt_len ?? sql.length), serverVersion: version, context });
    out.push(...found.map((f) => f.rule));
  }
  return out;
}

async function filenode(table: string): Promise<string> {
  return (await db.query<{ f: string }>('SELECT pg_relation_filenode($1::regclass)::text AS f', [table])).rows[0]!.f;
}

async function sqlstate(sql: string): Promise<string | undefined> {
  try {
    await db.query(sql);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  } finally {
    await db.query('ROLLBACK').catch(() => undefined);
  }
}

describe.skipIf(!postgresAvailable())('rule claims on the real server', () => {
  beforeAll(async () => {
    await db.query('CREATE TABLE r (id bigint PRIMARY KEY, a int, v varchar(5)); INSERT INTO r SELECT g, g, g::text FROM generate_series(1, 200) g;');
  });

  it.each([
    ['ALTER TABLE r ADD COLUMN s1 timestamptz DEFAULT now()', false, 'add-column-volatile-default'],
    ["ALTER TABLE r ADD COLUMN s2 text DEFAULT 'x'", false, 'add-column-volatile-default'],
    ['ALTER TABLE r ADD COLUMN s3 int', false, 'add-column-volatile-default'],
    ['ALTER TABLE r ADD COLUMN w1 float8 DEFAULT random()', true, 'add-column-volatile-default'],
    ['ALTER TABLE r ADD COLUMN w2 timestamptz DEFAULT clock_timestamp()', true, 'add-column-volatile-default'],
    ['ALTER TABLE r ADD COLUMN w3 bigint GENERATED ALWAYS AS (id * 2) STORED', true, 'add-column-stored-generated'],
    ['ALTER TABLE r ADD COLUMN w4 bigserial', true, 'add-column-auto-increment'],
    ['ALTER TABLE r ALTER COLUMN a TYPE bigint', true, 'change-column-type'],
    ['VACUUM FULL r', true, 'vacuum-full'],
    ['CLUSTER r USING r_pkey', true, 'cluster'],
  ] as const)('%s: rewrite=%s, rule %s agrees', async (sql, rewrites, rule) => {
    const before = await filenode('r');
    await db.query(sql);
    const after = await filenode('r');
    expect(after !== before, 'table rewritten').toBe(rewrites);
    if (rewrites) expect(rules(sql)).toContain(rule);
    else expect(rules(sql)).not.toContain(rule);
  });

  it('add-not-null-column-without-default: the server refuses it on a table with rows', async () => {
    const sql = 'ALTER TABLE r ADD COLUMN nn text NOT NULL';
    expect(rules(sql)).toContain('add-not-null-column-without-default');
    expect(await sqlstate(sql)).toBe('23502');
  });

  it('concurrent-index-in-transaction: CONCURRENTLY fails inside BEGIN', async () => {
    const sql = 'CREATE INDEX CONCURRENTLY IF NOT EXISTS r_a ON r (a)';
    expect(rules(sql, true)).toContain('concurrent-index-in-transaction');
    expect(rules(sql, false)).not.toContain('concurrent-index-in-transaction');
    await db.query('BEGIN');
    expect(await sqlstate(sql)).toBe('25001');
  });

  it('enum-add-value-in-transaction: the new value cannot be used before COMMIT', async () => {
    await db.query("CREATE TYPE mood AS ENUM ('ok', 'sad')");
    const add = "ALTER TYPE mood ADD VALUE 'meh' AFTER 'ok'";
    expect(rules(add, true)).toContain('enum-add-value-in-transaction');
    await db.query('BEGIN');
    await db.query(add);
    expect(await sqlstate("SELECT 'meh'::mood")).toBe('55P04');
  });

  it('duplicate-column-assignment: the server rejects it', async () => {
    const sql = 'UPDATE r SET a = 1, a = 2 WHERE id = 1';
    expect(rules(sql)).toContain('duplicate-column-assignment');
    expect(await sqlstate(sql)).toBe('42601');
  });

  it('identifier-too-long: the server really truncates to 63 bytes', async () => {
    const long = 'x'.repeat(70);
    const sql = `CREATE TABLE ${long} (id bigint)`;
    expect(rules(sql)).toContain('identifier-too-long');
    await db.query(sql);
    const got = await db.query<{ relname: string }>("SELECT relname FROM pg_class WHERE relname LIKE 'xxxx%'");
    expect(got.rows.map((x) => x.relname)).toEqual(['x'.repeat(63)]);
  });

  it.each([
    ['CREATE INDEX r_plain ON r (a)', 'ShareLock', 'create-index-without-concurrently'],
    ['ALTER TABLE r ALTER COLUMN a SET NOT NULL', 'AccessExclusiveLock', 'set-not-null'],
    ['ALTER TABLE r ADD CONSTRAINT r_fk FOREIGN KEY (id) REFERENCES r (id)', 'ShareRowExclusiveLock', 'add-foreign-key-without-not-valid'],
    ['REFRESH MATERIALIZED VIEW rm', 'AccessExclusiveLock', 'refresh-matview-without-concurrently'],
    ['TRUNCATE r', 'AccessExclusiveLock', 'truncate'],
  ] as const)('%s holds %s (as %s says)', async (sql, mode, rule) => {
    await db.query('CREATE MATERIALIZED VIEW IF NOT EXISTS rm AS SELECT id FROM r');
    expect(rules(sql)).toContain(rule);
    await db.query('BEGIN');
    try {
      await db.query(sql);
      const locks = await db.query<{ mode: string; rel: string }>(
        "SELECT mode, relation::regclass::text AS rel FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation' AND relation::regclass::text IN ('r', 'rm')",
      );
      expect(locks.rows.map((l) => l.mode)).toContain(mode);
    } finally {
      await db.query('ROLLBACK');
    }
  });
});
