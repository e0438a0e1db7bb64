import type { MachineInfo } from './machine.js';
import { type RunRecord, type TargetInfo, cpuRatio, median, pairedRatio, ratiosToReport, summarizeCell } from './stats.js';

/**
 * Turns records into the printed report: ratios first (they are what a run can claim), then the
 * absolute medians, CPU per transaction, and the machine. Text for the terminal, Markdown for docs.
 */

/** Issue 2: the pass-through proxy must reach this fraction of pgbouncer's TPS on these workloads. */
export const TARGET_RATIO = 0.85;
export const TARGET_WORKLOADS: readonly string[] = ['select-simple', 'select-prepared'];

export type Style = 'text' | 'markdown';

export interface ReportInput {
  readonly targets: readonly TargetInfo[];
  readonly workloads: readonly { id: string; description: string }[];
  readonly records: readonly RunRecord[];
  readonly machine: MachineInfo;
  /** The command line that produced the run, to reproduce it. */
  readonly command: string;
  readonly settings: string;
  /** Targets that could not be started, with the reason. */
  readonly unavailable: readonly { label: string; reason: string }[];
  readonly loadAtEnd: readonly number[];
}

function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], style: Style): string {
  if (style === 'markdown') {
    const line = (cells: readonly string[]) => `| ${cells.join(' | ')} |`;
    return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
  }
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const fmtTps = (v: number | undefined) => (v === undefined ? '-' : Math.round(v).toString());
const fmtRatio = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(2)}x`);
const fmtUs = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1));

export function formatReport(input: ReportInput, style: Style): string {
  const labelOf = (id: string) => input.targets.find((t) => t.id === id)?.label ?? id;
  const out: string[] = [];
  const heading = (s: string) => out.push('', style === 'markdown' ? `#### ${s}` : `== ${s} ==`, '');

  const loads = input.records.map((r) => r.load1).filter((v): v is number => v !== undefined);
  const loadMedian = median(loads);
  if (loadMedian !== undefined && loadMedian > input.machine.cores) {
    out.push(
      `WARNING: the machine was busy with other work: 1-minute load average at run starts median ${loadMedian.toFixed(1)}, max ${Math.max(...loads).toFixed(1)}, on ${input.machine.cores} cores. ` +
        'TPS and TPS ratios are unreliable (see their ranges); proxy CPU µs per transaction is the steadier measure.',
    );
  }

  heading('Ratios (per round, same workload, back to back; median and range over rounds)');
  const ratioRows: string[][] = [];
  for (const w of input.workloads) {
    for (const pair of ratiosToReport(input.targets)) {
      const r = pairedRatio(input.records, w.id, pair.numerator, pair.denominator);
      const isGoal = pair.denominator === 'pgbouncer' && TARGET_WORKLOADS.includes(w.id) && input.targets.find((t) => t.id === pair.numerator)?.kind === 'pgairlock';
      const bothProxies = pair.numerator !== 'direct' && pair.denominator !== 'direct';
      const cpu = bothProxies ? cpuRatio(input.records, w.id, pair.numerator, pair.denominator) : undefined;
      const verdict = !isGoal ? '' : r.median === undefined ? 'no data' : r.median >= TARGET_RATIO ? `met (>= ${TARGET_RATIO})` : `NOT met (< ${TARGET_RATIO})`;
      ratioRows.push([
        w.description,
        `${labelOf(pair.numerator)} / ${labelOf(pair.denominator)}`,
        fmtRatio(r.median),
        r.pairs > 1 ? `${fmtRatio(r.min)} - ${fmtRatio(r.max)}` : '-',
        String(r.pairs),
        fmtRatio(cpu),
        verdict,
      ]);
    }
  }
  out.push(ratioRows.length ? renderTable(['workload', 'TPS ratio', 'median', 'range', 'rounds', 'CPU µs/txn ratio', 'issue target'], ratioRows, style) : '(no ratio: fewer than two targets ran)');

  heading('TPS (median over rounds) and proxy CPU per transaction');
  const rows: string[][] = [];
  for (const w of input.workloads) {
    for (const t of input.targets) {
      const c = summarizeCell(input.records, w.id, t.id);
      rows.push([
        w.description,
        t.label,
        fmtTps(c.tpsMedian),
        c.n > 1 ? `${fmtTps(c.tpsMin)} - ${fmtTps(c.tpsMax)}` : '-',
        t.kind === 'direct' ? 'n/a' : fmtUs(c.cpuUsPerTxnMedian),
        `${c.n}${c.failedRuns ? ` (+${c.failedRuns} failed)` : ''}`,
        String(c.failedTransactions),
      ]);
    }
  }
  out.push(renderTable(['workload', 'target', 'TPS', 'range', 'proxy CPU µs/txn', 'runs', 'failed txns'], rows, style));

  const failures = input.records.filter((r): r is Extract<RunRecord, { ok: false }> => !r.ok);
  if (failures.length || input.unavailable.length) {
    heading('Failures');
    for (const u of input.unavailable) out.push(`- ${u.label}: not started: ${u.reason.split('\n')[0]}`);
    for (const f of failures) out.push(`- round ${f.round}, ${f.workload}, ${labelOf(f.target)}: ${f.error.split('\n')[0]}`);
  }

  heading('Machine and settings');
  const m = input.machine;
  const facts: [string, string][] = [
    ['CPU', `${m.cores} cores, ${m.cpuModel}`],
    ['memory', `${m.memoryGiB} GiB`],
    ['kernel', m.kernel],
    ['PostgreSQL', `${m.postgres} (${m.postgresSettings})`],
    ['pgbench', m.pgbench],
    ['pgbouncer', m.pgbouncer ?? '(not used)'],
    ['node', m.node],
    ['load average at start / end', `${m.loadAtStart.join(' ')} / ${input.loadAtEnd.join(' ')}`],
    ['1-min load at run starts', loads.length ? `median ${loadMedian!.toFixed(1)}, min ${Math.min(...loads).toFixed(1)}, max ${Math.max(...loads).toFixed(1)}` : '-'],
    ['settings', input.settings],
    ['command', input.command],
  ];
  out.push(style === 'markdown' ? facts.map(([k, v]) => `- ${k}: ${k === 'command' ? `\`${v}\`` : v}`).join('\n') : facts.map(([k, v]) => `${k.padEnd(28)} ${v}`).join('\n'));
  out.push(
    '',
    'pgbench, PostgreSQL and the proxies share the same cores: absolute TPS describes this machine at this moment only; compare ratios from one run, never figures across runs.',
  );
  return out.join('\n').trimStart() + '\n';
}
