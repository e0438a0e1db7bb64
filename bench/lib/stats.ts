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

/** A measured run of the audit log: machine CPU used, and the batches (transactions) and records it wrote. */
export interface CostSample { readonly cpuUs: number; readonly batches: number; readonly records: number }

/**
 * Least squares of cpu = a·batches + b·records over the runs (no intercept): µs of CPU per batch (a) and per
 * record (b). Runs must differ in records per batch, or the two cannot be told apart.
 */
export function fitBatchCost(runs: readonly CostSample[]): { perBatchUs: number; perRecordUs: number } {
  let bb = 0; let br = 0; let rr = 0; let cb = 0; let cr = 0;
  for (const r of runs) {
    bb += r.batches * r.batches; br += r.batches * r.records; rr += r.records * r.records;
    cb += r.cpuUs * r.batches; cr += r.cpuUs * r.records;
  }
  const det = bb * rr - br * br;
  if (det === 0) throw new Error('store runs cannot separate batch and record costs (records per batch must differ between runs)');
  return { perBatchUs: (cb * rr - cr * br) / det, perRecordUs: (bb * cr - br * cb) / det };
}
