import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LogTail, isRunning, stopProcess } from './cleanup.js';
import { freePort, waitForPort } from './net.js';

/**
 * A private pgbouncer (Debian package `pgbouncer`) in session mode, the peer pgairlock is measured
 * against: its own ini, userlist and port in a temp dir, run in the foreground so its pid is the
 * process doing the work, as a non-root user (pgbouncer refuses to run as root).
 */

export interface PgbouncerOptions {
  readonly upstreamHost: string;
  readonly upstreamPort: number;
  /** User names pgbench connects as (auth_type trust still requires them in the userlist). */
  readonly users: readonly string[];
  /** OS user to run as when we are root. */
  readonly osUser: string;
  readonly startTimeoutMs: number;
  /** Server connections per (database, user): at least the benchmark's client count. */
  readonly poolSize: number;
}

export interface RunningPgbouncer {
  readonly port: number;
  readonly pid: number;
  readonly version: string;
  readonly alive: () => boolean;
  readonly logTail: () => string;
  /** Stops the process and removes its temp dir. */
  readonly stop: () => Promise<void>;
}

export function pgbouncerBinary(): string {
  for (const candidate of [process.env.PGBOUNCER_BIN, '/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer']) {
    if (!candidate) continue;
    try {
      execFileSync(candidate, ['--version'], { stdio: 'ignore' });
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('pgbouncer is not installed: run `apt-get install -y pgbouncer` (or set PGBOUNCER_BIN), or leave it out with --targets');
}

/** The ini text; pure, so the settings that matter for a fair comparison are visible in one place. */
export function pgbouncerIni(opts: { port: number; upstreamHost: string; upstreamPort: number; authFile: string; poolSize: number }): string {
  return [
    '[databases]',
    // Fallback entry: any database name goes to the same-named database upstream, as pgairlock does.
    `* = host=${opts.upstreamHost} port=${opts.upstreamPort}`,
    '',
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${opts.port}`,
    'unix_socket_dir =',
    'auth_type = trust',
    `auth_file = ${opts.authFile}`,
    'pool_mode = session',
    'max_client_conn = 200',
    `default_pool_size = ${opts.poolSize}`,
    'log_connections = 0',
    'log_disconnections = 0',
    'ignore_startup_parameters = extra_float_digits',
    '',
  ].join('\n');
}

function osIds(osUser: string): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', osUser], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', osUser], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error(`pgbouncer refuses to run as root and OS user "${osUser}" does not exist; create it or pass --os-user`);
  }
}

export async function startPgbouncer(opts: PgbouncerOptions): Promise<RunningPgbouncer> {
  const bin = pgbouncerBinary();
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).split('\n')[0]?.trim() ?? 'pgbouncer';
  const ids = osIds(opts.osUser);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-bench-pgbouncer-'));
  const port = await freePort();
  const authFile = path.join(dir, 'userlist.txt');
  const iniFile = path.join(dir, 'pgbouncer.ini');
  writeFileSync(authFile, opts.users.map((u) => `"${u.replaceAll('"', '""')}" ""\n`).join(''));
  writeFileSync(iniFile, pgbouncerIni({ port, upstreamHost: opts.upstreamHost, upstreamPort: opts.upstreamPort, authFile, poolSize: opts.poolSize }));
  if (ids) for (const f of [dir, authFile, iniFile]) chownSync(f, ids.uid, ids.gid);

  const log = new LogTail();
  const child: ChildProcess = spawn(bin, [iniFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a Ctrl-C in the terminal reaches only the runner, which stops it in order.
    detached: true,
    ...(ids ?? {}),
  });
  child.stdout?.setEncoding('utf8').on('data', (d: string) => log.push(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => log.push(d));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const stop = async () => {
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
  };
  const ready = await Promise.race([waitForPort('127.0.0.1', port, opts.startTimeoutMs, () => isRunning(child)), spawnError]);
  if (ready !== true || child.pid === undefined) {
    await stop();
    const why = ready instanceof Error ? ready.message : isRunning(child) ? `not listening after ${opts.startTimeoutMs} ms` : 'exited';
    throw new Error(`pgbouncer did not start (${why}). Its log:\n${log.tail()}`);
  }
  const pid = child.pid;
  return { port, pid, version, alive: () => isRunning(child), logTail: () => log.tail(), stop };
}
