import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { startRuntime, type Runtime } from '../../cli/runtime.js';
import { parseConfig } from '../../governance/config/load.js';
import type { ConfigInput } from '../../governance/config/schema.js';
import { ADMIN_DATABASE_URL } from './env.js';
import { upstreamUrl, urlWithDatabase } from './db.js';

export interface TestRuntime {
  readonly runtime: Runtime;
  readonly port: number;
  url(db: string, user?: string, password?: string): string;
  close(): Promise<void>;
}

/**
 * Starts the whole governed pgairlock in-process (policy, principals, audit, approvals, console)
 * on a free port. The audit control database defaults to `controlDb` (give each test file its own).
 */
export async function startTestRuntime(controlDb: string, overrides: ConfigInput = {}): Promise<TestRuntime> {
  const upstream = upstreamUrl();
  const config = parseConfig({
    listen: '127.0.0.1:0',
    upstream: { url: upstream },
    shutdown_timeout_ms: 1000,
    instance: `test-${randomBytes(4).toString('hex')}`,
    ...overrides,
    mcp: { listen: '127.0.0.1:0', ...(overrides.mcp ?? {}) },
    audit: { database_url: urlWithDatabase(ADMIN_DATABASE_URL, controlDb), ...(overrides.audit ?? {}) },
  });
  const log = pino({ level: process.env.PGAIRLOCK_TEST_LOG ?? 'silent' });
  const runtime = await startRuntime(config, log);
  const port = runtime.proxy.address.port;
  return {
    runtime,
    port,
    url: (db, user = 'postgres', password) =>
      `postgres://${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}@127.0.0.1:${port}/${encodeURIComponent(db)}`,
    close: () => runtime.close(),
  };
}
