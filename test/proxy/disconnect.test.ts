import net from 'node:net';
import pg from 'pg';
import Cursor from 'pg-cursor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { waitFor } from '../harness/tools.js';
import { queryMessage, RawConnection } from '../harness/wire.js';

const db = useTestDatabase();

/** Backends (seen directly on the server) whose current query contains `marker`, with their state. */
async function backendsRunning(marker: string): Promise<Array<{ pid: number; state: string }>> {
  const { rows } = await db.query<{ pid: number; state: string }>(
    `SELECT pid, state FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()`,
    [`%${marker}%`],
  );
  return rows;
}

describe.skipIf(!postgresAvailable())('client disconnect mid-query', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startTestProxy();
  });
  afterAll(async () => proxy?.close());

  it('a node-postgres client that destroys its socket mid pg_sleep(30) leaves no backend running it', async () => {
    const marker = `disconnect_pg_${Date.now()}`;
    const c = new pg.Client({ connectionString: proxy.url(db.name) });
    c.on('error', () => undefined);
    await c.connect();
    const q = c.query(`SELECT pg_sleep(30) /* ${marker} */`).catch(() => undefined);
    const started = await waitFor(async () => (await backendsRunning(marker)).some((b) => b.state === 'active'), { timeoutMs: 5000 });
    expect(started).toBe(true);
    const t0 = Date.now();
    (c as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
    const gone = await waitFor(async () => (await backendsRunning(marker)).every((b) => b.state !== 'active'), { timeoutMs: 5000 });
    expect(gone).toBe(true);
    expect(Date.now() - t0).toBeLessThan(5000);
    // And the backend itself ends (the proxy closes the upstream session).
    const ended = await waitFor(async () => (await backendsRunning(marker)).length === 0, { timeoutMs: 5000 });
    expect(ended).toBe(true);
    await q;
    await waitFor(() => proxy.server.sessions.size === 0, { timeoutMs: 3000 });
    expect(proxy.server.sessions.size).toBe(0);
  });

  it('a raw client that sends a query and resets the connection (RST) leaves no backend running it', async () => {
    const marker = `disconnect_raw_${Date.now()}`;
    const c = await RawConnection.connect(proxy.port);
    await c.startup({ user: 'postgres', database: db.name });
    c.write(queryMessage(`SELECT pg_sleep(30) /* ${marker} */`));
    expect(await waitFor(async () => (await backendsRunning(marker)).some((b) => b.state === 'active'), { timeoutMs: 5000 })).toBe(true);
    c.socket.resetAndDestroy();
    expect(await waitFor(async () => (await backendsRunning(marker)).length === 0, { timeoutMs: 5000 })).toBe(true);
  });

  // pg-cursor (like any driver reading a portal in batches) sends Execute + Flush and no Sync until
  // it closes, so no ReadyForQuery is outstanding while the query runs.
  it('a cursor reader (Execute + Flush, no Sync) that disconnects leaves no backend running its query', async () => {
    const marker = `disconnect_cursor_${Date.now()}`;
    const c = new pg.Client({ connectionString: proxy.url(db.name) });
    c.on('error', () => undefined);
    await c.connect();
    const cursor = c.query(new Cursor(`SELECT pg_sleep(30) /* ${marker} */`));
    cursor.read(1).catch(() => undefined);
    expect(await waitFor(async () => (await backendsRunning(marker)).some((b) => b.state === 'active'), { timeoutMs: 5000 })).toBe(true);
    (c as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
    const gone = await waitFor(async () => (await backendsRunning(marker)).every((b) => b.state !== 'active'), { timeoutMs: 5000 });
    if (!gone) {
      // Do not leave the 30 s sleeper behind for the next tests.
      await db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()`, [`%${marker}%`]);
    }
    expect(gone).toBe(true);
  });

  it('a client that disconnects inside a transaction with a held lock releases it', async () => {
    await db.query('CREATE TABLE IF NOT EXISTS locked (id int)');
    const c = new pg.Client({ connectionString: proxy.url(db.name) });
    c.on('error', () => undefined);
    await c.connect();
    await c.query('BEGIN');
    await c.query('LOCK TABLE locked IN ACCESS EXCLUSIVE MODE');
    (c as unknown as { connection: { stream: net.Socket } }).connection.stream.destroy();
    // A direct session can take the lock within a few seconds.
    const probe = new pg.Client({ connectionString: db.url });
    await probe.connect();
    try {
      await probe.query(`SET lock_timeout = '5s'`);
      await probe.query('BEGIN');
      await probe.query('LOCK TABLE locked IN ACCESS EXCLUSIVE MODE');
      await probe.query('ROLLBACK');
    } finally {
      await probe.end();
    }
  });
});
