import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { sleep } from '../harness/tools.js';
import { cancelPacket, RawConnection } from '../harness/wire.js';

const db = useTestDatabase();

interface KeyedClient extends pg.Client {
  processID: number;
  secretKey: number;
}

/** Sends a CancelRequest on a fresh raw socket, as libpq does, and waits for the proxy to close it. */
async function sendCancel(port: number, pid: number, secret: number | Buffer): Promise<void> {
  const c = await RawConnection.connect(port);
  c.write(cancelPacket(pid, secret));
  await c.waitClosed(5000);
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: { code?: string; message: string } }> {
  const t0 = Date.now();
  try {
    const value = await p;
    return { ms: Date.now() - t0, value };
  } catch (err) {
    return { ms: Date.now() - t0, error: err as { code?: string; message: string } };
  }
}

/** Waits (bounded) until the session's backend shows `marker` as its running query. */
async function waitRunning(marker: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const { rows } = await db.query(`SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1`, [`%${marker}%`]);
    if (rows.length > 0) return;
    await sleep(50);
  }
  throw new Error(`query ${marker} never started`);
}

describe.skipIf(!postgresAvailable())('cancel through the proxy', () => {
  let proxy: TestProxy;
  const pgClients: pg.Client[] = [];
  const pgClient = async (): Promise<KeyedClient> => {
    const c = new pg.Client({ connectionString: proxy.url(db.name) });
    c.on('error', () => undefined);
    await c.connect();
    pgClients.push(c);
    return c as KeyedClient;
  };

  beforeAll(async () => {
    proxy = await startTestProxy();
  });
  afterAll(async () => {
    await Promise.all(pgClients.map((c) => c.end().catch(() => undefined)));
    await proxy?.close();
  });

  it('postgres.js query.cancel() stops pg_sleep(30) with 57014 quickly; the connection stays usable', async () => {
    const sql = postgres(proxy.url(db.name), { max: 1, onnotice: () => undefined });
    try {
      const q = sql`SELECT pg_sleep(30) /* cancel_pgjs */`;
      const result = timed(q.execute());
      await waitRunning('cancel_pgjs');
      q.cancel();
      const r = await result;
      expect(r.error?.code).toBe('57014');
      expect(r.ms).toBeLessThan(5000);
      expect(await sql`SELECT 'still here' AS s`).toEqual([{ s: 'still here' }]);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('a raw CancelRequest with the key node-postgres got cancels exactly that session', async () => {
    const victim = await pgClient();
    const bystander = await pgClient();
    const victimRun = timed(victim.query('SELECT pg_sleep(30) /* cancel_victim */'));
    const bystanderRun = timed(bystander.query('SELECT pg_sleep(2), 1 AS done /* cancel_bystander */'));
    await waitRunning('cancel_victim');
    await waitRunning('cancel_bystander');
    await sendCancel(proxy.port, victim.processID, victim.secretKey);
    const v = await victimRun;
    expect(v.error?.code).toBe('57014');
    expect(v.error?.message).toContain('canceling statement due to user request');
    expect(v.ms).toBeLessThan(5000);
    const b = await bystanderRun;
    expect(b.error).toBeUndefined();
    expect(b.value?.rows[0]).toMatchObject({ done: 1 });
    expect((await victim.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('a forged key (right pid, wrong secret) cancels nothing', async () => {
    const c = await pgClient();
    const run = timed(c.query('SELECT pg_sleep(2), 1 AS done /* cancel_forged */'));
    await waitRunning('cancel_forged');
    await sendCancel(proxy.port, c.processID, (c.secretKey ^ 0x5a5a5a5a) | 0);
    await sendCancel(proxy.port, (c.processID + 1) | 0, c.secretKey);
    const r = await run;
    expect(r.error).toBeUndefined();
    expect(r.value?.rows[0]).toMatchObject({ done: 1 });
    expect(r.ms).toBeGreaterThanOrEqual(1900);
  });

  it('a stale key (from a closed session) cancels nothing', async () => {
    const old = await pgClient();
    const stale = { pid: old.processID, secret: old.secretKey };
    await old.end();
    const c = await pgClient();
    const run = timed(c.query('SELECT pg_sleep(2), 1 AS done /* cancel_stale */'));
    await waitRunning('cancel_stale');
    await sendCancel(proxy.port, stale.pid, stale.secret);
    const r = await run;
    expect(r.error).toBeUndefined();
    expect(r.value?.rows[0]).toMatchObject({ done: 1 });
    expect(r.ms).toBeGreaterThanOrEqual(1900);
  });

  it('the client never sees the upstream backend pid as its processID', async () => {
    const clients = await Promise.all([pgClient(), pgClient(), pgClient()]);
    const { rows } = await db.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity`);
    const serverPids = new Set(rows.map((r) => r.pid));
    for (const c of clients) {
      const own = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      expect(c.processID).not.toBe(own);
      expect(serverPids.has(c.processID)).toBe(false);
    }
    // Keys are distinct per session.
    expect(new Set(clients.map((c) => `${c.processID}:${c.secretKey}`)).size).toBe(3);
    // A 3.0 client gets a 4-byte secret.
    const raw = await RawConnection.connect(proxy.port);
    await raw.startup({ user: 'postgres', database: db.name });
    expect(raw.backendKey()?.secret.length).toBe(4);
    raw.destroy();
  });

  it('the key of the upstream backend itself, sent to the proxy, cancels nothing', async () => {
    const c = await pgClient();
    const own = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    const session = [...proxy.server.sessions].find((s) => s.upstreamBackendPid === own);
    expect(session).toBeDefined();
    // The upstream secret is the proxy's secret; a test may peek at it to prove it is useless to a client.
    const upstreamKey = (session as unknown as { upstreamKey?: { pid: number; secret: Buffer } }).upstreamKey;
    expect(upstreamKey?.pid).toBe(own);
    const run = timed(c.query('SELECT pg_sleep(2), 1 AS done /* cancel_upstream_key */'));
    await waitRunning('cancel_upstream_key');
    await sendCancel(proxy.port, upstreamKey!.pid, upstreamKey!.secret);
    const r = await run;
    expect(r.error).toBeUndefined();
    expect(r.ms).toBeGreaterThanOrEqual(1900);
  });
});
