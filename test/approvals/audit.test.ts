import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ApprovalService, approvalAuditEvent, MemoryApprovalStore } from '../../governance/approvals/index.js';
import { AuditLog } from '../../governance/audit/log.js';
import { AuditQuery } from '../../governance/audit/query.js';
import { configSchema } from '../../governance/config/schema.js';
import { postgresAvailable, redisAvailable, useTestDatabase } from '../harness/db.js';
import { agent, alice, bob, holdInput, redisKind } from './helpers.js';

const db = useTestDatabase();
const config = configSchema.parse({}).approvals;

describe.runIf(postgresAvailable())('every change-request event becomes an audit record', () => {
  it('created, approved and executed land in the hash-chained audit log, linked by change id', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'approvals-test' });
    try {
      const auditErrors: unknown[] = [];
      const store = new MemoryApprovalStore({ onEvent: (r, e) => log.recordApprovalEvent(approvalAuditEvent(r, e)).then(() => undefined), onEventError: (err) => auditErrors.push(err) });
      const svc = new ApprovalService(store, config);
      const sql = 'ALTER TABLE invoices ADD COLUMN paid_at timestamptz';
      const decisionId = randomUUID(); // the audit decision record of the hold
      const req = await svc.hold({ requester: agent, database: 'app', sql, fingerprint: 'fp', facts: { kind: 'ddl' }, rules: [{ rule: 'ddl-needs-approval', reason: 'schema change' }], mode: 'defer', decisionId });
      await svc.approve(req.id, alice, 'fine');
      expect(await svc.consume(agent, 'app', sql)).toBeDefined();
      const rejected = await svc.hold({ requester: agent, database: 'app', sql: 'DROP TABLE invoices', fingerprint: 'fp2', facts: {}, rules: [], mode: 'wait' });
      await svc.reject(rejected.id, bob, 'never');
      await log.flush();
      expect(auditErrors).toEqual([]);
      const q = new AuditQuery(db.url);
      try {
        const recs = (await q.search({}, { limit: 100, order: 'asc' })).filter((e) => e.kind === 'approval');
        const mine = recs.filter((e) => e.body.change_id === req.id).map((e) => [e.body.event, e.body.principal, e.body.comment, e.body.decision_id, e.body.sql_hash]);
        expect(mine).toEqual([
          ['requested', 'agent:billing', null, decisionId, req.textHash],
          ['approved', 'alice', 'fine', decisionId, req.textHash],
          ['executed', 'agent:billing', null, decisionId, req.textHash],
        ]);
        const rej = recs.find((e) => e.body.change_id === rejected.id && e.body.event === 'rejected');
        expect(rej?.body.principal).toBe('bob');
        expect((rej?.body.detail as Record<string, unknown>).reason).toBe('never');
        const report = await q.verify();
        expect(report.chains.every((c) => !c.break)).toBe(true);
      } finally {
        await q.close();
      }
    } finally {
      await log.close();
    }
  });
});

describe('onEvent failures and the expiry sweep', () => {
  it('a failing onEvent does not undo the change and is reported to onEventError', async () => {
    const errors: string[] = [];
    const store = new MemoryApprovalStore({
      onEvent: (_r, e) => {
        if (e.type === 'approved') throw new Error('audit down');
      },
      onEventError: (err, r, e) => errors.push(`${r.id} ${e.type} ${(err as Error).message}`),
    });
    const r = await store.create(holdInput());
    expect((await store.approve(r.id, alice)).status).toBe('approved');
    expect((await store.get(r.id))?.status).toBe('approved');
    expect(errors).toEqual([`${r.id} approved audit down`]);
  });

  const kinds = [
    ['memory', () => ({ open: () => new MemoryApprovalStore(), cleanup: () => Promise.resolve() })],
    ['redis', () => redisKind('sweep')],
  ] as const;
  for (const [name, make] of kinds) {
    describe.runIf(name === 'memory' || redisAvailable())(name, () => {
      const kind = make();
      afterAll(() => kind.cleanup());
      it('startExpirySweep expires overdue requests without anyone touching them', async () => {
        const events: string[] = [];
        const store = name === 'memory' ? new MemoryApprovalStore({ onEvent: (r, e) => void events.push(`${r.id}:${e.type}`) }) : kind.open({ onEvent: (r, e) => void events.push(`${r.id}:${e.type}`) });
        const svc = new ApprovalService(store, { ...config, expiry_sweep_interval_ms: 100 });
        const r = await store.create(holdInput({ ttlMs: 200 }));
        const stop = svc.startExpirySweep();
        try {
          const t = Date.now();
          while ((await store.get(r.id))?.status !== 'expired' && Date.now() - t < 5000) await new Promise((res) => setTimeout(res, 50));
          expect((await store.get(r.id))?.status).toBe('expired');
          expect(events).toEqual([`${r.id}:created`, `${r.id}:expired`]);
        } finally {
          stop();
        }
      });
    });
  }
});
