import net from 'node:net';
import type { TestProject } from 'vitest/node';
import { ADMIN_DATABASE_URL, IN_CI, REDIS_URL } from './env.js';

declare module 'vitest' {
  export interface ProvidedContext {
    postgresAvailable: boolean;
    redisAvailable: boolean;
  }
}

function reachable(url: string, defaultPort: number): Promise<boolean> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port || defaultPort) });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(2000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * Checks the real services once. In CI a missing service fails the whole run (never a silent skip);
 * on a developer machine the tests that need it are skipped with a loud message.
 */
export default async function setup(project: TestProject): Promise<void> {
  const pg = await reachable(ADMIN_DATABASE_URL, 5432);
  const redis = await reachable(REDIS_URL, 6379);
  const missing = [!pg && `PostgreSQL at ${ADMIN_DATABASE_URL}`, !redis && `Redis at ${REDIS_URL}`].filter(Boolean);
  if (missing.length > 0) {
    const msg = `test services unreachable: ${missing.join(', ')}`;
    if (IN_CI) throw new Error(`${msg} (CI=true: a missing service is a failure)`);
    console.warn(`\n*** ${msg}: tests needing them are SKIPPED (they would fail in CI) ***\n`);
  }
  project.provide('postgresAvailable', pg);
  project.provide('redisAvailable', redis);
}
