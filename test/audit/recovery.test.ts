import { spawn } from 'node:child_process';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../governance/audit/log.js';
import { AuditQuery } from '../../governance/audit/query.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { allowRead, allowUpdate, dropFacts } from './fixtures.js';

const db = useTestDatabase();

describe.runIf(postgresAvailable())('orphan recovery after a crash', () => {
  let q: AuditQuery;
  beforeAll(() => { q = new AuditQuery(db.url); });
  afterAll(async () => { await q.close(); });

  const objectExists = async (_database: string, object: string): Promise<boolean> =>
    (await db.query<{ ok: boolean }>('SELECT to_regclass($1) IS NOT NULL AS ok', [object])).rows[0]!.ok;

  it('records outcome unknown for allowed changes without an outcome, with whether their objects exist now', async () => {
    await db.query('CREATE TABLE public.still_here (id int)');
    const dead = await AuditLog.open({ databaseUrl: db.url, instance: 'dead-proxy' });
    const withOutcome = await dead.recordDecision(allowUpdate());
    dead.recordOutcome(withOutcome, { status: 'ok', commandTag: 'UPDATE 1', rows: 1, durationMs: 1 });
    const orphanA = await dead.recordDecision(allowUpdate('UPDATE still_here SET id = 1', { facts: { ...dropFacts('still_here'), kind: 'write' } }));
    const orphanB = await dead.recordDecision({ ...allowUpdate('DROP TABLE orders'), facts: dropFacts('gone_table') });
    const denied = await dead.recordDecision({ ...allowUpdate(), decision: { effect: 'deny', reasons: ['no'] } });
    const read = await dead.recordDecision(allowRead());
    await dead.close(); // releases its instance lock, as a crash would
    void denied; void read;

    const live = await AuditLog.open({ databaseUrl: db.url, instance: 'live-proxy' });
    try {
      // A chain whose writer is alive is left alone.
      const busy = await AuditLog.open({ databaseUrl: db.url, instance: 'busy-proxy' });
      const inflight = await busy.recordDecision(allowUpdate());
      const rec = await live.recoverOrphans({ objectExists });
      expect(rec.skippedLiveInstances).toEqual(['busy-proxy']);
      expect(rec.recovered.map((r) => r.decisionId).sort()).toEqual([orphanA.id, orphanB.id].sort());
      expect(rec.recovered.find((r) => r.decisionId === orphanA.id)?.objectsExist).toEqual({ 'public.still_here': true });
      expect(rec.recovered.find((r) => r.decisionId === orphanB.id)?.objectsExist).toEqual({ 'public.gone_table': false });
      const shown = await q.show(orphanB.id);
      expect(shown?.related[0]).toMatchObject({
        kind: 'outcome', instance: 'live-proxy',
        body: { decision_id: orphanB.id, outcome: { status: 'unknown' }, recovered: { from_instance: 'dead-proxy', by_instance: 'live-proxy', objects_exist: { 'public.gone_table': false } } },
      });
      expect(await q.why(orphanB.id)).toContain('UNKNOWN');
      // Idempotent: nothing left to recover.
      expect((await live.recoverOrphans({ objectExists })).recovered).toEqual([]);
      busy.recordOutcome(inflight, { status: 'ok' });
      await busy.close();
    } finally { await live.close(); }
  });

  it('kill -9 of a writing process mid-load: every change that reached Postgres has a decision, orphans are recovered, chain verifies', async () => {
    await db.query('CREATE TABLE public.crash_target (id uuid PRIMARY KEY)');
    const script = path.join(import.meta.dirname, 'fixtures', 'crash-writer.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, db.url, db.url, 'crashy'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`crash writer not ready: ${err}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => { if (d.toString().includes('ready')) { clearTimeout(t); resolve(); } });
      child.once('exit', (code) => { clearTimeout(t); reject(new Error(`crash writer exited ${code}: ${err}`)); });
    });
    await new Promise((r) => setTimeout(r, 300)); // mid-load
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    const changed = (await db.query<{ id: string }>('SELECT id FROM public.crash_target')).rows.map((r) => r.id);
    expect(changed.length).toBeGreaterThan(20);
    const decided = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM public.crash_target t JOIN pgairlock.audit_log a ON a.id = t.id AND a.kind = 'decision' AND (a.body->>'write_ahead')::boolean`);
    expect(decided.rows[0]!.n).toBe(changed.length); // write-ahead: no change without its decision record

    // The killed process's advisory lock is gone with its connection; wait for the server to notice.
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    for (let i = 0; i < 100; i++) {
      const r = await c.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'pgairlock-audit%crashy'`);
      if (r.rows[0].n === 0) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    await c.end();

    const recoverer = await AuditLog.open({ databaseUrl: db.url, instance: 'after-crash' });
    try {
      const rec = await recoverer.recoverOrphans({ objectExists });
      expect(rec.recovered.length).toBeGreaterThan(0); // at least the decision in flight, usually also queued outcomes
      const orphans = await db.query(`SELECT count(*)::int AS n FROM pgairlock.audit_log d WHERE d.kind = 'decision' AND (d.body->>'write_ahead')::boolean AND d.body->'decision'->>'effect' = 'allow'
        AND NOT EXISTS (SELECT 1 FROM pgairlock.audit_log o WHERE (o.body->>'decision_id')::uuid = d.id AND o.kind = 'outcome')`);
      expect(orphans.rows[0]).toEqual({ n: 0 });
      const decisions = await db.query<{ wal_lsn: string | null }>(`SELECT body->>'wal_lsn' AS wal_lsn FROM pgairlock.audit_log WHERE instance = 'crashy' AND kind = 'decision' LIMIT 5`);
      expect(decisions.rows.every((r) => /^[0-9A-F]+\/[0-9A-F]+$/.test(r.wal_lsn ?? ''))).toBe(true);
    } finally { await recoverer.close(); }
    const v = await q.verify();
    expect(v.ok).toBe(true);
    expect(v.chains.find((x) => x.instance === 'crashy')!.records).toBeGreaterThan(changed.length);
  });
});
