import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateCluster, type PrivateCluster } from '../harness/cluster.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';

/**
 * Usage from pg_stat_statements (issue 7): a column read directly on the server, around pgairlock, counts as
 * used by that database role; a rename through pgairlock is refused naming it. A session's own statements
 * (which pg_stat_statements also sees, under its role) do not count against it.
 */
const control = useTestDatabase();

describe.skipIf(!postgresAvailable())('usage from pg_stat_statements on the wire', () => {
  let cluster: PrivateCluster;
  let rt: TestRuntime;

  beforeAll(async () => {
    cluster = await startPrivateCluster({ conf: [`shared_preload_libraries = 'pg_stat_statements'`] });
    cluster.psql(`CREATE EXTENSION pg_stat_statements; CREATE ROLE web LOGIN; CREATE ROLE agent_w LOGIN;
      CREATE TABLE accounts (id int PRIMARY KEY, iban text, note text); GRANT ALL ON accounts TO web, agent_w;`);
    rt = await startTestRuntime(control.name, {
      upstream: { url: `${cluster.url('postgres', undefined, 'postgres')}?sslmode=disable` },
      principals: { map: [{ name: 'agent:{user}', roles: ['agent'], match: { users: ['agent_w'] } }] },
      state: { refresh_interval_ms: 0, usage: { flush_interval_ms: 10 } },
    });
  }, 60_000);
  afterAll(async () => {
    await rt?.close();
    await cluster?.destroy();
  });

  it('refuses renaming a column another role read directly on the server, not one the session used itself', async () => {
    const gov = rt.runtime.governance;
    await gov.catalog!.current('postgres');
    await gov.statsSampler!.sample('postgres'); // the baseline: calls before it have no time
    const web = new pg.Client({ connectionString: cluster.url('web', undefined, 'postgres') });
    await web.connect();
    await web.query('SELECT iban FROM accounts WHERE id = $1', [1]);
    await web.end();
    const agent = new pg.Client({ connectionString: rt.url('postgres', 'agent_w'), application_name: 'migrator' });
    await agent.connect();
    try {
      await agent.query('SELECT note FROM accounts WHERE id = 1');
      await gov.statsSampler!.sample('postgres');
      const rename = (sql: string) => agent.query(sql).then(() => undefined, (err: { message: string; detail?: string }) => err);
      let e = await rename('ALTER TABLE accounts RENAME COLUMN iban TO account_iban');
      for (const end = Date.now() + 5_000; !e?.message.includes('column-in-use-denied') && Date.now() < end; ) {
        await new Promise((r) => setTimeout(r, 50)); // uses are applied every 10 ms here
        e = await rename('ALTER TABLE accounts RENAME COLUMN iban TO account_iban');
      }
      expect(e?.message).toContain('column-in-use-denied');
      expect(e?.detail).toContain('role:web (pg_stat_statements)');
      // The agent's own read of note shows in pg_stat_statements under its role: not another user.
      const own = await rename('ALTER TABLE accounts RENAME COLUMN note TO remark');
      expect(own?.message).toBeDefined();
      expect(own?.message).not.toContain('column-in-use-denied');
    } finally {
      await agent.end();
    }
  });
});
