import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';

const db = useTestDatabase();

describe.skipIf(!postgresAvailable())('proxy pass-through smoke', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startTestProxy();
  });
  afterAll(async () => proxy?.close());

  it('relays a query and the server identity through the proxy', async () => {
    const c = new pg.Client({ connectionString: proxy.url(db.name) });
    await c.connect();
    const r = await c.query('SELECT current_database() AS d, 1 + 1 AS two');
    expect(r.rows).toEqual([{ d: db.name, two: 2 }]);
    expect(proxy.server.sessions.size).toBe(1);
    await c.end();
  });

  it('issues its own cancel key, not the upstream backend pid', async () => {
    const c = new pg.Client({ connectionString: proxy.url(db.name) });
    await c.connect();
    const r = await c.query('SELECT pg_backend_pid() AS pid');
    expect((c as unknown as { processID: number }).processID).not.toBe(r.rows[0].pid);
    await c.end();
  });
});
