import net from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateCluster, type PrivateCluster } from '../harness/cluster.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { sleep, waitFor } from '../harness/tools.js';

/**
 * The default upstream is a private cluster the test stops and kills; the alias `steady` routes to
 * the main test server, so sessions there show that the proxy and its other sessions carry on.
 */

const db = useTestDatabase();
const CLUSTER_DB = 'failing';

interface PgErr extends Error {
  code?: string;
}

async function connect(url: string): Promise<pg.Client & { errors: PgErr[] }> {
  const c = new pg.Client({ connectionString: url }) as pg.Client & { errors: PgErr[] };
  c.errors = [];
  c.on('error', (e) => c.errors.push(e as PgErr));
  await c.connect();
  return c;
}

async function settle<T>(p: Promise<T>): Promise<{ ms: number; value?: T; error?: PgErr }> {
  const t0 = Date.now();
  try {
    return { ms: Date.now() - t0, value: await p };
  } catch (err) {
    return { ms: Date.now() - t0, error: err as PgErr };
  }
}

describe.skipIf(!postgresAvailable())('upstream stopped, killed and restarted', () => {
  let cluster: PrivateCluster;
  let proxy: TestProxy;
  const open: pg.Client[] = [];
  const track = <C extends pg.Client>(c: C): C => {
    open.push(c);
    return c;
  };
  const clusterUrl = () => proxy.url(CLUSTER_DB);
  const steadyUrl = () => proxy.url('steady');

  beforeAll(async () => {
    cluster = await startPrivateCluster();
    cluster.psql(`CREATE DATABASE ${CLUSTER_DB}`);
    proxy = await startTestProxy({
      upstream: { url: `${cluster.url('postgres')}?sslmode=disable`, connect_timeout_ms: 3000 },
      databases: { steady: { dbname: db.name, host: '127.0.0.1', port: Number(new URL(db.url).port || 5432) } },
    });
  });
  afterAll(async () => {
    await Promise.all(open.map((c) => c.end().catch(() => undefined)));
    await proxy?.close();
    await cluster?.destroy();
  });

  it('routes both upstreams before anything fails', async () => {
    const a = track(await connect(clusterUrl()));
    const b = track(await connect(steadyUrl()));
    expect((await a.query('SELECT current_database() AS d')).rows).toEqual([{ d: CLUSTER_DB }]);
    expect((await b.query('SELECT current_database() AS d')).rows).toEqual([{ d: db.name }]);
  });

  it('fast shutdown: a busy and an idle client get 57P01, other sessions and the proxy carry on, new sessions fail fast with 08, then work after restart', async () => {
    const busy = track(await connect(clusterUrl()));
    const idle = track(await connect(clusterUrl()));
    const other = track(await connect(steadyUrl()));
    const running = settle(busy.query('SELECT pg_sleep(30)'));
    await sleep(200);
    await cluster.stop();

    const r = await running;
    expect(r.error?.code).toBe('57P01');
    expect(r.ms).toBeLessThan(5000);
    // The idle client is told too (asynchronously, as an 'error' event).
    await waitFor(() => idle.errors.length > 0, { timeoutMs: 5000 });
    expect(idle.errors[0]?.code).toBe('57P01');

    // Same proxy, the other upstream: unaffected.
    expect((await other.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);

    // New sessions while the upstream is down: a clear class-08 error, quickly.
    const t0 = Date.now();
    const down = await settle(connect(clusterUrl()));
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(down.error?.code).toBe('08001');
    expect(down.error?.message).toContain('could not connect to the upstream server');

    await cluster.start();
    const again = track(await connect(clusterUrl()));
    expect((await again.query('SELECT current_database() AS d')).rows).toEqual([{ d: CLUSTER_DB }]);
    expect((await other.query('SELECT 2 AS ok')).rows).toEqual([{ ok: 2 }]);
  });

  it('SIGKILL of the server: the client gets 57P01 or 08006, the proxy stays up, and new sessions work after restart', async () => {
    const busy = track(await connect(clusterUrl()));
    const idle = track(await connect(clusterUrl()));
    const other = track(await connect(steadyUrl()));
    const running = settle(busy.query('SELECT pg_sleep(30)'));
    await sleep(200);
    await cluster.kill();
    // Orphaned backends notice the postmaster's death themselves and exit.
    const r = await running;
    expect(['57P01', '08006']).toContain(r.error?.code);
    await waitFor(() => idle.errors.length > 0, { timeoutMs: 10_000 });
    expect(['57P01', '08006']).toContain(idle.errors[0]?.code);
    expect((await other.query('SELECT 3 AS ok')).rows).toEqual([{ ok: 3 }]);
    expect(proxy.server.sessions.size).toBeGreaterThanOrEqual(1);

    const down = await settle(connect(clusterUrl()));
    expect(down.error?.code).toMatch(/^08/);

    // The old backends must be gone before a new postmaster can take the data directory.
    let started = false;
    for (let i = 0; i < 20 && !started; i++) {
      try {
        await cluster.start();
        started = true;
      } catch {
        await sleep(250);
      }
    }
    expect(started).toBe(true);
    const again = track(await connect(clusterUrl()));
    expect((await again.query('SELECT 1 AS back')).rows).toEqual([{ back: 1 }]);
  });

  it('an upstream that accepts TCP but never answers: the client gets an error within the configured timeouts', async () => {
    const sockets: net.Socket[] = [];
    const mute = net.createServer((s) => {
      sockets.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', () => resolve()));
    const port = (mute.address() as net.AddressInfo).port;
    const prefer = await startTestProxy({ upstream: { url: `postgres://127.0.0.1:${port}/x?sslmode=prefer`, connect_timeout_ms: 1000 } });
    const plain = await startTestProxy({ upstream: { url: `postgres://127.0.0.1:${port}/x?sslmode=disable` }, limits: { startup_timeout_ms: 1500 } });
    try {
      // sslmode prefer: no answer to SSLRequest within connect_timeout_ms.
      let t0 = Date.now();
      const a = await settle(connect(prefer.url('x')));
      expect(a.error?.code).toBe('08001');
      expect(Date.now() - t0).toBeLessThan(4000);
      // No TLS negotiation: the startup never completes, and limits.startup_timeout_ms ends it.
      t0 = Date.now();
      const b = await settle(connect(plain.url('x')));
      expect(b.error).toBeDefined();
      expect(b.error?.code).toMatch(/^(08|57P03)/);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await prefer.close();
      await plain.close();
      for (const s of sockets) s.destroy();
      mute.close();
    }
  });
});
