/**
 * Bench-only entry: the proxy foundation alone (framing, batching, cancel keys, startup/auth relay)
 * with no gate, no admin console, no audit, no MCP server. `pgairlock start` always installs the
 * governance gate, so this is the only way to measure what the hop itself costs against pgbouncer.
 *
 * Run as `node --import tsx bench/lib/passthrough.ts [--entry tsx|dist]`; it reads the same
 * configuration as `pgairlock start` (PGAIRLOCK_CONFIG / --config, DATABASE_URL, PGAIRLOCK_LISTEN)
 * and prints the same "listening" log line. With `--entry dist` it loads the compiled proxy from
 * dist/ (needs `npm run build`), so the code under test is the one `pgairlock start` runs.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

type ServerModule = typeof import('../../proxy/server.js');
type LoggerModule = typeof import('../../proxy/logger.js');
type LoadModule = typeof import('../../governance/config/load.js');

const { values } = parseArgs({ options: { entry: { type: 'string' }, config: { type: 'string' } }, strict: true });
const entry = values.entry ?? 'tsx';
if (entry !== 'tsx' && entry !== 'dist') throw new Error(`--entry must be tsx or dist, got "${entry}"`);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const load = async <T>(rel: string): Promise<T> => {
  const file = entry === 'dist' ? path.join(root, 'dist', `${rel}.js`) : path.join(root, `${rel}.ts`);
  return (await import(pathToFileURL(file).href)) as T;
};

const { startProxy } = await load<ServerModule>('proxy/server');
const { createLogger } = await load<LoggerModule>('proxy/logger');
const { loadConfig } = await load<LoadModule>('governance/config/load');

const { config } = loadConfig({ path: values.config });
const log = createLogger(config.log);
const proxy = await startProxy(config, log);
log.info({ mode: 'pass-through (bench/lib/passthrough.ts: no gate, no console)' }, `pgairlock pass-through listening on ${proxy.address.host}:${proxy.address.port}`);

const stop = () => {
  void proxy.shutdown(2000).then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
