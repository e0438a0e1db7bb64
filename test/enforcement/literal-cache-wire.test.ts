import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analysisCacheStats } from '../../analyzer/index.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';

/**
 * The literal cache on the wire: simple-protocol reads that differ only in their values share one
 * analysis, yet each is answered, decided and audited with its own text; statements that only look
 * alike (a setting named by a literal) are still decided by what they say.
 */
const db = useTestDatabase();
const AGENT = 'airlock_litcache_agent';

describe.skipIf(!postgresAvailable())('literal cache through the proxy', () => {
  let rt: TestRuntime;
  let agent: pg.Client;

  beforeAll(async () => {
    await db.loginRole(AGENT);
    await db.query(`CREATE TABLE lit(id int primary key, v text); INSERT INTO lit SELECT g, 'v' || g FROM generate_series(1, 20) g;
      GRANT ALL ON lit TO ${AGENT}`);
    rt = await startTestRuntime(db.name, {
      principals: { map: [{ name: 'agent:{user}', roles: ['agent'], match: { users: [AGENT] } }] },
      audit: { reads: { aggregate: false } },
    });
    agent = new pg.Client({ connectionString: rt.url(db.name, AGENT) });
    await agent.connect();
  });
  afterAll(async () => {
    await agent?.end();
    await rt?.close();
  });

  it('answers and audits each read with its own text while sharing one analysis', async () => {
    const before = analysisCacheStats().templateHits;
    for (const id of [3, 4, 17]) {
      const r = await agent.query(`SELECT v FROM lit WHERE id = ${id}`);
      expect(r.rows).toEqual([{ v: `v${id}` }]);
    }
    expect(analysisCacheStats().templateHits).toBeGreaterThanOrEqual(before + 2);
    await rt.runtime.governance.audit!.flush();
    const audited = await db.query<{ sql: string }>(
      "SELECT body->>'sql' AS sql FROM pgairlock.audit_log WHERE kind = 'decision' AND body->>'sql' LIKE 'SELECT v FROM lit WHERE id = %' ORDER BY id",
    );
    expect(audited.rows.map((r) => r.sql).sort()).toEqual(['SELECT v FROM lit WHERE id = 17', 'SELECT v FROM lit WHERE id = 3', 'SELECT v FROM lit WHERE id = 4']);
  });

  it('decides look-alike statements by their own literals: set_config of role versus another setting', async () => {
    const other = await agent.query("SELECT set_config('application_name', 'x', false)").catch((e: { message: string }) => e);
    const role = await agent.query("SELECT set_config('role', 'postgres', false)").catch((e: { message: string }) => e);
    expect((role as { message: string }).message).toContain('agent-privileged-denied');
    expect((other as { message: string }).message).toContain('agent-opaque-denied');
    // And a read after both still gets its own answer.
    expect((await agent.query('SELECT v FROM lit WHERE id = 5')).rows).toEqual([{ v: 'v5' }]);
  });

  describe('with a rule on one schema', () => {
    let rt2: TestRuntime;
    let agent2: pg.Client;
    beforeAll(async () => {
      await db.query(`CREATE SCHEMA IF NOT EXISTS secret; CREATE TABLE secret.lit(id int, v text); INSERT INTO secret.lit VALUES (1, 's1'), (2, 's2');
        GRANT USAGE ON SCHEMA secret TO ${AGENT}; GRANT SELECT ON secret.lit TO ${AGENT}`);
      rt2 = await startTestRuntime(db.name, {
        principals: { map: [{ name: 'agent:{user}', roles: ['agent'], match: { users: [AGENT] } }] },
        policy: {
          default_effect: { global: 'allow' },
          rules: [{ id: 'no-secret', description: 'Nothing in schema secret.', match: { roles: ['agent'], objects: { relations: ['secret.*'] } }, effect: 'deny' }],
        },
      });
      agent2 = new pg.Client({ connectionString: rt2.url(db.name, AGENT) });
      await agent2.connect();
    });
    afterAll(async () => {
      await agent2?.end();
      await rt2?.close();
    });

    it('judges a statement of a known shape again after search_path changes what its names mean', async () => {
      expect((await agent2.query('SELECT v FROM lit WHERE id = 1')).rows).toEqual([{ v: 'v1' }]);
      expect((await agent2.query('SELECT v FROM lit WHERE id = 2')).rows).toEqual([{ v: 'v2' }]);
      await agent2.query('SET search_path = secret, public');
      const e = await agent2.query('SELECT v FROM lit WHERE id = 3').catch((err: { code: string; message: string }) => err);
      expect((e as { code: string }).code).toBe('42501');
      expect((e as { message: string }).message).toContain('no-secret');
      await agent2.query('RESET search_path');
      expect((await agent2.query('SELECT v FROM lit WHERE id = 4')).rows).toEqual([{ v: 'v4' }]);
    });
  });
});
