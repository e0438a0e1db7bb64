import net from 'node:net';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import type { SslMode } from '../governance/config/schema.js';
import { SqlState, PgError } from './errors.js';
import { cancelRequest, sslRequest } from './wire/encode.js';

/** Where and how to reach one upstream PostgreSQL server. */
export interface UpstreamTarget {
  /** Host name or address, or a directory holding PostgreSQL's Unix socket (starts with '/'). */
  readonly host: string;
  readonly port: number;
  readonly sslmode: SslMode;
  readonly sslrootcert?: string;
  readonly connectTimeoutMs: number;
}

export type UpstreamSocket = net.Socket | tls.TLSSocket;

/** A host that starts with '/' is a socket directory, as in libpq: `<dir>/.s.PGSQL.<port>`. */
export function isUnixSocket(t: UpstreamTarget): boolean {
  return t.host.startsWith('/');
}

function describe(t: UpstreamTarget): string {
  return isUnixSocket(t) ? `${t.host}/.s.PGSQL.${t.port}` : `${t.host}:${t.port}`;
}

function connectTcp(t: UpstreamTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = isUnixSocket(t) ? net.connect({ path: describe(t) }) : net.connect({ host: t.host, port: t.port });
    const timer = setTimeout(() => {
      s.destroy();
      reject(unreachable(t, `timed out after ${t.connectTimeoutMs} ms`));
    }, t.connectTimeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.setNoDelay(true);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(unreachable(t, err.message));
    });
  });
}

function unreachable(t: UpstreamTarget, why: string): PgError {
  return new PgError({
    severity: 'FATAL',
    code: SqlState.SqlclientUnableToEstablishSqlconnection,
    message: `pgairlock could not connect to the upstream server at ${describe(t)}: ${why}`,
    hint: 'Check that PostgreSQL is running and that upstream.url / DATABASE_URL points at it.',
  });
}

/** Reads exactly one byte: the server's answer to SSLRequest. */
function readOneByte(s: net.Socket, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('no answer to SSLRequest')), timeoutMs);
    const onData = (d: Buffer) => {
      if (d.length !== 1) {
        // Bytes after the answer would be unencrypted data injected before the handshake (CVE-2021-23222).
        done(new Error('unexpected data after the SSLRequest answer'));
        return;
      }
      done(undefined, d[0]);
    };
    const onErr = (e: Error) => done(e);
    const done = (err?: Error, b?: number) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('error', onErr);
      s.pause();
      if (err) reject(err);
      else resolve(b!);
    };
    s.on('data', onData);
    s.once('error', onErr);
  });
}

/**
 * Connects to the upstream and negotiates TLS as libpq's sslmode does: disable and allow stay
 * plain (allow does not retry with TLS), prefer upgrades when the server agrees, require insists,
 * verify-ca checks the chain against sslrootcert, verify-full also the host name.
 */
export async function connectUpstream(t: UpstreamTarget): Promise<UpstreamSocket> {
  const plain = await connectTcp(t);
  // PostgreSQL never speaks TLS on a Unix socket and libpq ignores sslmode there: so do we.
  if (t.sslmode === 'disable' || t.sslmode === 'allow' || isUnixSocket(t)) return plain;
  plain.write(sslRequest());
  let answer: number;
  try {
    answer = await readOneByte(plain, t.connectTimeoutMs);
  } catch (err) {
    plain.destroy();
    throw unreachable(t, (err as Error).message);
  }
  if (answer !== 0x53 /* S */) {
    if (t.sslmode === 'prefer') return plain; // paused: the session resumes it once it listens
    plain.destroy();
    throw new PgError({
      severity: 'FATAL',
      code: SqlState.SqlclientUnableToEstablishSqlconnection,
      message: `the upstream server at ${describe(t)} does not support TLS, but upstream.sslmode is ${t.sslmode}`,
      hint: 'Enable ssl on the server or lower upstream.sslmode.',
    });
  }
  const verify = t.sslmode === 'verify-ca' || t.sslmode === 'verify-full' || (t.sslmode === 'require' && !!t.sslrootcert);
  return new Promise((resolve, reject) => {
    const secure = tls.connect({
      socket: plain,
      servername: net.isIP(t.host) ? undefined : t.host,
      ca: t.sslrootcert ? readFileSync(t.sslrootcert) : undefined,
      rejectUnauthorized: verify,
      checkServerIdentity: t.sslmode === 'verify-full' ? tls.checkServerIdentity : () => undefined,
    });
    secure.once('secureConnect', () => {
      secure.setNoDelay(true);
      resolve(secure);
    });
    secure.once('error', (err) => {
      secure.destroy();
      reject(unreachable(t, `TLS handshake failed: ${err.message}`));
    });
  });
}

/** Sends a CancelRequest for an upstream backend on a fresh connection (cancel needs no TLS or auth). */
export async function sendUpstreamCancel(t: UpstreamTarget, pid: number, secret: Buffer): Promise<void> {
  const s = await connectTcp({ ...t, connectTimeoutMs: Math.min(t.connectTimeoutMs, 5000) });
  await new Promise<void>((resolve) => {
    s.end(cancelRequest(pid, secret), () => resolve());
    s.once('error', () => resolve());
  });
  s.destroy();
}
