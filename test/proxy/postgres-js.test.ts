import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';

const db = useTestDatabase();

describe.skipIf(!postgresAvailable())('postgres.js through the proxy', () => {
  let proxy: TestProxy;
  const opened: postgres.Sql[] = [];
  const connect = (opts: postgres.Options<Record<string, postgres.PostgresType>> = {}): postgres.Sql => {
    const sql = postgres(proxy.url(db.name), { max: 1, onnotice: () => undefined, ...opts });
    opened.push(sql);
    return sql;
  };

  beforeAll(async () => {
    proxy = await startTestProxy();
    await db.query(`CREATE TABLE kv (k int PRIMARY KEY, v text NOT NULL)`);
    await db.query(`INSERT INTO kv SELECT g, 'v' || g FROM generate_series(1, 1000) g`);
  });
  afterAll(async () => {
    await Promise.all(opened.map((s) => s.end({ timeout: 1 })));
    await proxy?.close();
  });

  it('pipelines many queries on one connection and returns results in order', async () => {
    const sql = connect();
    const n = 500;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => sql`SELECT ${i}::int AS i, v, pg_backend_pid() AS pid FROM kv WHERE k = ${(i % 1000) + 1}`));
    results.forEach((r, i) => {
      expect(r).toHaveLength(1);
      expect(r[0]!.i).toBe(i);
      expect(r[0]!.v).toBe(`v${(i % 1000) + 1}`);
    });
    // One connection (max: 1), so all of them went down one pipe.
    expect(new Set(results.map((r) => r[0]!.pid)).size).toBe(1);
  });

  it('an error in the middle of a pipeline fails only that query', async () => {
    const sql = connect();
    const settled = await Promise.allSettled([
      sql`SELECT 1 AS x`,
      sql`SELECT 1/0 AS x`,
      sql`SELECT 3 AS x`,
      sql`SELECT * FROM no_such_table_here`,
      sql`SELECT 5 AS x`,
    ]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ code: '22012' });
    expect((settled[3] as PromiseRejectedResult).reason).toMatchObject({ code: '42P01' });
    expect((settled[4] as PromiseFulfilledResult<postgres.RowList<postgres.Row[]>>).value[0]).toEqual({ x: 5 });
  });

  it('prepares named statements by default and reuses them', async () => {
    const sql = connect();
    for (let i = 1; i <= 4; i++) {
      const [row] = await sql`SELECT v FROM kv WHERE k = ${i}`;
      expect(row).toEqual({ v: `v${i}` });
    }
    const prepared = await sql`SELECT statement FROM pg_prepared_statements WHERE statement LIKE '%FROM kv WHERE k = $1%' AND statement NOT LIKE '%pg_prepared_statements%'`;
    expect(prepared).toHaveLength(1);
  });

  it('works with prepare: false (unnamed statements only)', async () => {
    const sql = connect({ prepare: false });
    const rows = await Promise.all(Array.from({ length: 50 }, (_, i) => sql`SELECT v FROM kv WHERE k = ${i + 1}`));
    rows.forEach((r, i) => expect(r[0]).toEqual({ v: `v${i + 1}` }));
    const prepared = await sql`SELECT count(*)::int AS n FROM pg_prepared_statements`;
    expect(prepared[0]).toEqual({ n: 0 });
  });

  it('streams a large result set intact', async () => {
    const sql = connect();
    const rows = await sql`SELECT g AS n, md5(g::text) AS h FROM generate_series(1, 200000) g ORDER BY g`;
    expect(rows).toHaveLength(200_000);
    expect(rows[0]).toEqual({ n: 1, h: 'c4ca4238a0b923820dcc509a6f75849b' });
    expect(rows[199_999]!.n).toBe(200_000);
    let sum = 0;
    for (const r of rows) sum += r.n as number;
    expect(sum).toBe((200_000 * 200_001) / 2);
    // The same through a cursor, in batches.
    let seen = 0;
    let outOfOrder = 0;
    await sql`SELECT g AS n FROM generate_series(1, 30000) g`.cursor(1000, (batch) => {
      for (const r of batch) if (r.n !== ++seen) outOfOrder++;
    });
    expect(seen).toBe(30_000);
    expect(outOfOrder).toBe(0);
  });

  it('runs unsafe multi-statement strings (simple protocol) and returns every result', async () => {
    const sql = connect();
    // Every statement returns rows: postgres.js mislabels results of row-less statements in a
    // multi-statement string (also directly against Postgres), so those would test the client.
    const results = (await sql.unsafe(
      `SELECT 1 AS a; SELECT 'two' AS b; INSERT INTO kv VALUES (5001, 'multi') RETURNING k; SELECT v FROM kv WHERE k = 5001`,
    )) as unknown as postgres.RowList<postgres.Row[]>[];
    expect(results).toHaveLength(4);
    expect([...results[0]!]).toEqual([{ a: 1 }]);
    expect([...results[1]!]).toEqual([{ b: 'two' }]);
    expect([...results[2]!]).toEqual([{ k: 5001 }]);
    expect([...results[3]!]).toEqual([{ v: 'multi' }]);
    // A failing statement in a multi-statement string rolls back the whole implicit transaction.
    await expect(sql.unsafe(`INSERT INTO kv VALUES (5002, 'gone'); SELECT 1/0`)).rejects.toMatchObject({ code: '22012' });
    expect(await sql`SELECT count(*)::int AS n FROM kv WHERE k = 5002`).toEqual([{ n: 0 }]);
  });

  it('transactions with sql.begin commit and roll back', async () => {
    const sql = connect();
    await sql.begin(async (tx) => {
      await tx`INSERT INTO kv VALUES (6001, 'tx')`;
      await tx`UPDATE kv SET v = 'tx2' WHERE k = 6001`;
    });
    await expect(
      sql.begin(async (tx) => {
        await tx`INSERT INTO kv VALUES (6002, 'never')`;
        await tx`SELECT 1/0`;
      }),
    ).rejects.toMatchObject({ code: '22012' });
    expect(await sql`SELECT k, v FROM kv WHERE k IN (6001, 6002) ORDER BY k`).toEqual([{ k: 6001, v: 'tx2' }]);
  });
});
