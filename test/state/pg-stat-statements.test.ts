import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPrivateCluster, type PrivateCluster } from '../harness/cluster.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { readStatementStats } from '../../governance/state/pg-stat-statements.js';
import { withClient } from './helpers.js';

const db = useTestDatabase();

describe.runIf(postgresAvailable())('pg_stat_statements (optional)', () => {
  it('is skipped gracefully when the extension is not installed, or installed but not preloaded', async () => {
    const missing = await withClient(db.url, (c) => readStatementStats(c));
    expect(missing).toEqual({ available: false, reason: expect.stringContaining('CREATE EXTENSION pg_stat_statements') });
    await db.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const notLoaded = await withClient(db.url, (c) => readStatementStats(c));
    expect(notLoaded.available).toBe(false);
    if (!notLoaded.available) expect(notLoaded.reason).toContain('shared_preload_libraries');
  });

  describe('with the library preloaded (a private cluster)', () => {
    let cluster: PrivateCluster | undefined;
    beforeAll(async () => {
      cluster = await startPrivateCluster({ conf: [`shared_preload_libraries = 'pg_stat_statements'`] });
      cluster.psql('CREATE EXTENSION pg_stat_statements; CREATE ROLE web LOGIN; CREATE TABLE accounts (id int PRIMARY KEY, email text); GRANT SELECT ON accounts TO web;');
    });
    afterAll(async () => {
      await cluster?.destroy();
    });

    it('reads the statements of the current database by role', async () => {
      const url = cluster!.url('web');
      await withClient(url, async (c) => {
        for (let i = 0; i < 3; i++) await c.query('SELECT email FROM accounts WHERE id = $1', [i]);
      });
      const res = await withClient(cluster!.url(), (c) => readStatementStats(c));
      expect(res.available).toBe(true);
      if (!res.available) return;
      const mine = res.statements.find((s) => s.query.includes('FROM accounts') && s.role === 'web');
      expect(mine).toMatchObject({ role: 'web', calls: 3 });
      expect(mine?.query).toContain('$1');
    });
  });
});
