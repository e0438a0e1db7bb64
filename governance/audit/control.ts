import { hostname } from 'node:os';
import type { Config } from '../config/schema.js';

export type AuditConfig = Config['audit'];

/**
 * Where the audit log lives: $PGAIRLOCK_AUDIT_DATABASE_URL, else audit.database_url, else the upstream URL
 * (upstream.url or $DATABASE_URL) with its database replaced by `postgres`.
 */
export function controlDatabaseUrl(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.PGAIRLOCK_AUDIT_DATABASE_URL || config.audit.database_url;
  if (explicit) return explicit;
  const upstream = config.upstream.url;
  if (!upstream) {
    throw new Error(
      'no audit control database: set audit.database_url (or upstream.url / $DATABASE_URL, whose server\'s `postgres` database is the default)',
    );
  }
  const u = new URL(upstream);
  u.pathname = '/postgres';
  return u.toString();
}

/** This process's chain name: config `instance`, else hostname:pid (a new chain per process). */
export function instanceName(config: Config): string {
  return config.instance ?? `${hostname()}:${process.pid}`;
}
