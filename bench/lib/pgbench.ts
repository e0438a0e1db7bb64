import { spawn } from 'node:child_process';

/**
 * pgbench workloads, argument building and output parsing. The parser is the one place that knows
 * pgbench's report format (PostgreSQL 13-18 print "tps = N (without initial connection time)";
 * older ones print "(excluding connections establishing)"); keep it tolerant of both.
 */

export type QueryMode = 'simple' | 'extended' | 'prepared';

export interface Workload {
  /** Short id used by --only and in tables. */
  readonly id: string;
  /** What pgbench is asked to do, as a human reads it. */
  readonly description: string;
  /** Built-in script: select-only (-S) or TPC-B-like (the default). */
  readonly script: 'select-only' | 'tpcb';
  readonly mode: QueryMode;
  readonly clients: number;
}

export const WORKLOADS: readonly Workload[] = [
  { id: 'select-simple', description: '-S -M simple -c 8', script: 'select-only', mode: 'simple', clients: 8 },
  { id: 'select-prepared', description: '-S -M prepared -c 8', script: 'select-only', mode: 'prepared', clients: 8 },
  { id: 'select-extended', description: '-S -M extended -c 8', script: 'select-only', mode: 'extended', clients: 8 },
  { id: 'tpcb-prepared', description: 'TPC-B -M prepared -c 8', script: 'tpcb', mode: 'prepared', clients: 8 },
];

/** Where pgbench connects: one TCP endpoint, the scratch database. */
export interface Endpoint {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
}

export interface PgbenchOptions {
  readonly durationS: number;
  /** pgbench -j (worker threads); 1 is pgbench's default. */
  readonly jobs: number;
}

/** The pgbench argument list for one run (no shell involved). */
export function pgbenchArgs(endpoint: Endpoint, workload: Workload, opts: PgbenchOptions): string[] {
  const args = ['-h', endpoint.host, '-p', String(endpoint.port), '-U', endpoint.user];
  if (workload.script === 'select-only') {
    // The select-only script changes nothing, so the pre-run VACUUM is pointless work through the target.
    args.push('-S', '-n');
  }
  args.push('-M', workload.mode, '-c', String(workload.clients), '-j', String(opts.jobs), '-T', String(opts.durationS));
  args.push(endpoint.database);
  return args;
}

export interface PgbenchResult {
  /** Transactions per second, excluding the initial connection time. */
  readonly tps: number;
  /** "number of transactions actually processed". */
  readonly transactions: number;
  /** "number of failed transactions" (0 when pgbench does not print it, as before PostgreSQL 15). */
  readonly failed: number;
  /** "latency average" in ms, when printed. */
  readonly latencyMs: number | undefined;
  readonly clients: number | undefined;
  readonly threads: number | undefined;
  readonly mode: QueryMode | undefined;
}

export class PgbenchParseError extends Error {
  override readonly name = 'PgbenchParseError';
}

/** The value after "key:" or "key =" on the first line starting with key, trimmed. */
function field(lines: readonly string[], key: string): string | undefined {
  for (const line of lines) {
    if (!line.startsWith(key)) continue;
    const rest = line.slice(key.length).trimStart();
    if (rest.startsWith(':') || rest.startsWith('=')) return rest.slice(1).trim();
  }
  return undefined;
}

function leadingNumber(s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const n = Number.parseFloat(s);
  return Number.isFinite(n) ? n : undefined;
}

/** Parses pgbench's final report (stdout). Throws PgbenchParseError, quoting the output, when it is not one. */
export function parsePgbenchOutput(stdout: string): PgbenchResult {
  const lines = stdout.split('\n').map((l) => l.trim());
  // Prefer the tps line that excludes connection time; fall back to the only one there is.
  const tpsLines = lines.filter((l) => l.startsWith('tps ='));
  const tpsLine =
    tpsLines.find((l) => l.includes('without initial connection time') || l.includes('excluding connections establishing')) ??
    tpsLines[0];
  const tps = leadingNumber(tpsLine?.slice('tps ='.length));
  const transactionsText = field(lines, 'number of transactions actually processed');
  // "123456" or, with -t, "80000/80000".
  const transactions = leadingNumber(transactionsText);
  if (tps === undefined || transactions === undefined) {
    const tail = stdout.split('\n').slice(-15).join('\n');
    throw new PgbenchParseError(`pgbench printed no result (tps / transactions lines missing). Its output ended with:\n${tail}`);
  }
  const modeText = field(lines, 'query mode');
  const mode = modeText === 'simple' || modeText === 'extended' || modeText === 'prepared' ? modeText : undefined;
  return {
    tps,
    transactions,
    failed: leadingNumber(field(lines, 'number of failed transactions')) ?? 0,
    latencyMs: leadingNumber(field(lines, 'latency average')),
    clients: leadingNumber(field(lines, 'number of clients')),
    threads: leadingNumber(field(lines, 'number of threads')),
    mode,
  };
}

export interface CommandResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

export interface RunOptions {
  /** Kill the command (SIGTERM, then SIGKILL 2 s later) after this long. */
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Called once the process exists (for CPU sampling, or to cancel it from outside). */
  readonly onStart?: (pid: number, kill: () => void) => void;
}

/** Runs a command to completion with a hard time bound; never rejects for a non-zero exit. */
export function runCommand(file: string, args: readonly string[], opts: RunOptions): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;
    const kill = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killTimer ??= setTimeout(() => child.kill('SIGKILL'), 2000);
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, opts.timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    // Keep only the tail of stderr: pgbench prints progress and per-client errors there.
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr = (stderr + d).slice(-20_000); });
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      resolve({ code, signal, stdout, stderr, timedOut });
    });
    if (child.pid !== undefined) opts.onStart?.(child.pid, kill);
  });
}

/** pgbench's environment: a bounded connect time, no password prompts, no user-level service files. */
export function pgbenchEnv(): NodeJS.ProcessEnv {
  return { ...process.env, PGCONNECT_TIMEOUT: '10', PGSSLMODE: 'disable', PGAPPNAME: 'pgairlock-bench' };
}
