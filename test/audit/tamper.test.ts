import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../governance/audit/log.js';
import { AuditQuery } from '../../governance/audit/query.js';
import { recordHash } from '../../governance/audit/canonical.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { allowRead, allowUpdate } from './fixtures.js';

const db = useTestDatabase();

/**
 * Tampering as a superuser would: bypassing the append-only trigger, then changing rows directly.
 * Each case writes its own chain, tampers with it, and expects verify to name the right record.
 */
describe.runIf(postgresAvailable())('audit verify detects tampering', () => {
  let q: AuditQuery;
  let admin: pg.Client;
  beforeAll(async () => {
    q = new AuditQuery(db.url);
    admin = new pg.Client({ connectionString: db.url });
    await admin.connect();
  });
  afterAll(async () => { await q.close(); await admin.end(); });

  async function writeChain(instance: string, n = 6): Promise<{ id: string; seq: number }[]> {
    const log = await AuditLog.open({ databaseUrl: db.url, instance });
    try {
      for (let i = 0; i < n; i++) await log.recordDecision(i % 2 ? allowRead(`SELECT ${i}`) : allowUpdate());
      await log.flush();
    } finally { await log.close(); }
    const r = await db.query<{ id: string; seq: string }>('SELECT id, seq FROM pgairlock.audit_log WHERE instance = $1 ORDER BY seq', [instance]);
    return r.rows.map((x) => ({ id: x.id, seq: Number(x.seq) }));
  }

  async function tamper(sql: string, params: unknown[] = []): Promise<void> {
    await admin.query('BEGIN');
    await admin.query('SET LOCAL session_replication_role = replica');
    await admin.query(sql, params);
    await admin.query('COMMIT');
  }

  it('an intact chain verifies', async () => {
    await writeChain('intact');
    const v = await q.verify({ instance: 'intact' });
    expect(v).toMatchObject({ ok: true, chains: [{ instance: 'intact', records: 6, head: { seq: 6 } }] });
  });

  it('altered body -> altered at that record', async () => {
    const rows = await writeChain('alter-body');
    await tamper(`UPDATE pgairlock.audit_log SET body = jsonb_set(body, '{decision,effect}', '"deny"') WHERE id = $1`, [rows[3]!.id]);
    const v = await q.verify({ instance: 'alter-body' });
    expect(v.ok).toBe(false);
    expect(v.chains[0]!.break).toMatchObject({ kind: 'altered', id: rows[3]!.id, seq: 4 });
  });

  it('altered time (a column outside body) -> altered at that record', async () => {
    const rows = await writeChain('alter-time');
    await tamper(`UPDATE pgairlock.audit_log SET time = time - interval '1 hour' WHERE id = $1`, [rows[1]!.id]);
    const v = await q.verify({ instance: 'alter-time' });
    expect(v.chains[0]!.break).toMatchObject({ kind: 'altered', id: rows[1]!.id, seq: 2 });
  });

  it('deleted record -> missing link reported at the next record, with the missing seq', async () => {
    const rows = await writeChain('delete');
    await tamper('DELETE FROM pgairlock.audit_log WHERE id = $1', [rows[2]!.id]);
    const v = await q.verify({ instance: 'delete' });
    expect(v.chains[0]!.break).toMatchObject({ kind: 'missing', id: rows[3]!.id, seq: 4, missingFromSeq: 3 });
    expect(v.chains[0]!.break!.message).toContain('seq 3 are missing');
  });

  it('deleted first record -> missing from seq 1', async () => {
    const rows = await writeChain('delete-first', 3);
    await tamper('DELETE FROM pgairlock.audit_log WHERE id = $1', [rows[0]!.id]);
    const v = await q.verify({ instance: 'delete-first' });
    expect(v.chains[0]!.break).toMatchObject({ kind: 'missing', id: rows[1]!.id, missingFromSeq: 1 });
  });

  it('inserted record at the end with a made-up hash -> pointed at', async () => {
    const rows = await writeChain('insert-end', 3);
    const forged = randomUUID();
    await tamper(`INSERT INTO pgairlock.audit_log (id, instance, seq, time, kind, prev_hash, hash, body)
      SELECT $1, instance, seq + 1, time, kind, hash, repeat('a', 64), body FROM pgairlock.audit_log WHERE id = $2`, [forged, rows[2]!.id]);
    const v = await q.verify({ instance: 'insert-end' });
    expect(v.chains[0]!.break).toMatchObject({ kind: 'altered', id: forged, seq: 4 });
  });

  it('inserted record in the middle (later records renumbered) -> pointed at', async () => {
    const rows = await writeChain('insert-mid', 5);
    const forged = randomUUID();
    await tamper(`UPDATE pgairlock.audit_log SET seq = seq + 100 WHERE instance = 'insert-mid' AND seq >= 3`);
    await tamper(`UPDATE pgairlock.audit_log SET seq = seq - 99 WHERE instance = 'insert-mid' AND seq >= 103`);
    await tamper(`INSERT INTO pgairlock.audit_log (id, instance, seq, time, kind, prev_hash, hash, body)
      SELECT $1, instance, 3, time, kind, hash, repeat('b', 64), body FROM pgairlock.audit_log WHERE id = $2`, [forged, rows[1]!.id]);
    const v = await q.verify({ instance: 'insert-mid' });
    expect(v.chains[0]!.break).toMatchObject({ kind: 'altered', id: forged, seq: 3 });
  });

  it('tail truncation passes a keyless check but not an anchored one', async () => {
    const rows = await writeChain('truncate', 6);
    const before = await q.verify({ instance: 'truncate' });
    const anchor = { instance: 'truncate', ...before.chains[0]!.head! };
    await tamper(`DELETE FROM pgairlock.audit_log WHERE instance = 'truncate' AND seq >= 5`);
    expect((await q.verify({ instance: 'truncate' })).ok).toBe(true); // the documented limit
    const v = await q.verify({ instance: 'truncate', anchors: [anchor] });
    expect(v.ok).toBe(false);
    expect(v.chains[0]!.break).toMatchObject({ kind: 'truncated', id: rows[3]!.id, seq: 5, missingFromSeq: 5 });
    // A whole anchored chain deleted.
    await tamper(`DELETE FROM pgairlock.audit_log WHERE instance = 'truncate'`);
    const gone = await q.verify({ anchors: [anchor] });
    expect(gone.chains.find((c) => c.instance === 'truncate')?.break).toMatchObject({ kind: 'truncated', id: null, seq: 1 });
  });

  it('a tail rewritten with recomputed hashes is caught by an anchor', async () => {
    const rows = await writeChain('rewrite', 4);
    const anchor = { instance: 'rewrite', ...(await q.verify({ instance: 'rewrite' })).chains[0]!.head! };
    // Forge record 4 consistently: new body, correct hash over it, same prev_hash.
    const r = await db.query<{ id: string; prev_hash: string; time: string; kind: string; body: Record<string, unknown> }>(
      `SELECT id, prev_hash, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time, kind, body FROM pgairlock.audit_log WHERE id = $1`, [rows[3]!.id]);
    const row = r.rows[0]!;
    const body = { ...row.body, sql: 'SELECT harmless' };
    const hash = recordHash({ id: row.id, instance: 'rewrite', seq: 4, time: row.time, kind: row.kind, prev_hash: row.prev_hash, body: body });
    await tamper(`UPDATE pgairlock.audit_log SET body = $2::jsonb, hash = $3 WHERE id = $1`, [row.id, JSON.stringify(body), hash]);
    expect((await q.verify({ instance: 'rewrite' })).ok).toBe(true); // consistent forgery: keyless check passes
    const v = await q.verify({ instance: 'rewrite', anchors: [anchor] });
    expect(v.chains[0]!.break).toMatchObject({ kind: 'anchor-mismatch', id: rows[3]!.id, seq: 4 });
  });

  it('a break in one chain leaves other chains verified, and verify() without filter walks them all', async () => {
    const v = await q.verify();
    const byInstance = new Map(v.chains.map((c) => [c.instance, c]));
    expect(byInstance.get('intact')?.break).toBeUndefined();
    expect(byInstance.get('delete')?.break?.kind).toBe('missing');
    expect(v.ok).toBe(false);
  });
});
