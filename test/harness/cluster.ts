import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePortOn } from '../../cli/net.js';

/** PostgreSQL server binaries of the machine (initdb, postgres, pg_ctl). */
export function pgBinDir(): string {
  if (process.env.PGAIRLOCK_PG_BINDIR) return process.env.PGAIRLOCK_PG_BINDIR;
  // Debian keeps server binaries per major version; pg_config may be absent (it ships with -dev packages).
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return path.join(root, versions[0], 'bin');
  }
  return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export const freePort = (): Promise<number> => freePortOn('127.0.0.1');

export type HbaMethod = 'trust' | 'password' | 'md5' | 'scram-sha-256';

export interface ClusterOptions {
  /** pg_hba method for TCP connections from 127.0.0.1 (the superuser `postgres` always has trust over the socket). */
  auth?: HbaMethod;
  /** Serve TLS with a self-signed certificate (pg_hba `host` lines accept both). */
  tls?: boolean;
  /** Extra postgresql.conf lines. */
  conf?: string[];
}

export interface PrivateCluster {
  readonly port: number;
  readonly dataDir: string;
  /** Directory of its Unix socket (`.s.PGSQL.<port>`); `local` connections are trusted. */
  readonly socketDir: string;
  /** A URL for `user`:`password` on database `db` over TCP 127.0.0.1. */
  url(user?: string, password?: string, db?: string): string;
  /** Run SQL as the superuser over the Unix socket (trust). */
  psql(sql: string, db?: string): string;
  start(): Promise<void>;
  /** Fast shutdown (what `pg_ctl stop -m fast` does). */
  stop(): Promise<void>;
  /** SIGKILL the postmaster: a crash, as the proxy sees it. */
  kill(): Promise<void>;
  /** Stop, then remove the data directory. */
  destroy(): Promise<void>;
}

/** The OS user a private cluster runs as: PostgreSQL refuses to run as root. */
const RUN_AS = process.env.PGAIRLOCK_PG_OS_USER ?? 'postgres';

function osIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const uid = Number(execFileSync('id', ['-u', RUN_AS], { encoding: 'utf8' }).trim());
  const gid = Number(execFileSync('id', ['-g', RUN_AS], { encoding: 'utf8' }).trim());
  return { uid, gid };
}

/**
 * Starts a throwaway PostgreSQL cluster (initdb in a temp dir, its own port, a non-root OS user) for tests
 * that must control authentication, TLS, or kill the server. Superuser `postgres` has no password.
 */
export async function startPrivateCluster(opts: ClusterOptions = {}): Promise<PrivateCluster> {
  const bin = pgBinDir();
  const ids = osIds();
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-cluster-'));
  const dataDir = path.join(root, 'data');
  const sockDir = root;
  if (ids) chownSync(root, ids.uid, ids.gid);
  chmodSync(root, 0o755);
  const run = (file: string, args: string[]) =>
    execFileSync(path.join(bin, file), args, { stdio: 'pipe', encoding: 'utf8', ...(ids ?? {}) });
  run('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const auth = opts.auth ?? 'trust';
  writeFileSync(
    path.join(dataDir, 'pg_hba.conf'),
    ['local all all trust', `host all postgres 127.0.0.1/32 trust`, `host all all 127.0.0.1/32 ${auth}`, ''].join('\n'),
  );
  const conf = [
    `port = ${port}`,
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${sockDir}'`,
    `fsync = off`,
    `password_encryption = '${auth === 'md5' ? 'md5' : 'scram-sha-256'}'`,
    ...(opts.conf ?? []),
  ];
  if (opts.tls) {
    const crt = path.join(dataDir, 'server.crt');
    const key = path.join(dataDir, 'server.key');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-keyout', key, '-out', crt], { stdio: 'pipe' });
    if (ids) { chownSync(crt, ids.uid, ids.gid); chownSync(key, ids.uid, ids.gid); }
    chmodSync(key, 0o600);
    conf.push(`ssl = on`, `ssl_cert_file = '${crt}'`, `ssl_key_file = '${key}'`);
  }
  appendFileSync(path.join(dataDir, 'postgresql.conf'), `\n${conf.join('\n')}\n`);

  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(path.join(bin, 'postgres'), ['-D', dataDir], { stdio: ['ignore', 'ignore', 'pipe'], ...(ids ?? {}) });
    let log = '';
    child.stderr?.on('data', (d: Buffer) => { log += d.toString(); });
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`private cluster exited: ${log}`);
      try {
        run('pg_isready', ['-q', '-h', '127.0.0.1', '-p', String(port), '-U', 'postgres']);
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`private cluster did not start: ${log}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const waitExit = (signal: NodeJS.Signals) => new Promise<void>((resolve) => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) { resolve(); return; }
    c.once('exit', () => resolve());
    c.kill(signal);
  });
  await start();
  return {
    port,
    dataDir,
    socketDir: sockDir,
    url: (user = 'postgres', password?: string, db = 'postgres') =>
      `postgres://${encodeURIComponent(user)}${password ? `:${encodeURIComponent(password)}` : ''}@127.0.0.1:${port}/${encodeURIComponent(db)}`,
    psql: (sql: string, db = 'postgres') =>
      execFileSync('psql', ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-h', sockDir, '-p', String(port), '-U', 'postgres', '-d', db, '-c', sql], { encoding: 'utf8' }),
    start,
    stop: () => waitExit('SIGINT'),
    kill: () => waitExit('SIGKILL'),
    destroy: async () => { await waitExit('SIGINT'); rmSync(root, { recursive: true, force: true }); },
  };
}
