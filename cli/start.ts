import { loadConfig } from '../governance/config/load.js';
import { createLogger } from '../proxy/logger.js';
import { startEmbeddedPostgres, type EmbeddedServer } from './embedded.js';
import { startRuntime, type Runtime } from './runtime.js';

/**
 * `pgairlock start`: load config, start an embedded PostgreSQL when no upstream is configured,
 * run the proxy, and shut everything down cleanly on SIGINT/SIGTERM.
 */
export async function runStart(opts: { config?: string }): Promise<void> {
  const { config, source } = loadConfig({ path: opts.config });
  const log = createLogger(config.log);
  log.info({ config: source }, 'configuration loaded');

  let embedded: EmbeddedServer | undefined;
  if (!config.upstream.url) {
    log.info('no upstream configured (DATABASE_URL or upstream.url): starting an embedded PostgreSQL');
    embedded = await startEmbeddedPostgres(log);
    config.upstream.url = embedded.url;
    if (config.principals.map.length === 0) {
      // The demo needs someone who may approve: the embedded superuser is a DBA, everyone else an agent.
      config.principals.map.push({ name: 'postgres', roles: ['dba'], match: { users: ['postgres'] } });
    }
  }

  let runtime: Runtime;
  try {
    runtime = await startRuntime(config, log, { configSource: source });
  } catch (err) {
    await embedded?.stop();
    // Pools and timers of a half-started runtime must not keep a failed start alive.
    console.error(`pgairlock: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(2);
  }
  const { host, port } = runtime.proxy.address;
  const user = embedded ? `postgres:${encodeURIComponent(embedded.password)}` : '<user>';
  const db = embedded ? 'postgres' : '<database>';
  process.stdout.write(
    `pgairlock is listening on ${host}:${port}${embedded ? ' (embedded PostgreSQL upstream)' : ''}\n` +
      `connect with: psql "postgres://${user}@${host}:${port}/${db}"\n` +
      (embedded ? `as user postgres you are principal "postgres" (role dba); other users are agents under the default policy (docs/policy.md)\n` +
        `admin console: psql "postgres://${user}@${host}:${port}/pgairlock" -c "SHOW HELP;"\n` : ''),
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'stopping');
    void (async () => {
      await runtime.close();
      await embedded?.stop();
      process.stdout.write('pgairlock stopped\n');
      process.exit(0);
    })();
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
