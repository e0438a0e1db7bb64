import { randomBytes } from 'node:crypto';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, redisAvailable, upstreamUrl, useTestDatabase } from '../harness/db.js';
import { REDIS_URL } from '../harness/env.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { freePort } from '../harness/cluster.js';
import { spawnCli } from '../harness/proxy.js';
import { tempDir } from '../harness/tools.js';
import { urlWithDatabase } from '../harness/db.js';
import { ADMIN_DATABASE_URL } from '../harness/env.js';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { stringify as toYaml } from 'yaml';
import type { ChildProcess } from 'node:child_process';
import type { ConfigInput } from '../../governance/config/schema.js';

/**
 * The hold path end to end on the wire (issue 6): wait mode with a console approval, quorum of
 * two distinct approvers, rejection, expiry, cancel and disconnect while waiting, and two
 * replicas sharing one Redis.
 */
const db = useTestDatabase();
const AGENT = 'airlock_wait_agent';
const DBA1 = 'airlock_wait_dba1';
const DBA2 = 'airlock_wait_dba2';

function configFor(opts: { approvals: number; timeout: string; redisPrefix?: string }): ConfigInput {
  return {
    principals: {
      map: [
        { name: 'dba-one', roles: ['dba'], match: { users: [DBA1, 'postgres'] } },
        { name: 'dba-two', roles: ['dba'], match: { users: [DBA2] } },
        { name: 'agent:{user}', roles: ['agent'], match: { users: [AGENT] } },
      ],
    },
    policy: {
      default_effect: { global: 'deny', roles: { agent: 'allow', dba: 'allow' } },
      rules: [
        {
          id: 'agent-ddl-waits',
          description: 'Agent DDL waits for approval.',
          match: { roles: ['agent'], kinds: ['ddl'] },
          effect: 'hold',
          hold: { mode: 'wait', approvals: opts.approvals, approver_roles: ['dba'], timeout: opts.timeout },
        },
      ],
    },
    ...(opts.redisPrefix ? { redis: { url: REDIS_URL, key_prefix: opts.redisPrefix } } : {}),
  };
}

/** Starts a statement as the agent and resolves with the change id from the wait notice. */
async function startWaiting(rt: TestRuntime, sql: string): Promise<{ client: pg.Client; result: Promise<pg.QueryResult>; changeId: string }> {
  const client = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
  await client.connect();
  const notice = new Promise<string>((resolve) => {
    client.on('notice', (n) => {
      const id = /change ([0-9A-Z]{8})/.exec(n.message ?? '')?.[1];
      if (id) resolve(id);
    });
  });
  const result = client.query(sql);
  result.catch(() => undefined);
  const changeId = await notice;
  return { client, result, changeId };
}

async function consoleCommand(rt: TestRuntime, user: string, command: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: rt.url('pgairlock', user) });
  await c.connect();
  try {
    return await c.query(command);
  } finally {
    await c.end();
  }
}

const tableExists = async (name: string) =>
  (await db.query<{ e: boolean }>('SELECT to_regclass($1) IS NOT NULL AS e', [`public.${name}`])).rows[0]?.e;

describe.skipIf(!postgresAvailable())('hold in wait mode on the wire', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    for (const r of [AGENT, DBA1, DBA2]) {
      await db.loginRole(r);
    }
    await db.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${AGENT}`);
    rt = await startTestRuntime(db.name, configFor({ approvals: 1, timeout: '30s' }));
  });
  afterAll(async () => rt?.close());

  it('keeps the statement pending with a notice, runs it when another principal approves from the console', async () => {
    const w = await startWaiting(rt, 'CREATE TABLE waited_1(a int)');
    expect(await tableExists('waited_1')).toBe(false);
    const self = await consoleCommand(rt, AGENT, `APPROVE ${w.changeId}`).catch((e: Error) => e);
    expect(self).toBeInstanceOf(Error);
    expect((self as Error).message).toMatch(/own|requested/i);
    const r = await consoleCommand(rt, DBA1, `APPROVE ${w.changeId} 'fine'`);
    expect(r.rows[0]).toMatchObject({ id: w.changeId, status: 'approved' });
    const res = await w.result;
    expect(res.command).toBe('CREATE');
    expect(await tableExists('waited_1')).toBe(true);
    await w.client.end();
  });

  it('a rejection ends the wait with the reason', async () => {
    const w = await startWaiting(rt, 'CREATE TABLE waited_2(a int)');
    await consoleCommand(rt, DBA1, `REJECT ${w.changeId} 'not during the sale'`);
    await expect(w.result).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('not during the sale') });
    expect(await tableExists('waited_2')).toBe(false);
    // The session is still usable.
    expect((await w.client.query('SELECT 1 AS one')).rows[0].one).toBe(1);
    await w.client.end();
  });

  it('a CancelRequest while waiting cancels the change request', async () => {
    const sql = postgres(rt.url(db.name, AGENT), { max: 1, onnotice: () => undefined });
    try {
      const q = sql.unsafe('CREATE TABLE waited_3(a int)');
      const settled = q.then(() => ({ ok: true as const }), (e: { code?: string }) => ({ ok: false as const, code: e.code }));
      await new Promise((r) => setTimeout(r, 500));
      q.cancel();
      expect(await settled).toEqual({ ok: false, code: '57014' });
      const changes = await consoleCommand(rt, DBA1, 'SHOW CHANGES');
      const row = changes.rows.find((x: { statement: string }) => x.statement.includes('waited_3'));
      expect(row?.status).toBe('cancelled');
    } finally {
      await sql.end();
    }
    expect(await tableExists('waited_3')).toBe(false);
  });

  it('a client disconnecting while waiting cancels the change request', async () => {
    const w = await startWaiting(rt, 'CREATE TABLE waited_4(a int)');
    w.client.on('error', () => undefined); // the test itself cuts the connection
    (w.client as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
    let status = '';
    for (let i = 0; i < 50 && status !== 'cancelled'; i++) {
      const r = await consoleCommand(rt, DBA1, `SHOW CHANGE ${w.changeId}`);
      status = r.rows.find((x: { field: string }) => x.field === 'status')?.value ?? '';
      if (status !== 'cancelled') await new Promise((res) => setTimeout(res, 100));
    }
    expect(status).toBe('cancelled');
  });
});

describe.skipIf(!postgresAvailable())('quorum and expiry on the wire', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    rt = await startTestRuntime(db.name, configFor({ approvals: 2, timeout: '4s' }));
  });
  afterAll(async () => rt?.close());

  it('needs two distinct approvers: the same one twice does not count', async () => {
    const w = await startWaiting(rt, 'CREATE TABLE quorum_1(a int)');
    await consoleCommand(rt, DBA1, `APPROVE ${w.changeId}`);
    const twice = await consoleCommand(rt, DBA1, `APPROVE ${w.changeId}`).catch((e: Error) => e);
    expect(twice).toBeInstanceOf(Error);
    expect(await tableExists('quorum_1')).toBe(false);
    await consoleCommand(rt, DBA2, `APPROVE ${w.changeId}`);
    expect((await w.result).command).toBe('CREATE');
    expect(await tableExists('quorum_1')).toBe(true);
    await w.client.end();
  });

  it('expires when nobody approves in time', async () => {
    const w = await startWaiting(rt, 'CREATE TABLE expired_1(a int)');
    await expect(w.result).rejects.toMatchObject({ code: '42501', message: expect.stringContaining('expired') });
    expect(await tableExists('expired_1')).toBe(false);
    await w.client.end();
  });
});

describe.skipIf(!postgresAvailable() || !redisAvailable())('two replicas sharing one Redis', () => {
  let a: TestRuntime;
  let b: TestRuntime;
  beforeAll(async () => {
    const prefix = `pgairlock-test-${randomBytes(4).toString('hex')}:`;
    a = await startTestRuntime(db.name, configFor({ approvals: 1, timeout: '30s', redisPrefix: prefix }));
    b = await startTestRuntime(db.name, configFor({ approvals: 1, timeout: '30s', redisPrefix: prefix }));
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  it('a change held on replica A is approved through replica B and A proceeds at once', async () => {
    const w = await startWaiting(a, 'CREATE TABLE replicated_1(a int)');
    const pendingOnB = await consoleCommand(b, DBA1, 'SHOW PENDING');
    expect(pendingOnB.rows.map((r: { id: string }) => r.id)).toContain(w.changeId);
    const t0 = Date.now();
    await consoleCommand(b, DBA1, `APPROVE ${w.changeId}`);
    expect((await w.result).command).toBe('CREATE');
    // Woken by pub/sub, not by the 5 s safety re-check.
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(await tableExists('replicated_1')).toBe(true);
    await w.client.end();
  });
});

describe.skipIf(!postgresAvailable() || !redisAvailable())('two proxy processes sharing one Redis', () => {
  let a: TestRuntime;
  let child: ChildProcess | undefined;
  let bPort = 0;
  let tmp: { dir: string; remove(): void };
  beforeAll(async () => {
    const prefix = `pgairlock-test-${randomBytes(4).toString('hex')}:`;
    a = await startTestRuntime(db.name, configFor({ approvals: 1, timeout: '30s', redisPrefix: prefix }));
    // Replica B is a real `pgairlock start` process with the same Redis prefix.
    tmp = tempDir();
    bPort = await freePort();
    const upstream = upstreamUrl();
    const cfg = {
      ...configFor({ approvals: 1, timeout: '30s', redisPrefix: prefix }),
      listen: `127.0.0.1:${bPort}`,
      upstream: { url: upstream },
      mcp: { enabled: false },
      instance: `replica-b-${randomBytes(3).toString('hex')}`,
      audit: { database_url: urlWithDatabase(ADMIN_DATABASE_URL, db.name) },
      log: { level: 'warn' },
    };
    const file = path.join(tmp.dir, 'replica-b.yaml');
    writeFileSync(file, toYaml(cfg));
    child = spawnCli(['start', '--config', file], { DATABASE_URL: '' });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`replica B did not start: ${out}`)), 60_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child!.stdout!.on('data', onData);
      child!.stderr!.on('data', (d: Buffer) => (out += d.toString()));
      child!.once('exit', (code) => reject(new Error(`replica B exited ${code}: ${out}`)));
    });
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    await a?.close();
    tmp?.remove();
  });

  it('a change held on process A is approved through process B and A proceeds at once', async () => {
    const w = await startWaiting(a, 'CREATE TABLE two_process_1(a int)');
    const approver = new pg.Client({ connectionString: `postgres://${DBA1}@127.0.0.1:${bPort}/pgairlock` });
    await approver.connect();
    try {
      const pending = await approver.query('SHOW PENDING');
      expect(pending.rows.map((r: { id: string }) => r.id)).toContain(w.changeId);
      const t0 = Date.now();
      await approver.query(`APPROVE ${w.changeId}`);
      expect((await w.result).command).toBe('CREATE');
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await approver.end();
    }
    expect(await tableExists('two_process_1')).toBe(true);
    await w.client.end();
  });
});
