import type { ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../harness/cluster.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { runCli, spawnCli } from '../harness/proxy.js';
import { sleep, tempDir } from '../harness/tools.js';

const db = useTestDatabase();

interface PgErr extends Error {
  code?: string;
}

/** A running `pgairlock` CLI with its output so far. */
interface Cli {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  /** Resolves with the exit code (null when killed by a signal). */
  readonly exited: Promise<number | null>;
}

function startCli(args: string[], env: NodeJS.ProcessEnv): Cli {
  const child = spawnCli(args, env);
  const cli: Cli = {
    child,
    stdout: '',
    stderr: '',
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
  };
  child.stdout!.on('data', (d: Buffer) => (cli.stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (cli.stderr += d.toString()));
  return cli;
}

/** Waits (bounded) for stdout to contain `text`, failing early if the process exits. */
async function waitForOutput(cli: Cli, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cli.stdout.includes(text)) {
    if (cli.child.exitCode !== null) throw new Error(`pgairlock exited (${cli.child.exitCode}) before printing "${text}"\n${cli.stdout}\n${cli.stderr}`);
    if (Date.now() > deadline) throw new Error(`pgairlock did not print "${text}" within ${timeoutMs} ms\n${cli.stdout}\n${cli.stderr}`);
    await sleep(50);
  }
}

async function exitWithin(cli: Cli, ms: number): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  const code = await Promise.race([cli.exited, sleep(ms).then(() => 'timeout' as const)]);
  if (code === 'timeout') throw new Error(`pgairlock did not exit within ${ms} ms\n${cli.stdout}\n${cli.stderr}`);
  return { code, ms: Date.now() - t0 };
}

describe.skipIf(!postgresAvailable())('pgairlock start (the real CLI)', () => {
  const tmp = tempDir('pgairlock-lifecycle-');
  const running: Cli[] = [];
  // Long enough that "promptly" (idle sessions end at once) is clearly shorter, even on a loaded machine.
  const SHUTDOWN_MS = 5000;
  const PROMPT_MS = 3000;
  let configPath: string;
  let upstreamUrl: string;

  beforeAll(() => {
    configPath = path.join(tmp.dir, 'pgairlock.yaml');
    writeFileSync(configPath, `shutdown_timeout_ms: ${SHUTDOWN_MS}\nlog:\n  level: info\naudit:\n  enabled: false\n`);
    const u = new URL(db.url);
    u.pathname = '/postgres';
    u.searchParams.set('sslmode', 'disable');
    upstreamUrl = u.toString();
  });
  afterEach(() => {
    for (const c of running.splice(0)) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  });
  afterAll(() => tmp.remove());

  async function startWithUpstream(): Promise<{ cli: Cli; port: number }> {
    const port = await freePort();
    const cli = startCli(['start'], { DATABASE_URL: upstreamUrl, PGAIRLOCK_LISTEN: `127.0.0.1:${port}`, PGAIRLOCK_CONFIG: configPath });
    running.push(cli);
    await waitForOutput(cli, 'pgairlock is listening on', 30_000);
    return { cli, port };
  }

  it('prints the listening line, serves a query, and exits 0 promptly on SIGTERM with an idle client', async () => {
    const { cli, port } = await startWithUpstream();
    expect(cli.stdout).toContain(`pgairlock is listening on 127.0.0.1:${port}`);
    const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/${db.name}` });
    const errors: PgErr[] = [];
    c.on('error', (e) => errors.push(e as PgErr));
    await c.connect();
    expect((await c.query('SELECT current_database() AS d')).rows).toEqual([{ d: db.name }]);
    // Every connection's log lines carry its session id.
    expect(cli.stderr).toMatch(/"session":"[0-9a-f]+".*"msg":"session ready"/);

    cli.child.kill('SIGTERM');
    const { code, ms } = await exitWithin(cli, 10_000);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(PROMPT_MS);
    expect(cli.stdout).toContain('pgairlock stopped');
    // The idle client was told why it lost its connection.
    for (let i = 0; i < 60 && errors.length === 0; i++) await sleep(50);
    expect(errors[0]?.code).toBe('57P01');
    await c.end().catch(() => undefined);
  });

  it('on SIGTERM a client inside a transaction gets 57P01 after at most shutdown_timeout_ms; new connections are refused meanwhile', async () => {
    const { cli, port } = await startWithUpstream();
    const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/${db.name}` });
    const errors: PgErr[] = [];
    c.on('error', (e) => errors.push(e as PgErr));
    await c.connect();
    await c.query('BEGIN');
    await c.query('SELECT 1');
    const t0 = Date.now();
    cli.child.kill('SIGTERM');
    await sleep(300);
    // Still in its transaction, still served during the grace period.
    expect((await c.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    // No new sessions while shutting down.
    const late = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/${db.name}`, connectionTimeoutMillis: 2000 });
    late.on('error', () => undefined);
    await expect(late.connect()).rejects.toThrow();

    const { code } = await exitWithin(cli, SHUTDOWN_MS + 5000);
    const elapsed = Date.now() - t0;
    expect(code).toBe(0);
    expect(elapsed).toBeGreaterThanOrEqual(SHUTDOWN_MS - 100);
    expect(elapsed).toBeLessThan(SHUTDOWN_MS + 3000);
    for (let i = 0; i < 60 && errors.length === 0; i++) await sleep(50);
    expect(errors[0]?.code).toBe('57P01');
    await c.end().catch(() => undefined);
  });

  it('a client that ends its transaction during the grace period lets shutdown finish early', async () => {
    const { cli, port } = await startWithUpstream();
    const c = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/${db.name}` });
    c.on('error', () => undefined);
    await c.connect();
    await c.query('BEGIN');
    const t0 = Date.now();
    cli.child.kill('SIGTERM');
    await sleep(200);
    await c.query('COMMIT');
    const { code } = await exitWithin(cli, SHUTDOWN_MS + 5000);
    expect(code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(PROMPT_MS);
    await c.end().catch(() => undefined);
  });

  it('with NO DATABASE_URL starts an embedded PostgreSQL 18, prints a working URL, and cleans up on SIGINT', async () => {
    const port = await freePort();
    const embeddedDirs = () => new Set(readdirSync(os.tmpdir()).filter((n) => n.startsWith('pgairlock-embedded-')));
    const before = embeddedDirs();
    const emptyConfig = path.join(tmp.dir, 'empty.yaml');
    writeFileSync(emptyConfig, '{}\n');
    const cli = startCli(['start'], { DATABASE_URL: undefined, PGAIRLOCK_LISTEN: `127.0.0.1:${port}`, PGAIRLOCK_CONFIG: emptyConfig });
    running.push(cli);
    await waitForOutput(cli, 'connect with: psql "', 90_000);
    expect(cli.stdout).toContain(`pgairlock is listening on 127.0.0.1:${port} (embedded PostgreSQL upstream)`);
    const url = cli.stdout.split('connect with: psql "')[1]!.split('"')[0]!;
    expect(url).toMatch(new RegExp(`^postgres://postgres:[^@]+@127\\.0\\.0\\.1:${port}/postgres$`));

    const created = [...embeddedDirs()].filter((d) => !before.has(d));
    expect(created.length).toBeGreaterThanOrEqual(1);
    // The user is shown the temporary data directory (so they know what is deleted on exit).
    const printedDir = created.find((d) => `${cli.stdout}\n${cli.stderr}`.includes(path.join(os.tmpdir(), d)));
    expect(printedDir).toBeDefined();

    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query<{ v: string }>('SELECT version() AS v');
    expect(rows[0]!.v).toContain('PostgreSQL 18');
    await c.end();

    cli.child.kill('SIGINT');
    const { code } = await exitWithin(cli, 20_000);
    expect(code).toBe(0);
    expect(cli.stdout).toContain('pgairlock stopped');
    expect(existsSync(path.join(os.tmpdir(), printedDir!))).toBe(false);
  });

  it('a bad key in pgairlock.yaml: exit 2 and stderr names the key', async () => {
    const bad = path.join(tmp.dir, 'bad.yaml');
    writeFileSync(bad, `lisen: 127.0.0.1:6432\nlimits:\n  max_message_bytes: 5\n`);
    const r = await runCli(['start', '--config', bad], { env: { DATABASE_URL: upstreamUrl }, timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('lisen');
    expect(r.stderr).toContain('limits.max_message_bytes');
    expect(r.stdout).not.toContain('listening');
  });

  it('a listen address already in use: a clear error and a non-zero exit', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
    const { port } = blocker.address() as net.AddressInfo;
    try {
      const r = await runCli(['start', '--config', configPath], { env: { DATABASE_URL: upstreamUrl, PGAIRLOCK_LISTEN: `127.0.0.1:${port}` }, timeoutMs: 30_000 });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain('EADDRINUSE');
      expect(r.stderr).toContain(String(port));
    } finally {
      blocker.close();
    }
  });

  it('a missing explicit config file: exit 2 with its path', async () => {
    const missing = path.join(tmp.dir, 'nope.yaml');
    const r = await runCli(['start', '--config', missing], { env: { DATABASE_URL: upstreamUrl }, timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(missing);
  });
});
