/**
 * Proxy throughput benchmark: pgbench against PostgreSQL directly, through pgbouncer (session mode) and
 * through pgairlock, in one interleaved run. `npm run bench -- --help` for options; results and method
 * in docs/benchmarks.md ("Proxy throughput").
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Cleanup, Interrupt } from './lib/cleanup.js';
import { cpuSecondsBetween, readCpu, type CpuSample } from './lib/cpu.js';
import { describeMachine } from './lib/machine.js';
import { PASSTHROUGH_SPEC, startPgairlock, type PgairlockEntry, type PgairlockVariant } from './lib/pgairlock.js';
import { WORKLOADS, parsePgbenchOutput, pgbenchArgs, pgbenchEnv, runCommand, type Endpoint, type Workload } from './lib/pgbench.js';
import { pgbouncerBinary, startPgbouncer } from './lib/pgbouncer.js';
import { formatReport } from './lib/report.js';
import { adminQuery, createDatabase, dropDatabase, initPgbench, scratchName, upstreamConn } from './lib/scratch.js';
import { interleavedSchedule, type RunRecord, type TargetInfo, type TargetKind } from './lib/stats.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const HELP = `Usage: npm run bench -- [options]

Runs pgbench against direct PostgreSQL, a private pgbouncer (session mode) and pgairlock, interleaved,
and prints paired ratios, median TPS and proxy CPU µs per transaction.

  --duration <s>            seconds per pgbench run (default 10)
  --rounds <n>              interleaved rounds (default 3)
  --only <ids>              comma-separated workloads (default all): ${WORKLOADS.map((w) => w.id).join(', ')}
  --targets <kinds>         comma-separated from direct,pgbouncer,pgairlock (default all three)
  --scale <n>               pgbench -i scale of the scratch database (default 10)
  --jobs <n>                pgbench -j threads (default 1)
  --warmup <s>              one discarded select-only run per target before measuring (default 3, 0 = none)
  --upstream <url>          the PostgreSQL server (default $PGAIRLOCK_BENCH_UPSTREAM or postgres://postgres@127.0.0.1:5432/postgres);
                            ?host=/var/run/postgresql makes direct, pgbouncer and pgairlock all reach it over its Unix socket
  --pgairlock-config <file> pgairlock.yaml for the pgairlock target (e.g. policy and audit on), or
                            ${PASSTHROUGH_SPEC} for the proxy foundation alone (see below)
  --pgairlock-label <text>  label of the pgairlock target (default "pgairlock")
  --pgairlock-variant <label=file>
                            an extra pgairlock target (repeatable); "label=" for no config file. All variants
                            run in the same interleaved rounds, e.g. pass-through vs policy on.
                            "label=${PASSTHROUGH_SPEC}" runs bench/lib/passthrough.ts instead of pgairlock start:
                            the same proxy (and --pgairlock-entry) with no gate, console, audit or MCP, i.e. the
                            hop alone (issue #2's target), e.g. --pgairlock-variant passthrough=${PASSTHROUGH_SPEC}
  --pgairlock-entry <tsx|dist>  run cli/main.ts through tsx (default) or the built bin/pgairlock.js
  --os-user <name>          OS user for pgbouncer when run as root (default postgres)
  --json <file>             also write every run's record and the machine as JSON
  --markdown <file>         also write the report as Markdown (for docs/benchmarks.md)
  -h, --help
`;

interface Options {
  durationS: number;
  rounds: number;
  workloads: Workload[];
  kinds: Set<TargetKind>;
  scale: number;
  jobs: number;
  warmupS: number;
  upstream: URL;
  variants: PgairlockVariant[];
  entry: PgairlockEntry;
  osUser: string;
  json: string | undefined;
  markdown: string | undefined;
}

class UsageError extends Error {}

function positiveInt(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      rounds: { type: 'string' },
      only: { type: 'string' },
      targets: { type: 'string' },
      scale: { type: 'string' },
      jobs: { type: 'string' },
      warmup: { type: 'string' },
      upstream: { type: 'string' },
      'pgairlock-config': { type: 'string' },
      'pgairlock-label': { type: 'string' },
      'pgairlock-variant': { type: 'string', multiple: true },
      'pgairlock-entry': { type: 'string' },
      'os-user': { type: 'string' },
      json: { type: 'string' },
      markdown: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean);
  const workloads = only ? only.map((id) => {
    const w = WORKLOADS.find((x) => x.id === id);
    if (!w) throw new UsageError(`--only: unknown workload "${id}"; known: ${WORKLOADS.map((x) => x.id).join(', ')}`);
    return w;
  }) : [...WORKLOADS];
  const kindList = (values.targets ?? 'direct,pgbouncer,pgairlock').split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kindList) {
    if (k !== 'direct' && k !== 'pgbouncer' && k !== 'pgairlock') throw new UsageError(`--targets: unknown target "${k}"; known: direct, pgbouncer, pgairlock`);
  }
  const entry = values['pgairlock-entry'] ?? 'tsx';
  if (entry !== 'tsx' && entry !== 'dist') throw new UsageError(`--pgairlock-entry must be tsx or dist, got "${entry}"`);
  const variant = (label: string, file: string | undefined): PgairlockVariant =>
    file === PASSTHROUGH_SPEC ? { label, configFile: undefined, passthrough: true } : { label, configFile: file === '' ? undefined : file };
  const variants: PgairlockVariant[] = [
    variant(values['pgairlock-label'] ?? 'pgairlock', values['pgairlock-config']),
    ...(values['pgairlock-variant'] ?? []).map((spec): PgairlockVariant => {
      const eq = spec.indexOf('=');
      if (eq <= 0) throw new UsageError(`--pgairlock-variant expects label=configfile, "label=" or "label=${PASSTHROUGH_SPEC}", got "${spec}"`);
      return variant(spec.slice(0, eq), spec.slice(eq + 1));
    }),
  ];
  if (new Set(variants.map((v) => v.label)).size !== variants.length) throw new UsageError('pgairlock variant labels must be distinct');
  let upstream: URL;
  try {
    upstream = new URL(values.upstream ?? process.env.PGAIRLOCK_BENCH_UPSTREAM ?? 'postgres://postgres@127.0.0.1:5432/postgres');
  } catch {
    throw new UsageError(`--upstream is not a URL: ${values.upstream}`);
  }
  return {
    durationS: positiveInt('duration', values.duration, 10),
    rounds: positiveInt('rounds', values.rounds, 3),
    workloads,
    kinds: new Set(kindList as TargetKind[]),
    scale: positiveInt('scale', values.scale, 10),
    jobs: positiveInt('jobs', values.jobs, 1),
    warmupS: positiveInt('warmup', values.warmup, 3, 0),
    upstream,
    variants,
    entry,
    osUser: values['os-user'] ?? 'postgres',
    json: values.json,
    markdown: values.markdown,
  };
}

/** A target that is up: where pgbench connects and which process (if any) to measure. */
interface LiveTarget {
  readonly info: TargetInfo;
  readonly port: number;
  readonly pid: number | undefined;
  readonly alive: () => boolean;
  readonly logTail: () => string;
}

const log = (line: string) => process.stderr.write(`${line}\n`);

/** POSIX-shell quoting, so the printed command can be pasted back as it was run. */
function shellQuote(arg: string): string {
  if (arg !== '' && /^[\w@%+=:,./-]+$/.test(arg)) return arg;
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** The code under test: HEAD, and whether the runtime folders had uncommitted changes (tsx runs the working tree). */
function codeVersion(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'proxy', 'analyzer', 'governance', 'cli'], { cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    return dirty ? `${head} + uncommitted changes in ${dirty.split('\n').length} file(s) under proxy/analyzer/governance/cli` : head;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

async function main(): Promise<number> {
  let opts: Options | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    log(`bench: ${err instanceof Error ? err.message : String(err)}\n\n${HELP}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const o = opts;
  // pgbench (-h), pgbouncer (host=) and pgairlock all reach the server this way (a Unix socket if the URL says so).
  const { host: upstreamHost, port: upstreamPort, user } = upstreamConn(o.upstream);
  const adminUrl = o.upstream.toString();

  const cleanup = new Cleanup();
  const interrupt = new Interrupt(log, 'bench');

  const scratch = scratchName();
  // Taken before anything starts: the proxies load the working tree as it is now.
  const code = codeVersion();
  const unavailable: { label: string; reason: string }[] = [];
  const records: RunRecord[] = [];
  const live: LiveTarget[] = [];
  let failed: boolean;
  try {
    let bouncerBin: string | undefined;
    try {
      bouncerBin = o.kinds.has('pgbouncer') ? pgbouncerBinary() : undefined;
    } catch {
      bouncerBin = undefined; // reported when the target fails to start
    }
    const machine = await describeMachine(adminUrl, bouncerBin);
    const perRun = o.durationS + 2;
    const targetCount = (o.kinds.has('direct') ? 1 : 0) + (o.kinds.has('pgbouncer') ? 1 : 0) + (o.kinds.has('pgairlock') ? o.variants.length : 0);
    const estimateS = o.rounds * o.workloads.length * targetCount * perRun + targetCount * o.warmupS + 30;
    log(`bench: ${o.rounds} round(s) x ${o.workloads.length} workload(s) x ${targetCount} target(s), ${o.durationS} s each: about ${Math.ceil(estimateS / 60)} min`);

    log(`bench: creating scratch database ${scratch} and running pgbench -i -s ${o.scale}`);
    await createDatabase(adminUrl, scratch);
    // DROP DATABASE checkpoints first: with fsync on and a loaded machine that can take a while.
    cleanup.add(`drop database ${scratch}`, () => dropDatabase(adminUrl, scratch), 180_000);
    interrupt.check();
    await initPgbench({ host: upstreamHost, port: upstreamPort, user, database: scratch }, o.scale, 600_000, (kill) => { interrupt.current = kill; });
    interrupt.current = undefined;
    interrupt.check();

    if (o.kinds.has('direct')) {
      live.push({ info: { id: 'direct', label: 'direct', kind: 'direct' }, port: upstreamPort, pid: undefined, alive: () => true, logTail: () => '' });
    }
    if (o.kinds.has('pgbouncer')) {
      try {
        const b = await startPgbouncer({ upstreamHost, upstreamPort, users: [user], osUser: o.osUser, startTimeoutMs: 15_000, poolSize: 20 });
        cleanup.add('stop pgbouncer', b.stop);
        live.push({ info: { id: 'pgbouncer', label: 'pgbouncer', kind: 'pgbouncer' }, port: b.port, pid: b.pid, alive: b.alive, logTail: b.logTail });
        log(`bench: ${b.version} listening on 127.0.0.1:${b.port} (pid ${b.pid})`);
      } catch (err) {
        unavailable.push({ label: 'pgbouncer', reason: err instanceof Error ? err.message : String(err) });
      }
    }
    if (o.kinds.has('pgairlock')) {
      for (const [i, variant] of o.variants.entries()) {
        interrupt.check();
        try {
          const p = await startPgairlock({ repoRoot: REPO_ROOT, entry: o.entry, upstreamUrl: adminUrl, variant, startTimeoutMs: 60_000 });
          cleanup.add(`stop ${variant.label}`, p.stop);
          live.push({ info: { id: i === 0 ? 'pgairlock' : `pgairlock-${i + 1}`, label: variant.label, kind: 'pgairlock' }, port: p.port, pid: p.pid, alive: p.alive, logTail: p.logTail });
          log(`bench: ${variant.label} listening on 127.0.0.1:${p.port} (pid ${p.pid}, ${o.entry})`);
        } catch (err) {
          unavailable.push({ label: variant.label, reason: err instanceof Error ? err.message : String(err) });
        }
      }
    }
    for (const u of unavailable) log(`bench: TARGET UNAVAILABLE: ${u.label}: ${u.reason}`);

    const endpoint = (t: LiveTarget): Endpoint => ({ host: t.info.kind === 'direct' ? upstreamHost : '127.0.0.1', port: t.port, user, database: scratch });
    // A query through each target before measuring: a broken target fails here, clearly, not as 0 TPS.
    for (const t of [...live]) {
      interrupt.check();
      const e = endpoint(t);
      try {
        await adminQuery(`postgres://${encodeURIComponent(user)}@${encodeURIComponent(e.host)}:${e.port}/${scratch}?sslmode=disable`, 'SELECT count(*) FROM pgbench_branches', 15_000);
      } catch (err) {
        live.splice(live.indexOf(t), 1);
        unavailable.push({ label: t.info.label, reason: `started, but SELECT through it failed: ${err instanceof Error ? err.message : String(err)}\n${t.logTail()}` });
        log(`bench: TARGET UNAVAILABLE: ${t.info.label}: SELECT through it failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    if (live.length === 0) throw new Error('no target could be started');

    const runOne = async (t: LiveTarget, w: Workload, durationS: number): Promise<Omit<Extract<RunRecord, { ok: true }>, 'round' | 'workload' | 'target'>> => {
      if (!t.alive()) throw new Error(`process exited before this run. Its output:\n${t.logTail()}`);
      let before: CpuSample | undefined;
      const r = await runCommand('pgbench', pgbenchArgs(endpoint(t), w, { durationS, jobs: o.jobs }), {
        timeoutMs: (durationS + 60) * 1000,
        env: pgbenchEnv(),
        onStart: (_pid, kill) => {
          interrupt.current = kill;
          // Sampled once pgbench exists: the run's connection setup is counted, the runner's own work is not.
          try {
            before = t.pid !== undefined ? readCpu(t.pid, { includeDescendants: true }) : undefined;
          } catch {
            before = undefined; // the proxy is gone: reported after the run
          }
        },
      });
      interrupt.current = undefined;
      const after = t.pid !== undefined && t.alive() ? readCpu(t.pid, { includeDescendants: true }) : undefined;
      interrupt.check();
      if (r.timedOut) throw new Error(`pgbench timed out after ${durationS + 60} s`);
      if (r.code !== 0) throw new Error(`pgbench exit code ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}${t.alive() ? '' : `; the target process died:\n${t.logTail()}`}`);
      const parsed = parsePgbenchOutput(r.stdout);
      let proxyCpuSeconds: number | undefined;
      if (t.pid !== undefined) {
        if (!before || !after) throw new Error('could not sample the proxy CPU time (process gone?)');
        proxyCpuSeconds = cpuSecondsBetween(before, after);
        if (proxyCpuSeconds < 0) proxyCpuSeconds = undefined; // a child process exited in between: do not guess
      }
      return { ok: true, tps: parsed.tps, transactions: parsed.transactions, failed: parsed.failed, latencyMs: parsed.latencyMs, proxyCpuSeconds };
    };

    if (o.warmupS > 0) {
      const warm = WORKLOADS.find((w) => w.id === 'select-simple')!;
      for (const t of live) {
        interrupt.check();
        try {
          const r = await runOne(t, warm, o.warmupS);
          log(`bench: warm-up ${t.info.label}: ${Math.round(r.tps)} tps (discarded)`);
        } catch (err) {
          if (interrupt.aborted) throw err;
          log(`bench: warm-up ${t.info.label} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    }

    const schedule = interleavedSchedule(o.rounds, o.workloads.map((w) => w.id), live.map((t) => t.info.id));
    for (const [i, s] of schedule.entries()) {
      interrupt.check();
      const t = live.find((x) => x.info.id === s.target)!;
      const w = o.workloads.find((x) => x.id === s.workload)!;
      const prefix = `[${i + 1}/${schedule.length}] round ${s.round} ${w.id.padEnd(15)} ${t.info.label.padEnd(12)}`;
      const load1 = Math.round(os.loadavg()[0]! * 100) / 100;
      try {
        const r = await runOne(t, w, o.durationS);
        records.push({ ...s, load1, ...r });
        const cpu = r.proxyCpuSeconds !== undefined ? `, proxy ${((r.proxyCpuSeconds * 1e6) / r.transactions).toFixed(1)} µs/txn` : '';
        log(`${prefix} ${Math.round(r.tps)} tps${cpu}${r.failed ? `, ${r.failed} failed txns` : ''} (load ${load1})`);
      } catch (err) {
        if (interrupt.aborted) throw err;
        const error = err instanceof Error ? err.message : String(err);
        records.push({ ...s, load1, ok: false, error });
        log(`${prefix} FAILED: ${error}`);
      }
    }

    const report = {
      targets: [
        ...live.map((t) => t.info),
      ],
      workloads: o.workloads.map((w) => ({ id: w.id, description: w.description })),
      records,
      machine,
      command: `npm run bench -- ${process.argv.slice(2).map(shellQuote).join(' ')}`.trim(),
      settings: `code ${code}; pgbench -T ${o.durationS} -j ${o.jobs}, scale ${o.scale}, ${o.rounds} rounds, warm-up ${o.warmupS} s, pgbouncer pool_mode=session, pgairlock via ${o.entry}${o.variants.some((v) => v.configFile || v.passthrough) ? `, configs: ${o.variants.map((v) => `${v.label}=${v.passthrough ? PASSTHROUGH_SPEC : (v.configFile ?? '(none)')}`).join(', ')}` : ''}`,
      unavailable,
      loadAtEnd: os.loadavg().map((l) => Math.round(l * 100) / 100),
    };
    process.stdout.write(`\n${formatReport(report, 'text')}`);
    if (o.markdown) writeFileSync(o.markdown, formatReport(report, 'markdown'));
    if (o.json) writeFileSync(o.json, `${JSON.stringify({ ...report, when: new Date().toISOString() }, null, 2)}\n`);
    failed = unavailable.length > 0 || records.some((r) => !r.ok);
  } catch (err) {
    log(`bench: ${interrupt.aborted ? 'interrupted' : `failed: ${err instanceof Error ? err.message : String(err)}`}`);
    failed = true;
  } finally {
    await cleanup.runAll(log);
  }
  if (interrupt.aborted) return 130;
  if (failed) log('bench: some targets or runs failed (see above): exit code 1');
  return failed ? 1 : 0;
}

process.exitCode = await main();
