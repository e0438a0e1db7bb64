import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { psql } from '../harness/tools.js';

const db = useTestDatabase();
const ROLE = `pgairlock_mapped_${randomBytes(3).toString('hex')}`;

async function whereAmI(url: string): Promise<{ d: string; u: string }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<{ d: string; u: string }>('SELECT current_database() AS d, current_user AS u')).rows[0]!;
  } finally {
    await c.end();
  }
}

describe.skipIf(!postgresAvailable())('database mapping (pgbouncer-style [databases])', () => {
  let proxy: TestProxy;
  let wildcard: TestProxy;
  beforeAll(async () => {
    await adminQuery(`CREATE ROLE ${ROLE} LOGIN`);
    proxy = await startTestProxy({
      databases: {
        alias: { dbname: db.name },
        as_role: { dbname: db.name, user: ROLE },
      },
    });
    wildcard = await startTestProxy({ databases: { '*': { dbname: db.name } } });
  });
  afterAll(async () => {
    await proxy?.close();
    await wildcard?.close();
    await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => undefined);
  });

  it('connecting to the alias lands in the mapped database', async () => {
    expect(await whereAmI(proxy.url('alias'))).toEqual({ d: db.name, u: 'postgres' });
    const r = await psql(`postgresql://postgres@127.0.0.1:${proxy.port}/alias?sslmode=disable`, ['-A', '-t', '-c', 'SELECT current_database()']);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(db.name);
  });

  it('an unmapped name passes through unchanged', async () => {
    expect(await whereAmI(proxy.url(db.name))).toEqual({ d: db.name, u: 'postgres' });
    expect(await whereAmI(proxy.url('postgres'))).toEqual({ d: 'postgres', u: 'postgres' });
  });

  it('an unmapped name that does not exist gets the server’s own 3D000', async () => {
    const c = new pg.Client({ connectionString: proxy.url('no_such_database_here') });
    c.on('error', () => undefined);
    await expect(c.connect()).rejects.toMatchObject({ code: '3D000', message: 'database "no_such_database_here" does not exist' });
  });

  it('a mapping with user: connects as the mapped role', async () => {
    expect(await whereAmI(proxy.url('as_role'))).toEqual({ d: db.name, u: ROLE });
  });

  it('the * mapping sends every name to its database', async () => {
    expect(await whereAmI(wildcard.url('anything_at_all'))).toEqual({ d: db.name, u: 'postgres' });
    expect(await whereAmI(wildcard.url('postgres'))).toEqual({ d: db.name, u: 'postgres' });
  });
});
