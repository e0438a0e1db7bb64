import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateCluster, type PrivateCluster } from '../harness/cluster.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { pgBinDir } from '../harness/cluster.js';
import path from 'node:path';

/**
 * Issue 5, per-transaction durability: DML inside an explicit transaction block is forwarded before its
 * decision record is committed, and COMMIT waits for the transaction's records (refused when they
 * cannot be written: nothing is committed). Autocommit changes stay strictly write-ahead. The control
 * database is a private cluster this file stops; the data goes to the real server.
 */
const db = useTestDatabase();
const run = promisify(execFile);

interface Decision { sql: string; wal_lsn: string | null; write_ahead: boolean }

describe.runIf(postgresAvailable())('audit: per-transaction durability through the proxy', () => {
  let control: PrivateCluster;
  let rt: TestRuntime;
  let strict: TestRuntime;
  let readsRefused: TestRuntime;
  let sampledLong: TestRuntime;
  let unsampled: TestRuntime;

  const config = (extra: Record<string, unknown> = {}) => ({
    principals: { map: [{ name: 'dba', roles: ['dba'], match: { users: ['postgres'] } }] },
    state: { enabled: false },
    audit: { database_url: control.url(), connect_timeout_ms: 1000, write_timeout_ms: 1000, ...extra },
  });

  beforeAll(async () => {
    control = await startPrivateCluster();
    rt = await startTestRuntime(db.name, config());
    strict = await startTestRuntime(db.name, config({ strict_write_ahead: true }));
    readsRefused = await startTestRuntime(db.name, config({ on_store_failure_for_reads: 'refuse' }));
    sampledLong = await startTestRuntime(db.name, config({ wal_lsn_max_age_ms: 60_000 }));
    unsampled = await startTestRuntime(db.name, config({ wal_lsn_max_age_ms: 0 }));
    await db.query('CREATE TABLE tx_t (i int PRIMARY KEY, note text)');
    await db.query('CREATE SEQUENCE tx_s');
  });
  afterAll(async () => {
    await unsampled?.close();
    await sampledLong?.close();
    await readsRefused?.close();
    await strict?.close();
    await rt?.close();
    await control?.destroy();
  });

  async function client(target = rt): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: target.url(db.name) });
    c.on('error', () => undefined);
    await c.connect();
    return c;
  }

  /** Decision records whose SQL is one of these, read directly from the control database (no flush). */
  async function decisions(sqls: string[]): Promise<Decision[]> {
    // A new connection each time: the control cluster is restarted by some tests.
    const controlDb = new pg.Client({ connectionString: control.url() });
    await controlDb.connect();
    try {
      const r = await controlDb.query<Decision>(
        `SELECT body->>'sql' AS sql, body->>'wal_lsn' AS wal_lsn, (body->>'write_ahead')::boolean AS write_ahead
           FROM pgairlock.audit_log WHERE kind = 'decision' AND body->>'sql' = ANY($1) ORDER BY seq`, [sqls]);
      return r.rows;
    } finally {
      await controlDb.end();
    }
  }

  /** Outcome records whose decision is not in the log, and how many outcomes there are in all. */
  async function outcomes(): Promise<{ orphans: number; total: number }> {
    const controlDb = new pg.Client({ connectionString: control.url() });
    await controlDb.connect();
    try {
      const r = await controlDb.query<{ orphans: number; total: number }>(
        `SELECT count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM pgairlock.audit_log d WHERE d.id::text = o.body->>'decision_id'))::int AS orphans,
                count(*)::int AS total
           FROM pgairlock.audit_log o WHERE o.kind = 'outcome'`);
      return r.rows[0]!;
    } finally {
      await controlDb.end();
    }
  }

  async function rows(): Promise<number[]> {
    return (await db.query<{ i: number }>('SELECT i FROM tx_t ORDER BY i')).rows.map((r) => r.i);
  }

  it('(a) simple protocol (pg): every change of the transaction has its committed record when COMMIT returns', async () => {
    const c = await client();
    try {
      const sqls = ["INSERT INTO tx_t VALUES (1, 'a')", "UPDATE tx_t SET note = 'b' WHERE i = 1", "INSERT INTO tx_t VALUES (2, 'c')"];
      await c.query('BEGIN');
      for (const s of sqls) await c.query(s);
      await c.query('COMMIT');
      const recs = await decisions(sqls);
      expect(recs.map((r) => r.sql)).toEqual(sqls);
      expect(recs.every((r) => r.write_ahead)).toBe(true);
      // Deferred: one WAL position per transaction, read before its first change (so before its COMMIT).
      expect(new Set(recs.map((r) => r.wal_lsn)).size).toBe(1);
      expect(recs[0]!.wal_lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
      expect(await rows()).toEqual([1, 2]);
    } finally {
      await c.end();
    }
  });

  it('(a) extended protocol (prepared statements, as pgbench -M prepared): records committed before COMMIT returns', async () => {
    const c = await client();
    try {
      const text = 'INSERT INTO tx_t (i, note) VALUES ($1, $2)';
      await rt.runtime.governance.audit!.flush();
      const begins = (await decisions(['BEGIN'])).length;
      for (const base of [10, 20]) {
        await c.query({ name: 'begin', text: 'BEGIN' });
        await c.query({ name: 'ins', text, values: [base + 1, 'x'] });
        await c.query({ name: 'ins', text, values: [base + 2, 'y'] });
        await c.query({ name: 'commit', text: 'COMMIT' });
      }
      const recs = await decisions([text]);
      // The Parse's record covers the first run; every later execution has its own record.
      expect(recs.length).toBe(4);
      // BEGIN and COMMIT change nothing themselves: re-executions are covered by their Parse's record.
      await rt.runtime.governance.audit!.flush();
      expect((await decisions(['BEGIN'])).length).toBe(begins + 1);
      expect(await rows()).toEqual([1, 2, 11, 12, 21, 22]);
    } finally {
      await c.end();
    }
  });

  it('(a) psql: a multi-statement transaction has its records once COMMIT returns', async () => {
    const sqls = ["INSERT INTO tx_t VALUES (30, 'p')", "INSERT INTO tx_t VALUES (31, 'q')"];
    const args = ['-X', '-v', 'ON_ERROR_STOP=1', '-d', rt.url(db.name), '-c', 'BEGIN', ...sqls.flatMap((s) => ['-c', s]), '-c', 'COMMIT'];
    const out = await run(path.join(pgBinDir(), 'psql'), args, { env: { ...process.env, PGSSLMODE: 'disable' } });
    expect(out.stdout).toContain('COMMIT');
    const recs = await decisions(sqls);
    expect(recs.map((r) => r.sql)).toEqual(sqls);
    expect(new Set(recs.map((r) => r.wal_lsn)).size).toBe(1);
  });

  it('(b) control database down mid-transaction: the DML runs, COMMIT is refused (58000), nothing is committed, other sessions live on', async () => {
    const c = await client();
    const other = await client();
    const prepared = await client();
    try {
      await c.query('BEGIN');
      await c.query("INSERT INTO tx_t VALUES (40, 'before')");
      await prepared.query('BEGIN');
      const text = 'INSERT INTO tx_t (i, note) VALUES ($1, $2)';
      await prepared.query({ name: 'ins', text, values: [50, 'parse'] }); // Parse: written ahead (store up)
      await control.stop();
      try {
        // Deferred: forwarded without waiting for the (failing) record.
        await c.query("INSERT INTO tx_t VALUES (41, 'during')");
        await prepared.query({ name: 'ins', text, values: [51, 'execute'] });
        // Visible inside the transaction, not outside.
        expect((await c.query('SELECT count(*)::int AS n FROM tx_t WHERE i IN (40, 41)')).rows[0].n).toBe(2);
        const err = await c.query('COMMIT').then(() => null, (e: pg.DatabaseError) => e);
        expect(err).toMatchObject({ code: '58000', message: expect.stringContaining('refused to commit this transaction') });
        expect(err?.hint).toContain('ROLLBACK');
        const err2 = await prepared.query({ name: 'commit', text: 'COMMIT' }).then(() => null, (e: pg.DatabaseError) => e);
        expect(err2).toMatchObject({ code: '58000' });
        // The transactions are aborted: a retried COMMIT cannot commit them either.
        await c.query('COMMIT').catch(() => undefined);
        await c.query('ROLLBACK');
        await prepared.query('ROLLBACK');
        expect(await rows()).not.toEqual(expect.arrayContaining([40]));
        expect((await db.query('SELECT i FROM tx_t WHERE i >= 40 AND i < 60')).rows).toEqual([]);
        // Other sessions: reads keep working (reads are served when the store is down).
        expect((await other.query('SELECT count(*)::int AS n FROM tx_t')).rows[0].n).toBeGreaterThan(0);
        // The refused sessions are usable again.
        expect((await c.query('SELECT 1 AS one')).rows[0].one).toBe(1);
      } finally {
        await control.start();
      }
      // Store back: the same transaction commits.
      await c.query('BEGIN');
      await c.query("INSERT INTO tx_t VALUES (42, 'after')");
      await c.query('COMMIT');
      expect((await db.query('SELECT i FROM tx_t WHERE i >= 40 AND i < 60')).rows).toEqual([{ i: 42 }]);
      // The refused transaction's DML ran but its decisions were never written: neither are their outcomes
      // (an outcome is queued at once, behind its decision, and dropped with it). The INSERT of 42 has both.
      expect(await decisions(["INSERT INTO tx_t VALUES (41, 'during')"])).toEqual([]);
      let seen = { orphans: -1, total: 0 };
      for (let i = 0; i < 100 && seen.total < 3; i++) {
        seen = await outcomes();
        if (seen.total < 3) await new Promise((r) => setTimeout(r, 50));
      }
      expect(seen).toMatchObject({ orphans: 0 });
      expect(seen.total).toBeGreaterThanOrEqual(3); // 40, parse 50 and 42 at least
    } finally {
      await Promise.all([c.end(), other.end(), prepared.end()]);
    }
  });

  it('(c) autocommit changes, DML with function calls, and strict_write_ahead stay written ahead: refused while the store is down', async () => {
    const c = await client();
    const s = await client(strict);
    try {
      await control.stop();
      try {
        const auto = await c.query("INSERT INTO tx_t VALUES (60, 'auto')").then(() => null, (e: pg.DatabaseError) => e);
        expect(auto).toMatchObject({ code: '58000' });
        await c.query('BEGIN');
        // nextval() is not undone by ROLLBACK: such DML is not deferred.
        const seq = await c.query("INSERT INTO tx_t VALUES (nextval('tx_s') + 100, 'seq')").then(() => null, (e: pg.DatabaseError) => e);
        expect(seq).toMatchObject({ code: '58000' });
        await c.query('ROLLBACK');
        await s.query('BEGIN');
        const inBlock = await s.query("INSERT INTO tx_t VALUES (61, 'strict')").then(() => null, (e: pg.DatabaseError) => e);
        expect(inBlock).toMatchObject({ code: '58000' });
        await s.query('ROLLBACK');
        expect((await db.query("SELECT last_value, is_called FROM tx_s")).rows[0]).toMatchObject({ is_called: false });
      } finally {
        await control.start();
      }
      expect((await db.query('SELECT i FROM tx_t WHERE i >= 60')).rows).toEqual([]);
      // Store back: an autocommit change's record is committed before the statement returns.
      await c.query("INSERT INTO tx_t VALUES (62, 'auto')");
      expect((await decisions(["INSERT INTO tx_t VALUES (62, 'auto')"])).length).toBe(1);
    } finally {
      await Promise.all([c.end(), s.end()]);
    }
  });
  it('(d) reads while the store is down: served by default; under on_store_failure_for_reads: refuse, refused as statements (not changes)', async () => {
    const c = await client();
    const r = await client(readsRefused);
    try {
      await control.stop();
      try {
        expect((await c.query('SELECT count(*)::int AS n FROM tx_t')).rows[0].n).toBeGreaterThanOrEqual(0);
        const refused = await r.query('SELECT count(*) FROM tx_t').then(() => null, (e: pg.DatabaseError) => e);
        expect(refused).toMatchObject({ code: '58000' });
        expect(refused?.message).toContain('refused this statement because it cannot be audited');
        expect(refused?.hint).toContain('on_store_failure_for_reads');
      } finally {
        await control.start();
      }
    } finally {
      await Promise.all([c.end(), r.end()]);
    }
  });

  it('(e) wal_lsn is a sample at most audit.wal_lsn_max_age_ms old, always before the change\'s commit record (0: a read per transaction)', async () => {
    const lsn = (s: string) => { const [hi, lo] = s.split('/'); return (BigInt(`0x${hi}`) << 32n) + BigInt(`0x${lo}`); };
    const flushed = async () => (await db.query<{ l: string }>('SELECT pg_current_wal_flush_lsn()::text AS l')).rows[0]!.l;
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_walinspect');
    /**
     * Two transactions in quick succession, then an autocommit change. For each: its record's wal_lsn, the
     * upstream position read after its commit, and the WAL between them, which must hold its commit record.
     */
    async function burst(target: TestRuntime, base: number): Promise<{ recs: Decision[]; after: string[] }> {
      const c = await client(target);
      const sqls: string[] = [];
      const after: string[] = [];
      try {
        for (const i of [base, base + 1]) {
          const sql = `INSERT INTO tx_t VALUES (${i}, 'lsn')`;
          sqls.push(sql);
          await c.query('BEGIN');
          await c.query(sql);
          await c.query('COMMIT');
          after.push(await flushed());
        }
        const auto = `INSERT INTO tx_t VALUES (${base + 2}, 'lsn')`;
        sqls.push(auto);
        await c.query(auto);
        after.push(await flushed());
      } finally {
        await c.end();
      }
      const recs = await decisions(sqls);
      expect(recs.map((r) => r.sql)).toEqual(sqls);
      for (const [k, r] of recs.entries()) {
        expect(r.wal_lsn).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
        expect(lsn(r.wal_lsn!)).toBeLessThanOrEqual(lsn(after[k]!));
        // A restore point before the change: its transaction's commit record comes after wal_lsn. (Deferred
        // DML does not wait for the read, so only the commit is ordered after it; the autocommit INSERT is.)
        const found = await db.query<{ record_type: string }>(
          `SELECT w.record_type FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn) w
             WHERE w.xid::text = (SELECT xmin::text FROM tx_t WHERE i = $3) AND w.record_type IN ('COMMIT', 'INSERT', 'INSERT+INIT')`,
          [r.wal_lsn, after[k], base + k]);
        const types = found.rows.map((x) => x.record_type);
        expect(types).toContain('COMMIT');
        if (k === 2) expect(types.some((t) => t.startsWith('INSERT'))).toBe(true);
      }
      return { recs, after };
    }

    // The default (50 ms): the two transactions may share a position; each is still before its commit.
    await burst(rt, 70);
    // A long max age: the sample read for the first transaction is reused for the second and the autocommit change.
    const long = await burst(sampledLong, 73);
    expect(new Set(long.recs.map((r) => r.wal_lsn)).size).toBe(1);
    // 0: a read per transaction, as before sampling: each change after a committed one has a later position,
    // read after that commit.
    const fresh = await burst(unsampled, 76);
    for (const k of [1, 2]) {
      expect(lsn(fresh.recs[k]!.wal_lsn!)).toBeGreaterThan(lsn(fresh.recs[k - 1]!.wal_lsn!));
      expect(lsn(fresh.recs[k]!.wal_lsn!)).toBeGreaterThanOrEqual(lsn(fresh.after[k - 1]!));
    }
  });
});
