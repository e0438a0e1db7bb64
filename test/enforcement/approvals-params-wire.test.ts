import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { promisify } from 'node:util';
import pg from 'pg';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, redisAvailable, upstreamUrl, useTestDatabase } from '../harness/db.js';
import { REDIS_URL } from '../harness/env.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { refusal, type PgError } from '../harness/tools.js';
import { uniquePrefix } from '../approvals/helpers.js';
import type { ConfigInput } from '../../governance/config/schema.js';

/**
 * An approval covers the statement's bound parameter values, not just its text: a DELETE held for the
 * planner's estimate with the Bind's values X (extended protocol, decided at Execute) runs once with X
 * after approval, and never with other values Y (those are held again as a new change request).
 */
const db = useTestDatabase();
const run = promisify(execFile);
const AGENT = 'airlock_param_agent';
const DBA = 'airlock_param_dba';
const ROWS = 20_000;
const MCP_DBA_TOKEN = 'params-dba-token-1';

const changeIdOf = (e: PgError): string => {
  const id = /held for approval as change ([0-9A-Z]{8})/.exec(e.message)?.[1];
  if (!id) throw new Error(`no change id in: ${e.message}`);
  return id;
};

async function consoleQuery(rt: TestRuntime, user: string, command: string): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: rt.url('pgairlock', user) });
  await c.connect();
  try {
    return await c.query(command);
  } finally {
    await c.end();
  }
}

function config(redisPrefix?: string, mode: 'defer' | 'wait' = 'defer'): ConfigInput {
  const upstream = upstreamUrl(db.name);
  return {
    upstream: { url: upstream },
    principals: {
      map: [
        { name: 'dba-param', roles: ['dba'], match: { users: [DBA, 'postgres'] } },
        { name: 'agent:{user}', roles: ['agent'], match: { users: [AGENT] } },
      ],
    },
    policy: {
      default_effect: { global: 'deny', roles: { agent: 'allow', dba: 'allow' } },
      rules: [
        {
          id: 'big-delete-held',
          description: 'A DELETE the planner expects to touch 1,000 rows or more needs a DBA.',
          match: { commands: ['DELETE'], state: { min_estimated_rows: 1000 } },
          effect: 'hold',
          hold: { mode: 'defer', approvals: 1, approver_roles: ['dba'], timeout: '10m' },
        },
        {
          id: 'vault-write-held',
          description: 'Every write to the vault needs a DBA, whatever it touches.',
          match: { objects: { relations: ['vault'], access: ['write'] } },
          effect: 'hold',
          hold: { mode, approvals: 1, approver_roles: ['dba'], timeout: '10m' },
        },
      ],
    },
    state: { refresh_interval_ms: 0 },
    mcp: { tokens: [{ sha256: createHash('sha256').update(MCP_DBA_TOKEN).digest('hex'), principal: 'mcp-dba', roles: ['dba'] }] },
    ...(redisPrefix ? { redis: { url: REDIS_URL, key_prefix: redisPrefix } } : {}),
  };
}

const remaining = async () => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM big')).rows[0]?.n);

describe.skipIf(!postgresAvailable())('approvals bound to parameter values on the wire', () => {
  beforeAll(async () => {
    for (const r of [AGENT, DBA]) {
      await db.loginRole(r);
    }
    await db.query(`CREATE TABLE big (id int PRIMARY KEY, v int); INSERT INTO big SELECT g, g % 7 FROM generate_series(1, ${ROWS}) g; ANALYZE big;
      GRANT SELECT, DELETE ON big TO ${AGENT};
      CREATE TABLE vault (id int PRIMARY KEY, secret text); INSERT INTO vault SELECT g, 's' || g FROM generate_series(1, 10) g;
      GRANT SELECT, UPDATE, DELETE ON vault TO ${AGENT}`);
  });

  for (const store of ['memory', 'redis'] as const) {
    describe.runIf(store === 'memory' || redisAvailable())(`${store} approval store`, () => {
      let rt: TestRuntime;
      let agent: pg.Client;
      beforeAll(async () => {
        rt = await startTestRuntime(db.name, config(store === 'redis' ? uniquePrefix('params-wire') : undefined));
        agent = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
        await agent.connect();
      });
      afterAll(async () => {
        await agent?.end();
        await rt?.close();
      });

      it('node-postgres: approved for X, re-sent with Y is held again and does not run, X runs once', async () => {
        const sql = store === 'memory' ? 'DELETE FROM big WHERE id > $1 AND v >= $2' : 'DELETE FROM big WHERE v >= $2 AND id > $1';
        // X deletes ids 17001..20000 (about 3,000 rows: held); Y would delete almost everything.
        const X = [ROWS - 3000, 0];
        const Y = [100, 0];
        const before = await remaining();
        const held = await refusal(agent.query(sql, X));
        expect(held.code).toBe('42501');
        expect(held.hint).toContain('with the same parameter values');
        const id = changeIdOf(held);
        expect(await remaining()).toBe(before);

        // The approver sees the values next to the text.
        const show = await consoleQuery(rt, DBA, `SHOW CHANGE ${id}`);
        const rows = show.rows as { field: string; value: string }[];
        const at = rows.findIndex((r) => r.field === 'sql');
        expect(rows[at]?.value).toBe(sql);
        expect(rows.slice(at + 1, at + 3)).toEqual([
          { field: 'param', value: `$1 (text) = '${X[0]}'` },
          { field: 'param', value: `$2 (text) = '${X[1]}'` },
        ]);
        expect(rows.find((r) => r.field === 'params_sha256')?.value).toMatch(/^[0-9a-f]{64} /);

        // The agent cannot approve its own change; a DBA can.
        await expect(consoleQuery(rt, AGENT, `APPROVE ${id}`)).rejects.toThrow(/own|requested/i);
        expect((await consoleQuery(rt, DBA, `APPROVE ${id} 'only the last 3000'`)).rows[0]).toMatchObject({ id, status: 'approved' });

        // Same text, other values: held as a new change, nothing deleted, the approval still unused.
        const other = await refusal(agent.query(sql, Y));
        const otherId = changeIdOf(other);
        expect(otherId).not.toBe(id);
        expect(await remaining()).toBe(before);
        expect((await consoleQuery(rt, DBA, `SHOW CHANGE ${id}`)).rows).toContainEqual({ field: 'status', value: 'approved' });
        const otherRows = (await consoleQuery(rt, DBA, `SHOW CHANGE ${otherId}`)).rows;
        expect(otherRows).toContainEqual({ field: 'param', value: `$1 (text) = '${Y[0]}'` });
        expect(otherRows).toContainEqual({ field: 'status', value: 'pending' });

        // The approved values: run once.
        const ran = await agent.query(sql, X);
        expect(ran.rowCount).toBe(3000);
        expect(await remaining()).toBe(before - 3000);
        expect((await consoleQuery(rt, DBA, `SHOW CHANGE ${id}`)).rows).toContainEqual({ field: 'status', value: 'executed' });

        // Once only: the same values again are a new change request (the planner still expects many rows).
        const again = await refusal(agent.query(sql, [ROWS - 6000, 0]));
        expect(changeIdOf(again)).not.toBe(id);
        await db.query(`INSERT INTO big SELECT g, g % 7 FROM generate_series(${ROWS - 2999}, ${ROWS}) g`);
        const third = await refusal(agent.query(sql, X));
        expect(changeIdOf(third)).not.toBe(id);
        expect(await remaining()).toBe(before);
      });

      it('a named prepared statement and declared types (postgres.js): the approval runs only the approved execution', async () => {
        const sql = postgres(rt.url(db.name, AGENT), { max: 1, onnotice: () => undefined });
        try {
          const before = await remaining();
          const lo = ROWS - 2500;
          const held = await refusal(sql`DELETE FROM big WHERE id > ${lo}`);
          const id = changeIdOf(held);
          const shown = (await consoleQuery(rt, DBA, `SHOW CHANGE ${id}`)).rows as { field: string; value: string }[];
          expect(shown.find((r) => r.field === 'param')?.value).toMatch(new RegExp(`^\\$1 \\(text(, type \\d+)?\\) = '${lo}'$`));
          await consoleQuery(rt, DBA, `APPROVE ${id}`);
          const other = await refusal(sql`DELETE FROM big WHERE id > ${lo - 1}`);
          expect(changeIdOf(other)).not.toBe(id);
          expect(await remaining()).toBe(before);
          expect((await sql`DELETE FROM big WHERE id > ${lo}`).count).toBe(2500);
          await db.query(`INSERT INTO big SELECT g, g % 7 FROM generate_series(${lo + 1}, ${ROWS}) g`);
        } finally {
          await sql.end();
        }
      });
    });
  }

  it('a hold that does not depend on the values is decided at Execute too when the statement has parameters', async () => {
    const rt = await startTestRuntime(db.name, config());
    const agent = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
    await agent.connect();
    const vault = async () => (await db.query<{ id: number }>('SELECT id FROM vault ORDER BY id')).rows.map((r) => r.id);
    try {
      const sql = 'DELETE FROM vault WHERE id = $1';
      const id = changeIdOf(await refusal(agent.query(sql, [3])));
      const rows = (await consoleQuery(rt, DBA, `SHOW CHANGE ${id}`)).rows as { field: string; value: string }[];
      expect(rows).toContainEqual({ field: 'param', value: "$1 (text) = '3'" });
      expect(rows.find((r) => r.field === 'rule')?.value).toContain('vault-write-held');
      await consoleQuery(rt, DBA, `APPROVE ${id}`);
      // The approved text with other values is held anew; nothing is deleted.
      const other = await refusal(agent.query(sql, [4]));
      expect(changeIdOf(other)).not.toBe(id);
      expect(await vault()).toHaveLength(10);
      expect((await agent.query(sql, [3])).rowCount).toBe(1);
      expect(await vault()).not.toContain(3);
      // A named statement: each execution is held with its own values.
      const named = { name: 'vault_upd', text: 'UPDATE vault SET secret = $2 WHERE id = $1' };
      const first = changeIdOf(await refusal(agent.query({ ...named, values: [5, 'x'] })));
      await consoleQuery(rt, DBA, `APPROVE ${first}`);
      const wrong = changeIdOf(await refusal(agent.query({ ...named, values: [5, 'y'] })));
      expect(wrong).not.toBe(first);
      expect((await agent.query({ ...named, values: [5, 'x'] })).rowCount).toBe(1);
      expect((await db.query<{ secret: string }>('SELECT secret FROM vault WHERE id = 5')).rows[0]?.secret).toBe('x');
      // Without parameters: held at Parse as before, bound to the text alone.
      const bare = changeIdOf(await refusal(agent.query('DELETE FROM vault WHERE id = 6')));
      const bareRows = (await consoleQuery(rt, DBA, `SHOW CHANGE ${bare}`)).rows as { field: string; value: string }[];
      expect(bareRows.some((r) => r.field === 'param' || r.field === 'params_sha256')).toBe(false);
      await consoleQuery(rt, DBA, `APPROVE ${bare}`);
      expect((await agent.query('DELETE FROM vault WHERE id = 6')).rowCount).toBe(1);
    } finally {
      await agent.end();
      await rt.close();
    }
  });

  it('wait mode: the waiting execution runs with its own values once approved', async () => {
    const rt = await startTestRuntime(db.name, config(undefined, 'wait'));
    const agent = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
    await agent.connect();
    try {
      const notice = new Promise<string>((resolve) => {
        agent.on('notice', (n) => {
          const id = /change ([0-9A-Z]{8})/.exec(n.message ?? '')?.[1];
          if (id) resolve(id);
        });
      });
      const result = agent.query('UPDATE vault SET secret = $1 WHERE id = $2', ['waited', 7]);
      result.catch(() => undefined);
      const id = await notice;
      expect((await consoleQuery(rt, DBA, `SHOW CHANGE ${id}`)).rows).toContainEqual({ field: 'param', value: "$1 (text) = 'waited'" });
      await consoleQuery(rt, DBA, `APPROVE ${id}`);
      expect((await result).rowCount).toBe(1);
      expect((await db.query<{ secret: string }>('SELECT secret FROM vault WHERE id = 7')).rows[0]?.secret).toBe('waited');
      expect((await consoleQuery(rt, DBA, `SHOW CHANGE ${id}`)).rows).toContainEqual({ field: 'status', value: 'executed' });
    } finally {
      await agent.end();
      await rt.close();
    }
  });

  it('MCP: change_status shows the values, approve_change binds them', async () => {
    const rt = await startTestRuntime(db.name, config());
    const agent = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
    await agent.connect();
    const mcp = new McpClient({ name: 'test', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(rt.runtime.mcp!.url), { requestInit: { headers: { Authorization: `Bearer ${MCP_DBA_TOKEN}` } } }));
    const call = async (name: string, args: Record<string, unknown>) =>
      ((await mcp.callTool({ name, arguments: args })) as { structuredContent?: { change?: Record<string, unknown> } }).structuredContent?.change;
    try {
      const sql = 'DELETE FROM big WHERE id > $1 OR v::text = $2';
      const before = await remaining();
      const id = changeIdOf(await refusal(agent.query(sql, [ROWS - 1500, null])));
      const view = await call('change_status', { id });
      expect(view).toMatchObject({
        id,
        sql,
        params: [
          { n: 1, type: 0, format: 'text', value: String(ROWS - 1500), bytes: 5 },
          { n: 2, type: 0, format: null, value: null, bytes: 0 },
        ],
      });
      expect(String(view?.params_sha256)).toMatch(/^[0-9a-f]{64}$/);
      expect(await call('approve_change', { id })).toMatchObject({ status: 'approved' });
      // NULL is not the empty string (nor 'NULL').
      expect(changeIdOf(await refusal(agent.query(sql, [ROWS - 1500, ''])))).not.toBe(id);
      expect(await remaining()).toBe(before);
      expect((await agent.query(sql, [ROWS - 1500, null])).rowCount).toBe(1500);
      expect(await call('change_status', { id })).toMatchObject({ status: 'executed' });
      await db.query(`INSERT INTO big SELECT g, g % 7 FROM generate_series(${ROWS - 1499}, ${ROWS}) g`);
    } finally {
      await mcp.close().catch(() => undefined);
      await agent.end();
      await rt.close();
    }
  });

  it('psql -d pgairlock: SHOW CHANGE prints the parameter rows', async () => {
    const rt = await startTestRuntime(db.name, config());
    const agent = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
    await agent.connect();
    try {
      const id = changeIdOf(await refusal(agent.query('DELETE FROM big WHERE id > $1', [1000])));
      const r = await run('psql', ['-X', '-h', '127.0.0.1', '-p', String(rt.port), '-U', DBA, '-d', 'pgairlock', '-c', `SHOW CHANGE ${id};`]);
      expect(r.stdout).toMatch(/param\s+\|\s+\$1 \(text\) = '1000'/);
      expect(r.stdout).toMatch(/params_sha256\s+\|\s+[0-9a-f]{64}/);
    } finally {
      await agent.end();
      await rt.close();
    }
  });
});
