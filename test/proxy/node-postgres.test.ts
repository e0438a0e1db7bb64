import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';

const db = useTestDatabase();

interface PgErr extends Error {
  code?: string;
}

async function expectPgError(p: Promise<unknown>, code: string): Promise<PgErr> {
  try {
    await p;
  } catch (err) {
    expect((err as PgErr).code).toBe(code);
    return err as PgErr;
  }
  throw new Error(`expected an error with SQLSTATE ${code}`);
}

describe.skipIf(!postgresAvailable())('node-postgres through the proxy', () => {
  let proxy: TestProxy;
  let conn: string;
  const clients: pg.Client[] = [];
  const client = async (): Promise<pg.Client> => {
    const c = new pg.Client({ connectionString: conn });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    proxy = await startTestProxy();
    conn = proxy.url(db.name);
    await db.query(`CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL, payload text)`);
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await proxy?.close();
  });

  it('a Pool runs many concurrent queries on several sessions with the right answers', async () => {
    const pool = new pg.Pool({ connectionString: conn, max: 6 });
    try {
      const results = await Promise.all(
        Array.from({ length: 60 }, (_, i) =>
          pool.query<{ v: number; pid: number }>('SELECT $1::int * 2 AS v, pg_backend_pid() AS pid, pg_sleep(0.01)', [i]),
        ),
      );
      results.forEach((r, i) => expect(r.rows[0]!.v).toBe(i * 2));
      const pids = new Set(results.map((r) => r.rows[0]!.pid));
      expect(pids.size).toBeGreaterThan(1);
      expect(pids.size).toBeLessThanOrEqual(6);
    } finally {
      await pool.end();
    }
  });

  it('named prepared statements are parsed once and reused', async () => {
    const c = await client();
    for (let i = 1; i <= 5; i++) {
      const r = await c.query({ name: 'ins_item', text: 'INSERT INTO items (id, label) VALUES ($1, $2) RETURNING id, label', values: [i, `item ${i}`] });
      expect(r.rows).toEqual([{ id: i, label: `item ${i}` }]);
    }
    const sel = { name: 'get_item', text: 'SELECT label FROM items WHERE id = $1', values: [3] };
    expect((await c.query(sel)).rows).toEqual([{ label: 'item 3' }]);
    expect((await c.query({ ...sel, values: [4] })).rows).toEqual([{ label: 'item 4' }]);
    const ps = await c.query(`SELECT name FROM pg_prepared_statements ORDER BY name`);
    expect(ps.rows.map((r) => r.name)).toEqual(['get_item', 'ins_item']);
    // A prepared statement that fails at Bind/Execute leaves the session and the statement usable.
    await expectPgError(c.query({ name: 'ins_item', text: 'INSERT INTO items (id, label) VALUES ($1, $2) RETURNING id, label', values: [1, 'dup'] }), '23505');
    expect((await c.query({ ...sel, values: [1] })).rows).toEqual([{ label: 'item 1' }]);
  });

  it('a cursor (pg-cursor) reads a large result in batches', async () => {
    const c = await client();
    const cursor = c.query(new Cursor('SELECT g AS n, repeat($1, 100) AS pad FROM generate_series(1, 5000) g ORDER BY g', ['z']));
    let seen = 0;
    let batches = 0;
    for (let i = 0; i < 100; i++) {
      const rows = await cursor.read(700);
      if (rows.length === 0) break;
      batches++;
      for (const r of rows as Array<{ n: number; pad: string }>) {
        seen++;
        expect(r.n).toBe(seen);
      }
    }
    await cursor.close();
    expect(seen).toBe(5000);
    expect(batches).toBe(8);
    expect((await c.query('SELECT 42 AS x')).rows).toEqual([{ x: 42 }]);
  });

  it('COPY FROM STDIN and COPY TO STDOUT move ~10 MB intact', async () => {
    const c = await client();
    await c.query(`CREATE TABLE bulk (id int, body text)`);
    const rows = 40_000;
    const line = (i: number) => `${i}\t${createHash('sha256').update(String(i)).digest('hex').repeat(4)}\n`;
    const sent = createHash('md5');
    let bytes = 0;
    const source = Readable.from(
      (function* () {
        // Odd-sized pieces so CopyData messages and network chunks never line up.
        let buf = '';
        for (let i = 0; i < rows; i++) {
          buf += line(i);
          if (buf.length > 65_537) {
            sent.update(buf);
            bytes += buf.length;
            yield buf;
            buf = '';
          }
        }
        sent.update(buf);
        bytes += buf.length;
        yield buf;
      })(),
    );
    const ingest = c.query(copyFrom('COPY bulk (id, body) FROM STDIN'));
    await pipeline(source, ingest);
    expect(bytes).toBeGreaterThan(10_000_000);
    expect(ingest.rowCount).toBe(rows);
    const direct = await db.query(`SELECT count(*)::int AS n, md5(string_agg(id || E'\\t' || body || E'\\n', '' ORDER BY id)) AS h FROM bulk`);
    expect(direct.rows[0]).toEqual({ n: rows, h: sent.digest('hex') });

    const received = createHash('md5');
    let got = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        received.update(chunk);
        got += chunk.length;
        cb();
      },
    });
    await pipeline(c.query(copyTo('COPY (SELECT id, body FROM bulk ORDER BY id) TO STDOUT')), sink);
    expect(got).toBe(bytes);
    expect(received.digest('hex')).toBe(direct.rows[0]!.h);
    expect((await c.query('SELECT count(*)::int AS n FROM bulk')).rows).toEqual([{ n: rows }]);
  });

  it('a failing COPY FROM STDIN reports the server error and the session carries on', async () => {
    const c = await client();
    const ingest = c.query(copyFrom('COPY items (id, label) FROM STDIN'));
    await expect(pipeline(Readable.from(['900\tok\n', 'not-a-number\toops\n']), ingest)).rejects.toMatchObject({ code: '22P02' });
    expect((await c.query('SELECT count(*)::int AS n FROM items WHERE id = 900')).rows).toEqual([{ n: 0 }]);
  });

  it('LISTEN/NOTIFY delivers across two sessions', async () => {
    const listener = await client();
    const notifier = await client();
    await listener.query('LISTEN pgairlock_test_channel');
    const got = new Promise<pg.Notification>((resolve) => listener.once('notification', resolve));
    await notifier.query(`SELECT pg_notify('pgairlock_test_channel', 'hello through the proxy')`);
    const n = await Promise.race([got, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('no notification')), 5000))]);
    expect(n.channel).toBe('pgairlock_test_channel');
    expect(n.payload).toBe('hello through the proxy');
    const pid = (await notifier.query('SELECT pg_backend_pid() AS p')).rows[0].p as number;
    expect(n.processId).toBe(pid);
  });

  it('notices (RAISE NOTICE) reach the client', async () => {
    const c = await client();
    const notices: Array<{ message?: string; severity?: string }> = [];
    c.on('notice', (m) => notices.push(m));
    await c.query(`DO $$ BEGIN RAISE NOTICE 'first notice %', 1; RAISE WARNING 'then a warning'; END $$`);
    expect(notices.map((n) => [n.severity, n.message])).toEqual([
      ['NOTICE', 'first notice 1'],
      ['WARNING', 'then a warning'],
    ]);
  });

  it('ParameterStatus changes reach the client (SET application_name)', async () => {
    const c = await client();
    const statuses: Array<[string, string]> = [];
    const connection = (c as unknown as { connection: NodeJS.EventEmitter }).connection;
    connection.on('parameterStatus', (m: { parameterName: string; parameterValue: string }) => statuses.push([m.parameterName, m.parameterValue]));
    await c.query(`SET application_name = 'renamed-by-test'`);
    expect(statuses).toContainEqual(['application_name', 'renamed-by-test']);
    expect((await c.query('SHOW application_name')).rows).toEqual([{ application_name: 'renamed-by-test' }]);
  });

  it('errors keep the session usable', async () => {
    const c = await client();
    await expectPgError(c.query('SELECT * FROM no_such_table'), '42P01');
    await expectPgError(c.query('SELEC 1'), '42601');
    await expectPgError(c.query('SELECT $1::int', ['x']), '22P02');
    expect((await c.query('SELECT 7 AS seven')).rows).toEqual([{ seven: 7 }]);
  });

  it('transactions commit and roll back; an error inside a block gives 25P02 until ROLLBACK', async () => {
    const c = await client();
    await c.query('BEGIN');
    await c.query(`INSERT INTO items (id, label) VALUES (100, 'committed')`);
    await c.query('COMMIT');
    await c.query('BEGIN');
    await c.query(`INSERT INTO items (id, label) VALUES (101, 'rolled back')`);
    await c.query('ROLLBACK');
    expect((await db.query('SELECT id FROM items WHERE id IN (100, 101) ORDER BY id')).rows).toEqual([{ id: 100 }]);

    await c.query('BEGIN');
    await expectPgError(c.query('SELECT 1/0'), '22012');
    const aborted = await expectPgError(c.query('SELECT 1'), '25P02');
    expect(aborted.message).toContain('current transaction is aborted');
    await expectPgError(c.query({ name: 'in_failed_tx', text: 'SELECT $1::int', values: [1] }), '25P02');
    await c.query('ROLLBACK');
    expect((await c.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('startup parameters (application_name, options -c) reach the server unchanged', async () => {
    const c = new pg.Client({ connectionString: conn, application_name: 'through-the-proxy', options: '-c search_path=custom,public -c statement_timeout=12345' });
    await c.connect();
    clients.push(c);
    const r = await c.query(`SELECT current_setting('application_name') AS app, current_setting('search_path') AS sp, current_setting('statement_timeout') AS st`);
    expect(r.rows).toEqual([{ app: 'through-the-proxy', sp: 'custom,public', st: '12345ms' }]);
    const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const seen = await db.query(`SELECT application_name FROM pg_stat_activity WHERE pid = $1`, [pid]);
    expect(seen.rows).toEqual([{ application_name: 'through-the-proxy' }]);
  });
});
