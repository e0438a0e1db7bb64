import type { ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { stringify as toYaml } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { AuditQuery } from '../../governance/audit/query.js';
import { freePort } from '../harness/cluster.js';
import { postgresAvailable, upstreamUrl, urlWithDatabase, useTestDatabase } from '../harness/db.js';
import { ADMIN_DATABASE_URL } from '../harness/env.js';
import { spawnCli } from '../harness/proxy.js';
import { tempDir } from '../harness/tools.js';

/**
 * Issue 5: kill -9 the proxy process mid-load, restart it, and check that every change that
 * reached PostgreSQL has a (write-ahead) decision record, that the interrupted decisions got an
 * `unknown` outcome, and that the hash chain verifies.
 */
const db = useTestDatabase();

async function startProxyProcess(configFile: string): Promise<ChildProcess> {
  const child = spawnCli(['start', '--config', configFile], { DATABASE_URL: '' });
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`proxy did not start: ${out}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`proxy exited ${code}: ${out}`)));
  });
  return child;
}

describe.skipIf(!postgresAvailable())('crash of the proxy process mid-load', () => {
  const tmp = tempDir();
  let child: ChildProcess | undefined;
  afterAll(async () => {
    await stop('SIGTERM');
    tmp.remove();
  });

  /** Signals the proxy process if it is running and resolves once it has exited. */
  function stop(signal: NodeJS.Signals): Promise<unknown> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    // Listen before signalling: 'exit' may fire while the writers settle (a listener added later would wait forever).
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill(signal);
    return exited;
  }

  /** Lets the writers run for 1.5 s, kills the proxy under them (SIGKILL) and waits for both to end. */
  async function killMidLoad(writers: Promise<void>[]): Promise<void> {
    await new Promise((r) => setTimeout(r, 1500));
    const killed = stop('SIGKILL');
    await Promise.all(writers);
    await killed;
  }

  /** A `pgairlock start` process auditing into this test's database, and four connected writers through it. */
  async function startWithWriters(fileName: string, instance: string): Promise<{ file: string; clients: pg.Client[] }> {
    const port = await freePort();
    const upstream = upstreamUrl();
    const file = path.join(tmp.dir, fileName);
    writeFileSync(
      file,
      toYaml({
        listen: `127.0.0.1:${port}`,
        upstream: { url: upstream },
        instance,
        audit: { database_url: urlWithDatabase(ADMIN_DATABASE_URL, db.name) },
        mcp: { enabled: false },
        state: { enabled: false },
        principals: { map: [{ name: 'dba', roles: ['dba'], match: { users: ['postgres'] } }] },
        log: { level: 'warn' },
      }),
    );
    child = await startProxyProcess(file);
    const clients = await Promise.all(
      [0, 1, 2, 3].map(async () => {
        const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/${db.name}` });
        c.on('error', () => undefined);
        await c.connect();
        return c;
      }),
    );
    return { file, clients };
  }

  it('every change that reached PostgreSQL has its decision record, and the chain verifies after restart', async () => {
    await db.query('CREATE TABLE crash_t(i int primary key)');
    const { file, clients } = await startWithWriters('pgairlock.yaml', 'crash-test');
    // Four writers insert distinct rows until the proxy dies under them (bounded: 2,000 rows).
    const writers = clients.map(async (c, w) => {
      for (let i = 0; i < 500; i++) {
        try {
          await c.query(`INSERT INTO crash_t VALUES (${w * 1000 + i})`);
        } catch {
          return;
        }
      }
    });
    await killMidLoad(writers);

    const inserted = (await db.query<{ i: number }>('SELECT i FROM crash_t ORDER BY i')).rows.map((r) => r.i);
    expect(inserted.length).toBeGreaterThan(0);
    expect(inserted.length).toBeLessThan(2000);

    // Restart: start-up recovers the decisions left without an outcome.
    child = await startProxyProcess(file);
    const q = new AuditQuery(urlWithDatabase(ADMIN_DATABASE_URL, db.name));
    try {
      const decided = await db.query<{ sql: string }>("SELECT body->>'sql' AS sql FROM pgairlock.audit_log WHERE kind = 'decision' AND (body->>'write_ahead')::boolean");
      const texts = new Set(decided.rows.map((r) => r.sql));
      const missing = inserted.filter((i) => !texts.has(`INSERT INTO crash_t VALUES (${i})`));
      expect(missing).toEqual([]);
      // After recovery every write-ahead decision has an outcome: the real one, or `unknown`.
      const orphans = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pgairlock.audit_log d
          WHERE d.kind = 'decision' AND (d.body->>'write_ahead')::boolean
            AND NOT EXISTS (SELECT 1 FROM pgairlock.audit_log o WHERE o.kind = 'outcome' AND o.body->>'decision_id' = d.id::text)`,
      );
      expect(orphans.rows[0]?.n).toBe(0);
      const report = await q.verify();
      expect(report.ok).toBe(true);
    } finally {
      await q.close();
    }
  }, 150_000); // two start-ups from source (tsx): slow on a loaded machine

  it('writers in transaction blocks (DML forwarded before its record, COMMIT waits): every committed row has its decision record', async () => {
    await stop('SIGTERM');
    await db.query('CREATE TABLE crash_tx(i int primary key)');
    const { file, clients } = await startWithWriters('pgairlock-tx.yaml', 'crash-test-tx');
    // Each transaction inserts three rows; half of them as prepared statements (Bind/Execute).
    const writers = clients.map(async (c, w) => {
      for (let t = 0; t < 300; t++) {
        try {
          await c.query('BEGIN');
          for (let k = 0; k < 3; k++) {
            const i = w * 10_000 + t * 3 + k;
            if (w % 2) await c.query({ name: 'ins', text: 'INSERT INTO crash_tx VALUES ($1)', values: [i] });
            else await c.query(`INSERT INTO crash_tx VALUES (${i})`);
          }
          await c.query('COMMIT');
        } catch {
          return;
        }
      }
    });
    await killMidLoad(writers);

    const inserted = (await db.query<{ i: number }>('SELECT i FROM crash_tx ORDER BY i')).rows.map((r) => r.i);
    expect(inserted.length).toBeGreaterThan(0);
    expect(inserted.length).toBeLessThan(3600); // killed mid-load
    expect(inserted.length % 3).toBe(0); // whole transactions only

    child = await startProxyProcess(file);
    const q = new AuditQuery(urlWithDatabase(ADMIN_DATABASE_URL, db.name));
    try {
      const literal = await db.query<{ sql: string }>(
        "SELECT body->>'sql' AS sql FROM pgairlock.audit_log WHERE instance = 'crash-test-tx' AND kind = 'decision' AND (body->>'write_ahead')::boolean");
      const texts = new Set(literal.rows.map((r) => r.sql));
      // Literal inserts: one record per row. Prepared inserts: one record per execution (count per writer).
      const missing = inserted.filter((i) => Math.floor(i / 10_000) % 2 === 0 && !texts.has(`INSERT INTO crash_tx VALUES (${i})`));
      expect(missing).toEqual([]);
      const prepared = literal.rows.filter((r) => r.sql === 'INSERT INTO crash_tx VALUES ($1)').length;
      expect(prepared).toBeGreaterThanOrEqual(inserted.filter((i) => Math.floor(i / 10_000) % 2 === 1).length);
      const report = await q.verify();
      expect(report.ok).toBe(true);
    } finally {
      await q.close();
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    }
  }, 150_000);
});
