/**
 * Proxy cost in user-space instructions per transaction, counted by valgrind's callgrind: the same
 * pgbench -S workloads as bench/run.ts, but a number that repeats within about 1 % however busy
 * the machine is (TPS and even CPU µs per transaction do not on a shared 2-core box). It counts
 * only the proxy process's own instructions, not the kernel's work for its syscalls (which
 * docs/proxy.md found to be about the same for pgbouncer and pgairlock). `--help` for options;
 * method in docs/benchmarks.md "Instruction counts".
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Cleanup, LogTail, isRunning, stopProcess } from './lib/cleanup.js';
import { freePort, waitForPort } from './lib/net.js';
import { effectiveConfig, pgairlockCommand, type PgairlockEntry } from './lib/pgairlock.js';
import { pgbenchEnv, runCommand } from './lib/pgbench.js';
import { pgbouncerBinary, pgbouncerIni } from './lib/pgbouncer.js';
import { createDatabase, dropDatabase, initPgbench, scratchName } from './lib/scratch.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLIENTS = 8;
const KINDS = ['passthrough', 'pgairlock', 'pgbouncer'] as const;
type Kind = (typeof KINDS)[number];

const HELP = `Usage: node --import tsx bench/instructions.ts [options]

Runs each target under valgrind --tool=callgrind, warms it up, then counts its instructions over
pgbench -S -c ${CLIENTS} -t <n> per query mode, and prints instructions per transaction.

  --targets <kinds>      comma-separated from ${KINDS.join(',')} (default passthrough,pgbouncer)
                         passthrough = bench/lib/passthrough.ts (no gate), pgairlock = pgairlock start
  --modes <modes>        pgbench -M modes (default simple,prepared)
  --transactions <n>     measured transactions per client and mode (default 500)
  --warmup <n>           warm-up transactions per client and mode, not counted (default 1500)
  --upstream <url>       the PostgreSQL server (default $PGAIRLOCK_BENCH_UPSTREAM or postgres://postgres@127.0.0.1:5432/postgres)
  --pgairlock-entry <tsx|dist>  code under test: proxy/ through tsx or the built dist/ (default dist; needs npm run build)
  --os-user <name>       OS user for pgbouncer when run as root (default postgres)
  -h, --help
`;

interface Options {
  kinds: Kind[];
  modes: string[];
  transactions: number;
  warmup: number;
  upstream: URL;
  entry: PgairlockEntry;
  osUser: string;
}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      targets: { type: 'string' },
      modes: { type: 'string' },
      transactions: { type: 'string' },
      warmup: { type: 'string' },
      upstream: { type: 'string' },
      'pgairlock-entry': { type: 'string' },
      'os-user': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return 'help';
  const kinds = (values.targets ?? 'passthrough,pgbouncer').split(',').map((s) => s.trim()).filter(Boolean);
  for (const k of kinds) if (!(KINDS as readonly string[]).includes(k)) throw new Error(`--targets: unknown target "${k}"; known: ${KINDS.join(', ')}`);
  const modes = (values.modes ?? 'simple,prepared').split(',').map((s) => s.trim()).filter(Boolean);
  for (const m of modes) if (!['simple', 'extended', 'prepared'].includes(m)) throw new Error(`--modes: unknown mode "${m}"`);
  const int = (name: string, v: string | undefined, d: number, min: number) => {
    const n = v === undefined ? d : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const entry = values['pgairlock-entry'] ?? 'dist';
  if (entry !== 'tsx' && entry !== 'dist') throw new Error(`--pgairlock-entry must be tsx or dist, got "${entry}"`);
  return {
    kinds: kinds as Kind[],
    modes,
    transactions: int('transactions', values.transactions, 500, 1),
    warmup: int('warmup', values.warmup, 1500, 0),
    upstream: new URL(values.upstream ?? process.env.PGAIRLOCK_BENCH_UPSTREAM ?? 'postgres://postgres@127.0.0.1:5432/postgres'),
    entry,
    osUser: values['os-user'] ?? 'postgres',
  };
}

const log = (line: string) => process.stderr.write(`${line}\n`);

function osIds(osUser: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  return {
    uid: Number(execFileSync('id', ['-u', osUser], { encoding: 'utf8' }).trim()),
    gid: Number(execFileSync('id', ['-g', osUser], { encoding: 'utf8' }).trim()),
  };
}

interface Traced {
  readonly port: number;
  readonly pid: number;
  readonly outDir: string;
  readonly ids: { uid: number; gid: number } | undefined;
  readonly child: ChildProcess;
  readonly logTail: () => string;
}

/** Starts `argv` under callgrind (instrumentation on, counters zeroed before each measurement). */
async function startTraced(label: string, argv: string[], env: NodeJS.ProcessEnv, port: number, ids: Traced['ids'], outDir: string): Promise<Traced> {
  const child = spawn('valgrind', ['--tool=callgrind', '--compress-strings=no', '--compress-pos=no', `--callgrind-out-file=${outDir}/callgrind.%p`, ...argv], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    ...(ids ?? {}),
  });
  const tail = new LogTail();
  child.stdout?.setEncoding('utf8').on('data', (d: string) => tail.push(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => tail.push(d));
  // Under valgrind a Node process needs tens of seconds to start.
  if (!(await waitForPort('127.0.0.1', port, 180_000, () => isRunning(child))) || child.pid === undefined) {
    await stopProcess(child);
    throw new Error(`${label} did not start under valgrind. Its output:\n${tail.tail()}`);
  }
  return { port, pid: child.pid, outDir, ids, child, logTail: () => tail.tail() };
}

function callgrindControl(t: Traced, args: string[]): void {
  execFileSync('callgrind_control', [...args, String(t.pid)], { stdio: 'ignore', ...(t.ids ?? {}) });
}

async function pgbench(port: number, user: string, db: string, mode: string, transactions: number): Promise<void> {
  const args = ['-n', '-S', '-M', mode, '-c', String(CLIENTS), '-j', '1', '-t', String(transactions), '-h', '127.0.0.1', '-p', String(port), '-U', user, db];
  const r = await runCommand('pgbench', args, { timeoutMs: 900_000, env: pgbenchEnv() });
  if (r.code !== 0) throw new Error(`pgbench ${args.join(' ')} failed: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
}

/** Zeroes the counters, runs the workload, dumps; returns the instructions of that interval. */
async function measure(t: Traced, run: () => Promise<void>, tag: string): Promise<number> {
  const before = new Set(readdirSync(t.outDir));
  callgrindControl(t, ['-z']);
  await run();
  callgrindControl(t, ['-d', tag]);
  for (let i = 0; i < 100; i++) {
    const fresh = readdirSync(t.outDir).filter((f) => !before.has(f) && f.startsWith('callgrind.'));
    for (const f of fresh) {
      const file = path.join(t.outDir, f);
      if (statSync(file).size === 0) continue;
      const m = /^summary:\s+(\d+)/m.exec(readFileSync(file, 'utf8'));
      if (m) return Number(m[1]);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`callgrind wrote no dump for ${tag}`);
}

async function main(): Promise<number> {
  let o: Options | 'help';
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    log(`instructions: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (o === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const opts = o;
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' });
  } catch {
    log('instructions: valgrind is not installed (apt-get install -y valgrind)');
    return 2;
  }
  if (opts.entry === 'dist' && !existsSync(path.join(REPO_ROOT, 'dist', 'proxy', 'server.js'))) {
    log('instructions: dist/ is missing; run `npm run build` first or pass --pgairlock-entry tsx');
    return 2;
  }
  const upstreamHost = opts.upstream.searchParams.get('host') || decodeURIComponent(opts.upstream.hostname) || '127.0.0.1';
  const upstreamPort = Number(opts.upstream.port || 5432);
  const user = decodeURIComponent(opts.upstream.username || 'postgres');
  const adminUrl = opts.upstream.toString();
  const scratch = scratchName();
  const cleanup = new Cleanup();
  const results: { kind: Kind; mode: string; perTxn: number }[] = [];
  let failed = false;
  try {
    await createDatabase(adminUrl, scratch);
    cleanup.add(`drop database ${scratch}`, () => dropDatabase(adminUrl, scratch), 180_000);
    await initPgbench({ host: upstreamHost, port: upstreamPort, user, database: scratch }, 1, 600_000);
    for (const kind of opts.kinds) {
      const outDir = mkdtempSync(path.join(os.tmpdir(), `pgairlock-callgrind-${kind}-`));
      cleanup.add(`remove ${outDir}`, () => Promise.resolve(rmSync(outDir, { recursive: true, force: true })));
      const port = await freePort();
      let traced: Traced;
      if (kind === 'pgbouncer') {
        const ids = osIds(opts.osUser);
        const authFile = path.join(outDir, 'userlist.txt');
        const iniFile = path.join(outDir, 'pgbouncer.ini');
        writeFileSync(authFile, `"${user.replaceAll('"', '""')}" ""\n`);
        writeFileSync(iniFile, pgbouncerIni({ port, upstreamHost, upstreamPort, authFile, poolSize: 20 }));
        if (ids) for (const f of [outDir, authFile, iniFile]) chownSync(f, ids.uid, ids.gid);
        traced = await startTraced(kind, [pgbouncerBinary(), iniFile], process.env, port, ids, outDir);
      } else {
        const config = effectiveConfig(undefined, await freePort());
        cleanup.add(`remove ${config.file}`, () => Promise.resolve(config.remove()));
        const argv = pgairlockCommand(REPO_ROOT, opts.entry, config.file, kind === 'passthrough');
        const env = { ...process.env, DATABASE_URL: adminUrl, PGAIRLOCK_LISTEN: `127.0.0.1:${port}`, PGAIRLOCK_CONFIG: config.file, PGAIRLOCK_LOG_LEVEL: 'warn' };
        traced = await startTraced(kind, argv, env, port, undefined, outDir);
      }
      cleanup.add(`stop ${kind}`, () => stopProcess(traced.child));
      log(`instructions: ${kind} up under callgrind (pid ${traced.pid}); warming up`);
      for (const mode of opts.modes) if (opts.warmup > 0) await pgbench(port, user, scratch, mode, opts.warmup);
      for (const mode of opts.modes) {
        const n = await measure(traced, () => pgbench(port, user, scratch, mode, opts.transactions), mode);
        const perTxn = Math.round(n / (opts.transactions * CLIENTS));
        results.push({ kind, mode, perTxn });
        log(`instructions: ${kind.padEnd(11)} -M ${mode.padEnd(8)} ${perTxn} instructions/txn`);
      }
      await stopProcess(traced.child);
    }
  } catch (err) {
    log(`instructions: failed: ${(err as Error).message}`);
    failed = true;
  } finally {
    await cleanup.runAll(log);
  }
  if (results.length) {
    const lines = ['target       mode      instructions/txn  vs pgbouncer', '-----------  --------  ----------------  ------------'];
    for (const r of results) {
      const b = results.find((x) => x.kind === 'pgbouncer' && x.mode === r.mode);
      lines.push(`${r.kind.padEnd(11)}  ${r.mode.padEnd(8)}  ${String(r.perTxn).padStart(16)}  ${b ? `${(r.perTxn / b.perTxn).toFixed(2)}x` : '-'}`);
    }
    process.stdout.write(`\npgbench -S -c ${CLIENTS} -j 1, ${opts.transactions} transactions per client and mode after ${opts.warmup} of warm-up; user-space instructions of the proxy process (all threads), kernel not included\n${lines.join('\n')}\n`);
  }
  return failed ? 1 : 0;
}

process.exitCode = await main();
