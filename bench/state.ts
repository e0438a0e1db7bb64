/**
 * Catalog refresh cost: creates a scratch database with N tables (default 5,000, with sequences, indexes,
 * foreign keys, views and triggers like a real schema), then times full snapshot refreshes and reports what
 * they cost the server: wall time, the server backend's CPU (from /proc/<pid>/stat of the backend serving
 * the read), rows read, and the client-side build time. Results and method in docs/benchmarks.md
 * ("Catalog refresh").
 *
 *   node --import tsx bench/state.ts [--tables 5000] [--runs 5] [--upstream postgres://...] [--json file] [--keep | --reuse DB]
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { cpuSecondsBetween, readCpu } from './lib/cpu.js';
import { createDatabase, databaseUrl, dropDatabase, quoteIdent, scratchName } from './lib/scratch.js';
import { buildSnapshot, readCatalogVersion, readRawCatalog, readStats, withFreshStats } from '../governance/state/snapshot.js';
import type { CatalogSnapshot } from '../governance/state/types.js';

const { values } = parseArgs({
  options: {
    tables: { type: 'string', default: '5000' },
    runs: { type: 'string', default: '5' },
    upstream: { type: 'string', default: process.env.PGAIRLOCK_BENCH_UPSTREAM ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
    json: { type: 'string' },
    keep: { type: 'boolean', default: false },
    /** Measure an existing database (e.g. one kept with --keep) instead of creating one. */
    reuse: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  console.log('Usage: node --import tsx bench/state.ts [--tables 5000] [--runs 5] [--upstream url] [--json file] [--keep | --reuse DB]');
  process.exit(0);
}
const TABLES = Number(values.tables);
const RUNS = Number(values.runs);
if (!Number.isInteger(TABLES) || TABLES < 1 || TABLES > 100_000 || !Number.isInteger(RUNS) || RUNS < 1 || RUNS > 100) {
  console.error('--tables must be 1..100000 and --runs 1..100');
  process.exit(2);
}

const urlFor = (db: string): string => databaseUrl(values.upstream, db);

/** Tables are created server-side in batches (one DO block each), small enough for max_locks_per_transaction. */
async function createSchema(client: pg.Client, tables: number): Promise<void> {
  const BATCH = 200;
  for (let from = 1; from <= tables; from += BATCH) {
    const to = Math.min(tables, from + BATCH - 1);
    await client.query(`
      DO $$
      BEGIN
        FOR i IN ${from}..${to} LOOP
          EXECUTE format('CREATE TABLE t%s (id bigserial PRIMARY KEY, name text NOT NULL, amount numeric(12,2) DEFAULT 0,
                          created_at timestamptz NOT NULL DEFAULT now(), parent_id bigint %s)', i,
                          CASE WHEN i % 10 = 0 AND i > 1 THEN format('REFERENCES t%s (id)', i - 1) ELSE '' END);
          EXECUTE format('CREATE INDEX t%s_created ON t%s (created_at)', i, i);
          IF i % 20 = 0 THEN
            EXECUTE format('CREATE VIEW v%s AS SELECT id, name, amount FROM t%s WHERE amount > 0', i, i);
          END IF;
          IF i % 50 = 0 THEN
            EXECUTE format('CREATE TRIGGER t%s_touch BEFORE UPDATE ON t%s FOR EACH ROW EXECUTE FUNCTION touch()', i, i);
          END IF;
        END LOOP;
      END $$`);
    process.stderr.write(`\rcreated ${to}/${tables} tables`);
  }
  process.stderr.write('\n');
}

interface Run { wallMs: number; readMs: number; buildMs: number; serverCpuMs: number; clientCpuMs: number; rowsRead: number; queries: number; objects: number; edges: number; jsonBytes: number }

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
};

/** One refresh on a fresh connection, as CatalogState does it: full read without `prev`, fast path with it. */
async function measure(url: string, prev: CatalogSnapshot | undefined): Promise<{ run: Run; snapshot: CatalogSnapshot }> {
  const client = new pg.Client({ connectionString: url });
  const wall0 = performance.now();
  await client.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid ?? 0;
  const cpu0 = readCpu(pid);
  const client0 = process.cpuUsage();
  const r0 = performance.now();
  let snapshot: CatalogSnapshot;
  let readMs: number;
  let buildMs: number;
  let cpu1;
  if (prev?.catalogVersion) {
    const version = await readCatalogVersion(client);
    const { raw, cost } = await readStats(client);
    readMs = performance.now() - r0;
    cpu1 = readCpu(pid);
    const b0 = performance.now();
    snapshot = version === prev.catalogVersion ? withFreshStats(prev, raw, { ...cost, queries: cost.queries + 1 }, version) : { ...prev, readMode: 'full' };
    buildMs = performance.now() - b0;
  } else {
    const { raw, cost } = await readRawCatalog(client);
    readMs = performance.now() - r0;
    cpu1 = readCpu(pid);
    const b0 = performance.now();
    snapshot = buildSnapshot(raw, cost);
    buildMs = performance.now() - b0;
  }
  await client.end();
  const wallMs = performance.now() - wall0;
  const c = process.cpuUsage(client0);
  return {
    snapshot,
    run: {
      wallMs, readMs, buildMs, serverCpuMs: cpuSecondsBetween(cpu0, cpu1) * 1000, clientCpuMs: (c.user + c.system) / 1000,
      rowsRead: snapshot.cost.rowsRead, queries: snapshot.cost.queries, objects: snapshot.objects.length, edges: snapshot.dependencies.length,
      jsonBytes: prev ? 0 : JSON.stringify(snapshot).length,
    },
  };
}

async function main(): Promise<void> {
  const db = values.reuse ?? scratchName();
  if (!values.reuse) await createDatabase(values.upstream, db);
  const setup = new pg.Client({ connectionString: urlFor(db) });
  try {
    await setup.connect();
    const t0 = performance.now();
    if (!values.reuse) {
      await setup.query(`CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.created_at := now(); RETURN NEW; END $$`);
      await createSchema(setup, TABLES);
      await setup.query('ANALYZE');
    }
    const createS = (performance.now() - t0) / 1000;
    const version = (await setup.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v ?? '?';
    const runs: Run[] = [];
    let latest: CatalogSnapshot | undefined;
    for (let i = 0; i < RUNS; i++) {
      const r = await measure(urlFor(db), undefined);
      runs.push(r.run);
      latest = r.snapshot;
      process.stderr.write(`full read ${i + 1}/${RUNS}: ${r.run.wallMs.toFixed(0)} ms\n`);
    }
    // The interval refresh when nothing changed: catalog fingerprint + statistics, definitions reused.
    const fast: Run[] = [];
    for (let i = 0; i < RUNS && latest; i++) {
      const r = await measure(urlFor(db), latest);
      if (r.snapshot.readMode !== 'stats') throw new Error('the catalog fingerprint changed between two reads of an idle database');
      fast.push(r.run);
      process.stderr.write(`stats-only refresh ${i + 1}/${RUNS}: ${r.run.wallMs.toFixed(0)} ms\n`);
    }
    const last = runs[runs.length - 1];
    const med = (xs: Run[]) => ({
      wallMs: median(xs.map((r) => r.wallMs)), readMs: median(xs.map((r) => r.readMs)), buildMs: median(xs.map((r) => r.buildMs)),
      serverCpuMs: median(xs.map((r) => r.serverCpuMs)), clientCpuMs: median(xs.map((r) => r.clientCpuMs)),
    });
    const report = {
      tables: TABLES, runs: RUNS, server: version, cpus: os.cpus().length, loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
      createSeconds: Number(createS.toFixed(1)),
      medians: med(runs),
      statsOnly: { medians: med(fast), rowsRead: fast[0]?.rowsRead, queries: fast[0]?.queries },
      rowsRead: last?.rowsRead, queries: last?.queries, objects: last?.objects, edges: last?.edges, jsonBytes: last?.jsonBytes,
      runDetails: runs, statsOnlyDetails: fast,
    };
    const f = (n: number): string => n.toFixed(0);
    console.log(`Catalog refresh, ${TABLES} tables (PostgreSQL ${version}, ${report.cpus} CPUs, load average ${report.loadavg.join(' ')})`);
    console.log(`  objects ${report.objects}, dependency edges ${report.edges}, snapshot JSON ${((report.jsonBytes ?? 0) / 1e6).toFixed(1)} MB`);
    console.log(`  full read, median of ${RUNS}: ${report.rowsRead} rows in ${report.queries} queries; wall ${f(report.medians.wallMs)} ms (catalog read ${f(report.medians.readMs)} ms + build ${f(report.medians.buildMs)} ms), server backend CPU ${f(report.medians.serverCpuMs)} ms, pgairlock CPU ${f(report.medians.clientCpuMs)} ms`);
    const m = report.statsOnly.medians;
    console.log(`  stats-only refresh (catalogs unchanged), median of ${RUNS}: ${report.statsOnly.rowsRead} rows in ${report.statsOnly.queries} queries; wall ${f(m.wallMs)} ms, server backend CPU ${f(m.serverCpuMs)} ms, pgairlock CPU ${f(m.clientCpuMs)} ms`);
    if (values.json) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
  } finally {
    await setup.end().catch(() => undefined);
    if (values.keep || values.reuse) console.error(`kept database ${quoteIdent(db)}`);
    else await dropDatabase(values.upstream, db);
  }
}

await main();
