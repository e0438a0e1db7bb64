import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { LogTail, isRunning, stopProcess } from './cleanup.js';
import { freePort, waitForPort } from './net.js';

/**
 * One pgairlock proxy under test: `pgairlock start` on a free loopback port with DATABASE_URL pointing
 * at the upstream. A variant carries a label and an optional config file, so one interleaved run can
 * compare e.g. "pgairlock (pass-through)" with "pgairlock (policy on)".
 */

export interface PgairlockVariant {
  /** Shown in tables, e.g. "pgairlock" or "pgairlock (policy on)". */
  readonly label: string;
  /** pgairlock.yaml for this variant (passed as --config); none = defaults plus the environment. */
  readonly configFile: string | undefined;
}

/** How the proxy is launched: TypeScript through tsx (no build needed) or the built bin/pgairlock.js. */
export type PgairlockEntry = 'tsx' | 'dist';

export interface PgairlockOptions {
  readonly repoRoot: string;
  readonly entry: PgairlockEntry;
  readonly upstreamUrl: string;
  readonly variant: PgairlockVariant;
  readonly startTimeoutMs: number;
}

export interface RunningPgairlock {
  readonly port: number;
  readonly pid: number;
  readonly alive: () => boolean;
  readonly logTail: () => string;
  readonly stop: () => Promise<void>;
}

/** The argv that starts the proxy (the process we spawn is the proxy itself, so its pid is what we measure). */
export function pgairlockCommand(repoRoot: string, entry: PgairlockEntry, configFile: string | undefined): string[] {
  const config = configFile ? ['--config', path.resolve(configFile)] : [];
  if (entry === 'dist') return [process.execPath, path.join(repoRoot, 'bin', 'pgairlock.js'), 'start', ...config];
  return [process.execPath, '--import', 'tsx', path.join(repoRoot, 'cli', 'main.ts'), 'start', ...config];
}

function redactPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparsable URL)';
  }
}

export async function startPgairlock(opts: PgairlockOptions): Promise<RunningPgairlock> {
  if (opts.entry === 'dist' && !existsSync(path.join(opts.repoRoot, 'dist', 'cli', 'main.js'))) {
    throw new Error('pgairlock: dist/ is missing; run `npm run build` first or use --pgairlock-entry tsx');
  }
  if (opts.variant.configFile && !existsSync(opts.variant.configFile)) {
    throw new Error(`pgairlock (${opts.variant.label}): config file ${opts.variant.configFile} does not exist`);
  }
  const port = await freePort();
  const [file, ...args] = pgairlockCommand(opts.repoRoot, opts.entry, opts.variant.configFile);
  const log = new LogTail();
  const child: ChildProcess = spawn(file!, args, {
    cwd: opts.repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: {
      ...process.env,
      DATABASE_URL: opts.upstreamUrl,
      PGAIRLOCK_LISTEN: `127.0.0.1:${port}`,
      ...(opts.variant.configFile ? { PGAIRLOCK_CONFIG: path.resolve(opts.variant.configFile) } : {}),
    },
  });
  child.stdout?.setEncoding('utf8').on('data', (d: string) => log.push(d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => log.push(d));
  const exited = new Promise<string>((resolve) => {
    child.once('error', (err) => resolve(`could not be spawned: ${err.message}`));
    child.once('exit', (code, signal) => resolve(`exited (code ${code}, signal ${signal})`));
  });
  const stop = () => stopProcess(child);
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    log.waitFor('listening').then(() => 'ready' as const),
    exited,
    new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve(`printed no "listening" line within ${opts.startTimeoutMs} ms`), opts.startTimeoutMs);
    }),
  ]);
  clearTimeout(timer);
  // "listening" in the log is the contract; the port check guards against a line printed too early.
  if (outcome !== 'ready' || !(await waitForPort('127.0.0.1', port, 5000, () => isRunning(child))) || child.pid === undefined) {
    await stop();
    const why = outcome === 'ready' ? `said "listening" but 127.0.0.1:${port} does not accept connections` : outcome;
    throw new Error(
      `pgairlock (${opts.variant.label}) did not start: ${why}.\n` +
        `Command: DATABASE_URL=${redactPassword(opts.upstreamUrl)} PGAIRLOCK_LISTEN=127.0.0.1:${port} ${[file, ...args].join(' ')}\n` +
        `Its output:\n${log.tail()}`,
    );
  }
  const pid = child.pid;
  return { port, pid, alive: () => isRunning(child), logTail: () => log.tail(), stop };
}
