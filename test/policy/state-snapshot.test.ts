import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer } from '../../analyzer/index.js';
import { statementsOf } from '../../governance/policy/analysis.js';
import { evaluate } from '../../governance/policy/evaluate.js';
import { stateFromSnapshot } from '../../governance/policy/state.js';
import { readSnapshot } from '../../governance/state/snapshot.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { policy, verdict } from './fixtures.js';

/**
 * Real-state conditions against a real database: a catalog snapshot read from PostgreSQL, joined by
 * stateFromSnapshot, decides size and dependents conditions.
 */
const db = useTestDatabase();

const p = policy({
  default_effect: 'allow',
  rules: [
    { id: 'big-lock-held', description: 'heavy locks on big tables', match: { lock_at_least: 'ShareLock', state: { min_rows: 50_000 } }, effect: 'hold' },
    { id: 'drop-with-dependents-denied', description: 'drop with dependents', match: { destructive: true, state: { has_dependents: true } }, effect: 'deny' },
    { id: 'used-by-others', description: 'used recently by others', match: { kinds: ['ddl'], state: { used_by_others_within: '24h' } }, effect: 'deny' },
  ],
});

describe.runIf(postgresAvailable())('state conditions over a real catalog snapshot', () => {
  it('decides by row estimates, dependents and prefetched usage', async () => {
    await db.query(`CREATE SCHEMA app;
      CREATE TABLE app.big (id int primary key, v text);
      INSERT INTO app.big SELECT g, 'x' FROM generate_series(1, 60000) g;
      ANALYZE app.big;
      CREATE TABLE app.small (id int);
      CREATE VIEW app.v_big AS SELECT id FROM app.big;`);
    await loadAnalyzer();
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    let snapshot;
    try {
      snapshot = await readSnapshot(client);
    } finally {
      await client.end();
    }
    const now = new Date();
    const usage = new Map([['app.small', [{ principal: 'billing-svc', application: 'billing', lastUsed: now.getTime() - 3_600_000 }]]]);
    const state = stateFromSnapshot(snapshot, { searchPath: ['app', 'public'], usage });
    const run = (sql: string) =>
      evaluate({ statements: statementsOf(analyze(sql)), principal: { name: 'bot', roles: ['agent'] }, database: db.name, environment: 't', now, session: { searchPath: ['app', 'public'] }, state }, p);

    const bigIndex = run('CREATE INDEX big_v ON big (v)');
    expect(bigIndex.effect).toBe('hold');
    expect(verdict(bigIndex, 'big-lock-held').reason).toMatch(/big has about \d+ rows \(at least 50000\)/);
    expect(run('CREATE INDEX small_id ON app.small (id)').effect).toBe('deny'); // not big, but used by billing-svc
    expect(verdict(run('CREATE INDEX small_id ON app.small (id)'), 'used-by-others').reason).toContain('billing-svc (billing)');

    const dropBig = run('DROP TABLE app.big');
    expect(dropBig.effect).toBe('deny');
    expect(verdict(dropBig, 'drop-with-dependents-denied').reason).toContain('app.v_big');
    const dropSmall = run('DROP TABLE app.small');
    expect(verdict(dropSmall, 'drop-with-dependents-denied').matched).toBe(false);

    // A table the snapshot does not know is unknown: the hold rule fails closed.
    const unknown = run('CREATE INDEX n ON app.not_there (id)');
    expect(verdict(unknown, 'big-lock-held').matched).toBe(true);
    expect(verdict(unknown, 'big-lock-held').unknown.join()).toContain('not in the catalog snapshot');
  });
});
