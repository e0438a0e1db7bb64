import { describe, expect, it } from 'vitest';
import {
  ApprovalError,
  approvalsMissing,
  deferDetail,
  outcomeError,
  waitNotice,
  approverNames,
  consumeRefusal,
  createChangeRequest,
  ID_ALPHABET,
  newChangeId,
  parseChangeId,
  planApprove,
  planCancel,
  planConsume,
  planExpire,
  planReject,
  textHash,
  transition,
  type ChangeRequest,
  type PrincipalRef,
} from '../../governance/approvals/index.js';

const T0 = new Date('2026-11-25T10:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);
const agent: PrincipalRef = { name: 'agent:billing', roles: ['agent'] };
const alice: PrincipalRef = { name: 'alice', roles: ['dba'] };
const bob: PrincipalRef = { name: 'bob', roles: ['dba', 'developer'] };
const carol: PrincipalRef = { name: 'carol', roles: ['release-manager'] };
const dave: PrincipalRef = { name: 'dave', roles: ['developer'] };
const SQL = 'DROP TABLE invoices';

function req(over: Partial<{ count: number; roles: string[]; requester: PrincipalRef }> = {}): ChangeRequest {
  return createChangeRequest({
    id: 'ABCD1234',
    requester: over.requester ?? agent,
    database: 'app',
    sql: SQL,
    fingerprint: 'fp',
    textHash: textHash(SQL),
    facts: { kind: 'ddl' },
    rules: [{ rule: 'destructive', reason: 'DROP TABLE destroys data' }],
    required: { count: over.count ?? 1, roles: over.roles ?? ['dba'] },
    mode: 'defer',
    createdAt: T0,
    expiresAt: at(60_000),
  });
}

const code = (fn: () => unknown): string => {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApprovalError) return e.code;
    throw e;
  }
  return 'no error';
};

describe('change ids', () => {
  it('are 8 Crockford base32 characters without ambiguous letters', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const id = newChangeId();
      expect(id).toHaveLength(8);
      for (const c of id) expect(ID_ALPHABET).toContain(c);
      for (const bad of 'ILOU') expect(id).not.toContain(bad);
      seen.add(id);
    }
    expect(seen.size).toBe(500);
  });
  it('parse what people type: case, hyphens, O/I/L', () => {
    expect(parseChangeId('7kq2-m9xd')).toBe('7KQ2M9XD');
    expect(parseChangeId(' O1IL ABCD ')).toBe('0111ABCD');
    expect(code(() => parseChangeId('7KQ2M9X'))).toBe('invalid_id');
    expect(code(() => parseChangeId('7KQ2M9XU'))).toBe('invalid_id');
    expect(code(() => parseChangeId("1' OR '1"))).toBe('invalid_id');
  });
  it('textHash is the sha256 of the exact text', () => {
    expect(textHash('select 1')).toBe('822ae07d4783158bc1912bb623e5107cc9002d519e1143a9c200ed6ee18b6d0f');
    expect(textHash('select 1')).not.toBe(textHash('select  1'));
  });
});

describe('state machine', () => {
  it('creates a pending request with a created event', () => {
    const r = req();
    expect(r.status).toBe('pending');
    expect(r.events).toEqual([{ type: 'created', at: T0.toISOString(), by: agent }]);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });
  it('facts are stored as plain JSON, the same in every store', () => {
    const r = createChangeRequest({ ...req(), createdAt: T0, expiresAt: at(1000), facts: { at: new Date(0), gone: undefined, list: [1, 'a'] } });
    expect(r.facts).toEqual({ at: '1970-01-01T00:00:00.000Z', list: [1, 'a'] });
  });
  it('refuses invalid requirements', () => {
    expect(code(() => req({ count: 0 }))).toBe('invalid_request');
    expect(code(() => req({ roles: [] }))).toBe('invalid_request');
  });
  it('pending -> approved -> executed; final states accept nothing', () => {
    const approved = transition(req(), { type: 'approved', at: at(1).toISOString(), by: alice });
    expect(approved.status).toBe('approved');
    const executed = transition(approved, { type: 'executed', at: at(2).toISOString(), by: agent });
    expect(executed.status).toBe('executed');
    expect(executed.events.map((e) => e.type)).toEqual(['created', 'approved', 'executed']);
    for (const ev of [
      { type: 'approved', at: at(3).toISOString(), by: bob },
      { type: 'executed', at: at(3).toISOString(), by: agent },
      { type: 'cancelled', at: at(3).toISOString(), reason: 'x' },
      { type: 'expired', at: at(3).toISOString(), reason: 'x' },
      { type: 'rejected', at: at(3).toISOString(), by: bob, reason: 'x' },
    ] as const) {
      expect(code(() => transition(executed, ev))).toBe('illegal_transition');
    }
  });
  it('pending cannot be executed; approved cannot be rejected; created only once', () => {
    expect(code(() => transition(req(), { type: 'executed', at: at(1).toISOString(), by: agent }))).toBe('illegal_transition');
    const approved = transition(req(), { type: 'approved', at: at(1).toISOString(), by: alice });
    expect(code(() => transition(approved, { type: 'rejected', at: at(1).toISOString(), by: bob, reason: 'no' }))).toBe('illegal_transition');
    expect(code(() => transition(req(), { type: 'created', at: at(1).toISOString(), by: agent }))).toBe('illegal_transition');
  });
  it('approved can still be cancelled or expire', () => {
    const approved = transition(req(), { type: 'approved', at: at(1).toISOString(), by: alice });
    expect(transition(approved, { type: 'cancelled', at: at(2).toISOString(), reason: 'not needed' }).status).toBe('cancelled');
    expect(transition(approved, { type: 'expired', at: at(2).toISOString(), reason: 'late' }).status).toBe('expired');
  });
});

describe('separation of duties', () => {
  it('the requester never approves its own change, even holding the approver role', () => {
    const selfish: PrincipalRef = { name: 'alice', roles: ['developer', 'dba'] };
    const r = req({ requester: selfish });
    let err: unknown;
    try {
      planApprove(r, { name: 'alice', roles: ['dba'] }, at(1));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApprovalError);
    expect((err as ApprovalError).code).toBe('self_approval');
    expect((err as ApprovalError).sqlstate).toBe('42501');
    expect((err as ApprovalError).message).toBe('you (alice) requested change ABCD1234; another principal holding dba must approve it');
  });
  it('an approver needs one of the required roles', () => {
    expect(code(() => planApprove(req(), dave, at(1)))).toBe('missing_role');
    const r = req({ roles: ['dba', 'release-manager'] });
    expect(planApprove(r, carol, at(1)).event.type).toBe('approved');
  });
  it('quorum of two needs two distinct principals', () => {
    let r = req({ count: 2 });
    r = transition(r, planApprove(r, alice, at(1), '  looks fine ').event);
    expect(r.status).toBe('pending');
    expect(r.events[1]).toEqual({ type: 'approved', at: at(1).toISOString(), by: alice, comment: 'looks fine' });
    expect(code(() => planApprove(r, alice, at(2)))).toBe('duplicate_approval');
    r = transition(r, planApprove(r, bob, at(2)).event);
    expect(r.status).toBe('approved');
    expect(approverNames(r)).toEqual(['alice', 'bob']);
    expect(code(() => planApprove(r, carol, at(3)))).toBe('not_pending');
  });
  it('several requirements (one per hold rule) must all be met; one approver may meet two', () => {
    const base = createChangeRequest({
      id: 'ABCD1234', requester: agent, database: 'app', sql: SQL, fingerprint: 'fp', textHash: textHash(SQL), facts: {}, rules: [], mode: 'wait', createdAt: T0, expiresAt: at(60_000),
      requirements: [{ rule: 'ddl', count: 2, roles: ['dba'] }, { rule: 'freeze', count: 1, roles: ['release-manager'] }],
    });
    expect(base.required).toEqual({ count: 2, roles: ['dba', 'release-manager'] });
    let r = transition(base, planApprove(base, carol, at(1)).event); // release-manager: freeze met, ddl 0/2
    expect(r.status).toBe('pending');
    expect(approvalsMissing(r)).toBe(2);
    let err: unknown;
    try { planApprove(r, carol, at(2)); } catch (e) { err = e; }
    expect((err as ApprovalError).message).toBe('you (carol) already approved change ABCD1234; it still needs 2 more approvals from distinct principals holding dba');
    r = transition(r, planApprove(r, alice, at(2)).event);
    expect(r.status).toBe('pending');
    r = transition(r, planApprove(r, bob, at(3)).event);
    expect(r.status).toBe('approved');
    // One principal holding both roles counts for both requirements.
    const both = createChangeRequest({ ...base, createdAt: T0, expiresAt: at(60_000), requirements: [{ count: 1, roles: ['dba'] }, { count: 1, roles: ['release-manager'] }] });
    expect(transition(both, planApprove(both, { name: 'erin', roles: ['dba', 'release-manager'] }, at(1)).event).status).toBe('approved');
  });
  it('rejection needs a non-empty reason and an approver role; not the requester', () => {
    expect(code(() => planReject(req(), alice, at(1), '   '))).toBe('reason_required');
    expect(code(() => planReject(req(), dave, at(1), 'no'))).toBe('missing_role');
    expect(code(() => planReject(req({ requester: alice }), alice, at(1), 'no'))).toBe('not_allowed');
    const p = planReject(req(), alice, at(1), ' too risky ');
    expect(p.event).toEqual({ type: 'rejected', at: at(1).toISOString(), by: alice, reason: 'too risky' });
  });
  it('an approval after expiry expires the request and says so', () => {
    const p = planApprove(req(), alice, at(60_000));
    expect(p.event.type).toBe('expired');
    expect(p.thenThrow?.code).toBe('expired');
  });
  it('cancel: requester or role holder, with a reason', () => {
    expect(code(() => planCancel(req(), at(1), ''))).toBe('reason_required');
    expect(code(() => planCancel(req(), at(1), 'x', dave))).toBe('not_allowed');
    expect(planCancel(req(), at(1), 'x', agent).event.type).toBe('cancelled');
    expect(planCancel(req(), at(1), 'client went away').event).toEqual({ type: 'cancelled', at: at(1).toISOString(), reason: 'client went away' });
  });
  it('expiry only after expiresAt unless forced', () => {
    expect(planExpire(req(), at(59_999))).toBeUndefined();
    expect(planExpire(req(), at(60_000))?.event.type).toBe('expired');
    expect(planExpire(req(), at(1), 'wait timeout', true)?.event).toEqual({ type: 'expired', at: at(1).toISOString(), reason: 'wait timeout' });
  });
  it('single use only for the same principal, database, text, before expiry', () => {
    const approved = transition(req(), { type: 'approved', at: at(1).toISOString(), by: alice });
    const h = textHash(SQL);
    const policy = { executorMustDifferFromApprover: false };
    expect(planConsume(approved, agent, 'app', h, at(2), policy)?.event).toEqual({ type: 'executed', at: at(2).toISOString(), by: agent });
    expect(consumeRefusal(approved, bob, 'app', h, at(2), policy)).toBe('a different principal requested it');
    expect(consumeRefusal(approved, agent, 'other', h, at(2), policy)).toBe('it was approved for another database');
    expect(consumeRefusal(approved, agent, 'app', textHash(`${SQL};`), at(2), policy)).toBe('it was approved for a different statement text');
    expect(consumeRefusal(approved, agent, 'app', h, at(60_000), policy)).toBe('it expired');
    expect(consumeRefusal(req(), agent, 'app', h, at(2), policy)).toBe('status is pending');
  });
  it('executor_must_differ_from_approver is checked at consume', () => {
    // Not reachable through the public operations (the requester cannot approve); build the state directly.
    const approved = transition(req(), { type: 'approved', at: at(1).toISOString(), by: { name: agent.name, roles: ['dba'] } });
    expect(approved.status).toBe('approved');
    const h = textHash(SQL);
    expect(consumeRefusal(approved, agent, 'app', h, at(2), { executorMustDifferFromApprover: true })).toBe('the executor approved it');
    expect(consumeRefusal(approved, agent, 'app', h, at(2), { executorMustDifferFromApprover: false })).toBeUndefined();
  });
});

describe('client messages', () => {
  it('wait notice, defer detail and outcome errors name the change and what to do', () => {
    const r = req();
    expect(waitNotice(r)).toBe(
      'pgairlock: change ABCD1234 is waiting for approval (1 more approval from a principal holding dba); an approver runs APPROVE ABCD1234; in the pgairlock admin console (psql -d pgairlock) or `pgairlock changes approve ABCD1234 --as <approver>`. Cancelling the statement cancels the request.',
    );
    expect(deferDetail(r).hint).toContain('send exactly the same statement again as agent:billing on database app');
    const rejected = transition(r, planReject(r, alice, at(1), 'not now').event);
    expect(outcomeError(rejected, 'rejected')).toMatchObject({ sqlstate: '42501', message: 'pgairlock: change ABCD1234 was rejected by alice: not now' });
    const expired = transition(r, planExpire(r, at(1), 'no decision within the wait timeout of 300 s', true)!.event);
    expect(outcomeError(expired, 'expired')).toMatchObject({ sqlstate: '57014', message: 'pgairlock: canceling statement: change ABCD1234 was not approved in time (no decision within the wait timeout of 300 s)' });
    const cancelled = transition(r, planCancel(r, at(1), 'client disconnected').event);
    expect(outcomeError(cancelled, 'cancelled')?.sqlstate).toBe('57014');
    expect(outcomeError(transition(r, planApprove(r, alice, at(1)).event), 'approved')).toBeUndefined();
  });
});
