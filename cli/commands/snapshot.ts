import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import pg from 'pg';
import { loadConfig } from '../../governance/config/load.js';
import { readSnapshot } from '../../governance/state/snapshot.js';
import type { CatalogSnapshot } from '../../governance/state/types.js';

/**
 * `pgairlock snapshot save|hash`: read the catalog snapshot of one database (docs/state.md).
 * Exit codes: 0 ok; 2 usage, config or connection errors.
 */

export interface ConnectionOpts { config?: string; url?: string; database?: string }

/** The database to read: --url, else upstream.url of the config (DATABASE_URL overrides it), with --database as its name. */
export function targetUrl(opts: ConnectionOpts): string {
  let url = opts.url;
  if (!url) {
    const { config } = loadConfig(opts.config ? { path: opts.config } : {});
    url = config.upstream.url;
  }
  if (!url) throw new Error('no database to read: pass --url postgres://... or set upstream.url in pgairlock.yaml (or DATABASE_URL)');
  if (!opts.database) return url;
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(opts.database)}`;
  return u.toString();
}

export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid url)';
  }
}

/** Connects, reads one snapshot, disconnects. Errors name the (password-free) URL. */
export async function snapshotOf(url: string, excludeSchemas?: readonly string[]): Promise<CatalogSnapshot> {
  const client = new pg.Client({ connectionString: url, application_name: 'pgairlock-snapshot', connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    return await readSnapshot(client, excludeSchemas ? { excludeSchemas } : {});
  } catch (err) {
    throw new Error(`cannot read the catalog of ${safeUrl(url)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  } finally {
    await client.end().catch(() => undefined);
  }
}

const connectionOptions = (cmd: Command): Command =>
  cmd
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml); its upstream.url is read')
    .option('--url <postgres-url>', 'read this server instead of upstream.url')
    .option('-d, --database <name>', 'database name (default: the one in the URL)')
    .option('--exclude-schema <name...>', 'also leave out these schemas');

export function registerSnapshot(program: Command): void {
  const snapshot = program.command('snapshot').description('read the catalog snapshot of a database (schema objects with version hashes)');
  connectionOptions(snapshot.command('save'))
    .description('write a JSON snapshot (for `pgairlock drift --against FILE`)')
    .option('-o, --output <file>', 'write here instead of stdout')
    .action(async (opts: ConnectionOpts & { output?: string; excludeSchema?: string[] }) => {
      const snap = await snapshotOf(targetUrl(opts), opts.excludeSchema);
      const json = `${JSON.stringify(snap, null, 1)}\n`;
      if (opts.output) {
        writeFileSync(opts.output, json);
        console.error(`saved snapshot of ${snap.database}: ${snap.objects.length} objects, schema ${snap.schemaHash} -> ${opts.output}`);
      } else {
        process.stdout.write(json);
      }
    });
  connectionOptions(snapshot.command('hash'))
    .description('print the schema version hash (for SET pgairlock.expect_schema)')
    .action(async (opts: ConnectionOpts & { excludeSchema?: string[] }) => {
      const snap = await snapshotOf(targetUrl(opts), opts.excludeSchema);
      console.log(snap.schemaHash);
    });
}
