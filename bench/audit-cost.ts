/**
 * Where the audit trail's cost goes under pgbench TPC-B (issue 5: audit on at most 15 % below audit off), as a
 * cost model measured in one run on this machine:
 *
 *   npm run bench:audit-cost -- [--rounds 3] [--duration 8] [--store-seconds 4] [--pgairlock-entry tsx|dist] [--upstream <url>]
 *
 * Per round, back to back (order alternating between rounds):
 * - pgbench TPC-B -M prepared -c 8 through pgairlock with the audit off and with it on (its own control database),
 *   measuring the machine's busy CPU per transaction (/proc/stat: every process and the kernel's work for them)
 *   and, with the audit on, how many records and control-database transactions (batches) each one cost;
 * - the audit store alone (AuditLog in this process against another scratch database, no proxy): TPC-B decision
 *   records written ahead (one at a time, then 32 at a time), each followed by its outcome, measuring machine CPU,
 *   batches and records.
 * A least-squares fit of the store runs gives the machine CPU of one batch and of one record in it, all in: the
 * writer's own work in this process (building, hashing, sending) and the server's and kernel's. With the batches and
 * records per transaction the proxy produced, that is the audit log's share of the audit's cost; the rest is the
 * proxy's around it (the gate's audit plumbing, the COMMIT wait, lower throughput). The report ends with the best
 * TPS ratio reachable if that rest were free, with this audit log at this batching, next to the 15 % budget.
 *
 * Every figure is a ratio or a share from the same run: absolute CPU describes this machine at this moment only.
 * Creates and drops its own databases.
 */
import { parseArgs } from 'node:util';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import pg from 'pg';
import client from 'prom-client';
import { stringify as stringifyYaml } from 'yaml';
import { AuditLog } from '../governance/audit/log.js';
import { Cleanup } from './lib/cleanup.js';
import { machineBusySeconds } from './lib/cpu.js';
import { parsePgbenchOutput, pgbenchArgs, pgbenchEnv, runCommand, WORKLOADS } from './lib/pgbench.js';
import { startPgairlock, type PgairlockEntry, type RunningPgairlock } from './lib/pgairlock.js';
import { createDatabase, databaseUrl, dropDatabase, initPgbench, scratchName } from './lib/scratch.js';
import { fitBatchCost, median, type CostSample } from './lib/stats.js';
import { tpcbDecisionInputs, tpcbSession } from './lib/tpcb-audit.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET = 0.85;
/** Decisions written at a time in the store runs: batches of about 2 and about 64 records separate the two costs. */
const STORE_WIDTHS = [1, 32] as const;
const log = (line: string) => process.stderr.write(`${line}\n`);
const HELP = `Usage: npm run bench:audit-cost -- [options]
  --rounds <n>               interleaved rounds (default 3)
  --duration <s>             seconds per pgbench run (default 8)
  --store-seconds <s>        seconds per audit-store run (default 4)
  --pgairlock-entry <e>      tsx (default) or dist (npm run build first)
  --upstream <url>           the PostgreSQL server (default $PGAIRLOCK_BENCH_UPSTREAM or postgres://postgres@127.0.0.1:5432/postgres)
Method and output: docs/benchmarks.md, "Audit cost model".
`;

interface Counts { records: number; batches: number }

/** Records and writer transactions (one per batch: rows of one INSERT share their xmin) in an audit log. */
async function auditCounts(url: string): Promise<Counts> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ records: number; batches: number }>(
      `SELECT count(*)::int AS records, count(DISTINCT xmin::text)::int AS batches FROM pgairlock.audit_log`);
    return r.rows[0]!;
  } finally {
    await c.end();
  }
}

interface ProxyRun { tps: number; txns: number; cpuUs: number; records?: number; batches?: number }
interface StoreRun extends CostSample { width: number }

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '8' },
      'store-seconds': { type: 'string', default: '4' },
      'pgairlock-entry': { type: 'string', default: 'tsx' },
      upstream: { type: 'string', default: process.env.PGAIRLOCK_BENCH_UPSTREAM ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) { process.stdout.write(HELP); return 0; }
  const int = (name: string, v: string, min: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
    return n;
  };
  const rounds = int('rounds', values.rounds, 1);
  const durationS = int('duration', values.duration, 1);
  const storeS = int('store-seconds', values['store-seconds'], 1);
  const entry = values['pgairlock-entry'] as PgairlockEntry;
  if (entry !== 'tsx' && entry !== 'dist') throw new Error(`--pgairlock-entry must be tsx or dist, got "${entry}"`);
  const admin = values.upstream;
  const up = new URL(admin);
  const host = up.searchParams.get('host') || decodeURIComponent(up.hostname) || '127.0.0.1';
  const port = Number(up.port || 5432);
  const user = decodeURIComponent(up.username || 'postgres');

  const cleanup = new Cleanup();
  const base = scratchName();
  const [bench, control, store] = [base, `${base}_control`, `${base}_store`];
  const configDir = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-audit-cost-'));
  cleanup.add('remove configs', () => Promise.resolve(rmSync(configDir, { recursive: true, force: true })));
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => { log(`audit-cost: ${sig}: cleaning up`); void cleanup.runAll(log).finally(() => process.exit(130)); });
  }
  try {
    for (const db of [bench, control, store]) {
      await createDatabase(admin, db);
      cleanup.add(`drop database ${db}`, () => dropDatabase(admin, db), 180_000);
    }
    log(`audit-cost: pgbench -i -s 10 into ${bench}`);
    await initPgbench({ host, port, user, database: bench }, 10, 600_000);

    const config = (name: string, audit: Record<string, unknown>) => {
      const file = path.join(configDir, `${name}.yaml`);
      writeFileSync(file, stringifyYaml({ audit, log: { level: 'warn' } }));
      return file;
    };
    const start = async (label: string, file: string): Promise<RunningPgairlock> => {
      const p = await startPgairlock({ repoRoot: REPO_ROOT, entry, upstreamUrl: admin, variant: { label, configFile: file }, startTimeoutMs: 60_000 });
      cleanup.add(`stop ${label}`, p.stop);
      log(`audit-cost: ${label} on 127.0.0.1:${p.port} (pid ${p.pid}, ${entry})`);
      return p;
    };
    const controlUrl = databaseUrl(admin, control);
    const on = await start('audit-on', config('audit-on', { database_url: controlUrl }));
    const off = await start('audit-off', config('audit-off', { enabled: false }));

    const tpcb = WORKLOADS.find((w) => w.id === 'tpcb-prepared')!;
    const runProxy = async (p: RunningPgairlock, counted: boolean): Promise<ProxyRun> => {
      const before = counted ? await auditCounts(controlUrl) : undefined;
      const cpu0 = machineBusySeconds();
      const r = await runCommand('pgbench', pgbenchArgs({ host: '127.0.0.1', port: p.port, user, database: bench }, tpcb, { durationS, jobs: 1 }),
        { timeoutMs: (durationS + 60) * 1000, env: pgbenchEnv() });
      const cpu = machineBusySeconds() - cpu0;
      if (r.code !== 0) throw new Error(`pgbench exit code ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}\n${p.logTail()}`);
      const parsed = parsePgbenchOutput(r.stdout);
      const run: ProxyRun = { tps: parsed.tps, txns: parsed.transactions, cpuUs: (cpu * 1e6) / parsed.transactions };
      if (!before) return run;
      await new Promise((res) => setTimeout(res, 200)); // the last outcomes are group-committed
      const after = await auditCounts(controlUrl);
      return { ...run, records: (after.records - before.records) / parsed.transactions, batches: (after.batches - before.batches) / parsed.transactions };
    };

    const storeUrl = databaseUrl(admin, store);
    const audit = await AuditLog.open({ databaseUrl: storeUrl, instance: 'audit-cost', registry: new client.Registry() });
    cleanup.add('close the store bench log', () => audit.close());
    const inputs = await tpcbDecisionInputs(tpcbSession(0));
    const runStore = async (width: number): Promise<StoreRun> => {
      const before = await auditCounts(storeUrl);
      const cpu0 = machineBusySeconds();
      const until = Date.now() + storeS * 1000;
      // Write-ahead decisions, `width` at a time, each followed by its outcome (group-committed with the next
      // decisions), so the records are TPC-B's mix: half decisions, half outcomes.
      while (Date.now() < until) {
        const receipts = await Promise.all(Array.from({ length: width }, (_, i) => audit.recordDecision(inputs[i % inputs.length]!)));
        for (const r of receipts) audit.recordOutcome(r, { status: 'ok', commandTag: 'UPDATE 1', rows: 1, durationMs: 0.5 });
      }
      await audit.flush();
      const cpu = machineBusySeconds() - cpu0;
      const after = await auditCounts(storeUrl);
      return { width, cpuUs: cpu * 1e6, records: after.records - before.records, batches: after.batches - before.batches };
    };

    const offRuns: ProxyRun[] = [];
    const onRuns: ProxyRun[] = [];
    const storeRuns: StoreRun[] = [];
    for (let round = 1; round <= rounds; round++) {
      const steps: (() => Promise<void>)[] = [
        async () => { const r = await runProxy(off, false); offRuns.push(r); log(`[round ${round}] audit off: ${r.tps.toFixed(0)} tps, machine ${r.cpuUs.toFixed(0)} µs/txn`); },
        async () => {
          const r = await runProxy(on, true); onRuns.push(r);
          log(`[round ${round}] audit on:  ${r.tps.toFixed(0)} tps, machine ${r.cpuUs.toFixed(0)} µs/txn, ${r.records!.toFixed(2)} records and ${r.batches!.toFixed(2)} batches per txn`);
        },
        async () => {
          for (const width of STORE_WIDTHS) {
            const r = await runStore(width); storeRuns.push(r);
            log(`[round ${round}] store, ${width} at a time: ${r.records} records in ${r.batches} batches, machine ${(r.cpuUs / r.batches).toFixed(0)} µs/batch`);
          }
        },
      ];
      for (const step of round % 2 === 1 ? steps : [...steps].reverse()) await step();
    }

    const offCpu = median(offRuns.map((r) => r.cpuUs))!;
    const onCpu = median(onRuns.map((r) => r.cpuUs))!;
    const ratios = onRuns.map((r, i) => r.tps / offRuns[i]!.tps);
    const batches = median(onRuns.map((r) => r.batches!))!;
    const records = median(onRuns.map((r) => r.records!))!;
    const { perBatchUs, perRecordUs } = fitBatchCost(storeRuns);
    const extra = onCpu - offCpu;
    const storeShare = batches * perBatchUs + records * perRecordUs;
    const budget = offCpu * (1 / TARGET - 1);
    const us = (x: number) => `${x.toFixed(0)} µs`;
    const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
    const lines = [
      '',
      '== Audit cost model: pgbench TPC-B -M prepared -c 8 (medians over rounds) ==',
      `TPS audit on / audit off          ${median(ratios)!.toFixed(2)}x (rounds: ${ratios.map((x) => `${x.toFixed(2)}x`).join(', ')}); target >= ${TARGET}x`,
      `machine CPU per transaction       audit off ${us(offCpu)}, audit on ${us(onCpu)}: the audit adds ${us(extra)} (${pct(extra / offCpu)} of audit off)`,
      `budget for the target             ${us(budget)} per transaction (${pct(1 / TARGET - 1)} of audit off, if CPU-bound)`,
      `audit work per transaction        ${records.toFixed(2)} records in ${batches.toFixed(2)} control-database transactions (batches)`,
      `audit log cost (fit, ${storeRuns.length} runs)     ${us(perBatchUs)} per batch + ${us(perRecordUs)} per record (machine CPU: writer, server, kernel)`,
      `audit log share of the cost       ${us(storeShare)} per transaction (${pct(storeShare / extra)} of what the audit adds; the rest, ${us(extra - storeShare)}, is the proxy's around it)`,
      `best case, that rest free         ${(offCpu / (offCpu + storeShare)).toFixed(2)}x of audit off (this audit log, this batching, CPU-bound)`,
      `audit log share vs the budget     ${(storeShare / budget).toFixed(1)}x the whole budget`,
      '',
    ];
    process.stdout.write(lines.join('\n'));
    return 0;
  } finally {
    await cleanup.runAll(log);
  }
}

main().then((code) => { process.exitCode = code; }, (err: unknown) => {
  log(`audit-cost: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  process.exitCode = 1;
});
