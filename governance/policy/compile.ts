import type { Finding } from '../../analyzer/types.js';
import { BUILTIN_RULES, type BuiltinRule } from './builtin.js';
import { compileContextConditions, compileUnitConditions, type ContextCondition, type UnitCondition } from './conditions.js';
import type { DefaultEffectSpec, EffectName, PolicySpec, RuleSpec } from './schema.js';
import { compileGlobs } from './glob.js';
import type { ZoneClock } from './window.js';

/**
 * A policy compiled once per load: globs become matchers, windows get their zone clocks, conditions are
 * split into those judged once per evaluation (who/where/when) and those judged per statement.
 */
export interface CompiledRule {
  readonly id: string;
  readonly description: string;
  readonly effect: EffectName;
  readonly hold: RuleSpec['hold'];
  readonly message: string | undefined;
  readonly hint: string | undefined;
  readonly sqlstate: string | undefined;
  readonly context: readonly ContextCondition[];
  readonly unit: readonly UnitCondition[];
  /** The rule's `unparseable` condition, if any (judged by the evaluator itself). */
  readonly unparseable: boolean | undefined;
  /** Has during/outside conditions: its who/where/when verdict cannot be cached per principal. */
  readonly timeDependent: boolean;
  /** Which findings the rule is about (its `findings` condition), for hints; undefined = any. */
  readonly findingFilter: ((f: Finding) => boolean) | undefined;
  readonly spec: RuleSpec;
}

const SEVERITY_RANK = { info: 0, warning: 1, error: 2 } as const;

function findingFilterOf(spec: RuleSpec): ((f: Finding) => boolean) | undefined {
  const c = spec.match.findings;
  if (!c) return undefined;
  const rules = c.rules ? compileGlobs(c.rules) : undefined;
  const min = SEVERITY_RANK[c.min_severity ?? 'info'];
  return (f) => SEVERITY_RANK[f.severity] >= min && (!rules || rules(f.rule));
}

/** A rule as the evaluator walks them: builtins first, then the policy's; refs and effects precomputed. */
export type RuleEntry =
  | { readonly kind: 'builtin'; readonly rule: BuiltinRule; readonly ref: { readonly id: string; readonly source: 'builtin' }; readonly effect: 'deny'; readonly index: -1 }
  | { readonly kind: 'policy'; readonly rule: CompiledRule; readonly ref: { readonly id: string; readonly source: 'policy' }; readonly effect: EffectName; readonly index: number };

export interface CompiledPolicy {
  /** Where it came from (file path, "inline", "default policy"), for messages. */
  readonly source: string;
  readonly builtins: readonly BuiltinRule[];
  readonly rules: readonly CompiledRule[];
  /** builtins then rules, in evaluation order. */
  readonly entries: readonly RuleEntry[];
  readonly defaultEffect: DefaultEffectSpec;
  readonly spec: PolicySpec;
  /**
   * Memo of the who/where verdicts of rules without time conditions, per principal object and
   * database/environment: a session's principal is resolved once, so most rules are decided by a lookup.
   * The only mutable part of a compiled policy; it never changes a decision.
   */
  readonly contextCache: WeakMap<object, Map<string, readonly ({ readonly ok: boolean; readonly reason: string } | undefined)[]>>;
}

export function compileRule(spec: RuleSpec, clocks: Map<string, ZoneClock>): CompiledRule {
  return {
    id: spec.id,
    description: spec.description,
    effect: spec.effect,
    hold: spec.hold,
    message: spec.message,
    hint: spec.hint,
    sqlstate: spec.sqlstate,
    context: compileContextConditions(spec.match, clocks),
    unit: compileUnitConditions(spec.match).filter((c) => c.key !== 'unparseable'),
    unparseable: spec.match.unparseable,
    findingFilter: findingFilterOf(spec),
    timeDependent: spec.match.during !== undefined || spec.match.outside !== undefined,
    spec,
  };
}

export function compilePolicy(spec: PolicySpec, source = 'inline'): CompiledPolicy {
  const clocks = new Map<string, ZoneClock>();
  const rules = spec.rules.map((r) => compileRule(r, clocks));
  const entries: RuleEntry[] = [
    ...BUILTIN_RULES.map((rule) => ({ kind: 'builtin' as const, rule, ref: { id: rule.id, source: 'builtin' as const }, effect: 'deny' as const, index: -1 as const })),
    ...rules.map((rule, index) => ({ kind: 'policy' as const, rule, ref: { id: rule.id, source: 'policy' as const }, effect: rule.effect, index })),
  ];
  return {
    source,
    builtins: BUILTIN_RULES,
    rules,
    entries,
    defaultEffect: spec.default_effect,
    spec,
    contextCache: new WeakMap(),
  };
}
