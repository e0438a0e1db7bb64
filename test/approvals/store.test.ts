import { afterAll, describe, expect, it } from 'vitest';
import { ApprovalService, requirementsFromHoldSpec, textHash, type ApprovalStore } from '../../governance/approvals/index.js';
import { configSchema } from '../../governance/config/schema.js';
import { redisAvailable } from '../harness/db.js';
import { agent, alice, bob, carol, dave, holdInput, memoryKind, recorder, redisKind, rejectsWith, type StoreKind } from './helpers.js';

/**
 * One suite, run against the in-process store and against real Redis. "Another replica" is a second
 * store instance over the same Redis prefix (its own connections); for memory it is the same store.
 */
const kinds: Array<[string, () => StoreKind, boolean]> = [
  ['memory', memoryKind, true],
  ['redis', () => redisKind('store'), redisAvailable()],
];

for (const [name, makeKind, available] of kinds) {
  describe.runIf(available)(`ApprovalStore (${name})`, () => {
    const kind = makeKind();
    afterAll(() => kind.cleanup());
    const clock = { t: Date.parse('2026-11-25T10:00:00.000Z') };
    const now = () => new Date(clock.t);
    const fresh = (opts: Parameters<StoreKind['open']>[0] = {}): ApprovalStore => kind.open({ now, ...opts });
    /** A second replica: another instance over the same Redis; memory has only the one. */
    const replicaOf = (s: ApprovalStore, opts: Parameters<StoreKind['open']>[0] = {}): ApprovalStore => (kind.shared ? kind.open({ now, ...opts }) : s);

    it('creates, reads back and lists a request; emits created', async () => {
      const rec = recorder();
      const s = fresh({ onEvent: rec.onEvent });
      await s.ready();
      const r = await s.create(holdInput());
      expect(r.id).toHaveLength(8);
      expect(r.status).toBe('pending');
      expect(r.expiresAt).toBe(new Date(clock.t + 60_000).toISOString());
      expect(await s.get(r.id)).toEqual(r);
      expect(await replicaOf(s).get(r.id)).toEqual(r);
      expect((await s.list({ status: ['pending'] })).map((x) => x.id)).toContain(r.id);
      expect(rec.events).toEqual([{ id: r.id, type: 'created', status: 'pending' }]);
      expect(await s.get('ZZZZZZZZ')).toBeUndefined();
    });

    it('an approver with the role approves; comment kept; event emitted', async () => {
      const rec = recorder();
      const s = fresh({ onEvent: rec.onEvent });
      const r = await s.create(holdInput());
      const a = await s.approve(r.id, alice, 'ok, backup taken');
      expect(a.status).toBe('approved');
      expect(a.events.at(-1)).toMatchObject({ type: 'approved', by: { name: 'alice' }, comment: 'ok, backup taken' });
      expect(rec.events.map((e) => e.type)).toEqual(['created', 'approved']);
    });

    it('self-approval is refused even when the requester holds the approver role', async () => {
      const s = fresh();
      const r = await s.create(holdInput({ requester: { name: 'alice', roles: ['developer', 'dba'] } }));
      const err = await rejectsWith(s.approve(r.id, alice), 'self_approval');
      expect(err.message).toContain('another principal holding dba must approve it');
      expect(err.sqlstate).toBe('42501');
      // Through another replica too.
      await rejectsWith(replicaOf(s).approve(r.id, { name: 'alice', roles: ['dba', 'release-manager'] }), 'self_approval');
      expect((await s.get(r.id))?.status).toBe('pending');
      expect((await s.get(r.id))?.events).toHaveLength(1);
    });

    it('a principal without a required role cannot approve', async () => {
      const s = fresh();
      const r = await s.create(holdInput({ required: { count: 1, roles: ['dba', 'release-manager'] } }));
      await rejectsWith(s.approve(r.id, dave), 'missing_role');
      expect((await s.approve(r.id, carol)).status).toBe('approved');
    });

    it('quorum of two needs two distinct principals', async () => {
      const s = fresh();
      const r = await s.create(holdInput({ required: { count: 2, roles: ['dba'] } }));
      expect((await s.approve(r.id, alice)).status).toBe('pending');
      await rejectsWith(replicaOf(s).approve(r.id, alice, 'again'), 'duplicate_approval');
      await rejectsWith(s.approve(r.id, agent), 'self_approval');
      const done = await replicaOf(s).approve(r.id, bob);
      expect(done.status).toBe('approved');
      expect(done.events.filter((e) => e.type === 'approved').map((e) => ('by' in e ? e.by?.name : ''))).toEqual(['alice', 'bob']);
    });

    it('two approvals at the same moment on two replicas both count (compare-and-set retries)', async () => {
      const s = fresh();
      const r = await s.create(holdInput({ required: { count: 2, roles: ['dba'] } }));
      const [a, b] = await Promise.all([s.approve(r.id, alice), replicaOf(s).approve(r.id, bob)]);
      expect([a.status, b.status].sort()).toEqual(['approved', 'pending']);
      const final = await s.get(r.id);
      expect(final?.status).toBe('approved');
      expect(final?.events).toHaveLength(3);
    });

    it('racing approvers on two replicas: exactly the quorum is recorded, the rest are told it is decided', async () => {
      const s = fresh();
      const other = replicaOf(s);
      const r = await s.create(holdInput({ required: { count: 3, roles: ['dba'] } }));
      const names = ['d1', 'd2', 'd3', 'd4', 'd5', 'd6'];
      const results = await Promise.allSettled(names.map((n, i) => (i % 2 ? other : s).approve(r.id, { name: n, roles: ['dba'] })));
      const ok = results.filter((x) => x.status === 'fulfilled');
      const refused = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
      expect(ok).toHaveLength(3);
      expect(refused.map((x) => (x.reason as { code: string }).code)).toEqual(['not_pending', 'not_pending', 'not_pending']);
      const final = await s.get(r.id);
      expect(final?.status).toBe('approved');
      expect(final?.events.filter((e) => e.type === 'approved')).toHaveLength(3);
    });

    it('approve racing cancel: serialised, the cancel always ends it, no event lost', async () => {
      const s = fresh();
      const r = await s.create(holdInput());
      const [a, c] = await Promise.allSettled([s.approve(r.id, alice), replicaOf(s).cancel(r.id, 'client went away')]);
      // Cancelling an approved request is legal; approving a cancelled one is not.
      expect(c.status).toBe('fulfilled');
      if (a.status === 'rejected') expect((a.reason as { code: string }).code).toBe('not_pending');
      const final = await s.get(r.id);
      expect(final?.status).toBe('cancelled');
      expect(final?.events.map((e) => e.type)).toEqual(a.status === 'fulfilled' ? ['created', 'approved', 'cancelled'] : ['created', 'cancelled']);
    });

    it('rejection needs a reason; a rejected change is final', async () => {
      const rec = recorder();
      const s = fresh({ onEvent: rec.onEvent });
      const r = await s.create(holdInput());
      await rejectsWith(s.reject(r.id, alice, '  '), 'reason_required');
      await rejectsWith(s.reject(r.id, dave, 'no'), 'missing_role');
      const x = await s.reject(r.id, alice, 'no index without CONCURRENTLY on invoices');
      expect(x.status).toBe('rejected');
      expect(x.events.at(-1)).toMatchObject({ type: 'rejected', by: { name: 'alice' }, reason: 'no index without CONCURRENTLY on invoices' });
      const e = await rejectsWith(s.approve(r.id, bob), 'not_pending');
      expect(e.message).toContain('rejected by alice: no index without CONCURRENTLY on invoices');
      expect(await s.consumeApproved(agent, 'app', r.textHash)).toBeUndefined();
      expect(rec.events.map((ev) => ev.type)).toEqual(['created', 'rejected']);
    });

    it('expiry: expireDue moves overdue requests once; a late approval expires it and says so', async () => {
      const rec = recorder();
      const s = fresh({ onEvent: rec.onEvent });
      const r1 = await s.create(holdInput({ ttlMs: 1000 }));
      const r2 = await s.create(holdInput({ ttlMs: 1000 }));
      const approved = await s.create(holdInput({ ttlMs: 1000 }));
      await s.approve(approved.id, alice);
      const longer = await s.create(holdInput({ ttlMs: 10_000 }));
      clock.t += 1000;
      const expired = await s.expireDue();
      expect(expired.map((x) => x.id).sort()).toEqual([r1.id, r2.id, approved.id].sort());
      expect((await replicaOf(s).expireDue()).map((x) => x.id)).not.toContain(r1.id);
      expect((await s.get(r1.id))?.status).toBe('expired');
      expect((await s.get(longer.id))?.status).toBe('pending');
      expect(await s.consumeApproved(agent, 'app', approved.textHash)).toBeUndefined();
      const late = await s.create(holdInput({ ttlMs: 1000 }));
      clock.t += 1000;
      const err = await rejectsWith(s.approve(late.id, alice), 'expired');
      expect(err.hint).toContain('send the statement again');
      expect((await s.get(late.id))?.status).toBe('expired');
      expect(rec.events.filter((e) => e.type === 'expired').length).toBe(4);
      clock.t += 100_000;
    });

    it('single use: only same principal + database + text, once, across replicas', async () => {
      const rec = recorder();
      const s = fresh({ onEvent: rec.onEvent });
      const input = holdInput({ sql: 'DELETE FROM invoices WHERE id = 7' });
      const r = await s.create(input);
      expect(await s.consumeApproved(agent, 'app', input.textHash)).toBeUndefined(); // still pending
      await s.approve(r.id, alice);
      expect(await s.consumeApproved(agent, 'app', textHash('DELETE FROM invoices WHERE id = 8'))).toBeUndefined();
      expect(await s.consumeApproved(agent, 'other_db', input.textHash)).toBeUndefined();
      expect(await s.consumeApproved({ name: 'agent:other', roles: ['agent'] }, 'app', input.textHash)).toBeUndefined();
      const other = replicaOf(s);
      const results = await Promise.all([s.consumeApproved(agent, 'app', input.textHash), other.consumeApproved(agent, 'app', input.textHash), s.consumeApproved(agent, 'app', input.textHash)]);
      const winners = results.filter((x) => x !== undefined);
      expect(winners).toHaveLength(1);
      expect(winners[0]?.status).toBe('executed');
      expect(winners[0]?.events.at(-1)).toMatchObject({ type: 'executed', by: { name: 'agent:billing' } });
      expect(await s.consumeApproved(agent, 'app', input.textHash)).toBeUndefined();
      expect(rec.events.filter((e) => e.type === 'executed')).toHaveLength(kind.shared ? results.indexOf(winners[0]) !== 1 ? 1 : 0 : 1);
    });

    it('list filters by status, requester and database, newest first', async () => {
      const s = fresh();
      const a = await s.create(holdInput({ database: 'listdb', requester: { name: 'lister', roles: [] } }));
      clock.t += 1;
      const b = await s.create(holdInput({ database: 'listdb', requester: { name: 'lister', roles: [] } }));
      clock.t += 1;
      await s.create(holdInput({ database: 'otherdb', requester: { name: 'lister', roles: [] } }));
      await s.reject(a.id, alice, 'no');
      expect((await s.list({ database: 'listdb', requester: 'lister' })).map((x) => x.id)).toEqual([b.id, a.id]);
      expect((await s.list({ database: 'listdb', status: ['pending'] })).map((x) => x.id)).toEqual([b.id]);
      expect((await s.list({ database: 'listdb', status: ['rejected'] })).map((x) => x.id)).toEqual([a.id]);
      expect(await s.list({ database: 'listdb', limit: 1 })).toHaveLength(1);
    });
  });

  describe.runIf(available)(`waitForResolution (${name})`, () => {
    const kind = makeKind();
    afterAll(() => kind.cleanup());
    // A long safety re-check, so only the pub/sub (or in-process) wake-up can explain a fast resolution.
    const slow = { recheckIntervalMs: 60_000 };

    it('is woken at once by an approval on another replica', async () => {
      const waiterStore = kind.open(slow);
      const approverStore = kind.shared ? kind.open(slow) : waiterStore;
      await Promise.all([waiterStore.ready(), approverStore.ready()]);
      const r = await waiterStore.create(holdInput());
      const started = Date.now();
      const waiting = waiterStore.waitForResolution(r.id, new AbortController().signal, 30_000);
      await new Promise((res) => setTimeout(res, 100));
      const approvedAt = Date.now();
      await approverStore.approve(r.id, alice);
      expect(await waiting).toBe('approved');
      const wokeAfter = Date.now() - approvedAt;
      expect(wokeAfter).toBeLessThan(1000);
      expect(Date.now() - started).toBeLessThan(5000);
    });

    it('returns rejected when rejected elsewhere, and at once when already decided', async () => {
      const s = kind.open(slow);
      const other = kind.shared ? kind.open(slow) : s;
      const r = await s.create(holdInput());
      const waiting = s.waitForResolution(r.id, new AbortController().signal, 30_000);
      await other.reject(r.id, bob, 'not during the freeze');
      expect(await waiting).toBe('rejected');
      expect(await s.waitForResolution(r.id, new AbortController().signal, 30_000)).toBe('rejected');
      await rejectsWith(s.waitForResolution('ZZZZZZZZ', new AbortController().signal, 1000), 'not_found');
    });

    it('abort cancels the request (client cancelled or disconnected)', async () => {
      const rec = recorder();
      const s = kind.open({ ...slow, onEvent: rec.onEvent });
      const r = await s.create(holdInput());
      const ac = new AbortController();
      const waiting = s.waitForResolution(r.id, ac.signal, 30_000);
      setTimeout(() => ac.abort('client sent CancelRequest'), 50);
      const t = Date.now();
      expect(await waiting).toBe('cancelled');
      expect(Date.now() - t).toBeLessThan(2000);
      const after = await s.get(r.id);
      expect(after?.status).toBe('cancelled');
      expect(after?.events.at(-1)).toMatchObject({ type: 'cancelled', reason: 'client sent CancelRequest' });
      expect(rec.events.map((e) => e.type)).toEqual(['created', 'cancelled']);
      await rejectsWith(s.approve(r.id, alice), 'not_pending');
    });

    it('an already-aborted signal cancels at once', async () => {
      const s = kind.open(slow);
      const r = await s.create(holdInput());
      expect(await s.waitForResolution(r.id, AbortSignal.abort(), 30_000)).toBe('cancelled');
    });

    it('timeout expires the request with a reason', async () => {
      const s = kind.open(slow);
      const r = await s.create(holdInput());
      const t = Date.now();
      expect(await s.waitForResolution(r.id, new AbortController().signal, 300)).toBe('expired');
      expect(Date.now() - t).toBeGreaterThanOrEqual(290);
      const after = await s.get(r.id);
      expect(after?.events.at(-1)).toMatchObject({ type: 'expired', reason: 'no decision within the wait timeout of 0 s' });
    });

    it('the request expiring ends the wait even with a longer timeout', async () => {
      const s = kind.open(slow);
      const r = await s.create(holdInput({ ttlMs: 300 }));
      expect(await s.waitForResolution(r.id, new AbortController().signal, 30_000)).toBe('expired');
      expect((await s.get(r.id))?.status).toBe('expired');
    });

    it('many waiters on many requests each get their own decision', async () => {
      const s = kind.open(slow);
      const other = kind.shared ? kind.open(slow) : s;
      const reqs = await Promise.all(Array.from({ length: 10 }, () => s.create(holdInput())));
      const waits = reqs.map((r) => s.waitForResolution(r.id, new AbortController().signal, 30_000));
      await Promise.all(reqs.map((r, i) => (i % 2 ? other.approve(r.id, alice) : other.reject(r.id, alice, `no ${i}`))));
      expect(await Promise.all(waits)).toEqual(reqs.map((_r, i) => (i % 2 ? 'approved' : 'rejected')));
    });
  });

  describe.runIf(available)(`ApprovalService (${name})`, () => {
    const kind = makeKind();
    afterAll(() => kind.cleanup());
    const config = configSchema.parse({}).approvals;

    it('hold -> approve by id as typed -> consume by exact text, once', async () => {
      const svc = new ApprovalService(kind.open(), config);
      const sql = 'CREATE INDEX ON invoices (customer_id)';
      const r = await svc.hold({ requester: { name: 'agent:x', roles: ['agent'] }, database: 'app', sql, fingerprint: 'f', facts: {}, rules: [], mode: 'defer' });
      expect(r.required).toEqual({ count: 1, roles: ['dba'] });
      expect(r.textHash).toBe(textHash(sql));
      expect(Date.parse(r.expiresAt) - Date.parse(r.createdAt)).toBe(3_600_000);
      const typed = `${r.id.slice(0, 4).toLowerCase()}-${r.id.slice(4)}`;
      await rejectsWith(svc.approve(typed, { name: 'agent:x', roles: ['agent', 'dba'] }), 'self_approval');
      expect((await svc.approve(typed, { name: 'dba1', roles: ['dba'] })).status).toBe('approved');
      expect((await svc.show(r.id)).status).toBe('approved');
      expect((await svc.pending()).map((x) => x.id)).toContain(r.id);
      expect(await svc.consume({ name: 'agent:x', roles: ['agent'] }, 'app', `${sql} `)).toBeUndefined();
      expect((await svc.consume({ name: 'agent:x', roles: ['agent'] }, 'app', sql))?.status).toBe('executed');
      expect(await svc.consume({ name: 'agent:x', roles: ['agent'] }, 'app', sql)).toBeUndefined();
    });

    it('hold from a policy HoldSpec: every rule\'s requirement, the rule\'s timeout', async () => {
      const svc = new ApprovalService(kind.open(), config);
      const spec = { requirements: [{ rule: 'big-index', approvals: 1, approverRoles: ['dba'] }, { rule: 'freeze', approvals: 1, approverRoles: ['release-manager'] }] };
      const r = await svc.hold({ requester: agent, database: 'app', sql: 'CREATE INDEX i ON big (x)', fingerprint: 'f', facts: {}, rules: [], mode: 'wait', requirements: requirementsFromHoldSpec(spec), ttlMs: 90_000 });
      expect(Date.parse(r.expiresAt) - Date.parse(r.createdAt)).toBe(90_000);
      expect(r.requirements).toEqual([{ rule: 'big-index', count: 1, roles: ['dba'] }, { rule: 'freeze', count: 1, roles: ['release-manager'] }]);
      expect((await svc.approve(r.id, alice)).status).toBe('pending');
      expect((await svc.approve(r.id, carol)).status).toBe('approved');
    });

    it('errors: unknown id, malformed id, oversized statement, cancel rights', async () => {
      const svc = new ApprovalService(kind.open(), { ...config, max_sql_bytes: 1024 });
      const nf = await rejectsWith(svc.show('ZZZZ-ZZZZ'), 'not_found');
      expect(nf.sqlstate).toBe('42704');
      await rejectsWith(svc.approve('nope', alice), 'invalid_id');
      await rejectsWith(svc.hold({ requester: agent, database: 'app', sql: `SELECT '${'x'.repeat(2000)}'`, fingerprint: 'f', facts: {}, rules: [], mode: 'wait' }), 'invalid_request');
      const r = await svc.hold({ requester: agent, database: 'app', sql: 'TRUNCATE t', fingerprint: 'f', facts: {}, rules: [], mode: 'wait' });
      await rejectsWith(svc.cancel(r.id, dave, 'mine now'), 'not_allowed');
      expect((await svc.cancel(r.id, agent, 'changed my mind')).status).toBe('cancelled');
    });
  });
}
