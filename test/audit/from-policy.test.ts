import { describe, expect, it } from 'vitest';
import { auditDecisionFromPolicy } from '../../governance/audit/from-policy.js';
import { evaluate, loadDefaultPolicy } from '../../governance/policy/index.js';
import { dropFacts, selectFacts } from './fixtures.js';

describe('policy Decision -> audit record fields (the real policy engine, default policy)', () => {
  const policy = loadDefaultPolicy();
  const decide = (facts: ReturnType<typeof dropFacts>) => evaluate(
    { statements: [facts], principal: { name: 'agent:bot', roles: ['agent'] }, database: 'app', environment: 'default', now: new Date('2026-11-25T10:00:00Z') },
    policy,
  );

  it('keeps every rule verdict with its reason and source, and the decision with reasons and message', () => {
    for (const facts of [dropFacts(), selectFacts()]) {
      const d = decide(facts);
      const a = auditDecisionFromPolicy(d, 0);
      expect(a.rules).toHaveLength(d.verdicts.length);
      expect(a.rules.map((r) => r.id)).toEqual(d.verdicts.map((v) => v.id));
      expect(a.rules.every((r) => typeof r.reason === 'string' && r.reason.length > 0 && typeof r.source === 'string')).toBe(true);
      expect(a.rules.filter((r) => r.matched).map((r) => r.id)).toEqual(d.verdicts.filter((v) => v.matched).map((v) => v.id));
      expect(a.decision.effect).toBe(d.statements.find((s) => s.index === 0)?.effect ?? d.effect);
      expect(a.decision.reasons).toEqual(d.reasons);
      if (d.effect === 'allow') expect(a.decision.message).toBeNull();
      else expect(a.decision.message).toBe(d.error.message);
      if (d.effect === 'hold') expect(a.decision.mode).toBe(d.holdSpec.mode);
    }
  });

  it('an agent dropping a table is not allowed, and the record says which rule decided', () => {
    const d = decide(dropFacts());
    expect(d.effect).not.toBe('allow');
    const a = auditDecisionFromPolicy(d);
    expect(a.decision.effect).toBe(d.effect);
    expect(a.rules.some((r) => r.matched && r.effect === d.effect)).toBe(true);
  });
});
