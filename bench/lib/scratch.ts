import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { runCommand } from './pgbench.js';

/** The benchmark's own database: created, filled by `pgbench -i`, dropped (WITH (FORCE)) at the end. */

export interface AdminTarget {
  /** postgres://user@host:port/db of the real server, for CREATE/DROP DATABASE. */
  readonly adminUrl: string;
}

export function scratchName(): string {
  return `pgairlock_bench_${randomBytes(4).toString('hex')}`;
}

/** Runs one statement on the admin URL with a bounded connect and statement time. */
export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(adminUrl: string, sql: string, timeoutMs = 60_000): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000, query_timeout: timeoutMs });
  await client.connect();
  try {
    return await client.query<R>(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Quotes an identifier the way PostgreSQL's quote_ident does. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** `url` with its database replaced by `name`. */
export function databaseUrl(url: string, name: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(name)}`;
  return u.toString();
}

/**
 * Where pgbench and the peers reach the server, as libpq and the proxy read the URL: ?host= wins; a directory (also
 * percent-encoded as the host) is a Unix socket.
 */
export function upstreamConn(url: URL): { host: string; port: number; user: string } {
  return {
    host: url.searchParams.get('host') || decodeURIComponent(url.hostname) || '127.0.0.1',
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username || 'postgres'),
  };
}

export async function createDatabase(adminUrl: string, name: string): Promise<void> {
  await adminQuery(adminUrl, `CREATE DATABASE ${quoteIdent(name)}`);
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`, 170_000);
}

/** `pgbench -i -s <scale>` directly against the server (never through a target). */
export async function initPgbench(
  conn: { host: string; port: number; user: string; database: string },
  scale: number,
  timeoutMs: number,
  /** Receives a function that kills the running `pgbench -i` (for Ctrl-C). */
  onStart?: (kill: () => void) => void,
): Promise<void> {
  const r = await runCommand(
    'pgbench',
    ['-i', '-q', '-s', String(scale), '-h', conn.host, '-p', String(conn.port), '-U', conn.user, conn.database],
    { timeoutMs, env: { ...process.env, PGCONNECT_TIMEOUT: '10' }, onStart: (_pid, kill) => onStart?.(kill) },
  );
  if (r.code !== 0) {
    const why = r.timedOut ? `timed out after ${timeoutMs} ms` : `exit code ${r.code}`;
    throw new Error(`pgbench -i -s ${scale} failed (${why}):\n${r.stderr.slice(-2000)}`);
  }
}
