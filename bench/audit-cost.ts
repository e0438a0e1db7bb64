/**
 * Where the audit trail's cost goes under pgbench TPC-B (issue 5: audit on at most 15 % below audit off), as a
 * cost model measured in one run on this machine:
 *
 *   npm run bench:audit-cost -- [--rounds 3] [--duration 8] [--store-seconds 4] [--pgairlock-entry tsx|dist] [--upstream <url>]
 *
 * Per round, back to back (order alternating between rounds):
 * - pgbench TPC-B -M prepared -c 8 through pgairlock with the audit off and with it on (its own control database),
 *   measuring the machine's busy CPU per transaction (/proc/stat: every process, kernel threads and interrupts) and,
 *   with the audit on, how many records and control-database transactions (batches) each one cost;
 * - the audit log alone (AuditLog in this process against another scratch database, no proxy): TPC-B decision
 *   records written ahead, one at a time and then 32 at a time, each followed by its outcome, measuring machine
 *   CPU, batches and records.
 * Before each step the machine's idle CPU (nothing of ours running) is measured and subtracted. A least-squares fit
 * of the audit-log runs gives the CPU of one batch and of one record in it, all in: the writer's work in this
 * process (building, hashing, sending) and the server's and the kernel's. With the batches and records per
 * transaction the proxy produced, that is the audit log's share of what the audit adds; the rest is the proxy's
 * work around it. The report ends with the best TPS ratio reachable if that rest were free, next to the budget.
 *
 * Every figure is a ratio or a share from the same run: absolute CPU describes this machine at this moment only.
 * Creates and drops its own databases (docs/benchmarks.md, "Audit" / "Cost model").
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import client from 'prom-client';
import { stringify as stringifyYaml } from 'yaml';
import { AuditLog } from '../governance/audit/log.js';
import { Cleanup, Interrupt } from './lib/cleanup.js';
import { machineBusySeconds } from './lib/cpu.js';
import { startPgairlock, type PgairlockEntry, type RunningPgairlock } from './lib/pgairlock.js';
import { parsePgbenchOutput, pgbenchArgs, pgbenchEnv, runCommand, WORKLOADS } from './lib/pgbench.js';
import { adminQuery, createDatabase, databaseUrl, dropDatabase, initPgbench, scratchName, upstreamConn } from './lib/scratch.js';
import { auditCostModel, fitBatchCost, median, type CostSample } from './lib/stats.js';
import { TPCB_TAGS, tpcbDecisionInputs, tpcbSession } from './lib/tpcb-audit.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TARGET = 0.85;
/** Decisions written at a time in the audit-log runs: batches of about 2 and about 32 records tell the two costs apart. */
const STORE_WIDTHS = [1, 32] as const;
const TPCB = WORKLOADS.find((w) => w.id === 'tpcb-prepared')!;
const log = (line: string) => process.stderr.write(`${line}\n`);

const HELP = `Usage: npm run bench:audit-cost -- [options]
  --rounds <n>               interleaved rounds (default 3)
  --duration <s>             seconds per pgbench run (default 8)
  --store-seconds <s>        seconds per audit-log run (default 4)
  --pgairlock-entry <e>      tsx (default) or dist (npm run build first)
  --upstream <url>           the PostgreSQL server (default $PGAIRLOCK_BENCH_UPSTREAM or postgres://postgres@127.0.0.1:5432/postgres)
Method and output: docs/benchmarks.md, section "Audit", "Cost model".
`;

interface Options { rounds: number; durationS: number; storeS: number; entry: PgairlockEntry; upstream: string }

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '8' },
      'store-seconds': { type: 'string', default: '4' },
      'pgairlock-entry': { type: 'string', default: 'tsx' },
      upstream: { type: 'string', default: process.env.PGAIRLOCK_BENCH_UPSTREAM ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const int = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be an integer >= 1, got "${v}"`);
    return n;
  };
  const entry = values['pgairlock-entry'];
  if (entry !== 'tsx' && entry !== 'dist') throw new Error(`--pgairlock-entry must be tsx or dist, got "${entry}"`);
  return { rounds: int('rounds', values.rounds), durationS: int('duration', values.duration), storeS: int('store-seconds', values['store-seconds']), entry, upstream: values.upstream };
}

/** Machine busy CPU of a step, less what the machine burns idle over the same time (other processes, timers). */
class CpuMeter {
  private idlePerSecond = 0;

  /** Busy seconds per second with nothing of ours running, over `ms`. */
  async calibrate(ms = 1000): Promise<void> {
    const b0 = machineBusySeconds();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, ms));
    this.idlePerSecond = Math.max(0, (machineBusySeconds() - b0) / ((performance.now() - t0) / 1000));
  }

  /** Runs `step` and returns its result with the CPU it cost (µs) and the machine's utilisation meanwhile (0-1). */
  async measure<T>(step: () => Promise<T>): Promise<{ value: T; cpuUs: number; utilisation: number }> {
    const b0 = machineBusySeconds();
    const t0 = performance.now();
    const value = await step();
    const busy = machineBusySeconds() - b0;
    const seconds = (performance.now() - t0) / 1000;
    return { value, cpuUs: Math.max(0, busy - this.idlePerSecond * seconds) * 1e6, utilisation: busy / (seconds * os.availableParallelism()) };
  }

  get idle(): number { return this.idlePerSecond; }
}

interface Counts { readonly records: number; readonly batches: number }

/**
 * Records in an audit log, and the writer transactions that wrote them: governance/audit/log.ts writes each batch
 * as one autocommit INSERT (no savepoints), so the rows of a batch share their xmin.
 */
async function auditCounts(url: string): Promise<Counts> {
  const r = await adminQuery<{ records: number; batches: number }>(url,
    'SELECT count(*)::int AS records, count(DISTINCT xmin::text)::int AS batches FROM pgairlock.audit_log', 30_000);
  return r.rows[0]!;
}

interface ProxyRun { readonly tps: number; readonly cpuUsPerTxn: number; readonly utilisation: number }
interface AuditedRun extends ProxyRun { readonly recordsPerTxn: number; readonly batchesPerTxn: number }
interface StoreRun extends CostSample { readonly width: number; readonly utilisation: number }

async function main(): Promise<number> {
  let opts: Options | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    log(`audit-cost: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    return 2;
  }
  if (opts === 'help') { process.stdout.write(HELP); return 0; }
  const o = opts;
  const conn = upstreamConn(new URL(o.upstream));
  const cleanup = new Cleanup();
  const interrupt = new Interrupt(log, 'audit-cost');

  const base = scratchName();
  const [bench, control, store] = [base, `${base}_control`, `${base}_store`];
  const configDir = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-audit-cost-'));
  cleanup.add('remove configs', () => Promise.resolve(rmSync(configDir, { recursive: true, force: true })));
  try {
    for (const db of [bench, control, store]) {
      cleanup.add(`drop database ${db}`, () => dropDatabase(o.upstream, db), 180_000);
      await createDatabase(o.upstream, db);
      interrupt.check();
    }
    log(`audit-cost: pgbench -i -s 10 into ${bench}`);
    await initPgbench({ ...conn, database: bench }, 10, 600_000, (kill) => { interrupt.current = kill; });
    interrupt.current = undefined;
    interrupt.check();

    const start = async (label: string, audit: Record<string, unknown>): Promise<RunningPgairlock> => {
      const file = path.join(configDir, `${label}.yaml`);
      writeFileSync(file, stringifyYaml({ audit, log: { level: 'warn' } }));
      const p = await startPgairlock({ repoRoot: REPO_ROOT, entry: o.entry, upstreamUrl: o.upstream, variant: { label, configFile: file }, startTimeoutMs: 60_000 });
      cleanup.add(`stop ${label}`, p.stop);
      log(`audit-cost: ${label} on 127.0.0.1:${p.port} (pid ${p.pid}, ${o.entry})`);
      interrupt.check();
      return p;
    };
    const controlUrl = databaseUrl(o.upstream, control);
    const on = await start('audit-on', { database_url: controlUrl });
    const off = await start('audit-off', { enabled: false });

    const meter = new CpuMeter();
    const pgbench = async (p: RunningPgairlock, durationS: number) => {
      const r = await runCommand('pgbench', pgbenchArgs({ host: '127.0.0.1', port: p.port, user: conn.user, database: bench }, TPCB, { durationS, jobs: 1 }),
        { timeoutMs: (durationS + 60) * 1000, env: pgbenchEnv(), onStart: (_pid, kill) => { interrupt.current = kill; } });
      interrupt.current = undefined;
      interrupt.check();
      if (r.code !== 0) throw new Error(`pgbench exit code ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}\n${p.logTail()}`);
      return parsePgbenchOutput(r.stdout);
    };
    const runOff = async (): Promise<ProxyRun> => {
      const m = await meter.measure(() => pgbench(off, o.durationS));
      return { tps: m.value.tps, cpuUsPerTxn: m.cpuUs / m.value.transactions, utilisation: m.utilisation };
    };
    const runOn = async (): Promise<AuditedRun> => {
      const before = await auditCounts(controlUrl);
      const m = await meter.measure(() => pgbench(on, o.durationS));
      // Outcomes are group-committed after the last transaction: wait until the count stops moving.
      let after = await auditCounts(controlUrl);
      for (let i = 0; i < 20; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const again = await auditCounts(controlUrl);
        if (again.records === after.records) break;
        after = again;
      }
      const n = m.value.transactions;
      return { tps: m.value.tps, cpuUsPerTxn: m.cpuUs / n, utilisation: m.utilisation, recordsPerTxn: (after.records - before.records) / n, batchesPerTxn: (after.batches - before.batches) / n };
    };

    const storeUrl = databaseUrl(o.upstream, store);
    const audit = await AuditLog.open({ databaseUrl: storeUrl, instance: 'audit-cost', registry: new client.Registry() });
    cleanup.add('close the audit-log bench', () => audit.close());
    const inputs = await tpcbDecisionInputs(tpcbSession(0));
    let next = 0;
    /** Write-ahead decisions, `width` at a time, each followed by its outcome: TPC-B's statements and mix of records. */
    const writeFor = async (width: number, seconds: number) => {
      const until = Date.now() + seconds * 1000;
      while (Date.now() < until && !interrupt.aborted) {
        const k = Array.from({ length: width }, () => next++ % inputs.length);
        const receipts = await Promise.all(k.map((i) => audit.recordDecision(inputs[i]!)));
        receipts.forEach((r, j) => audit.recordOutcome(r, { status: 'ok', commandTag: TPCB_TAGS[k[j]!]!, rows: 1, durationMs: 0.5 }));
      }
      await audit.flush();
      interrupt.check();
    };
    const runStore = async (width: number): Promise<StoreRun> => {
      const before = await auditCounts(storeUrl);
      const m = await meter.measure(() => writeFor(width, o.storeS));
      const after = await auditCounts(storeUrl);
      return { width, totalCpuUs: m.cpuUs, utilisation: m.utilisation, records: after.records - before.records, batches: after.batches - before.batches };
    };

    // Warm-up, not measured: JIT, connections, the first serialisation of each statement's facts and rules.
    log('audit-cost: warm-up (3 s per proxy, 1 s per audit-log width)');
    await pgbench(off, 3);
    await pgbench(on, 3);
    for (const w of STORE_WIDTHS) await writeFor(w, 1);

    const offRuns: ProxyRun[] = [];
    const onRuns: AuditedRun[] = [];
    const storeRuns: StoreRun[] = [];
    const pct = (x: number) => `${(x * 100).toFixed(0)} %`;
    for (let round = 1; round <= o.rounds; round++) {
      const steps: (() => Promise<void>)[] = [
        async () => {
          const r = await runOff(); offRuns.push(r);
          log(`[round ${round}] audit off: ${r.tps.toFixed(0)} tps, machine ${r.cpuUsPerTxn.toFixed(0)} µs/txn (busy ${pct(r.utilisation)})`);
        },
        async () => {
          const r = await runOn(); onRuns.push(r);
          log(`[round ${round}] audit on:  ${r.tps.toFixed(0)} tps, machine ${r.cpuUsPerTxn.toFixed(0)} µs/txn (busy ${pct(r.utilisation)}), ${r.recordsPerTxn.toFixed(2)} records and ${r.batchesPerTxn.toFixed(2)} batches per txn`);
        },
        async () => {
          for (const width of STORE_WIDTHS) {
            const r = await runStore(width); storeRuns.push(r);
            log(`[round ${round}] audit log, ${width} at a time: ${r.records} records in ${r.batches} batches, machine ${(r.totalCpuUs / r.batches).toFixed(0)} µs per batch all in (busy ${pct(r.utilisation)})`);
          }
        },
      ];
      for (const step of round % 2 === 1 ? steps : [...steps].reverse()) {
        await meter.calibrate();
        await step();
      }
    }

    const offUs = median(offRuns.map((r) => r.cpuUsPerTxn))!;
    const onUs = median(onRuns.map((r) => r.cpuUsPerTxn))!;
    const batchesPerTxn = median(onRuns.map((r) => r.batchesPerTxn))!;
    const recordsPerTxn = median(onRuns.map((r) => r.recordsPerTxn))!;
    const tpsRatios = onRuns.map((r, i) => r.tps / offRuns[i]!.tps);
    const cost = fitBatchCost(storeRuns);
    const m = auditCostModel({ offUs, onUs, batchesPerTxn, recordsPerTxn, cost, target: TARGET });
    const us = (x: number) => `${x.toFixed(0)} µs`;
    const perBatch = (w: number) => median(storeRuns.filter((r) => r.width === w).map((r) => r.records / r.batches))!;
    process.stdout.write([
      '',
      `== Audit cost model: pgbench TPC-B -M prepared -c 8, ${o.rounds} rounds (medians) ==`,
      `TPS audit on / audit off           ${median(tpsRatios)!.toFixed(2)}x (rounds: ${tpsRatios.map((x) => `${x.toFixed(2)}x`).join(', ')}); target >= ${TARGET}x`,
      `CPU audit off / audit on           ${(offUs / onUs).toFixed(2)}x (the TPS ratio follows it when the machine is CPU-bound; busy during runs: ${[...onRuns, ...offRuns].map((r) => pct(r.utilisation)).join(', ')})`,
      `machine CPU per transaction        audit off ${us(offUs)}, audit on ${us(onUs)}: the audit adds ${us(m.addedUs)} (${pct(m.addedUs / offUs)} of audit off)`,
      `budget for the target              ${us(m.budgetUs)} per transaction (${pct(1 / TARGET - 1)} of audit off, if CPU-bound)`,
      `audit work per transaction         ${recordsPerTxn.toFixed(2)} records in ${batchesPerTxn.toFixed(2)} control-database transactions (batches)`,
      `audit log cost (fit, ${storeRuns.length} runs)      ${us(cost.perBatchUs)} per batch + ${us(cost.perRecordUs)} per record (batches of ${STORE_WIDTHS.map((w) => perBatch(w).toFixed(1)).join(' and ')} records)`,
      `audit log share                    ${us(m.auditLogUs)} per transaction: batches ${us(batchesPerTxn * cost.perBatchUs)}, records ${us(recordsPerTxn * cost.perRecordUs)} (${pct(m.auditLogUs / m.addedUs)} of what the audit adds)`,
      `the rest (proxy's work around it)  ${us(m.restUs)} per transaction`,
      `best case, the rest free           ${m.bestRatio.toFixed(2)}x of audit off (this audit log, this batching, CPU-bound)`,
      `audit log share vs the budget      ${(m.auditLogUs / m.budgetUs).toFixed(1)}x`,
      `idle machine CPU subtracted        ${(meter.idle * 1e3).toFixed(0)} ms per second at the last calibration`,
      '',
    ].join('\n'));
    return 0;
  } catch (err) {
    log(`audit-cost: ${interrupt.aborted ? 'interrupted' : err instanceof Error ? err.stack ?? err.message : String(err)}`);
    return interrupt.aborted ? 130 : 1;
  } finally {
    await cleanup.runAll(log);
  }
}

process.exitCode = await main();
