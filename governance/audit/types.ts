/**
 * The audit trail's own record types. They are stored as JSON (snake_case keys, stable across versions:
 * the hash chain covers them, so never rename a key; add new optional ones instead) and described field by
 * field in docs/audit.md. The policy engine's Decision type lives elsewhere; the proxy maps it onto
 * `RuleVerdict[]` and `DecisionSummary` here, so the log does not depend on the policy module's shape.
 */
import type { Principal } from '../principal.js';
import type { LockMode, RelationRole, Severity, StatementFacts, StatementKind } from '../../analyzer/types.js';

export const RECORD_KINDS = ['decision', 'outcome', 'read_aggregate', 'approval', 'session_start', 'session_end', 'drift'] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

/** JSON values as stored in the log (no undefined, no functions, finite numbers only). */
export type Json = null | boolean | number | string | readonly Json[] | { readonly [key: string]: Json };

/** One policy rule as evaluated for a statement. */
export interface RuleVerdict {
  readonly id: string;
  readonly matched: boolean;
  /** What the rule asks for when it matches (allow, deny, hold, ...); null when it only annotates. */
  readonly effect?: string | null;
  readonly reason: string;
  /** Where the rule comes from (builtin, policy, default), when the policy engine says. */
  readonly source?: string;
}

export type DecisionEffect = 'allow' | 'deny' | 'hold';

export interface DecisionSummary {
  readonly effect: DecisionEffect;
  readonly reasons: readonly string[];
  /** What the client was told (the ErrorResponse/NoticeResponse text), if anything. */
  readonly message?: string | null;
  /** For hold: wait (client kept pending) or defer (refused with a change id). */
  readonly mode?: 'wait' | 'defer' | null;
  /** For hold, and for statements that ran under an approval: the change request id. */
  readonly change_id?: string | null;
}

export interface ApprovalRef {
  /** Principal name of the approver. */
  readonly approver: string;
  readonly roles?: readonly string[];
  /** ISO 8601 time of the approval. */
  readonly at: string;
  readonly comment?: string | null;
  readonly change_id?: string | null;
}

/** What the wire (or MCP) layer knows about the session a record belongs to. */
export interface SessionInfo {
  readonly sessionId: string;
  readonly principal: Principal;
  /** The user name the client logged in with. */
  readonly databaseUser: string;
  /** current_user after SET ROLE, when the session layer tracks it; null when unknown. */
  readonly effectiveRole?: string | null;
  readonly applicationName?: string | null;
  readonly clientAddress?: string | null;
  readonly database: string;
  /** Which front door: 'wire' (the proxy) or 'mcp'. */
  readonly source?: 'wire' | 'mcp';
}

export type OutcomeStatus = 'ok' | 'error' | 'unknown';

/** How a forwarded statement ended, as the server answered it. */
export interface OutcomeInput {
  readonly status: Exclude<OutcomeStatus, 'unknown'>;
  readonly commandTag?: string | null;
  readonly rows?: number | null;
  readonly durationMs?: number | null;
  readonly sqlstate?: string | null;
  readonly message?: string | null;
  /** Catalog (schema) version after DDL, once the real-state module provides one. */
  readonly catalogVersionAfter?: string | null;
}

export interface DecisionInput {
  readonly session: SessionInfo;
  /** The statement's own text (one statement; the proxy splits multi-statement queries). */
  readonly sql: string;
  /** The analyzer's facts; null when the text could not be analysed (such statements count as changes). */
  readonly facts: StatementFacts | null;
  readonly rules: readonly RuleVerdict[];
  readonly decision: DecisionSummary;
  readonly approvals?: readonly ApprovalRef[];
  readonly catalogVersionBefore?: string | null;
  /**
   * Returns pg_current_wal_lsn() from the UPSTREAM server the statement goes to (or null when not
   * available, e.g. on a standby). Called only for changes that are allowed, before the record is written.
   */
  readonly walLsn?: () => Promise<string | null>;
  /** Override the change/read classification (default: `isChange(facts)`). */
  readonly change?: boolean;
  /** Real-state facts the policy judged this statement with (present only when it consulted live state). */
  readonly impact?: ImpactSummary;
}

/**
 * What the catalog snapshot said about one statement when the policy used it (governance/state, docs/state.md
 * "Impact facts"): sizes and row estimates of the relations it touches, how long its locks last, what depends
 * on what it changes, and the planner's estimate when a rule asked for one.
 */
export interface ImpactSummary {
  /** Schema version (snapshot schema hash) the statement was judged against. */
  readonly schema_hash: string;
  readonly relations: readonly {
    /** `schema.name` after search_path resolution (as written when not in the snapshot). */
    readonly name: string;
    readonly kind: string | null;
    readonly rows: number | null;
    readonly bytes: number | null;
    /** Strongest lock taken on it, e.g. AccessExclusiveLock; null: none. */
    readonly lock: string | null;
    readonly lock_duration: 'instant' | 'proportional' | 'rewrite';
  }[];
  /** Worst over the relations. */
  readonly lock_duration: 'instant' | 'proportional' | 'rewrite';
  /** Largest row estimate and size over the relations it locks. */
  readonly max_rows: number | null;
  readonly max_bytes: number;
  /** What depends on what it drops, renames or alters (at most 20), each with its chain from the target. */
  readonly dependents: readonly { readonly name: string; readonly kind: string; readonly via: string; readonly chain: string }[];
  readonly dependents_total: number;
  /** The planner's estimate (EXPLAIN), when a rule asked for it; null otherwise. */
  readonly estimated_rows: number | null;
}

export interface ApprovalEventInput {
  /** requested, approved, rejected, expired, executed, cancelled, ... */
  readonly event: string;
  readonly changeId: string;
  /** Who did it (the approver, or the requester for `requested`). */
  readonly actor: Principal;
  readonly comment?: string | null;
  /** The decision record that created the change request, when known. */
  readonly decisionId?: string | null;
  readonly fingerprint?: string | null;
  /** sha256 of the exact statement text the approval is bound to. */
  readonly sqlHash?: string | null;
  readonly database?: string | null;
  readonly detail?: Json;
}

export interface DriftEventInput {
  readonly database: string;
  /** The object that drifted, e.g. public.users. */
  readonly object: string;
  readonly expectedVersion?: string | null;
  readonly actualVersion?: string | null;
  readonly detail: string;
  readonly sessionId?: string | null;
  readonly principal?: Principal | null;
}

/**
 * When a change's record must be committed:
 * - 'before-forward' (default): before recordDecision resolves, so before the statement is sent;
 * - 'before-commit': in the background; the caller awaits `receipt.durable` before it forwards the COMMIT of
 *   the explicit transaction block the statement runs in. Sound only inside a transaction block: if
 *   pgairlock dies first, the server rolls the transaction back. Effects that ignore ROLLBACK (nextval,
 *   NOTIFY is fine, dblink is not) are not covered.
 */
export type Durability = 'before-forward' | 'before-commit';

/** Returned by recordDecision; pass it back to recordOutcome. */
export interface DecisionReceipt {
  /** The decision record's id (for an aggregated read: the id its aggregate record will carry). */
  readonly id: string;
  /** The record was committed before recordDecision resolved (changes, and reads under `refuse`). */
  readonly committed: boolean;
  /** The statement was classed as a change (data, schema, privileges, or unknown effect). */
  readonly change: boolean;
  /** Set when the read is folded into a per-fingerprint aggregate instead of a record of its own. */
  readonly aggregateKey?: string;
  /**
   * Only with durability 'before-commit': settles when the change's record is committed (rejects with
   * AuditUnavailableError). The caller must await it before forwarding the transaction's COMMIT.
   */
  readonly durable?: Promise<void>;
  /** Copied into the outcome record. */
  readonly sessionId?: string;
  readonly principal?: string;
}

// ---- stored bodies (snake_case; the hash covers them) ----

export interface RelationSummary {
  /** As written in the SQL: schema.name when qualified, name otherwise. */
  readonly name: string;
  readonly role: RelationRole;
  readonly columns?: readonly string[];
}

export interface LockSummary {
  readonly relation: string;
  readonly mode: LockMode;
  readonly rewrite: boolean;
  readonly scan: boolean;
  readonly reason: string;
}

export interface FindingSummary {
  readonly rule: string;
  readonly severity: Severity;
  readonly message: string;
}

export interface FactsSummary {
  readonly kind: StatementKind;
  readonly node: string;
  readonly command_tag: string;
  readonly relations: readonly RelationSummary[];
  readonly functions: readonly string[];
  readonly locks: readonly LockSummary[];
  readonly findings: readonly FindingSummary[];
  readonly destructive: readonly string[];
  readonly opaque: readonly string[];
  readonly privileged: readonly string[];
  readonly transaction?: string;
  readonly setting?: string;
}

interface SessionFields {
  readonly session_id: string;
  readonly source: 'wire' | 'mcp';
  readonly principal: string;
  readonly roles: readonly string[];
  readonly database_user: string;
  readonly effective_role: string | null;
  readonly application_name: string | null;
  readonly client_address: string | null;
  readonly database: string;
}

export interface DecisionBody extends SessionFields {
  readonly sql: string;
  readonly sql_redacted: boolean;
  readonly fingerprint: string | null;
  readonly facts: FactsSummary | null;
  /** Every relation the statement names (nested statements included), as written. */
  readonly objects: readonly string[];
  /**
   * Every rule evaluated. Absent when `rules_ref` is present: the same list as that earlier decision of
   * the same chain (stored once per distinct evaluation per process run; sha256 of its canonical JSON).
   */
  readonly rules: readonly RuleVerdict[];
  readonly rules_ref?: { readonly decision_id: string; readonly sha256: string };
  readonly decision: DecisionSummary;
  readonly approvals: readonly ApprovalRef[];
  /** Classed as a change: the record was committed before the statement could be forwarded. */
  readonly write_ahead: boolean;
  readonly wal_lsn: string | null;
  readonly catalog_version_before: string | null;
  readonly inverse: string | null;
  /** Real-state facts the policy used (absent when it used none). */
  readonly impact?: ImpactSummary;
}

export interface OutcomeSummary {
  readonly status: OutcomeStatus;
  readonly command_tag: string | null;
  readonly rows: number | null;
  readonly duration_ms: number | null;
  readonly sqlstate: string | null;
  readonly message: string | null;
}

export interface OutcomeBody {
  readonly decision_id: string;
  readonly session_id: string;
  readonly principal: string;
  readonly outcome: OutcomeSummary;
  readonly catalog_version_after: string | null;
  /** Present on outcomes written by recoverOrphans after a crash. */
  readonly recovered?: {
    readonly from_instance: string;
    readonly by_instance: string;
    /** Whether each object named in the decision exists now (null: not checked). */
    readonly objects_exist: { readonly [object: string]: boolean | null };
  };
}

export interface ReadAggregateBody {
  readonly principal: string;
  readonly roles: readonly string[];
  readonly database: string;
  readonly database_user: string;
  readonly fingerprint: string | null;
  /** First statement seen in the interval (redacted when configured). */
  readonly sample_sql: string;
  readonly sql_redacted: boolean;
  readonly objects: readonly string[];
  readonly decision: DecisionSummary;
  readonly first_time: string;
  readonly last_time: string;
  readonly count: number;
  /** Up to 20 distinct session ids; sessions_total counts them all. */
  readonly session_ids: readonly string[];
  readonly sessions_total: number;
  readonly application_names: readonly string[];
  readonly outcomes: {
    readonly ok: number;
    readonly error: number;
    readonly rows: number;
    readonly duration_ms_total: number;
    readonly duration_ms_max: number;
    readonly sqlstates: { readonly [sqlstate: string]: number };
  };
}

export interface ApprovalBody {
  readonly event: string;
  readonly change_id: string;
  readonly principal: string;
  readonly roles: readonly string[];
  readonly comment: string | null;
  readonly decision_id: string | null;
  readonly fingerprint: string | null;
  readonly sql_hash: string | null;
  readonly database: string | null;
  readonly detail: Json;
}

export type SessionStartBody = SessionFields;
export interface SessionEndBody extends SessionFields {
  readonly reason: string;
  readonly duration_ms: number | null;
  readonly statements: number | null;
}

export interface DriftBody {
  readonly database: string;
  readonly object: string;
  readonly expected_version: string | null;
  readonly actual_version: string | null;
  readonly detail: string;
  readonly session_id: string | null;
  readonly principal: string | null;
}

export interface BodyByKind {
  decision: DecisionBody;
  outcome: OutcomeBody;
  read_aggregate: ReadAggregateBody;
  approval: ApprovalBody;
  session_start: SessionStartBody;
  session_end: SessionEndBody;
  drift: DriftBody;
}

/** A stored record, as read back (and as exported, one per line). */
export interface AuditEntry {
  readonly id: string;
  readonly instance: string;
  readonly seq: number;
  /** ISO 8601 UTC with milliseconds, e.g. 2026-11-25T08:25:53.123Z. */
  readonly time: string;
  readonly kind: RecordKind;
  readonly prev_hash: string;
  readonly hash: string;
  readonly body: { readonly [key: string]: Json };
}
