import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisApprovalStore, type ApprovalError } from '../../governance/approvals/index.js';
import { alice, holdInput, rejectsWith } from './helpers.js';
import { startPrivateRedis, type PrivateRedis } from './private-redis.js';

/** Retries `fn` until it succeeds, bounded; returns how long it took. */
async function eventually<T>(fn: () => Promise<T>, boundMs: number): Promise<{ value: T; ms: number }> {
  const t = Date.now();
  let last: unknown;
  while (Date.now() - t < boundMs) {
    try {
      return { value: await fn(), ms: Date.now() - t };
    } catch (err) {
      last = err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`still failing after ${boundMs} ms`, { cause: last });
}

async function timed<T>(p: Promise<T>): Promise<{ ms: number; result: T | undefined; error: unknown }> {
  const t = Date.now();
  try {
    const result = await p;
    return { ms: Date.now() - t, result, error: undefined };
  } catch (error) {
    return { ms: Date.now() - t, result: undefined, error };
  }
}

describe('Redis down, then up again (private redis-server, no persistence)', () => {
  let redis: PrivateRedis;
  let store: RedisApprovalStore;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    store = new RedisApprovalStore({ url: redis.url, keyPrefix: 'outage:', commandTimeoutMs: 1000, recheckIntervalMs: 60_000 });
    await store.ready();
  });
  afterAll(async () => {
    await store?.close();
    await redis?.destroy();
  });

  it('fails fast with SQLSTATE 58000 while down and works again after the restart, without a new store', async () => {
    const before = await store.create(holdInput());
    const waiting = store.waitForResolution(before.id, new AbortController().signal, 60_000).then(
      (r) => ({ r }),
      (e: ApprovalError) => ({ e }),
    );
    await redis.kill();
    // Every operation fails at once, none hangs.
    for (const op of [() => store.create(holdInput()), () => store.get(before.id), () => store.approve(before.id, alice), () => store.list().then(() => undefined)]) {
      const { ms, error } = await timed(op());
      expect(ms).toBeLessThan(1500);
      const err = error as ApprovalError;
      expect(err.code).toBe('store_unavailable');
      expect(err.sqlstate).toBe('58000');
      expect(err.message).toContain(`approval store unavailable (redis://127.0.0.1:${redis.port}`);
      expect(err.hint).toContain('reconnects automatically');
    }
    await redis.start();
    const { value: after, ms } = await eventually(() => store.create(holdInput()), 10_000);
    expect(ms).toBeLessThan(10_000);
    expect((await store.approve(after.id, alice)).status).toBe('approved');
    // Without persistence the restart lost the earlier request: its waiter is told so, not left hanging.
    const w = await waiting;
    expect('e' in w && w.e.code).toBe('not_found');
  });
});

describe('Redis down, then up again (persistent): a waiter survives the outage', () => {
  let redis: PrivateRedis;
  const stores: RedisApprovalStore[] = [];
  beforeAll(async () => {
    redis = await startPrivateRedis({ persistent: true });
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await redis?.destroy();
  });

  it('the waiting statement is woken by an approval made through another replica after Redis is back', async () => {
    const open = () => {
      const s = new RedisApprovalStore({ url: redis.url, keyPrefix: 'outage2:', commandTimeoutMs: 1000, recheckIntervalMs: 60_000 });
      stores.push(s);
      return s;
    };
    const a = open();
    const b = open();
    await Promise.all([a.ready(), b.ready()]);
    const r = await a.create(holdInput());
    const waiting = a.waitForResolution(r.id, new AbortController().signal, 60_000);
    await redis.kill();
    await rejectsWith(b.approve(r.id, alice), 'store_unavailable');
    await redis.start();
    await eventually(() => b.approve(r.id, alice), 10_000);
    const t = Date.now();
    expect(await waiting).toBe('approved');
    // The subscriber re-subscribed on reconnect; the wake-up is not the 60 s safety re-check.
    expect(Date.now() - t).toBeLessThan(5000);
  });
});

describe('Redis hung (SIGSTOP): commands time out instead of hanging', () => {
  let redis: PrivateRedis;
  let store: RedisApprovalStore;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    store = new RedisApprovalStore({ url: redis.url, keyPrefix: 'hung:', commandTimeoutMs: 500, recheckIntervalMs: 60_000 });
    await store.ready();
  });
  afterAll(async () => {
    redis?.signal('SIGCONT');
    await store?.close();
    await redis?.destroy();
  });

  it('fails with store_unavailable within the command timeout, and works once Redis answers again', async () => {
    const r = await store.create(holdInput());
    redis.signal('SIGSTOP');
    try {
      const { ms, error } = await timed(store.approve(r.id, alice));
      expect((error as ApprovalError).code).toBe('store_unavailable');
      expect(ms).toBeLessThan(2500);
    } finally {
      redis.signal('SIGCONT');
    }
    const { value } = await eventually(() => store.approve(r.id, alice), 15_000);
    expect(value.status).toBe('approved');
  });
});

describe('Redis down when the store starts', () => {
  let redis: PrivateRedis;
  let store: RedisApprovalStore | undefined;
  beforeAll(async () => {
    redis = await startPrivateRedis();
    await redis.kill();
  });
  afterAll(async () => {
    await store?.close();
    await redis?.destroy();
  });

  it('ready() and operations fail fast; the store connects by itself once Redis starts', async () => {
    store = new RedisApprovalStore({ url: redis.url, keyPrefix: 'late:', recheckIntervalMs: 60_000 });
    const s = store;
    const ready = await timed(s.ready(500));
    expect((ready.error as ApprovalError).code).toBe('store_unavailable');
    const op = await timed(s.create(holdInput()));
    expect((op.error as ApprovalError).code).toBe('store_unavailable');
    expect(op.ms).toBeLessThan(2500);
    await redis.start();
    const { value } = await eventually(() => s.create(holdInput()), 10_000);
    expect(value.status).toBe('pending');
    await s.ready(5000);
  });
});
