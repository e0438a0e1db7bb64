import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateCluster, type PrivateCluster } from '../harness/cluster.js';
import { postgresAvailable } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { sleep } from '../harness/tools.js';
import { cancelPacket, RawConnection } from '../harness/wire.js';

/**
 * An upstream on a Unix socket, written as libpq does: `?host=/dir` or a percent-encoded host.
 * A private cluster gives a socket directory that exists on any machine.
 */

describe.skipIf(!postgresAvailable())('upstream over a Unix socket', () => {
  let cluster: PrivateCluster;
  const proxies: TestProxy[] = [];
  beforeAll(async () => {
    cluster = await startPrivateCluster();
  }, 60_000);
  afterAll(async () => {
    for (const p of proxies) await p.close();
    await cluster?.destroy();
  });

  async function through(url: string): Promise<{ proxy: TestProxy; client: pg.Client }> {
    const proxy = await startTestProxy({ upstream: { url } });
    proxies.push(proxy);
    const client = new pg.Client({ connectionString: proxy.url('postgres') });
    await client.connect();
    return { proxy, client };
  }

  /** client_addr is NULL exactly for a backend reached over the Unix socket. */
  const overSocket = async (c: pg.Client) =>
    (await c.query<{ local: boolean }>('SELECT client_addr IS NULL AS local FROM pg_stat_activity WHERE pid = pg_backend_pid()')).rows[0]!.local;

  it('?host=<dir> reaches the server over its socket (not TCP), with reused read buffers', async () => {
    const { proxy, client } = await through(`postgres://postgres@localhost:${cluster.port}/postgres?host=${cluster.socketDir}`);
    try {
      expect(await overSocket(client)).toBe(true);
      const r = await client.query<{ n: number }>('SELECT sum(i)::int AS n FROM generate_series(1, 1000) i');
      expect(r.rows[0]!.n).toBe(500500);
      const s = [...proxy.server.sessions].find((x) => x.phase === 'ready');
      expect(s?.readBuffers).toEqual({ client: true, server: true });
    } finally {
      await client.end();
    }
  });

  it('a percent-encoded socket directory as the host works too, and sslmode=require is ignored there as libpq does', async () => {
    const { client } = await through(`postgres://postgres@${encodeURIComponent(cluster.socketDir)}:${cluster.port}/postgres?sslmode=require`);
    try {
      expect(await overSocket(client)).toBe(true);
    } finally {
      await client.end();
    }
  });

  it('cancel reaches the backend over the socket', async () => {
    const { proxy, client } = await through(`postgres://postgres@localhost:${cluster.port}/postgres?host=${cluster.socketDir}`);
    try {
      const t0 = Date.now();
      const sleeping = client.query('SELECT pg_sleep(30) /* unix_cancel */').then(
        () => 'finished',
        (err: { code?: string }) => err.code,
      );
      for (let i = 0; i < 100 && !cluster.psql("SELECT 1 FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%unix_cancel%' AND pid <> pg_backend_pid()").trim(); i++) await sleep(50);
      const key = client as unknown as { processID: number; secretKey: number };
      const c = await RawConnection.connect(proxy.port);
      c.write(cancelPacket(key.processID, key.secretKey));
      await c.waitClosed(5000);
      expect(await sleeping).toBe('57014');
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await client.end();
    }
  }, 30_000);
});
