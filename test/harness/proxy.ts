import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import pino from 'pino';
import { parseConfig } from '../../governance/config/load.js';
import type { ConfigInput } from '../../governance/config/schema.js';
import { startProxy, type ProxyHooks, type ProxyServer } from '../../proxy/server.js';
import { upstreamUrl } from './db.js';

export const REPO_ROOT = path.resolve(import.meta.dirname, '../..');

export interface TestProxy {
  readonly server: ProxyServer;
  readonly port: number;
  /** URL through the proxy for user/db (password optional). */
  url(db: string, user?: string, password?: string, extra?: string): string;
  close(): Promise<void>;
}

/**
 * Starts pgairlock in this process on a free loopback port. Upstream defaults to the test server
 * without TLS; pass config overrides as the YAML keys (ConfigInput).
 */
export async function startTestProxy(overrides: ConfigInput = {}, hooks?: ProxyHooks): Promise<TestProxy> {
  const upstream = upstreamUrl();
  const config = parseConfig({
    listen: '127.0.0.1:0',
    upstream: { url: upstream },
    shutdown_timeout_ms: 2000,
    ...overrides,
  });
  const log = pino({ level: process.env.PGAIRLOCK_TEST_LOG ?? 'silent' });
  const server = await startProxy(config, log, hooks);
  const port = server.address.port;
  return {
    server,
    port,
    url: (db, user = 'postgres', password, extra) =>
      `postgres://${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}@127.0.0.1:${port}/${encodeURIComponent(db)}${extra ? `?${extra}` : ''}`,
    close: () => server.shutdown(500),
  };
}

/** Runs the real `pgairlock` CLI from source (no build needed): node --import tsx cli/main.ts ... */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'cli/main.ts'), ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Runs the CLI to completion; returns exit code and output. */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawnCli(args, opts.env);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`pgairlock ${args.join(' ')} timed out\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin!.end(opts.input ?? '');
  });
}
