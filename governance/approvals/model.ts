import { ApprovalError } from './errors.js';
import type { ChangeParams } from './params.js';

/**
 * The change request and its state machine. Everything here is pure and JSON-serialisable: the
 * same objects are kept in memory, stored in Redis, shown by the console/CLI/MCP and audited.
 *
 *   pending --approved (quorum not yet met)--> pending
 *   pending --approved (quorum met)----------> approved --executed--> executed
 *   pending --rejected--> rejected
 *   pending | approved --expired-->   expired
 *   pending | approved --cancelled--> cancelled
 *
 * rejected, expired, executed and cancelled are final.
 */

export const CHANGE_STATUSES = ['pending', 'approved', 'rejected', 'expired', 'executed', 'cancelled'] as const;
export type ChangeStatus = (typeof CHANGE_STATUSES)[number];
export type OpenStatus = Extract<ChangeStatus, 'pending' | 'approved'>;
export type FinalStatus = Exclude<ChangeStatus, OpenStatus>;

/** What a waiting client learns. `executed` is reported as `approved` (it was approved, then consumed). */
export type Resolution = 'approved' | 'rejected' | 'expired' | 'cancelled';

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The principal as it was when it acted (roles can change later; the record keeps what was checked). */
export interface PrincipalRef {
  readonly name: string;
  readonly roles: readonly string[];
}

export interface RequiredApprovals {
  /** Approvals from distinct principals needed. At least 1. */
  readonly count: number;
  /** An approver must hold at least one of these roles. At least one role. */
  readonly roles: readonly string[];
}

/**
 * One hold rule's own requirement: `count` distinct approvers holding one of `roles`. A request with
 * several (several hold rules matched) is approved when every one is met; one approver holding roles
 * of two requirements counts for both.
 */
export interface Requirement extends RequiredApprovals {
  /** The policy rule that set it, when known. */
  readonly rule?: string;
}

/** A policy rule that asked for the hold, with its reason (from the policy decision). */
export interface HoldRule {
  readonly rule: string;
  readonly reason: string;
}

export type HoldMode = 'wait' | 'defer';

/** Times are ISO-8601 strings (UTC) so records read well in Redis, JSON output and audit. */
export type ChangeEvent =
  | { readonly type: 'created'; readonly at: string; readonly by: PrincipalRef }
  | { readonly type: 'approved'; readonly at: string; readonly by: PrincipalRef; readonly comment?: string }
  | { readonly type: 'rejected'; readonly at: string; readonly by: PrincipalRef; readonly reason: string }
  | { readonly type: 'expired'; readonly at: string; readonly reason: string }
  | { readonly type: 'executed'; readonly at: string; readonly by: PrincipalRef }
  | { readonly type: 'cancelled'; readonly at: string; readonly reason: string; readonly by?: PrincipalRef };

export type ChangeEventType = ChangeEvent['type'];

export interface ChangeRequest {
  readonly id: string;
  readonly requester: PrincipalRef;
  readonly database: string;
  /** The exact statement text as the client sent it. */
  readonly sql: string;
  /** libpg_query fingerprint (shown to approvers; the binding is textHash). */
  readonly fingerprint: string;
  /** sha256 hex of the exact text: the approval is only valid for this text. */
  readonly textHash: string;
  /**
   * Only for a statement held with bound parameter values (extended protocol, decided at its Execute):
   * sha256 of text, parameter types and values (params.ts, paramsHash); the approval is only valid for
   * exactly these values. Absent: the statement had no parameters, and the text alone is bound.
   */
  readonly paramsHash?: string;
  /** The bound values as approvers see them (capped for display; the hash covers every byte). */
  readonly params?: ChangeParams;
  /** Analyzer facts summary; opaque to approvals, shown by SHOW CHANGE. Always plain JSON (see createChangeRequest). */
  readonly facts: unknown;
  readonly rules: readonly HoldRule[];
  /** Summary for people: the largest count and the union of roles of `requirements`. */
  readonly required: RequiredApprovals;
  /** What must hold for the request to be approved: every requirement met. At least one. */
  readonly requirements: readonly Requirement[];
  readonly mode: HoldMode;
  /** The audit decision record of the hold, when the proxy passed it (links audit records to the request). */
  readonly decisionId?: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly status: ChangeStatus;
  /** Append-only; events.length is the optimistic-concurrency version in the stores. */
  readonly events: readonly ChangeEvent[];
}

export const isOpen = (s: ChangeStatus): s is OpenStatus => s === 'pending' || s === 'approved';
export const isFinal = (s: ChangeStatus): s is FinalStatus => !isOpen(s);

export function resolutionOf(status: ChangeStatus): Resolution | undefined {
  switch (status) {
    case 'pending':
      return undefined;
    case 'executed':
      return 'approved';
    default:
      return status;
  }
}

/** Distinct principal names that have approved so far. */
export function approverNames(req: ChangeRequest): string[] {
  return approvers(req).map((p) => p.name);
}

/** Each approver once (first approval), with the roles it held when it approved. */
function approvers(req: ChangeRequest): PrincipalRef[] {
  const seen = new Map<string, PrincipalRef>();
  for (const e of req.events) if (e.type === 'approved' && !seen.has(e.by.name)) seen.set(e.by.name, e.by);
  return [...seen.values()];
}

/** Approvals still missing per requirement (0 when met). */
export function requirementProgress(req: ChangeRequest): Array<{ requirement: Requirement; have: number; missing: number }> {
  const who = approvers(req);
  return req.requirements.map((requirement) => {
    const have = who.filter((p) => p.roles.some((r) => requirement.roles.includes(r))).length;
    return { requirement, have, missing: Math.max(0, requirement.count - have) };
  });
}

/** The fewest further approvals that could complete the request (0: approved). */
export const approvalsMissing = (req: ChangeRequest): number => Math.max(0, ...requirementProgress(req).map((p) => p.missing));

export const version = (req: ChangeRequest): number => req.events.length;

/** Legal source statuses per event type. */
const FROM: Readonly<Record<Exclude<ChangeEventType, 'created'>, readonly ChangeStatus[]>> = {
  approved: ['pending'],
  rejected: ['pending'],
  expired: ['pending', 'approved'],
  executed: ['approved'],
  cancelled: ['pending', 'approved'],
};

/**
 * Applies one event: returns the new request or throws illegal_transition. Only the state machine
 * is checked here; who may do what (separation of duties) is in sod.ts.
 */
export function transition(req: ChangeRequest, event: ChangeEvent): ChangeRequest {
  if (event.type === 'created') {
    throw new ApprovalError('illegal_transition', `change ${req.id} already exists; "created" can only be its first event`, undefined, req.id);
  }
  if (!FROM[event.type].includes(req.status)) {
    throw new ApprovalError(
      'illegal_transition',
      `change ${req.id} is ${req.status}; it cannot become ${event.type}`,
      `only ${FROM[event.type].join(' or ')} changes can be ${event.type}`,
      req.id,
    );
  }
  const events = [...req.events, event];
  let status: ChangeStatus;
  if (event.type === 'approved') {
    const next = { ...req, events };
    status = approvalsMissing(next) === 0 ? 'approved' : 'pending';
  } else {
    status = event.type;
  }
  return { ...req, status, events };
}

export interface NewChangeRequest {
  readonly id: string;
  readonly requester: PrincipalRef;
  readonly database: string;
  readonly sql: string;
  readonly fingerprint: string;
  readonly textHash: string;
  /** Both or neither: a statement held with bound parameter values. */
  readonly paramsHash?: string;
  readonly params?: ChangeParams;
  /** Anything JSON-serialisable (e.g. the analyzer's StatementFacts). */
  readonly facts: unknown;
  readonly rules: readonly HoldRule[];
  /** One requirement (the common case) ... */
  readonly required?: RequiredApprovals;
  /** ... or several, one per hold rule; given both, `requirements` wins. */
  readonly requirements?: readonly Requirement[];
  readonly mode: HoldMode;
  readonly decisionId?: string;
  readonly createdAt: Date;
  readonly expiresAt: Date;
}

export const principalRef = (p: { name: string; roles: readonly string[] }): PrincipalRef => ({ name: p.name, roles: [...p.roles] });

/** Builds a pending request with its `created` event; validates what the state machine relies on. */
export function createChangeRequest(input: NewChangeRequest): ChangeRequest {
  const bad = (m: string) => new ApprovalError('invalid_request', `cannot hold this change: ${m}`, 'this is a bug in the policy that asked for the hold or in its configuration');
  const reqs: readonly Requirement[] = input.requirements ?? (input.required ? [input.required] : []);
  if (reqs.length === 0) throw bad('no approval requirement given');
  for (const r of reqs) {
    if (!Number.isInteger(r.count) || r.count < 1) throw bad(`required count must be an integer >= 1, got ${r.count}`);
    if (r.roles.length === 0 || r.roles.some((x) => x.length === 0)) throw bad('required roles must name at least one role');
  }
  const requirements = reqs.map((r) => (r.rule ? { rule: r.rule, count: r.count, roles: [...r.roles] } : { count: r.count, roles: [...r.roles] }));
  const required = { count: Math.max(...requirements.map((r) => r.count)), roles: [...new Set(requirements.flatMap((r) => r.roles))] };
  if (!input.requester.name) throw bad('the requester has no name');
  if ((input.paramsHash === undefined) !== (input.params === undefined)) throw bad('parameter values and their hash must be given together');
  if (!(input.expiresAt.getTime() > input.createdAt.getTime())) throw bad('expiresAt must be after createdAt');
  const at = input.createdAt.toISOString();
  const requester = principalRef(input.requester);
  return {
    id: input.id,
    requester,
    database: input.database,
    sql: input.sql,
    fingerprint: input.fingerprint,
    textHash: input.textHash,
    ...(input.paramsHash ? { paramsHash: input.paramsHash } : {}),
    ...(input.params ? { params: JSON.parse(JSON.stringify(input.params)) as ChangeParams } : {}),
    // A JSON round trip: both stores then hold exactly what Redis would (no Dates, undefined, classes).
    facts: JSON.parse(JSON.stringify(input.facts ?? null)) as unknown,
    rules: input.rules.map((r) => ({ rule: r.rule, reason: r.reason })),
    required,
    requirements,
    mode: input.mode,
    ...(input.decisionId ? { decisionId: input.decisionId } : {}),
    createdAt: at,
    expiresAt: input.expiresAt.toISOString(),
    status: 'pending',
    events: [{ type: 'created', at, by: requester }],
  };
}

export const isExpiredAt = (req: ChangeRequest, now: Date): boolean => now.getTime() >= Date.parse(req.expiresAt);
