/**
 * Pure bookkeeping of a benchmark: the interleaved schedule, per-run records, medians and the paired
 * ratios. Ratios are taken per round (the two targets ran back to back on the same workload) and then
 * the median is reported: machine noise that hits one round hits both sides of its ratio.
 */

export type TargetKind = 'direct' | 'pgbouncer' | 'pgairlock';

export interface TargetInfo {
  /** Unique key, e.g. "direct", "pgbouncer", "pgairlock", "pgairlock-2". */
  readonly id: string;
  /** Shown in tables. */
  readonly label: string;
  readonly kind: TargetKind;
}

export interface ScheduledRun {
  readonly round: number;
  readonly workload: string;
  readonly target: string;
}

/**
 * Rounds x workloads x targets, round-robin over targets within each (round, workload). The starting
 * target rotates so no target always runs first (right after another workload) or last.
 */
export function interleavedSchedule(rounds: number, workloads: readonly string[], targets: readonly string[]): ScheduledRun[] {
  const out: ScheduledRun[] = [];
  for (let round = 0; round < rounds; round++) {
    workloads.forEach((workload, wi) => {
      for (let k = 0; k < targets.length; k++) {
        const target = targets[(round + wi + k) % targets.length]!;
        out.push({ round: round + 1, workload, target });
      }
    });
  }
  return out;
}

export type RunRecord = ScheduledRun & {
  /** 1-minute load average when the run started: other work on the machine, the main source of noise. */
  readonly load1?: number;
} & (
    | {
        readonly ok: true;
        readonly tps: number;
        readonly transactions: number;
        readonly failed: number;
        readonly latencyMs: number | undefined;
        /** CPU seconds (user+system) the proxy process used during the run; undefined for direct. */
        readonly proxyCpuSeconds: number | undefined;
      }
    | { readonly ok: false; readonly error: string }
  );

/** Proxy CPU per transaction in µs; undefined when not measured. */
export function cpuUsPerTxn(r: RunRecord): number | undefined {
  if (!r.ok || r.proxyCpuSeconds === undefined || r.transactions <= 0) return undefined;
  return (r.proxyCpuSeconds * 1e6) / r.transactions;
}

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export interface Cell {
  readonly workload: string;
  readonly target: string;
  /** Successful runs. */
  readonly n: number;
  readonly failedRuns: number;
  readonly tpsMedian: number | undefined;
  readonly tpsMin: number | undefined;
  readonly tpsMax: number | undefined;
  readonly cpuUsPerTxnMedian: number | undefined;
  /** Transactions pgbench itself reported as failed, summed over runs. */
  readonly failedTransactions: number;
}

export function summarizeCell(records: readonly RunRecord[], workload: string, target: string): Cell {
  const mine = records.filter((r) => r.workload === workload && r.target === target);
  const ok = mine.filter((r): r is Extract<RunRecord, { ok: true }> => r.ok);
  const tps = ok.map((r) => r.tps);
  const cpu = ok.map(cpuUsPerTxn).filter((v): v is number => v !== undefined);
  return {
    workload,
    target,
    n: ok.length,
    failedRuns: mine.length - ok.length,
    tpsMedian: median(tps),
    tpsMin: tps.length ? Math.min(...tps) : undefined,
    tpsMax: tps.length ? Math.max(...tps) : undefined,
    cpuUsPerTxnMedian: median(cpu),
    failedTransactions: ok.reduce((sum, r) => sum + r.failed, 0),
  };
}

export interface Ratio {
  readonly workload: string;
  readonly numerator: string;
  readonly denominator: string;
  /** Rounds in which both targets succeeded. */
  readonly pairs: number;
  readonly median: number | undefined;
  readonly min: number | undefined;
  readonly max: number | undefined;
}

/** numerator TPS / denominator TPS per round (same workload), then median/min/max over rounds. */
export function pairedRatio(records: readonly RunRecord[], workload: string, numerator: string, denominator: string): Ratio {
  const tpsOf = (target: string, round: number): number | undefined => {
    const r = records.find((x) => x.workload === workload && x.target === target && x.round === round);
    return r?.ok && r.tps > 0 ? r.tps : undefined;
  };
  const rounds = [...new Set(records.map((r) => r.round))];
  const ratios: number[] = [];
  for (const round of rounds) {
    const a = tpsOf(numerator, round);
    const b = tpsOf(denominator, round);
    if (a !== undefined && b !== undefined) ratios.push(a / b);
  }
  return {
    workload,
    numerator,
    denominator,
    pairs: ratios.length,
    median: median(ratios),
    min: ratios.length ? Math.min(...ratios) : undefined,
    max: ratios.length ? Math.max(...ratios) : undefined,
  };
}

/** numerator / denominator of the median proxy CPU µs per transaction (both must be proxies). */
export function cpuRatio(records: readonly RunRecord[], workload: string, numerator: string, denominator: string): number | undefined {
  const a = summarizeCell(records, workload, numerator).cpuUsPerTxnMedian;
  const b = summarizeCell(records, workload, denominator).cpuUsPerTxnMedian;
  return a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
}

/** The ratios worth printing: every pgairlock variant against pgbouncer and direct, and pgbouncer against direct. */
export function ratiosToReport(targets: readonly TargetInfo[]): { numerator: string; denominator: string }[] {
  const ids = new Set(targets.map((t) => t.id));
  const out: { numerator: string; denominator: string }[] = [];
  for (const t of targets.filter((x) => x.kind === 'pgairlock')) {
    if (ids.has('pgbouncer')) out.push({ numerator: t.id, denominator: 'pgbouncer' });
    if (ids.has('direct')) out.push({ numerator: t.id, denominator: 'direct' });
  }
  if (ids.has('pgbouncer') && ids.has('direct')) out.push({ numerator: 'pgbouncer', denominator: 'direct' });
  // The main pgairlock target over each variant (e.g. audit on / audit off: issue 5's TPC-B target), per round.
  const [main, ...variants] = targets.filter((x) => x.kind === 'pgairlock');
  for (const v of variants) out.push({ numerator: main!.id, denominator: v.id });
  return out;
}

/** A measured run of the audit log: machine CPU it used in all, and the batches (transactions) and records it wrote. */
export interface CostSample { readonly totalCpuUs: number; readonly batches: number; readonly records: number }

export interface BatchCost {
  /** µs of CPU per batch (one INSERT and COMMIT on the control database, round trip included). */
  readonly perBatchUs: number;
  /** µs of CPU per record in a batch (building, hashing, sending, storing it). */
  readonly perRecordUs: number;
}

/**
 * Least squares of cpu = a·batches + b·records over the runs (no intercept: subtract idle CPU first): the cost per
 * batch (a) and per record (b). Runs must differ in records per batch, or the two cannot be told apart; a fit with a
 * cost <= 0 is noise, not a measurement, and is refused.
 */
export function fitBatchCost(runs: readonly CostSample[]): BatchCost {
  let bb = 0; let br = 0; let rr = 0; let cb = 0; let cr = 0;
  for (const r of runs) {
    bb += r.batches * r.batches; br += r.batches * r.records; rr += r.records * r.records;
    cb += r.totalCpuUs * r.batches; cr += r.totalCpuUs * r.records;
  }
  const det = bb * rr - br * br;
  // Relative to its terms: runs whose records per batch are (nearly) the same leave det at rounding noise.
  if (!(Math.abs(det) > 1e-9 * bb * rr)) throw new Error('the audit-log runs cannot separate batch and record costs (records per batch must differ between runs)');
  const fit = { perBatchUs: (cb * rr - cr * br) / det, perRecordUs: (bb * cr - br * cb) / det };
  if (!(fit.perBatchUs > 0 && fit.perRecordUs > 0)) {
    throw new Error(`the audit-log runs fit to ${fit.perBatchUs.toFixed(0)} µs per batch and ${fit.perRecordUs.toFixed(0)} µs per record: noise (the machine was busy?); run again with more --rounds or --store-seconds`);
  }
  return fit;
}

/** What bench/audit-cost.ts concludes from its medians (docs/benchmarks.md, "Audit" / "Cost model"). */
export interface AuditCostModel {
  /** Machine CPU per transaction the audit adds (on - off). */
  readonly addedUs: number;
  /** The most it may add for on/off >= target, if throughput is bound by CPU: off x (1/target - 1). */
  readonly budgetUs: number;
  /** Per transaction: batches x perBatch + records x perRecord. */
  readonly auditLogUs: number;
  /** The rest of what the audit adds: the proxy's work around the audit log. */
  readonly restUs: number;
  /** on/off if the rest cost nothing: off / (off + auditLog). */
  readonly bestRatio: number;
}

export function auditCostModel(m: { offUs: number; onUs: number; batchesPerTxn: number; recordsPerTxn: number; cost: BatchCost; target: number }): AuditCostModel {
  const addedUs = m.onUs - m.offUs;
  const auditLogUs = m.batchesPerTxn * m.cost.perBatchUs + m.recordsPerTxn * m.cost.perRecordUs;
  return {
    addedUs,
    budgetUs: m.offUs * (1 / m.target - 1),
    auditLogUs,
    restUs: addedUs - auditLogUs,
    bestRatio: m.offUs / (m.offUs + auditLogUs),
  };
}
