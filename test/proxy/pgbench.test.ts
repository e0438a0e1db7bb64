import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { cleanPgEnv, run, type RunResult } from '../harness/tools.js';

const db = useTestDatabase();

/** "number of transactions actually processed: 1234" (pgbench prints "1234/5678" when a run is cut short). */
function transactionsProcessed(out: string): number {
  const line = out.split('\n').find((l) => l.startsWith('number of transactions actually processed:'));
  if (!line) throw new Error(`pgbench printed no transaction count:\n${out}`);
  return Number(line.split(':')[1]!.trim().split('/')[0]);
}

function errorLines(r: RunResult): string[] {
  return `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /error|fatal|abort/i.test(l));
}

describe.skipIf(!postgresAvailable())('pgbench through the proxy', () => {
  let proxy: TestProxy;
  const pgbench = (args: string[], timeoutMs = 60_000) =>
    run('pgbench', ['-h', '127.0.0.1', '-p', String(proxy.port), '-U', 'postgres', ...args, db.name], { env: cleanPgEnv(), timeoutMs });

  beforeAll(async () => {
    proxy = await startTestProxy();
    const init = await pgbench(['-i', '-s', '1', '-q']);
    if (init.code !== 0) throw new Error(`pgbench -i failed (${init.code}):\n${init.stdout}\n${init.stderr}`);
  }, 120_000);
  afterAll(async () => proxy?.close());

  it('pgbench -i created and filled the tables through the proxy', async () => {
    const { rows } = await db.query(`SELECT (SELECT count(*) FROM pgbench_accounts)::int AS a, (SELECT count(*) FROM pgbench_branches)::int AS b`);
    expect(rows[0]).toEqual({ a: 100_000, b: 1 });
  });

  for (const mode of ['simple', 'extended', 'prepared'] as const) {
    it(`-M ${mode}: TPC-B for 3 s with 4 clients, every transaction lands in pgbench_history`, async () => {
      const before = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgbench_history`)).rows[0]!.n;
      const r = await pgbench(['-M', mode, '-T', '3', '-c', '4', '-j', '2', '-n']);
      expect(errorLines(r)).toEqual([]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`query mode: ${mode}`);
      const tx = transactionsProcessed(r.stdout);
      expect(tx).toBeGreaterThan(0);
      const after = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgbench_history`)).rows[0]!.n;
      expect(after - before).toBe(tx);
    });
  }

  it('-S -M prepared (select-only) runs clean', async () => {
    const r = await pgbench(['-S', '-M', 'prepared', '-T', '2', '-c', '4', '-j', '2', '-n']);
    expect(errorLines(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(transactionsProcessed(r.stdout)).toBeGreaterThan(0);
  });

  it('-C (a new connection per transaction) churns sessions cleanly', async () => {
    const r = await pgbench(['-S', '-C', '-T', '2', '-c', '4', '-j', '2', '-n']);
    expect(errorLines(r)).toEqual([]);
    expect(r.code).toBe(0);
    expect(transactionsProcessed(r.stdout)).toBeGreaterThan(10);
    // Every session was closed and forgotten by the proxy.
    for (let i = 0; i < 40 && proxy.server.sessions.size > 0; i++) await new Promise((res) => setTimeout(res, 50));
    expect(proxy.server.sessions.size).toBe(0);
  });
});
