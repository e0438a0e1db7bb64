/**
 * Event-loop delay while the catalog snapshot refreshes (docs/state.md "Refresh: when, and what it costs"):
 * runs full refreshes of one database through CatalogState (as the proxy does) and reports, per refresh,
 * its wall time and the largest and 99th-percentile event-loop delay seen meanwhile (perf_hooks
 * monitorEventLoopDelay, 1 ms resolution). The delay is how long every proxy session on the process
 * waited for its next message to be handled.
 *
 *   node --import tsx bench/state-loop.ts --reuse DB [--runs 5] [--upstream postgres://...]
 *
 * Create the database with `bench/state.ts --tables 5000 --keep`.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Registry } from 'prom-client';
import { CatalogState, connectByUrl } from '../governance/state/service.js';

const { values } = parseArgs({
  options: {
    reuse: { type: 'string' },
    runs: { type: 'string', default: '5' },
    upstream: { type: 'string', default: process.env.PGAIRLOCK_BENCH_UPSTREAM ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help || !values.reuse) {
  console.log('Usage: node --import tsx bench/state-loop.ts --reuse DB [--runs 5] [--upstream url]');
  process.exit(values.help ? 0 : 2);
}
const RUNS = Number(values.runs);
const db = values.reuse;

const catalog = new CatalogState({ connect: connectByUrl(values.upstream), fastPath: false, registry: new Registry() });
const rows: { wallMs: number; maxDelayMs: number; p99DelayMs: number }[] = [];
for (let i = 0; i < RUNS; i++) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  const t0 = performance.now();
  await catalog.refresh(db, 'demand');
  const wallMs = performance.now() - t0;
  h.disable();
  rows.push({ wallMs, maxDelayMs: h.max / 1e6, p99DelayMs: h.percentile(99) / 1e6 });
  process.stderr.write(`refresh ${i + 1}/${RUNS}: wall ${wallMs.toFixed(0)} ms, max event-loop delay ${(h.max / 1e6).toFixed(1)} ms, p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms\n`);
}
await catalog.stop();
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const snap = catalog.get(db);
console.log(`full refresh of ${db} (${snap?.objects.length} objects), median of ${RUNS}: wall ${med(rows.map((r) => r.wallMs)).toFixed(0)} ms, ` +
  `max event-loop delay ${med(rows.map((r) => r.maxDelayMs)).toFixed(1)} ms (worst ${Math.max(...rows.map((r) => r.maxDelayMs)).toFixed(1)} ms), p99 ${med(rows.map((r) => r.p99DelayMs)).toFixed(1)} ms`);
