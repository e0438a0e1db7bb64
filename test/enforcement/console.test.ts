import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';

const run = promisify(execFile);
const db = useTestDatabase();

const PRINCIPALS = {
  map: [
    { name: 'dba-postgres', roles: ['dba'], match: { users: ['postgres'] } },
    { name: 'agent:{user}', roles: ['agent'], match: { users: ['airlock_bot*'] } },
  ],
};

async function psql(rt: TestRuntime, user: string, database: string, sql: string): Promise<{ code: number; out: string }> {
  try {
    const r = await run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-h', '127.0.0.1', '-p', String(rt.port), '-U', user, '-d', database, '-c', sql], { env: { ...process.env, PGCONNECT_TIMEOUT: '10' } });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe.skipIf(!postgresAvailable())('hold, defer and approve through the admin console', () => {
  let rt: TestRuntime;
  beforeAll(async () => {
    await db.loginRole('airlock_bot1');
    await db.query(`CREATE TABLE items(id int primary key, v text); INSERT INTO items SELECT g, 'x' FROM generate_series(1,10) g; GRANT ALL ON items TO airlock_bot1`);
    rt = await startTestRuntime(db.name, { principals: PRINCIPALS });
  });
  afterAll(async () => rt?.close());

  it('defers an agent DELETE without WHERE, refuses self-approval, runs once after a DBA approves', async () => {
    const first = await psql(rt, 'airlock_bot1', db.name, 'DELETE FROM items');
    expect(first.code).not.toBe(0);
    expect(first.out).toContain('held for approval as change');
    const id = /change ([0-9A-Z]{8})/.exec(first.out)?.[1];
    expect(id).toBeDefined();
    expect((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM items")).rows[0]?.n).toBe(10);

    const pending = await psql(rt, 'postgres', 'pgairlock', 'SHOW PENDING;');
    expect(pending.code).toBe(0);
    expect(pending.out).toContain(id!);

    const self = await psql(rt, 'airlock_bot1', 'pgairlock', `APPROVE ${id};`);
    expect(self.code).not.toBe(0);
    expect(self.out).toMatch(/own|requested/i);

    const ok = await psql(rt, 'postgres', 'pgairlock', `APPROVE ${id} 'test data only';`);
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('approved');

    const again = await psql(rt, 'airlock_bot1', db.name, 'DELETE FROM items');
    expect(again.out).toContain('DELETE 10');
    expect((await db.query<{ n: number }>("SELECT count(*)::int AS n FROM items")).rows[0]?.n).toBe(0);

    const third = await psql(rt, 'airlock_bot1', db.name, 'DELETE FROM items');
    expect(third.code).not.toBe(0);
    expect(third.out).toContain('held for approval');
  });

  it('answers console commands as result sets and rejects unknown ones with a hint', async () => {
    const who = await psql(rt, 'postgres', 'pgairlock', 'SHOW WHOAMI;');
    expect(who.out).toContain('dba-postgres');
    const help = await psql(rt, 'postgres', 'pgairlock', 'SHOW HELP;');
    expect(help.out).toContain('APPROVE');
    const bad = await psql(rt, 'postgres', 'pgairlock', 'DROP TABLE x;');
    expect(bad.code).not.toBe(0);
    expect(bad.out).toContain('SHOW HELP');
    const c = new pg.Client({ connectionString: rt.url('pgairlock') });
    await c.connect();
    const r = await c.query('SHOW SESSIONS;');
    expect(r.rows.some((row: { database: string }) => row.database === 'pgairlock')).toBe(true);
    await c.end();
  });
});
