import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, redisAvailable, upstreamUrl, useTestDatabase } from '../harness/db.js';
import { REDIS_URL } from '../harness/env.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';

/**
 * The usage index in Redis when Redis is configured (issue 7): two proxy replicas sharing one Redis share
 * who used what, so a rename through one is refused for a column read through the other.
 */
const db = useTestDatabase();
const READER = 'airlock_usage_reader';
const WRITER = 'airlock_usage_writer';

describe.skipIf(!postgresAvailable() || !redisAvailable())('usage index in Redis, shared by replicas', () => {
  const prefix = `h7usage-${randomBytes(4).toString('hex')}:`;
  let a: TestRuntime;
  let b: TestRuntime;
  let redis: Redis;

  beforeAll(async () => {
    for (const r of [READER, WRITER]) {
      await db.loginRole(r);
    }
    await db.query(`CREATE TABLE accounts (id int PRIMARY KEY, iban text, note text); GRANT ALL ON accounts TO ${READER}, ${WRITER}`);
    const upstream = upstreamUrl(db.name);
    const config = {
      upstream: { url: upstream },
      principals: { map: [{ name: 'agent:{user}', roles: ['agent'], match: { users: [READER, WRITER] } }] },
      redis: { url: REDIS_URL, key_prefix: prefix },
      state: { usage: { flush_interval_ms: 10 } },
    };
    a = await startTestRuntime(db.name, config);
    b = await startTestRuntime(db.name, config);
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    if (redis) {
      const keys = await redis.keys(`${prefix}*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  });

  it('records uses in Redis and refuses a rename on another replica, naming the reader', async () => {
    const reader = new pg.Client({ connectionString: a.url(db.name, READER), application_name: 'ledger' });
    await reader.connect();
    await reader.query('SELECT iban FROM accounts WHERE id = 1');
    await reader.end();
    let keys: string[] = [];
    for (const end = Date.now() + 10_000; keys.length === 0 && Date.now() < end; ) {
      await new Promise((r) => setTimeout(r, 50));
      keys = await redis.keys(`${prefix}usage:l:*`);
    }
    expect(keys.some((k) => k.includes('accounts') && k.includes('iban'))).toBe(true);
    const writer = new pg.Client({ connectionString: b.url(db.name, WRITER), application_name: 'migrator' });
    await writer.connect();
    try {
      const e = await writer.query('ALTER TABLE accounts RENAME COLUMN iban TO account_iban').then(
        () => undefined,
        (err: { message: string; detail?: string }) => err,
      );
      expect(e?.message).toContain('column-in-use-denied');
      expect(e?.detail).toMatch(/ledger|airlock_usage_reader/);
    } finally {
      await writer.end();
    }
  });
});
