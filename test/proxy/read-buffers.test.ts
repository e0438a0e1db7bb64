import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { sleep } from '../harness/tools.js';
import { queryMessage, RawConnection } from '../harness/wire.js';
import { useReadBuffer } from '../../proxy/wire/readbuf.js';

/**
 * Reused read buffers (proxy/wire/readbuf.ts): each plain socket reads into one buffer that the
 * next read overwrites, and the relayed views go straight into writes. These tests make the proxy's
 * writes queue (a client that stops reading) and make messages span many reads, and check that
 * every byte still arrives as sent.
 */

const db = useTestDatabase();
const md5 = (s: string) => createHash('md5').update(s).digest('hex');

describe.skipIf(!postgresAvailable())('reused read buffers', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startTestProxy();
  });
  afterAll(async () => proxy?.close());

  const session = (): Promise<RawConnection> => RawConnection.session(proxy.port, { user: 'postgres', database: db.name });

  it('are in use on plain sockets (this Node version supports the onread path)', async () => {
    const c = await session();
    try {
      const sessions = [...proxy.server.sessions].filter((s) => s.phase === 'ready');
      expect(sessions.length).toBeGreaterThan(0);
      for (const s of sessions) expect(s.readBuffers).toEqual({ client: true, server: true });
    } finally {
      c.destroy();
    }
  });

  it('a large result to a client that stops reading arrives intact (writes queue while the server keeps sending)', async () => {
    const c = await session();
    try {
      const rows = 200_000;
      c.socket.pause();
      c.write(queryMessage(`SELECT i, md5(i::text) FROM generate_series(1, ${rows}) i`));
      // Long enough for the kernel buffers to fill and the proxy's client writes to queue in Node.
      await sleep(1500);
      const stuck = [...proxy.server.sessions].some((s) => s.phase === 'ready' && s.inFlight > 0);
      expect(stuck).toBe(true);
      c.socket.resume();
      await c.waitForMessage((m) => m.type === 'Z', 60_000);
      const dataRows = c.messages.filter((m) => m.type === 'D');
      expect(dataRows.length).toBe(rows);
      let bad = 0;
      for (const [k, m] of dataRows.entries()) {
        const l1 = m.body.readInt32BE(2);
        const i = m.body.toString('utf8', 6, 6 + l1);
        const l2 = m.body.readInt32BE(6 + l1);
        const h = m.body.toString('utf8', 10 + l1, 10 + l1 + l2);
        if (i !== String(k + 1) || h !== md5(i)) bad++;
      }
      expect(bad).toBe(0);
    } finally {
      c.destroy();
    }
  }, 90_000);

  it('messages larger than a read buffer, in both directions, arrive intact', async () => {
    const client = new pg.Client({ connectionString: proxy.url(db.name) });
    await client.connect();
    try {
      // A 1 MB statement (spans ~64 reads of 16 KiB) whose literal comes back in one 1 MB DataRow.
      const big = Array.from({ length: 1 << 20 }, (_, i) => String.fromCharCode(97 + ((i * 7) % 26))).join('');
      const r = await client.query<{ t: string; h: string }>(`SELECT '${big}'::text AS t, md5('${big}') AS h`);
      expect(r.rows[0]!.t).toBe(big);
      expect(r.rows[0]!.h).toBe(md5(big));
    } finally {
      await client.end();
    }
  }, 60_000);

  it('many pipelined messages cut across reads at every offset arrive in order', async () => {
    const c = await session();
    try {
      const n = 3000;
      const values = Array.from({ length: n }, (_, i) => `value-${i}-${'x'.repeat((i * 13) % 101)}`);
      c.write(Buffer.concat(values.map((v) => queryMessage(`SELECT '${v}'`))));
      await c.waitForMessage(() => c.messages.filter((m) => m.type === 'Z').length === n, 30_000);
      const got = c.messages.filter((m) => m.type === 'D').map((m) => m.body.toString('utf8', 6, 6 + m.body.readInt32BE(2)));
      expect(got).toEqual(values);
    } finally {
      c.destroy();
    }
  }, 60_000);

  it('an asynchronous gate verdict while upstream writes are queued: the messages after it still arrive intact', async () => {
    // The server sleeps first, so it reads nothing for a while: pgairlock's writes upstream queue in
    // Node. Every 10th statement gets its verdict asynchronously, so the rest of that read is relayed
    // from a continuation, outside the read callback, while earlier views are still queued.
    const gated = await startTestProxy({}, {
      gateFor: () => ({
        onClientMessage: (type, buf, start, end) =>
          type === 0x51 && buf.toString('latin1', start + 5, end - 1).includes('/*async*/')
            ? new Promise((resolve) => setTimeout(() => resolve({ action: 'forward' }), 5))
            : undefined,
      }),
    });
    const c = await RawConnection.session(gated.port, { user: 'postgres', database: db.name });
    try {
      const n = 500;
      const pad = 'p'.repeat(16_000);
      const values = Array.from({ length: n }, (_, i) => `v${i}-${pad}`);
      const sql = values.map((v, i) => `SELECT '${v}'${i % 10 === 7 ? ' /*async*/' : ''}`);
      c.write(Buffer.concat([queryMessage('SELECT pg_sleep(1)'), ...sql.map((q) => queryMessage(q))]));
      await c.waitForMessage(() => c.messages.filter((m) => m.type === 'Z').length === n + 1 || c.messages.some((m) => m.type === 'E'), 60_000);
      expect(c.errors()).toEqual([]);
      const got = c.messages.filter((m) => m.type === 'D').slice(1).map((m) => m.body.toString('utf8', 6, 6 + m.body.readInt32BE(2)));
      expect(got.length).toBe(n);
      expect(got.filter((v, i) => v !== values[i]).length).toBe(0);
    } finally {
      c.destroy();
      await gated.close();
    }
  }, 90_000);

  it('more than 1 MiB sent while a verdict is pending: kept in order, the client paused and resumed, nothing lost', async () => {
    // The first statement waits 1.5 s for its verdict; meanwhile the client sends about 3 MiB more,
    // past the stash limit (session.ts STASH_LIMIT), so the proxy must pause reading and resume after.
    let settledAt = 0;
    const gated = await startTestProxy({}, {
      gateFor: () => ({
        onClientMessage: (type, buf, start, end) =>
          type === 0x51 && buf.toString('latin1', start + 5, end - 1).includes('/*hold*/')
            ? new Promise((resolve) => setTimeout(() => { settledAt = Date.now(); resolve({ action: 'forward' }); }, 1500))
            : undefined,
      }),
    });
    const c = await RawConnection.session(gated.port, { user: 'postgres', database: db.name });
    try {
      const n = 200;
      const pad = 'q'.repeat(16_000);
      const values = Array.from({ length: n }, (_, i) => `w${i}-${pad}`);
      c.write(Buffer.concat([queryMessage("SELECT 'first' /*hold*/"), ...values.map((v) => queryMessage(`SELECT '${v}'`))]));
      await c.waitForMessage(() => c.messages.filter((m) => m.type === 'Z').length === n + 1 || c.messages.some((m) => m.type === 'E'), 60_000);
      expect(settledAt).toBeGreaterThan(0);
      expect(c.errors()).toEqual([]);
      const got = c.messages.filter((m) => m.type === 'D').map((m) => m.body.toString('utf8', 6, 6 + m.body.readInt32BE(2)));
      expect(got).toEqual(['first', ...values]);
    } finally {
      c.destroy();
      await gated.close();
    }
  }, 90_000);

  it('release() outside the read callback: the next read goes into the new buffer and leaves the old one alone', async () => {
    const server = net.createServer({ pauseOnConnect: true });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const sender = net.connect({ port, host: '127.0.0.1' });
    const [accepted] = (await once(server, 'connection')) as [net.Socket];
    try {
      const reads: { buf: Buffer; text: string }[] = [];
      let wake: (() => void) | undefined;
      const rb = useReadBuffer(accepted, 64, (buf, length) => {
        reads.push({ buf, text: buf.toString('latin1', 0, length) });
        wake?.();
      });
      expect(rb).toBeDefined();
      const next = () => new Promise<void>((r) => (wake = r));
      accepted.resume();
      let got = next();
      sender.write('first');
      await got;
      const old = reads[0]!.buf;
      // As a write queued elsewhere would: give the buffer away from outside the callback.
      rb!.release();
      got = next();
      sender.write('second');
      await got;
      expect(reads.map((r) => r.text)).toEqual(['first', 'second']);
      expect(reads[1]!.buf).not.toBe(old);
      expect(old.toString('latin1', 0, 5)).toBe('first');
      // And from inside the callback (the common case): the read after it uses a new buffer too.
      const before = reads[1]!.buf;
      got = next();
      sender.write('third');
      await got;
      expect(reads[2]!.buf).toBe(before); // not released: reused
      wake = () => rb!.release();
      sender.write('fourth');
      await new Promise((r) => setTimeout(r, 100));
      got = next();
      sender.write('fifth');
      await got;
      expect(reads.map((r) => r.text)).toEqual(['first', 'second', 'third', 'fourth', 'fifth']);
      expect(reads[4]!.buf).not.toBe(before);
      expect(before.toString('latin1', 0, 6)).toBe('fourth');
    } finally {
      sender.destroy();
      accepted.destroy();
      server.close();
    }
  });
});
