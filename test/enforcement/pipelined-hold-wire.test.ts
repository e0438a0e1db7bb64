import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigInput } from '../../governance/config/schema.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { sleep } from '../harness/tools.js';
import {
  bindMessage as bind, errorFields, executeMessage as execute, parseMessage as parse, queryMessage, RawConnection, syncMessage as sync, type BackendMessage,
} from '../harness/wire.js';

/**
 * Messages queued ahead of a message with an asynchronous verdict (proxy/session.ts, drainClient): they share
 * its write when the verdict comes within a few ms (an audit barrier such as COMMIT), and go out on their own
 * when it takes longer (a statement held for approval in wait mode), so a held statement never holds back
 * earlier statements sent in the same socket write. Raw hand-built messages, so each batch is one write.
 */
const db = useTestDatabase();
const AGENT = 'airlock_pipe_agent';
const DBA = 'airlock_pipe_dba';

const config: ConfigInput = {
  principals: {
    map: [
      { name: 'dba', roles: ['dba'], match: { users: [DBA, 'postgres'] } },
      { name: 'agent:{user}', roles: ['agent'], match: { users: [AGENT] } },
    ],
  },
  state: { enabled: false },
  policy: {
    default_effect: { global: 'deny', roles: { agent: 'allow', dba: 'allow' } },
    rules: [
      {
        id: 'agent-ddl-waits',
        description: 'Agent DDL waits for approval.',
        match: { roles: ['agent'], kinds: ['ddl'] },
        effect: 'hold',
        hold: { mode: 'wait', approvals: 1, approver_roles: ['dba'], timeout: '30s' },
      },
    ],
  },
};


const tag = (m: BackendMessage) => m.body.toString('utf8', 0, m.body.length - 1);
const count = (c: RawConnection, type: string) => c.messages.filter((m) => m.type === type).length;
const types = (c: RawConnection) => c.messages.map((m) => m.type).join('');
/** ReadyForQuery's transaction status (I, T or E). */
const status = (m: BackendMessage) => String.fromCharCode(m.body[0]!);
/** The n-th (1-based) ReadyForQuery, once it has arrived. */
async function nthReady(c: RawConnection, n: number, timeoutMs = 10_000): Promise<BackendMessage> {
  await c.waitForMessage(() => count(c, 'Z') >= n, timeoutMs);
  return c.messages.filter((m) => m.type === 'Z')[n - 1]!;
}

async function consoleCommand(rt: TestRuntime, user: string, command: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: rt.url('pgairlock', user) });
  await c.connect();
  try { return await c.query(command); } finally { await c.end(); }
}

const tableExists = async (name: string) =>
  (await db.query<{ e: boolean }>('SELECT to_regclass($1) IS NOT NULL AS e', [`public.${name}`])).rows[0]?.e;

/** The change id announced in the hold's NoticeResponse. */
async function heldChange(c: RawConnection): Promise<string> {
  const n = await c.waitForMessage((m) => m.type === 'N' && /held for approval as change/.test(errorFields(m.body).M ?? ''));
  return /change ([0-9A-Z]{8})/.exec(errorFields(n.body).M!)![1]!;
}

describe.runIf(postgresAvailable())('an asynchronous verdict and the messages queued before it (one socket write)', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    for (const r of [AGENT, DBA]) await db.loginRole(r);
    await db.query('CREATE TABLE pipe_t (i int PRIMARY KEY, note text)');
    await db.query(`GRANT SELECT, INSERT ON pipe_t TO ${AGENT}`);
    await db.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${AGENT}`);
    rt = await startTestRuntime(db.name, config);
  });
  afterAll(async () => rt?.close());

  const session = (user: string) => RawConnection.session(rt.port, { user, database: db.name });
  const visible = async (i: number) => (await db.query('SELECT 1 FROM pipe_t WHERE i = $1', [i])).rowCount === 1;

  it('an INSERT (P/B/E/S) sent in the same write before a statement held for approval runs and answers at once; approval then runs the held one', async () => {
    const c = await session(AGENT);
    try {
      const t0 = Date.now();
      c.write(Buffer.concat([
        parse('', 'INSERT INTO pipe_t (i, note) VALUES ($1, $2)'), bind('', '', ['1', 'before the hold']), execute(), sync(),
        parse('', 'CREATE TABLE pipe_held_1 (a int)'), bind('', ''), execute(), sync(),
      ]));
      // The INSERT's answer comes while the CREATE TABLE is still waiting for its approval.
      const z1 = await nthReady(c, 1, 1_000);
      expect(Date.now() - t0).toBeLessThan(1_000);
      expect(status(z1)).toBe('I');
      expect(tag(c.messages.find((m) => m.type === 'C')!)).toBe('INSERT 0 1');
      expect(await visible(1)).toBe(true);
      const changeId = await heldChange(c);
      const pending = await consoleCommand(rt, DBA, 'SHOW PENDING');
      expect(pending.rows.map((r: { id: string }) => r.id)).toContain(changeId);
      // Nothing of the held statement has been answered, and it has not run.
      await sleep(200);
      expect(count(c, 'Z')).toBe(1);
      expect(count(c, 'C')).toBe(1);
      expect(await tableExists('pipe_held_1')).toBe(false);

      await consoleCommand(rt, DBA, `APPROVE ${changeId} 'fine'`);
      const z2 = await nthReady(c, 2);
      expect(status(z2)).toBe('I');
      expect(c.errors()).toEqual([]);
      expect(c.messages.filter((m) => m.type === 'C').map(tag)).toEqual(['INSERT 0 1', 'CREATE TABLE']);
      // 1 ParseComplete, 2 BindComplete, C, Z for each; the hold's notice (N) somewhere before the second Z.
      expect(types(c).replace(/N/g, '')).toBe('12CZ12CZ');
      expect(await tableExists('pipe_held_1')).toBe(true);

      // The session goes on normally.
      c.write(queryMessage('SELECT count(*) FROM pipe_t'));
      await nthReady(c, 3);
      expect(c.errors()).toEqual([]);
    } finally {
      c.destroy();
    }
  });

  it('two statements queued before the held one (one of them mid round trip) both complete before it; a rejection ends it cleanly', async () => {
    const c = await session(AGENT);
    try {
      c.write(Buffer.concat([
        parse('ins', 'INSERT INTO pipe_t (i, note) VALUES ($1, $2)'), bind('', 'ins', ['2', 'a']), execute(), sync(),
        bind('', 'ins', ['3', 'b']), execute(), sync(),
        parse('', 'CREATE TABLE pipe_held_2 (a int)'), bind('', ''), execute(), sync(),
      ]));
      const z2 = await nthReady(c, 2, 1_000);
      expect(status(z2)).toBe('I');
      expect(await visible(2)).toBe(true);
      expect(await visible(3)).toBe(true);
      const changeId = await heldChange(c);
      await sleep(100);
      expect(count(c, 'Z')).toBe(2);

      await consoleCommand(rt, DBA, `REJECT ${changeId} 'not today'`);
      const z3 = await nthReady(c, 3);
      expect(status(z3)).toBe('I');
      const errs = c.errors();
      expect(errs).toHaveLength(1);
      expect(errs[0]).toMatchObject({ C: '42501', M: expect.stringContaining('not today') });
      expect(c.messages.filter((m) => m.type === 'C').map(tag)).toEqual(['INSERT 0 1', 'INSERT 0 1']);
      expect(await tableExists('pipe_held_2')).toBe(false);

      c.write(Buffer.concat([bind('', 'ins', ['4', 'after']), execute(), sync()]));
      const z4 = await nthReady(c, 4);
      expect(status(z4)).toBe('I');
      expect(c.errors()).toHaveLength(1);
      expect(await visible(4)).toBe(true);
    } finally {
      c.destroy();
    }
  });

  it('short path: a prepared COMMIT (Bind/Execute/Sync) after an audited INSERT in a transaction commits, with the INSERTs\' records committed', async () => {
    const c = await session('postgres');
    const text = 'INSERT INTO pipe_t AS tx (i, note) VALUES ($1, $2)'; // a text of its own: its records alone
    try {
      c.write(Buffer.concat([parse('begin', 'BEGIN'), parse('ins', text), parse('commit', 'COMMIT'), sync()]));
      await nthReady(c, 1);
      let ready = 1;
      // As pgbench -M prepared: BEGIN, the INSERT, then COMMIT, each Bind/Execute/Sync in its own write.
      for (const [i, commitWithInsert] of [[10, false], [20, true]] as const) {
        c.write(Buffer.concat([bind('', 'begin'), execute(), sync()]));
        expect(status(await nthReady(c, ++ready))).toBe('T');
        c.write(Buffer.concat([bind('', 'ins', [String(i), 'tx']), execute(), sync()]));
        expect(status(await nthReady(c, ++ready))).toBe('T');
        if (commitWithInsert) {
          // And the second INSERT's Bind/Execute in the same write as COMMIT's, queued ahead of its barrier.
          c.write(Buffer.concat([bind('', 'ins', [String(i + 1), 'tx']), execute(), sync(), bind('', 'commit'), execute(), sync()]));
          expect(status(await nthReady(c, ++ready))).toBe('T');
        } else {
          c.write(Buffer.concat([bind('', 'commit'), execute(), sync()]));
        }
        expect(status(await nthReady(c, ++ready))).toBe('I');
      }
      expect(c.errors()).toEqual([]);
      expect(c.messages.filter((m) => m.type === 'C').map(tag).filter((t) => t === 'COMMIT')).toHaveLength(2);
      expect((await db.query<{ i: number }>('SELECT i FROM pipe_t WHERE i >= 10 ORDER BY i')).rows.map((r) => r.i)).toEqual([10, 20, 21]);
      // The executions' decision records were committed before COMMIT answered (read without a flush).
      const recs = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pgairlock.audit_log WHERE kind = 'decision' AND body->>'sql' = $1 AND (body->>'write_ahead')::boolean`, [text]);
      // The Parse's record (covering the first execution) and one per later execution.
      expect(recs.rows[0]!.n).toBe(3);
    } finally {
      c.destroy();
    }
  });
});
