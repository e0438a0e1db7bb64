/**
 * Maps the policy engine's Decision (governance/policy/types.ts; one per query string) onto the audit
 * record's own `rules` and `decision` (one record per statement). Pure.
 */
import type { Decision } from '../policy/types.js';
import type { DecisionSummary, RuleVerdict } from './types.js';

/**
 * @param statementIndex the statement's index in the query string (StatementFacts.index); its own effect
 *   is recorded when the policy gave one, the query string's otherwise.
 */
export function auditDecisionFromPolicy(d: Decision, statementIndex?: number): { rules: RuleVerdict[]; decision: DecisionSummary } {
  const own = statementIndex === undefined ? undefined : d.statements.find((s) => s.index === statementIndex);
  const rules = d.verdicts.map((v) => ({
    id: v.id,
    matched: v.matched,
    effect: v.effect,
    reason: v.unknown.length ? `${v.reason} (could not evaluate, treated as met: ${v.unknown.join('; ')})` : v.reason,
    source: v.source,
  }));
  const effect = own?.effect ?? d.effect;
  return {
    rules,
    decision: {
      effect,
      reasons: [...d.reasons],
      message: d.effect === 'allow' ? null : d.error.message,
      ...(d.effect === 'hold' ? { mode: d.holdSpec.mode } : {}),
    },
  };
}
