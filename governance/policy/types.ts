import type { ParseFailure, RelationName, StatementFacts } from '../../analyzer/types.js';
import type { Principal } from '../principal.js';
import type { EffectName } from './schema.js';

/**
 * What the engine is asked and what it answers. Pure data in, pure data out: the proxy and MCP build an
 * EvaluationInput from the session, call evaluate(), and act on the Decision.
 */

/** Live facts about one relation (issue 7: catalog snapshot + usage index). */
export interface RelationState {
  /** Planner's row estimate (pg_class.reltuples). */
  readonly rows: number;
  /** Total size in bytes, with indexes and TOAST. */
  readonly bytes: number;
  /** Objects that depend on it, in words, e.g. "view public.v_orders". Empty = none. */
  readonly dependents: readonly string[];
  /** Who used it recently through pgairlock (usage index). */
  readonly recentUsers: readonly {
    readonly principal: string;
    readonly application?: string;
    /** The use was of this column (undefined: of the table as a whole). */
    readonly column?: string;
    readonly lastUsed: Date;
  }[];
}

/**
 * Real state the caller may pass in. Anything it cannot say is left undefined and the conditions
 * that need it are "unknown" (see docs/policy.md: unknown fails closed for deny and hold rules).
 */
export interface StateFacts {
  /** The live state of a relation as named in the SQL (resolve unqualified names with the session's search_path). */
  relation(name: RelationName): RelationState | undefined;
  /**
   * The planner's row estimate for one statement (EXPLAIN without ANALYZE, bound parameters included), when
   * the caller ran one; undefined = unknown. Called only for rules with `state.min_estimated_rows`.
   */
  estimatedRows?(statement: StatementFacts): number | undefined;
  /** Why the estimate of this statement is unknown (e.g. EXPLAIN's error), for the rule's reason. */
  estimateError?(statement: StatementFacts): string | undefined;
  /** The session declared an expected schema and it differs from the live one (undefined: no expectation known). */
  readonly drift?: boolean;
}

/** What the session layer knows that the statement text does not. */
export interface SessionFacts {
  /** The session's search_path as a list of schema names (`"$user"` allowed). Default: ["$user", "public"]. */
  readonly searchPath?: readonly string[];
  /** The session's application_name (a use by the same principal from another application counts as "others"). */
  readonly applicationName?: string;
  /** The database user of the session (to expand `$user` in search_path). */
  readonly user?: string;
  /** `PREPARE`d statements of the session by name, so `EXECUTE name` is judged by what it runs. */
  readonly prepared?: ReadonlyMap<string, StatementFacts>;
}

export type StatementsInput = readonly StatementFacts[] | { readonly parseError: ParseFailure };

export interface EvaluationInput {
  /** The analysed statements of one query string, or the parser's failure. */
  readonly statements: StatementsInput;
  readonly principal: Principal;
  readonly database: string;
  /** This proxy's environment label (config `environment`). */
  readonly environment: string;
  readonly now: Date;
  readonly session?: SessionFacts;
  readonly state?: StateFacts;
}

export type RuleSource = 'builtin' | 'policy' | 'default';

export interface RuleRef {
  readonly id: string;
  readonly source: RuleSource;
}

/** One rule's verdict over the whole query string. */
export interface RuleVerdict extends RuleRef {
  readonly effect: EffectName;
  readonly description: string;
  readonly matched: boolean;
  /** In words: what matched, or the first condition that did not (per statement when there are several). */
  readonly reason: string;
  /** Indexes (0-based) of the top-level statements it matched. */
  readonly statements: readonly number[];
  /** Conditions pgairlock could not evaluate, treated as met because the rule denies or holds (fail closed). */
  readonly unknown: readonly string[];
}

/** What the approvals layer needs to create a change request. Several hold rules combine (see requirements). */
export interface HoldSpec {
  /** defer if any matched hold rule says defer (an agent must not block), else wait. */
  readonly mode: 'wait' | 'defer';
  /** The largest count any rule requires. */
  readonly approvals: number;
  /** Union of the rules' approver roles (informational: check `requirements` for the exact rule). */
  readonly approverRoles: readonly string[];
  /** The shortest timeout any rule gives, in milliseconds. */
  readonly timeoutMs: number;
  /** Every hold rule's own requirement; a change is approved when all are met. */
  readonly requirements: readonly { readonly rule: string; readonly approvals: number; readonly approverRoles: readonly string[] }[];
}

/** Everything the wire needs for an ErrorResponse. */
export interface WireError {
  readonly severity: 'ERROR';
  /** 42501 insufficient_privilege; 42601 syntax_error for unparseable text; or the rule's own. */
  readonly sqlstate: string;
  /** Names the deciding rule. */
  readonly message: string;
  /** The reasons, one per line. */
  readonly detail: string;
  /** What would be allowed instead, when known. */
  readonly hint?: string;
  /** 1-based character position in the query string (ErrorResponse field P), when known. */
  readonly position?: number;
}

/** The outcome for one top-level statement (index -1: the unparseable string as a whole). */
export interface StatementOutcome {
  readonly index: number;
  readonly effect: EffectName;
  /** The rules that decided it (all matched rules of the winning effect), or the default effect. */
  readonly decidedBy: readonly RuleRef[];
}

interface DecisionBase {
  readonly principal: Principal;
  readonly database: string;
  readonly environment: string;
  /** Every rule's verdict, builtin first, then policy order. */
  readonly verdicts: readonly RuleVerdict[];
  readonly statements: readonly StatementOutcome[];
  /** The deciding reasons in words (also the error's DETAIL). */
  readonly reasons: readonly string[];
}

export interface AllowDecision extends DecisionBase {
  readonly effect: 'allow';
  readonly decidedBy: readonly RuleRef[];
}

export interface DenyDecision extends DecisionBase {
  readonly effect: 'deny';
  /** The first deciding deny rule (builtin first, then policy order). */
  readonly rule: RuleRef;
  readonly error: WireError;
}

export interface HoldDecision extends DecisionBase {
  readonly effect: 'hold';
  readonly rule: RuleRef;
  readonly holdSpec: HoldSpec;
  /** The refusal to send while no approval exists (defer, or until the approvals layer is wired in). */
  readonly error: WireError;
}

export type Decision = AllowDecision | DenyDecision | HoldDecision;
