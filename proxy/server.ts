import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Config, SslMode } from '../governance/config/schema.js';
import { CancelRegistry } from './cancel-registry.js';
import { PgError, SqlState } from './errors.js';
import { Session, type Route, type SessionEnv, type SessionGate, type SessionInfo, type VirtualHandler } from './session.js';
import type { UpstreamTarget } from './upstream.js';
import { errorResponse } from './wire/encode.js';
import { reuseReadBuffersByDefault } from './wire/readbuf.js';

export interface ProxyHooks {
  gateFor?(info: SessionInfo, session: Session): SessionGate | undefined;
  virtualDatabase?(session: Session, info: SessionInfo): VirtualHandler | undefined;
}

export interface ProxyServer {
  /** The address actually bound (port 0 in config picks a free one). */
  readonly address: { host: string; port: number };
  readonly sessions: ReadonlySet<Session>;
  /** Stop accepting; end idle sessions now and busy ones when idle; force-close after timeoutMs. */
  shutdown(timeoutMs?: number): Promise<void>;
}

export function parseHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const host = s.slice(0, i).replace(/^\[|\]$/g, '');
  return { host, port: Number(s.slice(i + 1)) };
}

/** Where a client's database goes: config.databases mapping, else the upstream URL's server. */
export function makeRouter(config: Config, virtualAuth: Readonly<Record<string, string>> = {}): (database: string, user: string) => Route {
  const url = config.upstream.url ? new URL(config.upstream.url) : undefined;
  const sslmode: SslMode =
    config.upstream.sslmode ?? ((url?.searchParams.get('sslmode') as SslMode | null) ?? 'prefer');
  const base: UpstreamTarget = {
    // libpq's rules: a `host` query parameter wins over the URL's host; either may be a directory
    // (`?host=/var/run/postgresql` or a percent-encoded `%2Fvar%2Frun%2Fpostgresql`): a Unix socket.
    host: url?.searchParams.get('host') || decodeURIComponent(url?.hostname ?? '').replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: Number(url?.port || 5432),
    sslmode,
    sslrootcert: config.upstream.sslrootcert ?? url?.searchParams.get('sslrootcert') ?? undefined,
    connectTimeoutMs: config.upstream.connect_timeout_ms,
  };
  return (database, user) => {
    // A virtual database (the admin console) authenticates its users against a real one.
    const authDb = virtualAuth[database];
    if (authDb !== undefined) return { target: base, database: authDb, user };
    const m = config.databases[database] ?? config.databases['*'];
    if (!m) return { target: base, database, user };
    return {
      target: { ...base, host: m.host ?? base.host, port: m.port ?? base.port },
      database: m.dbname ?? database,
      user: m.user ?? user,
    };
  };
}

/**
 * Starts the listener. `virtualAuth` names the virtual databases pgairlock serves itself and the
 * upstream database each one authenticates its users against (e.g. { pgairlock: 'postgres' }).
 */
export async function startProxy(config: Config, log: Logger, hooks: ProxyHooks = {}, virtualAuth: Readonly<Record<string, string>> = {}): Promise<ProxyServer> {
  const cancels = new CancelRegistry();
  const sessions = new Set<Session>();
  const tlsContext = config.tls
    ? tls.createSecureContext({ cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) })
    : undefined;
  const route = makeRouter(config, virtualAuth);
  const env: SessionEnv = {
    log,
    cancels,
    tlsContext,
    maxMessageBytes: config.limits.max_message_bytes,
    maxStartupBytes: config.limits.max_startup_bytes,
    reuseReadBuffers: reuseReadBuffersByDefault,
    startupTimeoutMs: config.limits.startup_timeout_ms,
    route,
    gateFor: hooks.gateFor ? (session, info) => hooks.gateFor!(info, session) : undefined,
    virtualDatabase: hooks.virtualDatabase ? (session, info) => hooks.virtualDatabase!(session, info) : undefined,
    // Counted at the startup packet, not at accept: a CancelRequest must get through at the limit
    // (PostgreSQL serves cancels before its own connection limit check).
    admit: (s) => {
      if (admitted.size >= config.limits.max_client_connections) return false;
      admitted.add(s);
      return true;
    },
    onClose: (s) => {
      sessions.delete(s);
      admitted.delete(s);
    },
  };
  const admitted = new Set<Session>();
  /** Sockets not yet past startup are bounded too (each lives at most limits.startup_timeout_ms). */
  const maxSockets = config.limits.max_client_connections * 2 + 16;

  const server = net.createServer({ noDelay: true }, (socket) => {
    if (sessions.size >= maxSockets) {
      // A refused client may reset the connection: an 'error' without a listener would crash the process.
      socket.on('error', () => undefined);
      // Discard its input so its FIN is seen and the socket closes (a paused socket never ends, which
      // leaked the fd and kept shutdown's server.close() waiting forever); destroy it if it lingers.
      socket.resume();
      setTimeout(() => socket.destroy(), 1000).unref();
      // Answer in the protocol so the client shows a real error, not a reset.
      socket.end(
        errorResponse(
          new PgError({ severity: 'FATAL', code: SqlState.TooManyConnections, message: 'sorry, too many clients already', hint: 'limits.max_client_connections' }),
        ),
      );
      return;
    }
    const s = new Session(socket, env);
    sessions.add(s);
  });
  server.on('error', (err) => log.error({ err }, 'listener error'));
  const { host, port } = parseHostPort(config.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  const address = { host: bound.address, port: bound.port };
  log.info({ listen: `${address.host}:${address.port}` }, 'pgairlock listening');

  let shuttingDown: Promise<void> | undefined;
  return {
    address,
    sessions,
    shutdown(timeoutMs = config.shutdown_timeout_ms) {
      shuttingDown ??= (async () => {
        log.info({ sessions: sessions.size, timeoutMs }, 'shutting down: no new connections');
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const s of sessions) s.requestShutdown();
        const deadline = Date.now() + timeoutMs;
        while (sessions.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        for (const s of [...sessions]) s.terminateForShutdown();
        await closed;
        log.info('shutdown complete');
      })();
      return shuttingDown;
    },
  };
}
