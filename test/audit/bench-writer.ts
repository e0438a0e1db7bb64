/**
 * Cost of the audit writer alone (no proxy): `node --import tsx test/audit/bench-writer.ts [admin-url]`.
 * Creates and drops its own database. Prints rates and latencies; docs/benchmarks.md ("Audit") records a run.
 */
import { performance } from 'node:perf_hooks';
import client from 'prom-client';
import { createDatabase, databaseUrl, dropDatabase } from '../../bench/lib/scratch.js';
import { AuditLog } from '../../governance/audit/log.js';
import { AuditQuery } from '../../governance/audit/query.js';
import { allowRead, allowUpdate } from './fixtures.js';

const admin = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const name = `pgairlock_audit_bench_${process.pid}`;
await createDatabase(admin, name);
const url = databaseUrl(admin, name);
const pct = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

try {
  const log = await AuditLog.open({ databaseUrl: url, instance: 'bench', registry: new client.Registry() });
  // warm-up
  for (let i = 0; i < 200; i++) await log.recordDecision(allowUpdate());

  const lat: number[] = [];
  let t0 = performance.now();
  for (let i = 0; i < 2000; i++) {
    const s = performance.now();
    await log.recordDecision(allowUpdate());
    lat.push(performance.now() - s);
  }
  let secs = (performance.now() - t0) / 1000;
  console.log(`changes, 1 at a time:   ${(2000 / secs).toFixed(0)}/s  p50 ${pct(lat, 0.5).toFixed(2)} ms  p99 ${pct(lat, 0.99).toFixed(2)} ms`);

  for (const conc of [8, 32]) {
    const lat2: number[] = [];
    t0 = performance.now();
    const total = 4000;
    let next = 0;
    await Promise.all(Array.from({ length: conc }, async () => {
      while (next++ < total) {
        const s = performance.now();
        await log.recordDecision(allowUpdate());
        lat2.push(performance.now() - s);
      }
    }));
    secs = (performance.now() - t0) / 1000;
    console.log(`changes, ${String(conc).padStart(2)} in flight:  ${(total / secs).toFixed(0)}/s  p50 ${pct(lat2, 0.5).toFixed(2)} ms  p99 ${pct(lat2, 0.99).toFixed(2)} ms`);
  }

  t0 = performance.now();
  let maxCall = 0;
  for (let i = 0; i < 50_000; i++) {
    const s = performance.now();
    const r = await log.recordDecision(allowRead());
    log.recordOutcome(r, { status: 'ok', commandTag: 'SELECT 1', rows: 1, durationMs: 0.1 });
    maxCall = Math.max(maxCall, performance.now() - s);
    if (i % 1000 === 999) await new Promise((res) => setImmediate(res));
  }
  await log.flush();
  secs = (performance.now() - t0) / 1000;
  console.log(`reads (serve, group commit; decision + outcome records): ${(50_000 / secs).toFixed(0)} reads/s incl. final flush`);
  await log.close();

  const agg = await AuditLog.open({ databaseUrl: url, instance: 'bench-agg', registry: new client.Registry(), config: { reads: { group_commit_ms: 10, max_batch: 500, aggregate: true, aggregate_interval_ms: 10_000 } } });
  t0 = performance.now();
  for (let i = 0; i < 200_000; i++) {
    const r = await agg.recordDecision(allowRead());
    agg.recordOutcome(r, { status: 'ok', rows: 1, durationMs: 0.1 });
  }
  await agg.flush({ aggregates: true });
  secs = (performance.now() - t0) / 1000;
  console.log(`reads (aggregated per fingerprint): ${(200_000 / secs).toFixed(0)} reads/s`);
  await agg.close();

  const q = new AuditQuery(url);
  t0 = performance.now();
  const v = await q.verify();
  secs = (performance.now() - t0) / 1000;
  const records = v.chains.reduce((s, c) => s + c.records, 0);
  console.log(`verify: ${records} records in ${secs.toFixed(2)} s (${(records / secs).toFixed(0)}/s), ok=${v.ok}`);
  await q.close();
} finally {
  await dropDatabase(admin, name);
}
