import { randomBytes } from 'node:crypto';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, inject } from 'vitest';
import { ADMIN_DATABASE_URL } from './env.js';

export const postgresAvailable = (): boolean => inject('postgresAvailable');
export const redisAvailable = (): boolean => inject('redisAvailable');

export interface TestDatabase {
  /** Database name, unique to this test file and run. */
  readonly name: string;
  /** URL of the test database on the real server (direct, not through the proxy). */
  readonly url: string;
  /** Run SQL directly against the test database (bypassing pgairlock). */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Creates a LOGIN role (roles are cluster-wide, so it may exist from another file or run) unless it exists. */
  loginRole(role: string): Promise<void>;
}

export function urlWithDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** The test server as pgairlock's upstream (no TLS on that leg), optionally with another database. */
export function upstreamUrl(database?: string): string {
  const u = new URL(database === undefined ? ADMIN_DATABASE_URL : urlWithDatabase(ADMIN_DATABASE_URL, database));
  u.searchParams.set('sslmode', 'disable');
  return u.toString();
}

export async function adminQuery(sql: string, params?: unknown[]): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await c.connect();
  try { return await c.query(sql, params); } finally { await c.end(); }
}

/**
 * Gives the calling test file its own freshly created database, dropped (with FORCE) after the file.
 * Call at the top level of a test file (it registers beforeAll/afterAll).
 */
export function useTestDatabase(label = 't'): TestDatabase {
  const file = path.basename(expect.getState().testPath ?? label).replace(/\.test\.ts$/, '').replace(/[^a-z0-9]/gi, '_').toLowerCase();
  const name = `pgairlock_${file}_${randomBytes(4).toString('hex')}`.slice(0, 63);
  const url = urlWithDatabase(ADMIN_DATABASE_URL, name);
  let client: pg.Client | undefined;
  beforeAll(async () => {
    if (!postgresAvailable()) return;
    await adminQuery(`CREATE DATABASE "${name}"`);
    client = new pg.Client({ connectionString: url });
    await client.connect();
  });
  afterAll(async () => {
    if (!postgresAvailable()) return;
    await client?.end().catch(() => undefined);
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  });
  const query = <R extends pg.QueryResultRow>(sql: string, params?: unknown[]) => {
    if (!client) throw new Error('test database not ready (is PostgreSQL running?)');
    return client.query<R>(sql, params);
  };
  return {
    name,
    url,
    query,
    loginRole: async (role) => {
      await query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${role} LOGIN; END IF; END $$`);
    },
  };
}
