import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, upstreamUrl, useTestDatabase } from '../harness/db.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { refusal } from '../harness/tools.js';

/**
 * Real state on the wire (issue 7): usage by another application blocks a column rename, and a
 * session's declared expected schema refuses DDL after a hand change on the server.
 */
const db = useTestDatabase();
const READER = 'airlock_state_reader';
const WRITER = 'airlock_state_writer';

describe.skipIf(!postgresAvailable())('real state on the wire', () => {
  let rt: TestRuntime;
  const client = async (user: string, app: string) => {
    const c = new pg.Client({ connectionString: rt.url(db.name, user), application_name: app });
    await c.connect();
    return c;
  };

  beforeAll(async () => {
    for (const r of [READER, WRITER]) {
      await db.loginRole(r);
    }
    await db.query(`CREATE TABLE users(id int primary key, email text, name text); INSERT INTO users VALUES (1, 'a@x', 'a');
      CREATE VIEW user_emails AS SELECT id, email FROM users;
      GRANT ALL ON users, user_emails TO ${READER}, ${WRITER}; GRANT CREATE, USAGE ON SCHEMA public TO ${WRITER}`);
    const upstream = upstreamUrl(db.name);
    rt = await startTestRuntime(db.name, {
      upstream: { url: upstream },
      principals: {
        map: [
          { name: 'dba', roles: ['dba'], match: { users: ['postgres'] } },
          { name: 'agent:{user}', roles: ['agent'], match: { users: [READER, WRITER] } },
        ],
      },
      state: { usage: { flush_interval_ms: 10 } },
    });
  });
  afterAll(async () => rt?.close());

  it('refuses renaming a column another application read, naming who used it', async () => {
    const reader = await client(READER, 'billing-service');
    await reader.query('SELECT email FROM users WHERE id = 1');
    await reader.end();
    const writer = await client(WRITER, 'migration-bot');
    try {
      // Usage is buffered (flushed every 10 ms here) and recorded once the catalog snapshot is read: on a
      // loaded machine that can take a moment, so ask again until it is there (each ask is only refused).
      let e = await refusal(writer.query('ALTER TABLE users RENAME COLUMN email TO mail'));
      for (const until = Date.now() + 10_000; !e.message.includes('column-in-use-denied') && Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 100));
        e = await refusal(writer.query('ALTER TABLE users RENAME COLUMN email TO mail'));
      }
      expect(e.message).toContain('column-in-use-denied');
      expect(`${e.detail}`).toMatch(/billing-service|airlock_state_reader/);
      // A column nobody else used is only held (agent DDL), not denied for usage.
      const other = await refusal(writer.query('ALTER TABLE users RENAME COLUMN name TO full_name'));
      expect(other.message).not.toContain('column-in-use-denied');
    } finally {
      await writer.end();
    }
  });

  it('refuses DDL when the session expects a schema that changed by hand, listing what changed', async () => {
    const live = await rt.runtime.governance.catalog!.refresh(db.name, 'demand');
    const dba = await client('postgres', 'dba-console');
    try {
      await dba.query(`SET pgairlock.expect_schema = '${live.schemaHash}'`);
      // The DDL matches the expectation: allowed for a DBA, who then declares the new version.
      await dba.query('ALTER TABLE users ADD COLUMN created_at timestamptz');
      const after = await rt.runtime.governance.catalog!.refresh(db.name, 'demand');
      expect(after.schemaHash).not.toBe(live.schemaHash);
      await dba.query(`SET pgairlock.expect_schema = '${after.schemaHash}'`);
      // Someone changes the view directly on the server, around pgairlock.
      await db.query('CREATE OR REPLACE VIEW user_emails AS SELECT id, email, 1 AS hand_made FROM users');
      const e = await refusal(dba.query('CREATE OR REPLACE VIEW user_emails AS SELECT id, email FROM users'));
      expect(e.code).toBe('42501');
      expect(e.message).toContain('expect_schema');
      expect(`${e.detail}`).toContain('user_emails');
      expect(e.hint).toMatch(/SET pgairlock.expect_schema/);
      // The hand-made definition was not silently overwritten.
      const def = await db.query<{ d: string }>("SELECT pg_get_viewdef('user_emails') AS d");
      expect(def.rows[0]?.d).toContain('hand_made');
    } finally {
      await dba.end();
    }
  });
});
