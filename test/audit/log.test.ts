import { Writable } from 'node:stream';
import pino from 'pino';
import client from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditInstanceInUseError } from '../../governance/audit/errors.js';
import { AuditLog } from '../../governance/audit/log.js';
import { AuditQuery } from '../../governance/audit/query.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { allowRead, allowUpdate, dropFacts, session } from './fixtures.js';

const db = useTestDatabase();

describe.runIf(postgresAvailable())('AuditLog writer', () => {
  let q: AuditQuery;
  beforeAll(() => { q = new AuditQuery(db.url); });
  afterAll(async () => { await q.close(); });

  it('stores every field of a change decision, committed before recordDecision resolves, and its outcome', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'fields' });
    try {
      let lsnAsked = 0;
      const receipt = await log.recordDecision(allowUpdate(undefined, {
        approvals: [{ approver: 'bob', roles: ['dba'], at: '2026-11-25T08:00:00.000Z', comment: 'ok', change_id: 'chg-1' }],
        catalogVersionBefore: 'cat-v1',
        walLsn: () => { lsnAsked++; return Promise.resolve('0/16B3748'); },
      }));
      expect(receipt).toMatchObject({ committed: true, change: true });
      expect(lsnAsked).toBe(1);
      // Visible from another connection right away: committed, not just queued.
      const row = await db.query(`SELECT kind, body->>'principal' AS principal, body->>'session_id' AS session_id, body->>'fingerprint' AS fingerprint, body->'decision'->>'effect' AS effect, body->'facts'->>'kind' AS statement_kind, (body->>'write_ahead')::boolean AS write_ahead, body FROM pgairlock.audit_log WHERE id = $1`, [receipt.id]);
      expect(row.rows[0]).toMatchObject({ kind: 'decision', principal: 'agent:billing-bot', session_id: 'sess-1', fingerprint: 'bbbb0002', effect: 'allow', statement_kind: 'write', write_ahead: true });
      expect(row.rows[0]!.body).toEqual({
        session_id: 'sess-1', source: 'wire', principal: 'agent:billing-bot', roles: ['agent'], database_user: 'billing', effective_role: 'billing_rw',
        application_name: 'billing-bot/1.2', client_address: '127.0.0.1:50123', database: 'appdb',
        sql: 'UPDATE accounts SET balance = 0 WHERE id = 42', sql_redacted: false, fingerprint: 'bbbb0002',
        facts: {
          kind: 'write', node: 'UpdateStmt', command_tag: 'UPDATE', relations: [{ name: 'accounts', role: 'write', columns: ['balance'] }], functions: [],
          locks: [{ relation: 'accounts', mode: 'RowExclusiveLock', rewrite: false, scan: false, reason: 'UPDATE takes ROW EXCLUSIVE' }],
          findings: [], destructive: [], opaque: [], privileged: [],
        },
        objects: ['accounts'],
        rules: [
          { id: 'writes-with-where', matched: true, effect: 'allow', reason: 'UPDATE has a WHERE clause' },
          { id: 'no-drop', matched: false, effect: 'deny', reason: 'not a DROP' },
        ],
        decision: { effect: 'allow', reasons: ['UPDATE has a WHERE clause'], message: null },
        approvals: [{ approver: 'bob', roles: ['dba'], at: '2026-11-25T08:00:00.000Z', comment: 'ok', change_id: 'chg-1' }],
        write_ahead: true, wal_lsn: '0/16B3748', catalog_version_before: 'cat-v1', inverse: null,
      });
      log.recordOutcome(receipt, { status: 'error', commandTag: null, rows: null, durationMs: 1.5, sqlstate: '23505', message: 'duplicate key', catalogVersionAfter: 'cat-v2' });
      await log.flush();
      const shown = await q.show(receipt.id);
      expect(shown?.related).toHaveLength(1);
      expect(shown?.related[0]).toMatchObject({
        kind: 'outcome',
        body: { decision_id: receipt.id, session_id: 'sess-1', principal: 'agent:billing-bot', catalog_version_after: 'cat-v2',
          outcome: { status: 'error', command_tag: null, rows: null, duration_ms: 1.5, sqlstate: '23505', message: 'duplicate key' } },
      });
      expect((await q.verify({ instance: 'fields' })).ok).toBe(true);
    } finally { await log.close(); }
  });

  it('records sessions, approval events, drift and denied changes; the query API finds them', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'events' });
    try {
      const s = session({ sessionId: 'sess-ev', principal: { name: 'alice', roles: ['dba'] } });
      log.recordSessionStart(s);
      const denied = await log.recordDecision({
        session: s, sql: 'DROP TABLE orders', facts: dropFacts(),
        rules: [{ id: 'no-drop', matched: true, effect: 'deny', reason: 'DROP TABLE is never allowed for agents' }],
        decision: { effect: 'deny', reasons: ['DROP TABLE is never allowed for agents'], message: 'refused by pgairlock' },
        walLsn: () => Promise.reject(new Error('must not be asked for a refused statement')),
      });
      expect(denied.committed).toBe(true);
      const appr = await log.recordApprovalEvent({ event: 'approved', changeId: 'chg-9', actor: { name: 'carol', roles: ['release-manager'] }, comment: 'after backup', decisionId: denied.id, fingerprint: 'cccc0003', sqlHash: 'abc' });
      const driftId = log.recordDrift({ database: 'appdb', object: 'public.users', expectedVersion: 'v1', actualVersion: 'v2', detail: 'column added by hand' });
      log.recordSessionEnd(s, { reason: 'client closed', durationMs: 1234, statements: 2 });
      await log.flush();
      const all = await q.search({ instance: 'events' }, { order: 'asc' });
      expect(all.map((e) => e.kind)).toEqual(['session_start', 'decision', 'approval', 'drift', 'session_end']);
      expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      expect(all[0]!.body).toMatchObject({ principal: 'alice', roles: ['dba'], session_id: 'sess-ev' });
      expect(all[1]!.body).toMatchObject({ wal_lsn: null, write_ahead: true, objects: ['public.orders'], facts: { findings: [{ rule: 'drop-table', severity: 'error', message: 'DROP TABLE loses data' }] } });
      expect(all[2]).toMatchObject({ id: appr, body: { event: 'approved', change_id: 'chg-9', principal: 'carol', roles: ['release-manager'], comment: 'after backup', decision_id: denied.id } });
      expect(all[3]).toMatchObject({ id: driftId, body: { object: 'public.users', expected_version: 'v1', actual_version: 'v2' } });
      expect(all[4]!.body).toMatchObject({ reason: 'client closed', duration_ms: 1234, statements: 2 });

      expect((await q.search({ decision: 'deny' })).map((e) => e.id)).toEqual([denied.id]);
      expect((await q.search({ object: 'orders', kind: 'decision' })).map((e) => e.id)).toEqual([denied.id]);
      expect((await q.search({ object: 'public.orders' })).map((e) => e.id)).toEqual([denied.id]);
      expect((await q.search({ kind: 'ddl' })).map((e) => e.id)).toEqual([denied.id]);
      expect((await q.search({ fingerprint: 'cccc0003' }, { order: 'asc' })).map((e) => e.id)).toEqual([denied.id, appr]);
      expect(await q.search({ principal: 'alice', kind: 'drift' })).toHaveLength(0);
      expect(await q.search({ principal: 'alice' })).toHaveLength(3);
      expect(await q.search({ since: new Date(Date.now() + 60_000) })).toHaveLength(0);
      expect((await q.search({ since: new Date(Date.now() - 60_000), until: new Date(Date.now() + 60_000), instance: 'events' })).length).toBe(5);
      const why = await q.why(denied.id);
      expect(why).toContain('Verdict:  REFUSED');
      expect(why).toContain('DROP TABLE is never allowed for agents');
      expect(why).toContain('event approved by carol');
      expect(why).toContain('Outcome:  not forwarded to the server');
      const lines: string[] = [];
      expect(await q.exportJsonl({ instance: 'events' }, (l) => { lines.push(l); })).toBe(5);
      expect(lines.every((l) => l.endsWith('\n'))).toBe(true);
      expect(JSON.parse(lines[2]!)).toMatchObject({ id: appr, kind: 'approval', seq: 3, instance: 'events' });
    } finally { await log.close(); }
  });

  it('keeps one gap-free chain under concurrency (200 mixed records at once)', async () => {
    const registry = new client.Registry();
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'concurrent', registry, config: { reads: { group_commit_ms: 5, max_batch: 50, aggregate: false, aggregate_interval_ms: 10_000 } } });
    try {
      await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 3 === 0 ? log.recordDecision(allowUpdate()) : log.recordDecision(allowRead()))));
      await log.flush();
      const r = await db.query(`SELECT min(seq)::int AS lo, max(seq)::int AS hi, count(*)::int AS n FROM pgairlock.audit_log WHERE instance = 'concurrent'`);
      expect(r.rows[0]).toEqual({ lo: 1, hi: 200, n: 200 });
      const v = await q.verify({ instance: 'concurrent' });
      expect(v).toMatchObject({ ok: true, chains: [{ instance: 'concurrent', records: 200 }] });
      // Counted once per batch, by kind: the total is still one per record.
      expect(await registry.getSingleMetricAsString('pgairlock_audit_records_written_total')).toContain('pgairlock_audit_records_written_total{kind="decision"} 200');
    } finally { await log.close(); }
  });

  it('group-commits reads: many reads share one transaction, and recordDecision does not wait for them (serve)', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'group', config: { reads: { group_commit_ms: 200, max_batch: 500, aggregate: false, aggregate_interval_ms: 10_000 } } });
    try {
      const receipts = await Promise.all(Array.from({ length: 50 }, () => log.recordDecision(allowRead())));
      expect(receipts.every((r) => !r.committed && !r.change)).toBe(true);
      // Still queued: nothing is in the table before the group-commit interval has passed.
      expect((await db.query(`SELECT count(*)::int AS n FROM pgairlock.audit_log WHERE instance = 'group'`)).rows[0]).toEqual({ n: 0 });
      await log.flush();
      const x = await db.query(`SELECT count(DISTINCT xmin::text)::int AS txns, count(*)::int AS n FROM pgairlock.audit_log WHERE instance = 'group'`);
      expect(x.rows[0]).toEqual({ txns: 1, n: 50 });
    } finally { await log.close(); }
  });

  it('aggregates reads per fingerprint per interval, folding their outcomes', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'agg', config: { reads: { group_commit_ms: 5, max_batch: 500, aggregate: true, aggregate_interval_ms: 60_000 } } });
    try {
      for (let i = 0; i < 30; i++) {
        const s = session({ sessionId: `s${i % 3}`, applicationName: 'app-x' });
        const r = await log.recordDecision(allowRead(`SELECT * FROM users WHERE id = ${i}`, { session: s }));
        expect(r.aggregateKey).toBeDefined();
        log.recordOutcome(r, i === 7 ? { status: 'error', sqlstate: '57014', durationMs: 2 } : { status: 'ok', commandTag: 'SELECT 1', rows: 1, durationMs: 1 });
      }
      const other = await log.recordDecision(allowRead('SELECT 1 FROM t', { facts: { ...allowRead().facts!, fingerprint: 'other' } }));
      log.recordOutcome(other, { status: 'ok', rows: 1, durationMs: 4 });
      // A change is never aggregated.
      await log.recordDecision(allowUpdate());
      await log.flush({ aggregates: true });
      const aggs = await q.search({ instance: 'agg', kind: 'read_aggregate' }, { order: 'asc' });
      expect(aggs).toHaveLength(2);
      const users = aggs.find((a) => a.body.fingerprint === 'aaaa0001');
      expect(users?.body).toMatchObject({
        count: 30, sessions_total: 3, session_ids: ['s0', 's1', 's2'], application_names: ['app-x'], principal: 'agent:billing-bot',
        sample_sql: 'SELECT * FROM users WHERE id = 0', objects: ['public.users'],
        outcomes: { ok: 29, error: 1, rows: 29, duration_ms_total: 31, duration_ms_max: 2, sqlstates: { 57014: 1 } },
      });
      expect(await q.search({ instance: 'agg', kind: 'decision' })).toHaveLength(1);
      expect((await q.verify({ instance: 'agg' })).ok).toBe(true);
    } finally { await log.close(); }
  });

  it('redacts literals with libpg_query normalize when configured (SQL, aggregate sample, inverse)', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'redact', config: { redact_literals: true } });
    try {
      const r = await log.recordDecision(allowUpdate(`UPDATE accounts SET password = 'hunter2', pin = 1234 WHERE email = 'a@b.c'`));
      const bad = await log.recordDecision(allowUpdate(`UPDATE accounts SET x = 'secret' WHERE`, { facts: null }));
      const row = await q.get(r.id);
      expect(row?.body).toMatchObject({ sql: 'UPDATE accounts SET password = $1, pin = $2 WHERE email = $3', sql_redacted: true });
      expect(JSON.stringify(row?.body)).not.toContain('hunter2');
      const badRow = await q.get(bad.id);
      expect(badRow?.body.sql).toMatch(/^\/\* pgairlock: unparsable statement redacted \(\d+ bytes, sha256 [0-9a-f]{16}\.\.\.\) \*\/$/);
      expect(JSON.stringify(badRow?.body)).not.toContain('secret');
    } finally { await log.close(); }
  });

  it("durability 'before-commit': recordDecision returns at once, receipt.durable settles on commit", async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'deferred' });
    try {
      let lsnAsked = 0;
      const receipts = await Promise.all([1, 2, 3].map(() => log.recordDecision(
        allowUpdate(undefined, { walLsn: () => { lsnAsked++; return Promise.resolve('0/ABC'); } }), { durability: 'before-commit' })));
      expect(receipts.every((r) => r.change && !r.committed && r.durable instanceof Promise)).toBe(true);
      await Promise.all(receipts.map((r) => r.durable!));
      expect(lsnAsked).toBe(3);
      const rows = await db.query(`SELECT id, (body->>'write_ahead')::boolean AS write_ahead, body->>'wal_lsn' AS lsn FROM pgairlock.audit_log WHERE instance = 'deferred' ORDER BY seq`);
      expect(rows.rows.map((r) => r.id).sort()).toEqual(receipts.map((r) => r.id).sort());
      expect(rows.rows.every((r) => r.write_ahead === true && r.lsn === '0/ABC')).toBe(true);
      // Reads ignore the option.
      const read = await log.recordDecision(allowRead(), { durability: 'before-commit' });
      expect(read.durable).toBeUndefined();
    } finally { await log.close(); }
  });

  it('bounds memory: beyond max_queue reads are dropped (counted) and changes refused', async () => {
    const registry = new client.Registry();
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'queue', registry, config: { max_queue: 100, reads: { group_commit_ms: 10_000, max_batch: 500, aggregate: false, aggregate_interval_ms: 10_000 } } });
    try {
      for (let i = 0; i < 130; i++) await log.recordDecision(allowRead());
      expect(log.health().queued).toBe(100);
      await expect(log.recordDecision(allowUpdate())).rejects.toMatchObject({ sqlstate: '58000', detail: expect.stringContaining('audit queue full') });
      const lost = await registry.getSingleMetricAsString('pgairlock_audit_records_lost_total');
      expect(lost).toContain('pgairlock_audit_records_lost_total{kind="decision",reason="queue_full"} 30');
      await log.flush();
      expect((await db.query(`SELECT count(*)::int AS n FROM pgairlock.audit_log WHERE instance = 'queue'`)).rows[0]).toEqual({ n: 100 });
      expect((await log.recordDecision(allowUpdate())).committed).toBe(true);
    } finally { await log.close(); }
  });

  it('refuses a second live writer of the same chain', async () => {
    const a = await AuditLog.open({ databaseUrl: db.url, instance: 'lockme' });
    try {
      await expect(AuditLog.open({ databaseUrl: db.url, instance: 'lockme' })).rejects.toBeInstanceOf(AuditInstanceInUseError);
    } finally { await a.close(); }
    const b = await AuditLog.open({ databaseUrl: db.url, instance: 'lockme' });
    await b.close();
  });

  it('continues an existing chain after a restart with the same instance name', async () => {
    for (let round = 0; round < 2; round++) {
      const log = await AuditLog.open({ databaseUrl: db.url, instance: 'restart' });
      await log.recordDecision(allowUpdate());
      await log.close();
    }
    const v = await q.verify({ instance: 'restart' });
    expect(v.chains[0]).toMatchObject({ records: 2, head: { seq: 2 } });
    expect(v.ok).toBe(true);
  });

  it('mirrors committed records to pino when mirror_to_log is on', async () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } });
    const logger = pino({ level: 'info' }, sink);
    const registry = new client.Registry();
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'mirror', config: { mirror_to_log: true }, logger, registry });
    try {
      const r = await log.recordDecision(allowUpdate());
      const mirrored = lines.map((l) => JSON.parse(l) as { msg: string; audit?: { id: string; seq: number; kind: string } }).filter((l) => l.msg === 'audit record');
      expect(mirrored).toHaveLength(1);
      expect(mirrored[0]!.audit).toMatchObject({ id: r.id, seq: 1, kind: 'decision' });
      const head = (await q.verify({ instance: 'mirror' })).chains[0]!.head!;
      expect((mirrored[0]!.audit as unknown as { hash: string }).hash).toBe(head.hash);
      const written = await registry.getSingleMetricAsString('pgairlock_audit_records_written_total');
      expect(written).toContain('pgairlock_audit_records_written_total{kind="decision"} 1');
    } finally { await log.close(); }
  });
});
