import { createHash } from 'node:crypto';
import tls from 'node:tls';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { psql, selfSignedCert, type TempCert } from '../harness/tools.js';
import { cancelPacket, RawConnection, startupPacket } from '../harness/wire.js';

const db = useTestDatabase();

const SSL_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
const GSSENC_REQUEST = Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);

describe.skipIf(!postgresAvailable())('TLS between client and proxy', () => {
  let cert: TempCert;
  let withTls: TestProxy;
  let plain: TestProxy;
  const conninfo = (p: TestProxy, params: string) => `postgresql://postgres@127.0.0.1:${p.port}/${db.name}?${params}`;

  beforeAll(async () => {
    cert = selfSignedCert();
    withTls = await startTestProxy({ tls: { cert: cert.cert, key: cert.key } });
    plain = await startTestProxy();
  });
  afterAll(async () => {
    await withTls?.close();
    await plain?.close();
    cert?.remove();
  });

  it('psql with sslmode=require gets TLS; \\conninfo and queries work', async () => {
    const r = await psql(conninfo(withTls, 'sslmode=require'), ['-c', '\\conninfo', '-A', '-t', '-c', 'SELECT current_database()']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/SSL connection \(protocol: TLSv1\.[23]/);
    expect(r.stdout).toContain(db.name);
  });

  it('psql with sslmode=verify-full and the certificate as root CA verifies the proxy', async () => {
    const r = await psql(conninfo(withTls, `sslmode=verify-full&sslrootcert=${encodeURIComponent(cert.cert)}`), ['-A', '-t', '-c', 'SELECT 42']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('42');
  });

  it('pg with ssl { rejectUnauthorized: false } talks TLS to the proxy', async () => {
    const c = new pg.Client({ connectionString: withTls.url(db.name), ssl: { rejectUnauthorized: false } });
    await c.connect();
    try {
      const stream = (c as unknown as { connection: { stream: unknown } }).connection.stream;
      expect(stream).toBeInstanceOf(tls.TLSSocket);
      expect((stream as tls.TLSSocket).getPeerCertificate().subject?.CN).toBe('127.0.0.1');
      expect((await c.query('SELECT 1 + 1 AS two')).rows).toEqual([{ two: 2 }]);
      const sessions = [...withTls.server.sessions];
      expect(sessions.some((s) => s.isTls && s.info?.tls === true)).toBe(true);
    } finally {
      await c.end();
    }
  });

  it('postgres.js over TLS: pipelined queries and a large result arrive intact', async () => {
    const sql = postgres(withTls.url(db.name), { max: 1, ssl: { rejectUnauthorized: false }, onnotice: () => undefined });
    try {
      const results = await Promise.all(Array.from({ length: 200 }, (_, i) => sql`SELECT ${i}::int AS i`));
      expect(results.map((r) => r[0]!.i)).toEqual(Array.from({ length: 200 }, (_, i) => i));
      const [big] = await sql`SELECT count(*)::int AS n, md5(string_agg(repeat(g::text, 300), '' ORDER BY g)) AS h FROM generate_series(1, 20000) g`;
      const rows = await sql`SELECT repeat(g::text, 300) AS s FROM generate_series(1, 20000) g ORDER BY g`;
      const h = createHash('md5');
      for (const r of rows) h.update(r.s as string);
      expect(rows.length).toBe(big!.n);
      expect(h.digest('hex')).toBe(big!.h);
    } finally {
      await sql.end({ timeout: 1 });
    }
  });

  it('a client with sslmode=disable still works against a proxy that has TLS', async () => {
    const r = await psql(conninfo(withTls, 'sslmode=disable'), ['-c', '\\conninfo']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain('SSL connection');
    expect(r.stdout).toContain(`database "${db.name}"`);
  });

  it('a proxy without TLS answers N: sslmode=require fails clearly, sslmode=prefer works in plain text', async () => {
    const req = await psql(conninfo(plain, 'sslmode=require'), ['-c', 'SELECT 1']);
    expect(req.code).toBe(2);
    expect(req.stderr).toContain('server does not support SSL, but SSL was required');
    const pref = await psql(conninfo(plain, 'sslmode=prefer'), ['-c', '\\conninfo']);
    expect(pref.stderr).toBe('');
    expect(pref.code).toBe(0);
    expect(pref.stdout).not.toContain('SSL connection');
  });

  it('SSLRequest on a raw socket: N, then a normal startup on the same socket', async () => {
    const c = await RawConnection.connect(plain.port);
    try {
      c.write(SSL_REQUEST);
      expect((await c.takeRaw(1)).toString()).toBe('N');
      await c.startup({ user: 'postgres', database: db.name });
      expect(c.messages.some((m) => m.type === 'R' && m.body.readInt32BE(0) === 0)).toBe(true);
    } finally {
      c.destroy();
    }
  });

  it('GSSENCRequest is answered N (also on the TLS proxy), and the client can go on', async () => {
    for (const p of [plain, withTls]) {
      const c = await RawConnection.connect(p.port);
      try {
        c.write(GSSENC_REQUEST);
        expect((await c.takeRaw(1)).toString()).toBe('N');
        await c.startup({ user: 'postgres', database: db.name });
      } finally {
        c.destroy();
      }
    }
    const r = await psql(conninfo(plain, 'gssencmode=prefer'), ['-A', '-t', '-c', 'SELECT 1']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('1');
  });

  it('GSSENCRequest then SSLRequest (libpq order) gets N then S on the TLS proxy', async () => {
    const c = await RawConnection.connect(withTls.port);
    try {
      c.write(GSSENC_REQUEST);
      expect((await c.takeRaw(1)).toString()).toBe('N');
      c.write(SSL_REQUEST);
      expect((await c.takeRaw(1)).toString()).toBe('S');
    } finally {
      c.destroy();
    }
  });

  it('a CancelRequest sent inside TLS (as libpq 17+ does) cancels the query', async () => {
    const c = new pg.Client({ connectionString: withTls.url(db.name), ssl: { rejectUnauthorized: false } });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const key = c as unknown as { processID: number; secretKey: number };
      const t0 = Date.now();
      const run = c.query('SELECT pg_sleep(30)').then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      await new Promise((r) => setTimeout(r, 300));
      const raw = await RawConnection.connect(withTls.port);
      raw.write(SSL_REQUEST);
      expect((await raw.takeRaw(1)).toString()).toBe('S');
      const secure = tls.connect({ socket: raw.socket, rejectUnauthorized: false });
      await new Promise<void>((resolve, reject) => {
        secure.once('secureConnect', () => resolve());
        secure.once('error', reject);
      });
      const closed = new Promise<void>((resolve) => secure.once('close', () => resolve()));
      secure.on('error', () => undefined);
      secure.write(cancelPacket(key.processID, key.secretKey));
      await Promise.race([closed, new Promise((r) => setTimeout(r, 5000))]);
      const err = await run;
      expect(err?.code).toBe('57014');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await c.end();
    }
  });

  it('unencrypted bytes sent right after SSLRequest are refused (08P01), not read as the startup', async () => {
    const c = await RawConnection.connect(withTls.port);
    try {
      c.write(Buffer.concat([SSL_REQUEST, startupPacket({ user: 'postgres', database: db.name })]));
      c.startFraming();
      const e = await c.waitForMessage((m) => m.type === 'E');
      expect(e).toBeDefined();
      expect(c.errors()[0]).toMatchObject({ C: '08P01' });
      expect(c.errors()[0]!.M).toContain('unencrypted data after SSL request');
      await c.waitClosed();
    } finally {
      c.destroy();
    }
  });
});
