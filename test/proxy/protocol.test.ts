import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { sleep } from '../harness/tools.js';
import {
  bindMessage as bind, cstr, errorFields, executeMessage as execute, int16, int32, parseMessage as parse, queryMessage, RawConnection, syncMessage as sync,
  typedMessage, type BackendMessage,
} from '../harness/wire.js';

/**
 * Protocol details no high-level driver exercises: several Parse/Bind/Execute before one Sync with
 * an error in the middle, the legacy FunctionCall message, and messages dribbled a byte at a time.
 */

const db = useTestDatabase();

const describePortal = (portal: string) => typedMessage('D', Buffer.concat([Buffer.from('P'), cstr(portal)]));

/** DataRow's first column as text. */
const firstColumn = (m: BackendMessage) => {
  const len = m.body.readInt32BE(2);
  return m.body.toString('utf8', 6, 6 + len);
};

describe.skipIf(!postgresAvailable())('wire protocol details through the proxy', () => {
  let proxy: TestProxy;
  beforeAll(async () => {
    proxy = await startTestProxy();
  });
  afterAll(async () => proxy?.close());

  const session = (): Promise<RawConnection> => RawConnection.session(proxy.port, { user: 'postgres', database: db.name });

  it('pipelined extended protocol: an error skips the rest until Sync, then the next batch runs', async () => {
    const c = await session();
    try {
      c.write(
        Buffer.concat([
          parse('', 'SELECT $1::int + 1'),
          bind('', '', ['41']),
          execute(''),
          parse('bad', 'SELEKT 1'),
          bind('', 'bad'),
          execute(''),
          parse('', 'SELECT 99'),
          bind('', ''),
          execute(''),
          sync(),
          parse('s2', 'SELECT $1::text'),
          bind('p2', 's2', ['after sync']),
          describePortal('p2'),
          execute('p2'),
          sync(),
        ]),
      );
      await c.waitForMessage((m) => m.type === 'Z' && c.messages.filter((x) => x.type === 'Z').length === 2, 10_000);
      await sleep(50);
      const types = c.messages.map((m) => m.type).join('');
      // 1 ParseComplete, 2 BindComplete, D DataRow, C CommandComplete, E error, Z; then 1 2 T D C Z.
      expect(types).toBe('12DCEZ12TDCZ');
      const rows = c.messages.filter((m) => m.type === 'D').map(firstColumn);
      expect(rows).toEqual(['42', 'after sync']);
      expect(errorFields(c.messages.find((m) => m.type === 'E')!.body).C).toBe('42601');
    } finally {
      c.destroy();
    }
  });

  it('Execute with a row limit suspends the portal (PortalSuspended) and resumes it', async () => {
    const c = await session();
    try {
      c.write(Buffer.concat([typedMessage('Q', cstr('BEGIN')), parse('', 'SELECT g FROM generate_series(1, 5) g'), bind('cur', ''), execute('cur', 2), execute('cur', 2), execute('cur', 2), sync()]));
      await c.waitForMessage((m) => m.type === 'Z' && c.messages.filter((x) => x.type === 'Z').length === 2, 10_000);
      const after = c.messages.slice(c.messages.findIndex((m) => m.type === 'Z') + 1).map((m) => m.type).join('');
      expect(after).toBe('12DDsDDsDCZ');
      expect(c.messages.filter((m) => m.type === 'D').map(firstColumn)).toEqual(['1', '2', '3', '4', '5']);
    } finally {
      c.destroy();
    }
  });

  it('the legacy FunctionCall message is relayed (pg_backend_pid, oid 2026)', async () => {
    const c = await session();
    try {
      // FunctionCall: oid, 0 arg format codes, 0 args, result format text.
      c.write(typedMessage('F', Buffer.concat([int32(2026), int16(0), int16(0), int16(0)])));
      const v = await c.waitForMessage((m) => m.type === 'V' || m.type === 'E');
      expect(v.type).toBe('V');
      const len = v.body.readInt32BE(0);
      const pid = Number(v.body.toString('utf8', 4, 4 + len));
      await c.waitForMessage((m) => m.type === 'Z');
      // The same backend answers a normal query.
      c.write(queryMessage('SELECT pg_backend_pid()'));
      const row = await c.waitForMessage((m) => m.type === 'D');
      expect(Number(firstColumn(row))).toBe(pid);
    } finally {
      c.destroy();
    }
  });

  it('messages dribbled one byte at a time are framed correctly', async () => {
    const c = await session();
    try {
      const bytes = Buffer.concat([queryMessage("SELECT 'dribbled' AS x"), parse('', 'SELECT 7'), bind('', ''), execute(''), sync()]);
      for (let i = 0; i < bytes.length; i++) {
        c.write(bytes.subarray(i, i + 1));
        if (i % 8 === 0) await sleep(1);
      }
      await c.waitForMessage((m) => m.type === 'Z' && c.messages.filter((x) => x.type === 'Z').length === 2, 10_000);
      expect(c.messages.filter((m) => m.type === 'D').map(firstColumn)).toEqual(['dribbled', '7']);
      expect(c.errors()).toEqual([]);
    } finally {
      c.destroy();
    }
  });

  it('many small queries in one write are all answered, in order', async () => {
    const c = await session();
    try {
      const n = 300;
      c.write(Buffer.concat(Array.from({ length: n }, (_, i) => queryMessage(`SELECT ${i}`))));
      await c.waitForMessage((m) => m.type === 'Z' && c.messages.filter((x) => x.type === 'Z').length === n, 15_000);
      const rows = c.messages.filter((m) => m.type === 'D').map((m) => Number(firstColumn(m)));
      expect(rows).toEqual(Array.from({ length: n }, (_, i) => i));
    } finally {
      c.destroy();
    }
  });

  it('a client that stops reading applies backpressure to the server (the proxy does not buffer the result)', async () => {
    const marker = `backpressure_${Date.now()}`;
    const c = await session();
    try {
      c.write(queryMessage(`SELECT repeat('x', 2000) FROM generate_series(1, 200000) /* ${marker} */`)); // ~400 MB
      await sleep(300);
      c.socket.pause();
      const rssBefore = process.memoryUsage().rss;
      // The server must end up blocked writing to its socket, not done and buffered in the proxy.
      let waiting = false;
      for (let i = 0; i < 60 && !waiting; i++) {
        await sleep(100);
        const { rows } = await db.query<{ state: string; wait_event: string | null }>(
          `SELECT state, wait_event FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()`,
          [`%${marker}%`],
        );
        waiting = rows.some((r) => r.state === 'active' && r.wait_event === 'ClientWrite');
      }
      expect(waiting).toBe(true);
      await sleep(500);
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(100 * 1024 * 1024);
    } finally {
      c.destroy();
    }
    // Dropping the reader ends the server's work too.
    const gone = await (async () => {
      for (let i = 0; i < 50; i++) {
        const { rows } = await db.query(`SELECT 1 FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' AND pid <> pg_backend_pid()`, [`%${marker}%`]);
        if (rows.length === 0) return true;
        await sleep(100);
      }
      return false;
    })();
    expect(gone).toBe(true);
  });

  it('an empty query string gets EmptyQueryResponse', async () => {
    const c = await session();
    try {
      c.write(queryMessage(''));
      await c.waitForMessage((m) => m.type === 'Z');
      expect(c.messages.map((m) => m.type).join('')).toBe('IZ');
    } finally {
      c.destroy();
    }
  });
});
