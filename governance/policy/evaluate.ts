import type { ParseFailure, StatementFacts } from '../../analyzer/types.js';
import type { Principal } from '../principal.js';
import { searchPathSchemas } from '../search-path.js';
import type { BuiltinRule } from './builtin.js';
import type { CompiledPolicy, CompiledRule, RuleEntry } from './compile.js';
import { NO, UNKNOWN, YES, type Outcome } from './conditions.js';
import { formatDuration } from './duration.js';
import { DEFAULT_EFFECT_RULE_ID, type DefaultEffectSpec, type EffectName } from './schema.js';
import type {
  Decision,
  EvaluationInput,
  HoldSpec,
  RuleRef,
  RuleVerdict,
  StatementOutcome,
  WireError,
} from './types.js';
import { collectUnits, type EvalEnv, type Unit } from './units.js';

/**
 * evaluate(): facts + principal + context -> Decision. Pure and synchronous; it runs on the proxy's hot path.
 *
 * Semantics (docs/policy.md "Evaluation"):
 * - every rule (builtins first, then the policy's in order) is judged against every top-level statement;
 *   a rule matches a statement when its who/where/when conditions hold and some unit of the statement's
 *   tree (the statement, its nested statements, PREPARE's inner, EXECUTE's target) meets all its
 *   statement conditions;
 * - a condition that cannot be judged is UNKNOWN: deny and hold rules then match (fail closed), allow rules don't;
 * - per statement the strongest matched effect wins (deny > hold > allow); no match: the default effect;
 * - the string's decision is the strongest of its statements' (one refused statement refuses the string).
 */

const RANK: Readonly<Record<EffectName, number>> = { allow: 0, hold: 1, deny: 2 };
const SQLSTATE_INSUFFICIENT_PRIVILEGE = '42501';
const SQLSTATE_SYNTAX_ERROR = '42601';

/** Shared empty list for verdicts without statements or unknowns (frozen, never mutated). */
const NONE: readonly never[] = Object.freeze([]);

/** One rule judged against one top-level statement. */
interface Judgement {
  readonly outcome: Outcome;
  readonly reason: string;
  readonly unknown: readonly string[];
  /** The unit that matched (for hints and positions). */
  readonly unit?: Unit;
}

interface MatchedRule {
  readonly ref: RuleRef;
  readonly effect: EffectName;
  readonly rule: RuleEntry;
  readonly judgement: Judgement;
  readonly statement: number;
  /** Matched with no unknown condition. */
  readonly definite: boolean;
  /** Why, in words: who/where/when, then what in the statement. */
  readonly text: string;
}

const viaPrefix = (u: Unit): string => (u.parsed && u.via ? `${u.via}: ` : '');

function judgeBuiltin(rule: BuiltinRule, units: readonly Unit[], env: EvalEnv): Judgement {
  for (const u of units) {
    if (!u.parsed) return { outcome: NO, reason: rule.unparsedReason, unknown: [] };
    const c = rule.test(u.facts, env);
    if (c.outcome === YES) return { outcome: YES, reason: viaPrefix(u) + c.reason, unknown: [], unit: u };
  }
  return { outcome: NO, reason: `it does not touch the pgairlock schema`, unknown: [] };
}

function judgeUnits(rule: CompiledRule, units: readonly Unit[], env: EvalEnv): Judgement {
  let firstNo: Judgement | undefined;
  let firstUnknown: Judgement | undefined;
  for (const u of units) {
    const reasons: string[] = [];
    const unknown: string[] = [];
    let failed: string | undefined;
    if (!u.parsed) {
      if (rule.unparseable === false) failed = `the statement could not be parsed (${u.error.message})`;
      else {
        if (rule.unparseable === true) reasons.push(`the statement could not be parsed (${u.error.message})`);
        for (const c of rule.unit) unknown.push(c.unknownWhenUnparsed);
      }
    } else {
      if (rule.unparseable === true) failed = 'the statement was parsed';
      else {
        for (const c of rule.unit) {
          const r = c.test(u, env);
          if (r.outcome === NO) {
            failed = r.reason;
            break;
          }
          (r.outcome === YES ? reasons : unknown).push(r.reason);
        }
      }
    }
    if (failed !== undefined) {
      firstNo ??= { outcome: NO, reason: viaPrefix(u) + failed, unknown: NONE };
      continue;
    }
    if (unknown.length === 0) {
      return { outcome: YES, reason: viaPrefix(u) + (reasons.length === 1 ? reasons[0] : reasons.length ? reasons.join(' and ') : 'it matches every statement'), unknown: NONE, unit: u };
    }
    firstUnknown ??= { outcome: UNKNOWN, reason: viaPrefix(u) + [...reasons, ...unknown].join(' and '), unknown, unit: u };
  }
  return firstUnknown ?? firstNo ?? { outcome: NO, reason: 'nothing to judge', unknown: [] };
}

interface ContextJudgement {
  readonly ok: boolean;
  readonly reason: string;
}

function judgeContext(rule: CompiledRule, env: EvalEnv): ContextJudgement {
  const reasons: string[] = [];
  for (const c of rule.context) {
    const r = c.test(env);
    if (r.outcome !== YES) return { ok: false, reason: r.reason };
    reasons.push(r.reason);
  }
  return { ok: true, reason: reasons.join(', ') };
}

/** '; '-joined, without the join for the common single reason. */
function joinReasons(xs: readonly string[]): string {
  return xs.length === 1 ? xs[0]! : xs.join('; ');
}

const NO_CONTEXT: ContextJudgement = { ok: true, reason: '' };

/** The memoised who/where verdicts for this principal, database and environment (undefined: judge now). */
function cachedContexts(policy: CompiledPolicy, input: EvaluationInput): readonly (ContextJudgement | undefined)[] {
  let byPlace = policy.contextCache.get(input.principal);
  if (!byPlace) {
    byPlace = new Map();
    policy.contextCache.set(input.principal, byPlace);
  }
  const key = `${input.database}\u0000${input.environment}`;
  let list = byPlace.get(key);
  if (!list) {
    const env = { input, principal: input.principal, now: input.now, searchPath: [], state: undefined };
    list = policy.rules.map((rule) => (rule.timeDependent ? undefined : judgeContext(rule, env)));
    if (byPlace.size < 256) byPlace.set(key, list); // bounded: databases x environments of one principal
  }
  return list;
}

/** Default effect for a principal: the strongest default among its roles listed, else the global one. */
export function defaultEffectFor(principal: Principal, spec: DefaultEffectSpec): { effect: 'allow' | 'deny'; because: string } {
  let best: 'allow' | 'deny' | undefined;
  let role: string | undefined;
  for (const r of principal.roles) {
    const e = spec.roles[r];
    if (e !== undefined && (best === undefined || RANK[e] > RANK[best])) {
      best = e;
      role = r;
    }
  }
  if (best !== undefined) return { effect: best, because: `the default effect for role ${role} is ${best}` };
  return { effect: spec.global, because: `the default effect is ${spec.global} (no per-role default for roles ${principal.roles.join(', ')})` };
}

function statementLabel(f: StatementFacts | undefined, index: number, count: number): string {
  if (count <= 1) return '';
  return f ? `statement ${index + 1} (${f.commandTag}): ` : `statement ${index + 1}: `;
}

function buildEnv(input: EvaluationInput): EvalEnv {
  return {
    input,
    principal: input.principal,
    now: input.now,
    searchPath: searchPathSchemas(input.session?.searchPath, input.session?.user),
    state: input.state,
  };
}

export function evaluate(input: EvaluationInput, policy: CompiledPolicy): Decision {
  const env = buildEnv(input);
  const parsed = Array.isArray(input.statements) ? (input.statements as readonly StatementFacts[]) : undefined;
  const parseError: ParseFailure | undefined = parsed ? undefined : (input.statements as { readonly parseError: ParseFailure }).parseError;

  // The units of each top-level statement (one pseudo-statement for unparseable text).
  let prepared = input.session?.prepared;
  const trees: Unit[][] = [];
  if (parsed) {
    for (const f of parsed) {
      const units: Unit[] = [];
      collectUnits(f, prepared, units);
      trees.push(units);
      // "PREPARE p AS ...; EXECUTE p" in one string: later statements see the earlier PREPARE.
      if (f.prepare) prepared = new Map([...(prepared ?? []), [f.prepare.name, f.prepare.inner]]);
    }
  } else if (parseError) {
    trees.push([{ parsed: false, error: parseError }]);
  }
  const count = trees.length;

  const verdicts: RuleVerdict[] = [];
  const matchedByStatement: MatchedRule[][] = [];
  for (let i = 0; i < count; i++) matchedByStatement.push([]);

  const cached = cachedContexts(policy, input);
  for (const entry of policy.entries) {
    const { ref, effect } = entry;
    const ctx = entry.kind === 'policy' ? (cached[entry.index] ?? judgeContext(entry.rule, env)) : NO_CONTEXT;
    if (!ctx.ok) {
      // Not for this principal/place/time: the common case, no statement work and no allocation beyond the verdict.
      verdicts.push({ id: ref.id, source: ref.source, effect, description: entry.rule.description, matched: false, reason: ctx.reason, statements: NONE, unknown: NONE });
      continue;
    }
    let matchedStatements: number[] | undefined;
    let unknown: string[] | undefined;
    const texts: string[] = [];
    const misses: string[] = [];
    for (let i = 0; i < count; i++) {
      const units = trees[i] ?? [];
      const j = entry.kind === 'builtin' ? judgeBuiltin(entry.rule, units, env) : judgeUnits(entry.rule, units, env);
      const matched = j.outcome === YES || (j.outcome === UNKNOWN && effect !== 'allow');
      const label = count > 1 ? statementLabel(parsed?.[i], i, count) : '';
      if (matched) {
        (matchedStatements ??= []).push(parsed ? i : -1);
        if (j.unknown.length) (unknown ??= []).push(...j.unknown);
        const failClosed = j.outcome === UNKNOWN ? ` (could not be judged, treated as met because the rule ${effect === 'deny' ? 'denies' : 'holds'})` : '';
        texts.push(label + j.reason + failClosed);
        matchedByStatement[i]?.push({
          ref,
          effect,
          rule: entry,
          judgement: j,
          statement: i,
          definite: j.outcome === YES,
          text: ctx.reason ? `${ctx.reason}; ${j.reason}${failClosed}` : j.reason + failClosed,
        });
      } else {
        misses.push(label + (j.outcome === UNKNOWN ? `${j.reason} (could not be judged; an allow rule needs certainty)` : j.reason));
      }
    }
    const matchedAny = matchedStatements !== undefined;
    if (ctx.reason && matchedAny) texts.unshift(ctx.reason);
    verdicts.push({
      id: ref.id,
      source: ref.source,
      effect,
      description: entry.rule.description,
      matched: matchedAny,
      reason: joinReasons(matchedAny ? texts : misses),
      statements: matchedStatements ?? NONE,
      unknown: unknown ?? NONE,
    });
  }

  // Per statement: strongest matched effect, or the default.
  const def = defaultEffectFor(input.principal, policy.defaultEffect);
  const defaultRef: RuleRef = { id: DEFAULT_EFFECT_RULE_ID, source: 'default' };
  const outcomes: StatementOutcome[] = [];
  let overall: EffectName | undefined;
  let decisiveStatement = 0;
  for (let i = 0; i < count; i++) {
    const matched = matchedByStatement[i] ?? [];
    let effect: EffectName;
    let decidedBy: RuleRef[];
    if (matched.length === 0) {
      effect = def.effect;
      decidedBy = [defaultRef];
    } else {
      effect = 'allow';
      for (const m of matched) if (RANK[m.effect] > RANK[effect]) effect = m.effect;
      decidedBy = matched.filter((m) => m.effect === effect).map((m) => m.ref);
    }
    outcomes.push({ index: parsed ? i : -1, effect, decidedBy });
    if (overall === undefined || RANK[effect] > RANK[overall]) {
      overall = effect;
      decisiveStatement = i;
    }
  }

  // Decisions are built as literals with every field spelled out: object spread is a slow path in V8
  // and this runs for every statement the proxy sees.
  const principal = input.principal;
  const database = input.database;
  const environment = input.environment;

  if (overall === undefined) {
    // Whitespace or comments only: the server answers EmptyQueryResponse; nothing runs.
    return { effect: 'allow', principal, database, environment, verdicts, statements: outcomes, decidedBy: [], reasons: ['the query string holds no statement'] };
  }
  const decisive: MatchedRule[] = [];
  for (const list of matchedByStatement) for (const m of list) if (m.effect === overall) decisive.push(m);
  if (overall === 'allow') {
    const decidedBy: RuleRef[] = [];
    for (const o of outcomes) for (const r of o.decidedBy) if (!decidedBy.some((d) => d.id === r.id)) decidedBy.push(r);
    const reasons: string[] = [];
    for (const o of outcomes) {
      if (o.decidedBy[0]?.source === 'default') {
        reasons.push(`${statementLabel(parsed?.[o.index], o.index, count)}no policy rule matched; ${def.because}`);
        continue;
      }
      for (const m of decisive) {
        if (m.statement === o.index) reasons.push(`${statementLabel(parsed?.[m.statement], m.statement, count)}rule ${m.ref.id}: ${m.text}`);
      }
    }
    return { effect: 'allow', principal, database, environment, verdicts, statements: outcomes, decidedBy, reasons };
  }
  if (decisive.length === 0) {
    // Decided by the default effect (for at least the decisive statement).
    const reasons = [`no policy rule matched ${count > 1 ? `statement ${decisiveStatement + 1}` : 'the statement'}; ${def.because}`];
    const error: WireError = {
      severity: 'ERROR',
      sqlstate: parseError ? SQLSTATE_SYNTAX_ERROR : SQLSTATE_INSUFFICIENT_PRIVILEGE,
      message: parseError
        ? `${parseError.message} (pgairlock refuses SQL it cannot parse: rule "${DEFAULT_EFFECT_RULE_ID}")`
        : `pgairlock: no policy rule allows this statement for ${input.principal.name} (rule "${DEFAULT_EFFECT_RULE_ID}")`,
      detail: reasons.join('\n'),
      hint: 'Ask a DBA to add a policy rule that allows it (pgairlock policy explain shows every rule\'s verdict).',
      ...positionOf(parsed, decisiveStatement, count, parseError),
    };
    return { effect: 'deny', principal, database, environment, verdicts, statements: outcomes, rule: defaultRef, error, reasons };
  }

  const reasons = decisive.map((m) => `${statementLabel(parsed?.[m.statement], m.statement, count)}rule ${m.ref.id}: ${m.text}`);

  // The rule named in the message: builtins first, then definite matches, then policy order.
  const lead = decisive.find((m) => m.rule.kind === 'builtin') ?? decisive.find((m) => m.definite) ?? decisive[0]!;
  const leadRule = lead.rule.rule;
  const hint = leadRule.hint ?? (overall === 'deny' ? hintFromFindings(decisive) : undefined);
  const sqlstate = leadRule.sqlstate ?? (parseError ? SQLSTATE_SYNTAX_ERROR : SQLSTATE_INSUFFICIENT_PRIVILEGE);
  const position = positionOf(parsed, lead.statement, count, parseError, lead.judgement.unit);

  if (overall === 'deny') {
    const message = parseError
      ? `${parseError.message} (pgairlock refuses SQL it cannot parse: rule "${lead.ref.id}")`
      : leadRule.message
        ? `${leadRule.message} (rule "${lead.ref.id}")`
        : `pgairlock: permission denied by rule "${lead.ref.id}": ${leadRule.description}`;
    const error: WireError = { severity: 'ERROR', sqlstate, message, detail: reasons.join('\n'), ...(hint ? { hint } : {}), ...position };
    return { effect: 'deny', principal, database, environment, verdicts, statements: outcomes, rule: lead.ref, error, reasons };
  }

  const holdSpec = combineHolds(decisive);
  const approvers = holdSpec.approverRoles.join(' or ');
  const needs = `${holdSpec.approvals} approval${holdSpec.approvals > 1 ? 's' : ''} by ${approvers}`;
  const message = leadRule.message
    ? `${leadRule.message} (rule "${lead.ref.id}")`
    : `pgairlock: this statement needs approval (${needs}) under rule "${lead.ref.id}": ${leadRule.description}`;
  const holdHint =
    hint ?? `Ask someone with role ${approvers} to approve the change (${needs}, valid ${formatDuration(holdSpec.timeoutMs)}); then send the same statement again.`;
  const error: WireError = { severity: 'ERROR', sqlstate, message, detail: reasons.join('\n'), hint: holdHint, ...position };
  return { effect: 'hold', principal, database, environment, verdicts, statements: outcomes, rule: lead.ref, holdSpec, error, reasons };
}

function hintFromFindings(matched: readonly MatchedRule[]): string | undefined {
  const fixes: string[] = [];
  for (const m of matched) {
    const u = m.judgement.unit;
    if (!u?.parsed) continue;
    // A rule about particular findings hints with their fixes only; other rules with every finding's.
    const only = m.rule.kind === 'policy' ? m.rule.rule.findingFilter : undefined;
    for (const f of u.facts.findings) if (f.fix && (!only || only(f)) && !fixes.includes(f.fix)) fixes.push(f.fix);
  }
  return fixes.length ? fixes.join('\n') : undefined;
}

/**
 * ErrorResponse position (1-based characters): the parser's position for unparseable text; for a parsed
 * string, a finding's location in the deciding statement, else the statement's start when the string holds
 * several statements (a lone statement needs no caret).
 */
function positionOf(
  parsed: readonly StatementFacts[] | undefined,
  index: number,
  count: number,
  parseError: { location?: { char: number } } | undefined,
  unit?: Unit,
): { position?: number } {
  if (parseError) return parseError.location ? { position: parseError.location.char + 1 } : {};
  const top = parsed?.[index];
  if (!top) return {};
  if (unit?.parsed && unit.facts === top) {
    const located = top.findings.find((f) => f.location);
    if (located?.location) return { position: located.location.char + 1 };
  }
  return count > 1 ? { position: top.location.char + 1 } : {};
}

function combineHolds(matched: readonly MatchedRule[]): HoldSpec {
  const requirements: { rule: string; approvals: number; approverRoles: readonly string[] }[] = [];
  let mode: 'wait' | 'defer' = 'wait';
  let approvals = 1;
  let timeoutMs = Number.POSITIVE_INFINITY;
  const roles: string[] = [];
  const seen = new Set<string>();
  for (const m of matched) {
    if (m.rule.kind !== 'policy' || !m.rule.rule.hold || seen.has(m.ref.id)) continue;
    seen.add(m.ref.id);
    const h = m.rule.rule.hold;
    if (h.mode === 'defer') mode = 'defer';
    approvals = Math.max(approvals, h.approvals);
    timeoutMs = Math.min(timeoutMs, h.timeout);
    for (const r of h.approver_roles) if (!roles.includes(r)) roles.push(r);
    requirements.push({ rule: m.ref.id, approvals: h.approvals, approverRoles: h.approver_roles });
  }
  return { mode, approvals, approverRoles: roles, timeoutMs: Number.isFinite(timeoutMs) ? timeoutMs : 24 * 3_600_000, requirements };
}
