/**
 * Proxy-side and server-side cost of the audit records of one pgbench TPC-B transaction (-M prepared), without
 * the proxy: `node --import tsx test/audit/bench-tpcb.ts [admin-url] [seconds] [clients]`.
 * Each simulated client runs transactions as the decision path does for TPC-B: four DML decisions written
 * in the background (durability before-commit), their outcomes once each is committed, and the COMMIT barrier
 * (waiting for the four records). Facts come from the real analyzer; the rules are the default policy's size.
 * Prints this process's CPU (all threads) and the audit writer backend's CPU per transaction and per record.
 * Creates and drops its own database.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import client from 'prom-client';
import { adminQuery, createDatabase, databaseUrl, dropDatabase } from '../../bench/lib/scratch.js';
import { AuditLog } from '../../governance/audit/log.js';
import type { DecisionInput, DecisionReceipt } from '../../governance/audit/types.js';
import { TPCB_TAGS, tpcbDecisionInputs, tpcbSession } from '../../bench/lib/tpcb-audit.js';

const admin = process.argv[2] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const seconds = Number(process.argv[3] ?? 8);
const clients = Number(process.argv[4] ?? 8);
const name = `pgairlock_audit_tpcb_${process.pid}`;
await createDatabase(admin, name);
const url = databaseUrl(admin, name);

// A backend that exits mid-run (the read pool closes idle connections after 10 s) keeps its last reading.
const lastCpu = new Map<number, number>();
function cpuOf(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    const ms = (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
    lastCpu.set(pid, ms);
    return ms;
  } catch {
    return lastCpu.get(pid) ?? 0;
  }
}

try {
  const log = await AuditLog.open({ databaseUrl: url, instance: 'bench-tpcb', registry: new client.Registry() });
  // The writer's and the read pool's connections (the latter idle): the instance lock's holder is not one of them.
  const backends = (await adminQuery<{ pid: number }>(admin, `SELECT pid FROM pg_stat_activity WHERE datname = '${name}' AND application_name = 'pgairlock-audit:bench-tpcb'`)).rows.map((r) => r.pid);
  const serverCpu = () => backends.reduce((s, pid) => s + cpuOf(pid), 0);
  const lsnValue = Promise.resolve('3/29CB6520');
  let txns = 0;
  let stop = false;
  // Built before the warm-up, once per client (as a proxy session keeps its prepared statements' facts and rules).
  const clientInputs = await Promise.all(Array.from({ length: clients }, (_, c) => tpcbDecisionInputs(tpcbSession(c))));
  const run = async (c: number) => {
    const inputs = clientInputs[c]!;
    const session = inputs[0]!.session;
    while (!stop) {
      let lsn: Promise<string | null> | undefined;
      const pending: Promise<unknown>[] = [];
      for (const [i, base] of inputs.entries()) {
        const input: DecisionInput = { ...base, walLsn: () => (lsn ??= lsnValue) };
        const receipt: DecisionReceipt = await log.recordDecision(input, { durability: 'before-commit' });
        const durable = receipt.durable!;
        pending.push(durable);
        const started = performance.now();
        await new Promise<void>((res) => setImmediate(res)); // the statement runs on the server
        void durable.then(() => log.recordOutcome(receipt, { status: 'ok', commandTag: TPCB_TAGS[i]!, rows: 1, durationMs: performance.now() - started }, session), () => undefined);
      }
      await Promise.all(pending); // COMMIT barrier
      txns++;
    }
  };
  // warm-up
  let workers = Array.from({ length: clients }, (_, c) => run(c));
  await new Promise((res) => setTimeout(res, 1500));
  stop = true;
  await Promise.all(workers);
  await log.flush();
  stop = false;
  txns = 0;
  const cpu0 = process.cpuUsage();
  const srv0 = serverCpu();
  const t0 = performance.now();
  workers = Array.from({ length: clients }, (_, c) => run(c));
  await new Promise((res) => setTimeout(res, seconds * 1000));
  stop = true;
  await Promise.all(workers);
  await log.flush();
  const secs = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const srv = serverCpu() - srv0;
  const records = txns * 8;
  console.log(`${txns} transactions in ${secs.toFixed(1)} s: ${(txns / secs).toFixed(0)}/s (${(records / secs).toFixed(0)} records/s)`);
  console.log(`proxy-side CPU: ${((cpu.user + cpu.system) / txns).toFixed(0)} µs/txn (user ${(cpu.user / txns).toFixed(0)}, system ${(cpu.system / txns).toFixed(0)}), ${((cpu.user + cpu.system) / records).toFixed(1)} µs/record`);
  console.log(`writer backend CPU: ${((srv * 1000) / txns).toFixed(0)} µs/txn, ${((srv * 1000) / records).toFixed(1)} µs/record (${((srv / 1000 / secs) * 100).toFixed(0)}% busy)`);
  await log.close();
} finally {
  await dropDatabase(admin, name);
}
