import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionBody, decisionText, outcomeSummary, outcomeText } from '../../governance/audit/build.js';
import { CanonicalFragment, canonicalJson, sanitize, storableJson } from '../../governance/audit/canonical.js';
import { AuditLog, recordId } from '../../governance/audit/log.js';
import { AuditQuery } from '../../governance/audit/query.js';
import type { DecisionInput, OutcomeInput, RuleVerdict } from '../../governance/audit/types.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { allowRead, allowUpdate, dropFacts, session, updateFacts } from './fixtures.js';

/** The writer's cheap paths must store exactly what the plain serialisation would, and stay verifiable. */
describe('serialised parts of a decision body', () => {
  it('canonical text with fragments is byte-identical to the plain body (NUL and lone surrogates included)', () => {
    const input = allowUpdate("UPDATE accounts SET note = 'a\u0000b\ud800' WHERE id = 1", { facts: { ...updateFacts(), findings: [{ rule: 'x', severity: 'info', message: 'm\ud83d\ude00\udc00', why: '', fix: '' }] } });
    for (const redact of [false, true]) {
      const plain = canonicalJson(sanitize(decisionBody(input, { redact, writeAhead: true, walLsn: '0/1' })));
      const fast = canonicalJson(sanitize(decisionBody(input, { redact, writeAhead: true, walLsn: '0/1', serialised: true })));
      expect(fast).toBe(plain);
      // Twice: the cached parts give the same text again.
      expect(canonicalJson(sanitize(decisionBody(input, { redact, writeAhead: true, walLsn: '0/1', serialised: true })))).toBe(plain);
    }
    // The writer's one-pass serialisation equals sanitize-then-canonicalJson.
    const odd = { z: -0, y: [undefined, Number.NaN, 1.5e300, 'a\u0000'], x: { '\ud800k': 1, '\udc00k': 2, f: () => 1, u: undefined }, d: new Date(0), b: 10n, nested: [{ q: '\ud83d\ude00', p: '\ud83d' }] };
    expect(storableJson(odd)).toBe(canonicalJson(sanitize(odd)));
    const body = decisionBody(input, { redact: false, writeAhead: true, walLsn: null, serialised: true });
    expect(storableJson(body)).toBe(canonicalJson(sanitize(decisionBody(input, { redact: false, writeAhead: true, walLsn: null }))));
    const f = CanonicalFragment.of({ b: 1, a: ['x', null] });
    expect(f.json).toBe('{"a":["x",null],"b":1}');
    expect(JSON.stringify({ f })).toBe('{"f":{"a":["x",null],"b":1}}');
  });
});

describe('record ids', () => {
  it('are UUIDs version 7: time first (ordered as text by millisecond), then random bits', () => {
    const t = Date.UTC(2026, 10, 25, 12, 0, 0, 123);
    const a = recordId(t);
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(Number.parseInt(a.replace('-', '').slice(0, 12), 16)).toBe(t);
    expect(recordId(t)).not.toBe(a);
    expect(recordId(t + 1) > a).toBe(true);
  });

  it('stay distinct and well-formed across many refills of the random pool within one millisecond', () => {
    const t = Date.UTC(2026, 10, 25, 12, 0, 0, 456);
    const ids = Array.from({ length: 10_000 }, () => recordId(t)); // about 27 refills of the 4 KiB pool
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^01a[0-9a-f]{5}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Every variant nibble occurs: the two random bits under it are used.
    expect(new Set(ids.map((id) => id[19]))).toEqual(new Set(['8', '9', 'a', 'b']));
  });
});

describe('direct serialisation (decisionText, outcomeText)', () => {
  const odd = "x'\u0000\ud800\"\\\n\u2028é😀";
  const inputs: DecisionInput[] = [
    allowUpdate(),
    allowRead(),
    // Text other than the analysed statement's, no facts at all, no fingerprint.
    allowUpdate(`UPDATE accounts SET note = '${odd}' WHERE id = 1`),
    allowUpdate('garbage ((', { facts: null }),
    allowUpdate(undefined, { facts: { ...updateFacts(), fingerprint: '', inverse: `UPDATE accounts SET balance = 1 WHERE id = 42 /* ${odd} */` } }),
    allowUpdate(undefined, { facts: { ...updateFacts(), inverse: '' } }),
    { ...allowUpdate('DROP TABLE orders', { facts: dropFacts() }), decision: { effect: 'hold', reasons: ['held', odd], message: 'wait', mode: 'wait', change_id: 'c-1' } },
    allowUpdate(undefined, {
      session: session({ effectiveRole: null, applicationName: null, clientAddress: null, source: undefined, principal: { name: `p${odd}`, roles: [] } }),
      approvals: [{ approver: 'alice', at: '2026-01-01T00:00:00.000Z', roles: ['dba'], change_id: 'c-1' }, { approver: 'bob', at: '', comment: odd }],
      catalogVersionBefore: 'abc',
      impact: { schema_hash: 'abc', relations: [{ name: 'public.accounts', kind: 'r', rows: 10, bytes: 8192, lock: 'RowExclusiveLock', lock_duration: 'instant' }], lock_duration: 'instant', max_rows: 10, max_bytes: 8192, dependents: [], dependents_total: 0 } as unknown as DecisionInput['impact'],
      rules: [{ id: 'r', matched: true, effect: null, reason: odd, source: 'policy' }, { id: 's', matched: false, reason: 'x' }],
    }),
  ];

  it('is byte-identical to the generic serialisation of decisionBody, inline rules or rules_ref, twice (cached parts)', () => {
    for (const input of inputs) {
      for (const redact of [false, true]) {
        for (const [writeAhead, walLsn] of [[true, '0/1'], [false, null]] as const) {
          for (let pass = 0; pass < 2; pass++) {
            const body = decisionBody(input, { redact, writeAhead, walLsn });
            const t = decisionText(input, { redact, writeAhead, walLsn });
            expect(`${t.head}"rules":${t.rules.json}${t.tail}`).toBe(canonicalJson(sanitize(body)));
            const ref = { decision_id: '00000000-0000-4000-8000-000000000001', sha256: 'ab'.repeat(32) };
            expect(`${t.head}"rules_ref":${canonicalJson(ref)}${t.tail}`).toBe(canonicalJson(sanitize({ ...body, rules: undefined, rules_ref: ref })));
          }
        }
      }
    }
  });

  it('outcomes are byte-identical to the generic serialisation', () => {
    const outcomes: OutcomeInput[] = [
      { status: 'ok', commandTag: 'UPDATE 1', rows: 1, durationMs: 0.247896000000764 },
      { status: 'error', sqlstate: '23505', message: odd, durationMs: Number.NaN, catalogVersionAfter: 'v2' },
      { status: 'ok' },
    ];
    for (const o of outcomes) {
      const body = { decision_id: 'd-1', session_id: odd, principal: 'p', outcome: outcomeSummary(o), catalog_version_after: o.catalogVersionAfter ?? null };
      expect(outcomeText('d-1', odd, 'p', o)).toBe(canonicalJson(sanitize(body)));
    }
  });
});

const db = useTestDatabase();

describe.runIf(postgresAvailable())('rules_ref: repeated rule evaluations are stored once per chain', () => {
  let q: AuditQuery;
  beforeAll(() => { q = new AuditQuery(db.url); });
  afterAll(async () => { await q.close(); });

  it('the first decision carries the rules, later ones refer to it; why() shows them; verify passes', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'rules-ref' });
    const rules: RuleVerdict[] = [
      { id: 'writes-with-where', matched: true, effect: 'allow', reason: 'UPDATE has a WHERE clause' },
      { id: 'no-drop', matched: false, effect: 'deny', reason: 'not a DROP' },
    ];
    try {
      const first = await log.recordDecision(allowUpdate(undefined, { rules }));
      const second = await log.recordDecision(allowUpdate(undefined, { rules }));
      // Another evaluation (same content, another array): same reference.
      const third = await log.recordDecision(allowUpdate(undefined, { rules: rules.map((r) => ({ ...r })) }));
      const other = await log.recordDecision(allowUpdate(undefined, { rules: [{ ...rules[0]!, reason: 'something else' }] }));
      const read = await log.recordDecision(allowRead(undefined, { rules }));
      await log.flush();
      const body = async (id: string) => (await q.get(id))!.body as Record<string, unknown>;
      expect((await body(first.id)).rules).toEqual(rules.map((r) => ({ ...r })));
      expect((await body(first.id)).rules_ref).toBeUndefined();
      const sha = createHash('sha256').update(canonicalJson(rules), 'utf8').digest('hex');
      for (const r of [second, third, read]) {
        const b = await body(r.id);
        expect(b.rules).toBeUndefined();
        expect(b.rules_ref).toEqual({ decision_id: first.id, sha256: sha });
      }
      expect((await body(other.id)).rules).toHaveLength(1);
      const why = await q.why(second.id);
      expect(why).toContain(`Rules as recorded with decision ${first.id}`);
      expect(why).toContain('Policy rules evaluated: 2, matched: 1');
      expect(why).toContain('not a DROP');
      expect((await q.show(second.id))!.related.map((e) => e.id)).toContain(first.id);
      expect((await q.verify({ instance: 'rules-ref' })).ok).toBe(true);
    } finally {
      await log.close();
    }
  });

  it('a decision whose rules were never committed carries them itself (no reference to a failed batch)', async () => {
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'rules-ref-2' });
    try {
      const rules: RuleVerdict[] = [{ id: 'r', matched: true, effect: 'allow', reason: 'fine' }];
      // Both queued before the first batch commits: both inline.
      const [a, b] = await Promise.all([log.recordDecision(allowUpdate(undefined, { rules })), log.recordDecision(allowUpdate(undefined, { rules }))]);
      const c = await log.recordDecision(allowUpdate(undefined, { rules }));
      await log.flush();
      expect(((await q.get(a.id))!.body as { rules?: unknown }).rules).toBeDefined();
      expect(((await q.get(b.id))!.body as { rules?: unknown }).rules).toBeDefined();
      expect(((await q.get(c.id))!.body as { rules_ref?: { decision_id: string } }).rules_ref?.decision_id).toBe(a.id);
    } finally {
      await log.close();
    }
  });
});
