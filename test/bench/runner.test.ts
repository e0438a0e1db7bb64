import { existsSync } from 'node:fs';
import { describe, expect, it, beforeAll } from 'vitest';
import { cpuSecondsBetween, machineBusySeconds, parseProcStat, readCpu, type CpuSample } from '../../bench/lib/cpu.js';
import { freePort } from '../../bench/lib/net.js';
import { PgbenchParseError, parsePgbenchOutput, pgbenchArgs, pgbenchEnv, runCommand, type Workload } from '../../bench/lib/pgbench.js';
import { startPgbouncer } from '../../bench/lib/pgbouncer.js';
import { initPgbench, upstreamConn } from '../../bench/lib/scratch.js';
import { auditCostModel, fitBatchCost, interleavedSchedule, pairedRatio, ratiosToReport, type RunRecord } from '../../bench/lib/stats.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';

// The benchmark's own tooling, run for real: pgbench against the test server, its report parsed, and
// the /proc CPU reader checked against processes that really did the work.

const db = useTestDatabase();
const upstream = new URL(db.url);
const host = upstream.hostname;
const port = Number(upstream.port || 5432);
const user = decodeURIComponent(upstream.username || 'postgres');
const small = (mode: Workload['mode']): Workload => ({ id: `t-${mode}`, description: 'test', script: 'select-only', mode, clients: 2 });

beforeAll(async () => {
  expect(postgresAvailable(), 'PostgreSQL must be reachable for the bench tooling test').toBe(true);
  await initPgbench({ host, port, user, database: db.name }, 1, 60_000);
});

describe('pgbench runner tooling', () => {
  it('parses a real 2 s select-only run and reads the CPU of the process doing it', async () => {
    const samples: CpuSample[] = [];
    let sampler: NodeJS.Timeout | undefined;
    const r = await runCommand('pgbench', pgbenchArgs({ host, port, user, database: db.name }, small('simple'), { durationS: 2, jobs: 1 }), {
      timeoutMs: 30_000,
      env: pgbenchEnv(),
      onStart: (pid) => {
        samples.push(readCpu(pid));
        // pgbench runs for 2 s; should it already be gone, the length assertion below says so.
        sampler = setTimeout(() => {
          try { samples.push(readCpu(pid)); } catch { /* asserted below */ }
        }, 1500);
      },
    });
    clearTimeout(sampler);
    expect(r.code, r.stderr).toBe(0);
    const parsed = parsePgbenchOutput(r.stdout);
    expect(parsed.mode).toBe('simple');
    expect(parsed.clients).toBe(2);
    expect(parsed.threads).toBe(1);
    expect(parsed.failed).toBe(0);
    expect(parsed.tps).toBeGreaterThan(50);
    expect(parsed.transactions).toBeGreaterThan(100);
    // transactions / tps is the measured time: about the 2 s asked for.
    expect(parsed.transactions / parsed.tps).toBeGreaterThan(1.5);
    expect(parsed.transactions / parsed.tps).toBeLessThan(3);
    expect(parsed.latencyMs).toBeGreaterThan(0);

    // pgbench was busy for 1.5 s between the two samples: it used some CPU, and no more than 2 cores' worth.
    expect(samples).toHaveLength(2);
    const used = cpuSecondsBetween(samples[0]!, samples[1]!);
    expect(used).toBeGreaterThan(0);
    expect(used).toBeLessThan(3.5);
  });

  it('fails loudly on the output of a pgbench that could not connect', async () => {
    const closed = await freePort();
    const r = await runCommand('pgbench', pgbenchArgs({ host: '127.0.0.1', port: closed, user, database: db.name }, small('prepared'), { durationS: 1, jobs: 1 }), {
      timeoutMs: 20_000,
      env: pgbenchEnv(),
    });
    expect(r.code).not.toBe(0);
    expect(() => parsePgbenchOutput(r.stdout)).toThrow(PgbenchParseError);
  });

  it('measures a private pgbouncer: pgbench through it in extended mode, proxy CPU per transaction', async () => {
    const bouncer = await startPgbouncer({ upstreamHost: host, upstreamPort: port, users: [user], osUser: 'postgres', startTimeoutMs: 10_000, poolSize: 4 });
    try {
      const before = readCpu(bouncer.pid, { includeDescendants: true });
      const r = await runCommand('pgbench', pgbenchArgs({ host: '127.0.0.1', port: bouncer.port, user, database: db.name }, small('extended'), { durationS: 2, jobs: 1 }), {
        timeoutMs: 30_000,
        env: pgbenchEnv(),
      });
      const after = readCpu(bouncer.pid, { includeDescendants: true });
      expect(r.code, `${r.stderr}\n${bouncer.logTail()}`).toBe(0);
      const parsed = parsePgbenchOutput(r.stdout);
      expect(parsed.mode).toBe('extended');
      expect(parsed.transactions).toBeGreaterThan(100);
      const cpu = cpuSecondsBetween(before, after);
      expect(cpu).toBeGreaterThan(0);
      const usPerTxn = (cpu * 1e6) / parsed.transactions;
      // pgbouncer spends tens of µs per select-only transaction; anything outside 1 µs..10 ms is a broken reader.
      expect(usPerTxn).toBeGreaterThan(1);
      expect(usPerTxn).toBeLessThan(10_000);
    } finally {
      await bouncer.stop();
    }
    expect(bouncer.alive()).toBe(false);
    expect(existsSync(`/proc/${bouncer.pid}`)).toBe(false);
  });
});

describe('bench bookkeeping', () => {
  it('reads the upstream as libpq does: ?host= (a socket directory) wins, defaults for the rest', () => {
    expect(upstreamConn(new URL('postgres://alice@db.example:6543/x'))).toEqual({ host: 'db.example', port: 6543, user: 'alice' });
    expect(upstreamConn(new URL('postgres:///x?host=/var/run/postgresql'))).toEqual({ host: '/var/run/postgresql', port: 5432, user: 'postgres' });
    expect(upstreamConn(new URL('postgres://%2Ftmp%2Fsock/x')).host).toBe('/tmp/sock');
  });

  it('machine busy CPU covers at least what this process burns meanwhile', () => {
    const m0 = machineBusySeconds();
    const own0 = process.cpuUsage();
    const until = performance.now() + 300;
    let x = 0;
    while (performance.now() < until) x += Math.sqrt(x + 1);
    const own = process.cpuUsage(own0);
    const machine = machineBusySeconds() - m0;
    expect(x).toBeGreaterThan(0);
    // Clock ticks are 10 ms: allow two of them on each reading.
    expect(machine).toBeGreaterThanOrEqual((own.user + own.system) / 1e6 - 0.04);
    expect(machine).toBeGreaterThan(0.2);
  });

  it('separates the cost per batch from the cost per record (audit-cost), and refuses runs that cannot', () => {
    // 700 µs a batch, 30 µs a record, measured with a little noise at two batch sizes.
    const run = (batches: number, perBatch: number, noise: number) => ({ batches, records: batches * perBatch, totalCpuUs: batches * (700 + 30 * perBatch) + noise });
    const fit = fitBatchCost([run(1000, 2, 500), run(100, 64, -400), run(900, 2, -300), run(120, 64, 200)]);
    expect(fit.perBatchUs).toBeGreaterThan(690);
    expect(fit.perBatchUs).toBeLessThan(710);
    expect(fit.perRecordUs).toBeGreaterThan(29);
    expect(fit.perRecordUs).toBeLessThan(31);
    expect(() => fitBatchCost([run(10, 4, 0), run(20, 4, 0)])).toThrow('records per batch must differ');
    // Noise that makes a cost negative is refused, not reported.
    expect(() => fitBatchCost([{ batches: 100, records: 200, totalCpuUs: 80_000 }, { batches: 10, records: 640, totalCpuUs: 5_000 }])).toThrow('noise');
  });

  it('the audit cost model: budget, the audit log\'s share and the best ratio without the rest', () => {
    const m = auditCostModel({ offUs: 1000, onUs: 2500, batchesPerTxn: 0.5, recordsPerTxn: 8, cost: { perBatchUs: 400, perRecordUs: 50 }, target: 0.8 });
    expect(m.addedUs).toBe(1500);
    expect(m.budgetUs).toBeCloseTo(250, 6); // 1000 x (1/0.8 - 1)
    expect(m.auditLogUs).toBe(600); // 0.5 x 400 + 8 x 50
    expect(m.restUs).toBe(900);
    expect(m.bestRatio).toBeCloseTo(1000 / 1600, 9);
  });

  it('parses /proc/<pid>/stat with parentheses and spaces in the command name', () => {
    const fields = ['S', '1', ...Array.from({ length: 9 }, () => '0'), '250', '75', ...Array.from({ length: 37 }, () => '0')];
    const st = parseProcStat(`4242 (my (odd) name) ${fields.join(' ')}`);
    expect(st).toEqual({ pid: 4242, ppid: 1, userTicks: 250, systemTicks: 75 });
  });

  it('interleaves targets round-robin and rotates which goes first', () => {
    const s = interleavedSchedule(2, ['a', 'b'], ['x', 'y', 'z']);
    expect(s).toHaveLength(12);
    expect(s.slice(0, 3).map((r) => r.target)).toEqual(['x', 'y', 'z']);
    expect(s.slice(3, 6).map((r) => r.target)).toEqual(['y', 'z', 'x']);
    expect(s.slice(6, 9).map((r) => `${r.round}${r.workload}${r.target}`)).toEqual(['2ay', '2az', '2ax']);
  });

  it('takes ratios within a round and skips rounds where either side failed', () => {
    const ok = (round: number, target: string, tps: number): RunRecord => ({ round, workload: 'w', target, ok: true, tps, transactions: tps, failed: 0, latencyMs: 1, proxyCpuSeconds: undefined });
    const records: RunRecord[] = [
      ok(1, 'p', 90), ok(1, 'b', 100),
      ok(2, 'p', 40), ok(2, 'b', 50),
      ok(3, 'p', 70), { round: 3, workload: 'w', target: 'b', ok: false, error: 'boom' },
    ];
    const r = pairedRatio(records, 'w', 'p', 'b');
    expect(r.pairs).toBe(2);
    expect(r.median).toBeCloseTo(0.85, 10);
    expect(r.min).toBeCloseTo(0.8, 10);
    expect(r.max).toBeCloseTo(0.9, 10);
  });

  it('reports every pgairlock target against the peers, and the main pgairlock target against each variant (audit on / audit off)', () => {
    const pairs = ratiosToReport([
      { id: 'direct', label: 'direct', kind: 'direct' }, { id: 'pgbouncer', label: 'pgbouncer', kind: 'pgbouncer' },
      { id: 'pgairlock', label: 'pgairlock', kind: 'pgairlock' }, { id: 'pgairlock-2', label: 'audit-off', kind: 'pgairlock' },
    ]).map((p) => `${p.numerator}/${p.denominator}`);
    expect(pairs).toEqual([
      'pgairlock/pgbouncer', 'pgairlock/direct', 'pgairlock-2/pgbouncer', 'pgairlock-2/direct', 'pgbouncer/direct', 'pgairlock/pgairlock-2',
    ]);
    expect(ratiosToReport([{ id: 'pgairlock', label: 'pgairlock', kind: 'pgairlock' }])).toEqual([]);
  });
});
