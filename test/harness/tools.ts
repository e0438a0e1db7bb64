import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Helpers for end-to-end tests that drive real client programs (psql, pgbench, openssl).
 * Child programs run ASYNCHRONOUSLY: the proxy under test lives in the same process, so a
 * synchronous child talking to it would block its event loop and deadlock.
 */

export interface RunResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a program to completion (never rejects on a non-zero exit; rejects only when it cannot start). */
export function run(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; cwd?: string } = {},
): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        env: { ...process.env, ...opts.env },
        timeout: opts.timeoutMs ?? 30_000,
        killSignal: 'SIGKILL',
        maxBuffer: 64 * 1024 * 1024,
        encoding: 'utf8',
        cwd: opts.cwd,
      },
      (err, stdout, stderr) => {
        const e = err as (NodeJS.ErrnoException & { code?: number | string }) | null;
        if (e && typeof e.code === 'string') {
          reject(e);
          return;
        }
        resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr, ms: Date.now() - t0 });
      },
    );
    child.stdin?.end(opts.input ?? '');
  });
}

/**
 * Runs the real psql against a connection string: no psqlrc (-X), never prompts for a password
 * (-w), and a clean libpq environment (PG* variables of the caller are dropped) plus `env`.
 */
export function psql(conninfo: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string; cwd?: string } = {}): Promise<RunResult> {
  return run('psql', ['-X', '-w', '-d', conninfo, ...args], { ...opts, env: { ...cleanPgEnv(), ...opts.env } });
}

/** process.env without libpq's PG* variables, so a developer's environment cannot leak into a test. */
export function cleanPgEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PG')) env[k] = v;
  // Several tests assert on English server and client messages.
  env.LC_ALL = 'C';
  env.LANG = 'C';
  env.PGCONNECT_TIMEOUT = '10';
  return env;
}

/** Polls `probe` until it returns a truthy value or the deadline passes (then returns the last value). */
export async function waitFor<T>(probe: () => Promise<T> | T, opts: { timeoutMs: number; intervalMs?: number }): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await probe();
    if (v || Date.now() >= deadline) return v;
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface TempCert {
  readonly dir: string;
  readonly cert: string;
  readonly key: string;
  remove(): void;
}

/** A self-signed certificate for CN=127.0.0.1 (and the IP as a SAN) made by openssl in a temp dir. */
export function selfSignedCert(): TempCert {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-cert-'));
  const cert = path.join(dir, 'server.crt');
  const key = path.join(dir, 'server.key');
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert],
    { stdio: 'pipe' },
  );
  return { dir, cert, key, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Makes a temp directory removed by the returned function. */
export function tempDir(prefix = 'pgairlock-test-'): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The fields of a PostgreSQL error as node-postgres and postgres.js reject with it. */
export interface PgError {
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  position?: string;
}

/** The error a statement is refused with; throws when it succeeds (so a test cannot pass by accident). */
export async function refusal(p: Promise<unknown>): Promise<PgError> {
  try {
    await p;
  } catch (err) {
    return err as PgError;
  }
  throw new Error('expected the statement to be refused');
}
