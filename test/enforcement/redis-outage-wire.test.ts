import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { startPrivateRedis, type PrivateRedis } from '../approvals/private-redis.js';

/**
 * The approval store down on the wire (issue 6): statements that need a hold are refused with a
 * clear error, statements that do not are unaffected, and holds work again once Redis is back.
 */
const db = useTestDatabase();
const AGENT = 'airlock_outage_agent';

describe.skipIf(!postgresAvailable())('Redis down then up, through the proxy', () => {
  let redis: PrivateRedis;
  let rt: TestRuntime;
  let agent: pg.Client;
  beforeAll(async () => {
    await db.loginRole(AGENT);
    await db.query(`CREATE TABLE items(id int primary key); INSERT INTO items SELECT generate_series(1, 3); GRANT ALL ON items TO ${AGENT}`);
    redis = await startPrivateRedis();
    rt = await startTestRuntime(db.name, {
      principals: { map: [{ name: 'agent:{user}', roles: ['agent'], match: { users: [AGENT] } }] },
      redis: { url: redis.url, key_prefix: 'outage-test:', command_timeout_ms: 500 },
    });
    agent = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
    await agent.connect();
  });
  afterAll(async () => {
    await agent?.end();
    await rt?.close();
    await redis?.destroy();
  });

  const held = async () => {
    try {
      await agent.query('DELETE FROM items');
    } catch (err) {
      return err as { code: string; message: string; hint?: string };
    }
    throw new Error('DELETE without WHERE must not run');
  };

  it('refuses holds clearly while Redis is down, serves everything else, and recovers', async () => {
    expect((await held()).message).toContain('held for approval as change');
    await redis.kill();
    const t0 = Date.now();
    const down = await held();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(down.code).toBe('58000');
    expect(down.message).toContain('approval store unavailable');
    // Statements that need no hold are unaffected.
    expect((await agent.query('SELECT count(*)::int AS n FROM items')).rows[0].n).toBe(3);
    await agent.query('UPDATE items SET id = id WHERE id = 1');
    await redis.start();
    let back: { message: string } | undefined;
    for (let i = 0; i < 50; i++) {
      back = await held();
      if (back.message.includes('held for approval as change')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(back?.message).toContain('held for approval as change');
    expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM items')).rows[0]?.n).toBe(3);
  });
});
