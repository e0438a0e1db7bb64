import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { sleep } from '../harness/tools.js';
import { cancelPacket, queryMessage, RawConnection, startupPacket, typedMessage } from '../harness/wire.js';

const db = useTestDatabase();

interface PgErr extends Error {
  code?: string;
}

const MAX_MESSAGE = 64 * 1024;

describe.skipIf(!postgresAvailable())('malformed and oversized client input', () => {
  let proxy: TestProxy;
  let bystander: pg.Client;

  /** The already-open session that must keep working whatever another client sends. */
  async function bystanderWorks(): Promise<void> {
    const r = await bystander.query<{ n: number }>('SELECT $1::int + 1 AS n', [41]);
    expect(r.rows).toEqual([{ n: 42 }]);
  }

  /** Connects raw, completes startup, and returns the connection ready for typed messages. */
  async function readySession(): Promise<RawConnection> {
    const c = await RawConnection.connect(proxy.port);
    await c.startup({ user: 'postgres', database: db.name });
    return c;
  }

  async function expectProtocolViolation(c: RawConnection, messageIncludes: string): Promise<void> {
    await c.waitClosed(5000);
    const errs = c.errors();
    expect(errs.length).toBeGreaterThanOrEqual(1);
    const last = errs[errs.length - 1]!;
    expect(last.C).toBe('08P01');
    expect(last.V ?? last.S).toBe('FATAL');
    expect(last.M).toContain(messageIncludes);
  }

  beforeAll(async () => {
    proxy = await startTestProxy({ limits: { max_message_bytes: MAX_MESSAGE, startup_timeout_ms: 800, max_client_connections: 1000 } });
    bystander = new pg.Client({ connectionString: proxy.url(db.name) });
    await bystander.connect();
  });
  afterAll(async () => {
    await bystander?.end().catch(() => undefined);
    await proxy?.close();
  });

  it('a startup packet with an absurd length is refused with 08P01 and closed', async () => {
    const c = await RawConnection.connect(proxy.port);
    c.startFraming();
    const b = Buffer.alloc(8);
    b.writeInt32BE(0x7fffffff, 0);
    b.writeInt32BE(196608, 4);
    c.write(b);
    await expectProtocolViolation(c, 'invalid startup packet length');
    await bystanderWorks();
  });

  it('a startup packet shorter than its header is refused', async () => {
    const c = await RawConnection.connect(proxy.port);
    c.startFraming();
    c.write(Buffer.from([0, 0, 0, 4, 0, 3, 0, 0]));
    await expectProtocolViolation(c, 'invalid startup packet length');
    await bystanderWorks();
  });

  it('a startup packet without a user is refused like PostgreSQL does', async () => {
    const c = await RawConnection.connect(proxy.port);
    c.startFraming();
    c.write(startupPacket({ database: db.name }));
    await expectProtocolViolation(c, 'no PostgreSQL user name specified');
  });

  it('protocol version 2.0 is refused with a clear message', async () => {
    const c = await RawConnection.connect(proxy.port);
    c.startFraming();
    c.write(startupPacket({ user: 'postgres', database: db.name }, 2 << 16));
    await c.waitClosed(5000);
    const [err] = c.errors();
    // PostgreSQL itself answers 0A000 (feature_not_supported); pgairlock may also call it a protocol violation.
    expect(['08P01', '0A000']).toContain(err?.C);
    expect(err?.M).toContain('unsupported frontend protocol 2.0');
    await bystanderWorks();
  });

  it('protocol 3.2 against an older server is negotiated down and works', async () => {
    const c = await RawConnection.connect(proxy.port);
    try {
      c.startFraming();
      c.write(startupPacket({ user: 'postgres', database: db.name }, (3 << 16) | 2));
      const z = await c.waitForMessage((m) => m.type === 'Z' || m.type === 'E');
      expect(z.type).toBe('Z');
      const negotiate = c.messages.find((m) => m.type === 'v');
      const key = c.backendKey();
      expect(key).toBeDefined();
      // 3.0 clients (and 3.2 ones talking to a 3.0 server) get the 4-byte key they expect.
      expect(key!.secret.length).toBe(negotiate ? (negotiate.body.readInt32BE(0) >= ((3 << 16) | 2) ? 32 : 4) : 32);
      c.write(queryMessage('SELECT 1'));
      await c.waitForMessage((m) => m.type === 'C');
    } finally {
      c.destroy();
    }
  });

  it('a typed message with length < 4 is a protocol violation', async () => {
    const c = await readySession();
    const bad = Buffer.from([0x51 /* Q */, 0, 0, 0, 2]);
    c.write(bad);
    await expectProtocolViolation(c, 'invalid message length 2');
    await bystanderWorks();
  });

  it('a negative message length is a protocol violation', async () => {
    const c = await readySession();
    c.write(Buffer.from([0x51, 0xff, 0xff, 0xff, 0xf0, 0x41]));
    await expectProtocolViolation(c, 'invalid message length');
    await bystanderWorks();
  });

  it(`a message larger than limits.max_message_bytes (${MAX_MESSAGE}) ends that client with 08P01, naming the limit`, async () => {
    const victim = new pg.Client({ connectionString: proxy.url(db.name) });
    const events: PgErr[] = [];
    victim.on('error', (e) => events.push(e as PgErr));
    const ended = new Promise<void>((resolve) => victim.once('end', () => resolve()));
    await victim.connect();
    const big = 'x'.repeat(1024 * 1024);
    let err: PgErr | undefined;
    try {
      await victim.query(`SELECT length('${big}')`);
    } catch (e) {
      err = e as PgErr;
    }
    expect(err?.code).toBe('08P01');
    expect(err?.message).toContain('exceeds the limit of 65536 bytes');
    await Promise.race([ended, sleep(5000).then(() => { throw new Error('client not disconnected'); })]);
    await bystanderWorks();
    // Just under the limit is fine, on a new session.
    const ok = new pg.Client({ connectionString: proxy.url(db.name) });
    await ok.connect();
    const r = await ok.query(`SELECT length('${'y'.repeat(MAX_MESSAGE - 200)}') AS n`);
    expect(r.rows).toEqual([{ n: MAX_MESSAGE - 200 }]);
    await ok.end();
  });

  it('garbage bytes after a valid startup end that session, with an error, and nothing else', async () => {
    // 'G' + "ARBA..." reads as a message of ~1.1 GB: over the limit, refused by pgairlock itself.
    const c1 = await readySession();
    c1.write(Buffer.from('GARBAGE \x00\x01\x02 this is not the PostgreSQL protocol \xff\xfe'));
    await expectProtocolViolation(c1, 'exceeds the limit');

    // Well-framed garbage of an unknown message type reaches the server, which refuses it itself.
    const c2 = await readySession();
    c2.write(typedMessage('@', Buffer.from('junk')));
    await c2.waitClosed(5000);
    expect(c2.errors().at(-1)?.C).toBe('08P01');

    // Garbage that stops in the middle of a message: the session waits for the rest (no crash), and
    // closing it is clean.
    const c3 = await readySession();
    c3.write(Buffer.from([0x51, 0, 0, 0x10, 0]));
    await sleep(200);
    expect(c3.closed).toBe(false);
    c3.destroy();

    await bystanderWorks();
    // And the proxy still accepts new sessions.
    const c4 = await readySession();
    c4.write(queryMessage('SELECT 1'));
    await c4.waitForMessage((m) => m.type === 'Z' && c4.messages.some((x) => x.type === 'C'));
    c4.destroy();
  });

  it('a CancelRequest with a bad length is refused and closed', async () => {
    const c = await RawConnection.connect(proxy.port);
    c.startFraming();
    const b = cancelPacket(1, 2);
    b.writeInt32BE(12, 0); // no room for a secret
    c.write(b.subarray(0, 12));
    await expectProtocolViolation(c, 'invalid cancel request length');
  });

  it('a client that connects and sends nothing is closed after limits.startup_timeout_ms', async () => {
    const t0 = Date.now();
    const c = await RawConnection.connect(proxy.port);
    c.startFraming();
    await c.waitClosed(5000);
    const ms = Date.now() - t0;
    expect(ms).toBeGreaterThanOrEqual(700);
    expect(ms).toBeLessThan(3000);
    const err = c.errors()[0];
    if (err) expect(err.M).toContain('startup did not complete in time');
    await bystanderWorks();
  });

  it('a client that stops mid-startup-packet is closed after the timeout too', async () => {
    const c = await RawConnection.connect(proxy.port);
    c.startFraming();
    c.write(startupPacket({ user: 'postgres', database: db.name }).subarray(0, 10));
    await c.waitClosed(5000);
    expect(c.closed).toBe(true);
  });
});

describe.skipIf(!postgresAvailable())('limits.max_client_connections', () => {
  let proxy: TestProxy;
  const clients: pg.Client[] = [];
  beforeAll(async () => {
    proxy = await startTestProxy({ limits: { max_client_connections: 3 } });
  });
  afterAll(async () => {
    // Some clients were ended by a test or cut off by the limit; never wait on them for long.
    await Promise.all(clients.map((c) => Promise.race([c.end().catch(() => undefined), sleep(1000)])));
    await proxy?.close();
  });

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: proxy.url(db.name) });
    c.on('error', () => undefined);
    await c.connect();
    clients.push(c);
    return c;
  }

  it('the connection over the limit gets 53300; a slot frees when a client leaves', async () => {
    const [a] = [await connect(), await connect(), await connect()];
    let err: PgErr | undefined;
    try {
      await connect();
    } catch (e) {
      err = e as PgErr;
    }
    expect(err?.code).toBe('53300');
    expect(err?.message).toContain('too many clients');
    await a.end();
    // The slot is released once the proxy sees the close (bounded wait).
    let d: pg.Client | undefined;
    for (let i = 0; i < 40 && !d; i++) {
      try {
        d = await connect();
      } catch {
        await sleep(50);
      }
    }
    expect(d).toBeDefined();
    expect((await d!.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
  });

  it('a refused connection does not linger: the proxy still shuts down promptly', async () => {
    const small = await startTestProxy({ limits: { max_client_connections: 1 } });
    const a = new pg.Client({ connectionString: small.url(db.name) });
    await a.connect();
    const b = new pg.Client({ connectionString: small.url(db.name) });
    b.on('error', () => undefined);
    await expect(b.connect()).rejects.toMatchObject({ code: '53300' });
    await a.end();
    const t0 = Date.now();
    const closed = await Promise.race([small.close().then(() => true), sleep(4000).then(() => false)]);
    expect(closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('clients that reset the connection while being refused at the limit do not hurt the proxy', async () => {
    const small = await startTestProxy({ limits: { max_client_connections: 1 } });
    const a = new pg.Client({ connectionString: small.url(db.name) });
    await a.connect();
    try {
      for (let i = 0; i < 20; i++) {
        const raw = await RawConnection.connect(small.port);
        raw.write(startupPacket({ user: 'postgres', database: db.name }));
        raw.socket.resetAndDestroy();
      }
      await sleep(200);
      expect((await a.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await a.end();
      await small.close();
    }
  });

  // PostgreSQL serves a CancelRequest even when it is at max_connections (the postmaster handles it
  // before the limit check); a proxy at its limit must not swallow the cancel of a running query.
  it('a CancelRequest is served even when the proxy is at its connection limit', async () => {
    while (clients.filter((c) => (c as unknown as { _ending: boolean })._ending !== true).length < 3) await connect();
    const live = clients.filter((c) => (c as unknown as { _ending: boolean })._ending !== true);
    const busy = live[0]! as pg.Client & { processID: number; secretKey: number };
    const t0 = Date.now();
    const run = busy.query('SELECT pg_sleep(3)').then(
      () => undefined,
      (e: PgErr) => e,
    );
    await sleep(300);
    const c = await RawConnection.connect(proxy.port);
    c.write(cancelPacket(busy.processID, busy.secretKey));
    await c.waitClosed(5000);
    const err = await run;
    expect(err?.code).toBe('57014');
    expect(Date.now() - t0).toBeLessThan(2500);
  });
});
