import { monitorEventLoopDelay } from 'node:perf_hooks';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, upstreamUrl, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';

/**
 * A full catalog refresh of a large schema must not stall the proxy (issue 7): the snapshot is read in pages
 * and built in slices, so sessions keep being served while it runs. Bounds are relative to the refresh's own
 * duration (the machine may be slow and noisy), best of three refreshes. The numbers before and after the
 * slicing are measured by bench/state-loop.ts on 5,000 tables (docs/state.md).
 */
const db = useTestDatabase();
const TABLES = 1500;
/** Longest round trip (and event-loop delay) allowed, as a fraction of the refresh time. */
const LIMIT = 0.2;

describe.skipIf(!postgresAvailable())('proxy sessions during a large catalog refresh', () => {
  let rt: TestRuntime;

  beforeAll(async () => {
    for (let from = 1; from <= TABLES; from += 250) {
      await db.query(`DO $$ BEGIN FOR i IN ${from}..${from + 249} LOOP
        EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, a text NOT NULL DEFAULT %L, b int, c timestamptz DEFAULT now(), d numeric(10,2), %s)', i, 'x',
          (SELECT string_agg(format('column_number_%s_of_table_%s varchar(200) NOT NULL', k, i), ', ') FROM generate_series(1, 60) k));
        IF i % 10 = 0 THEN EXECUTE format('CREATE VIEW v%s AS SELECT id, a FROM t%s', i, i); END IF;
      END LOOP; END $$`);
    }
    const upstream = upstreamUrl(db.name);
    rt = await startTestRuntime(db.name, {
      upstream: { url: upstream },
      principals: { map: [{ name: 'dba', roles: ['dba'], match: { users: ['postgres'] } }] },
      state: { refresh_interval_ms: 0 },
    });
  }, 180_000);
  afterAll(async () => rt?.close());

  it('keeps answering queries while a full refresh runs', async () => {
    const catalog = rt.runtime.governance.catalog!;
    const client = new pg.Client({ connectionString: rt.url(db.name) });
    await client.connect();
    try {
      await catalog.current(db.name);
      let best: { refreshMs: number; maxRtt: number; trips: number; maxDelayMs: number } | undefined;
      // Three attempts, the best kept: a single hiccup of a loaded machine must not fail the test.
      for (let attempt = 0; attempt < 3; attempt++) {
        // A change made around pgairlock makes the next refresh a full read (definitions, hashes, edges).
        await db.query(`CREATE TABLE extra_${attempt} (id int)`);
        const loop = monitorEventLoopDelay({ resolution: 1 });
        loop.enable();
        let done = false;
        const t0 = performance.now();
        const refresh = catalog.refresh(db.name, 'demand').then((s) => {
          done = true;
          return s;
        });
        let maxRtt = 0;
        let trips = 0;
        while (!done) {
          const q0 = performance.now();
          await client.query('SELECT 1');
          maxRtt = Math.max(maxRtt, performance.now() - q0);
          trips++;
        }
        const snap = await refresh;
        const refreshMs = performance.now() - t0;
        loop.disable();
        expect(snap.readMode).toBe('full');
        expect(snap.objects.length).toBeGreaterThan(TABLES * 3);
        const r = { refreshMs, maxRtt, trips, maxDelayMs: loop.max / 1e6 };
        if (!best || r.maxRtt / r.refreshMs < best.maxRtt / best.refreshMs) best = r;
        if (r.maxRtt < r.refreshMs * LIMIT && r.maxDelayMs < r.refreshMs * LIMIT) break;
      }
      // Round trips through the proxy went on during the refresh, none waiting for a large part of it.
      const seen = JSON.stringify(best);
      expect(best!.trips, seen).toBeGreaterThanOrEqual(5);
      expect(best!.maxRtt, seen).toBeLessThan(best!.refreshMs * LIMIT);
      expect(best!.maxDelayMs, seen).toBeLessThan(best!.refreshMs * LIMIT);
    } finally {
      await client.end();
    }
  }, 120_000);
});
