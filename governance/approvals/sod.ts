import { ApprovalError } from './errors.js';
import {
  approverNames,
  isExpiredAt,
  isFinal,
  principalRef,
  requirementProgress,
  type ChangeEvent,
  type ChangeRequest,
  type PrincipalRef,
} from './model.js';

/**
 * Separation of duties, as pure functions. Each `planX` looks at a request and an actor and either
 * throws an ApprovalError saying why not, or returns the event to append. The stores apply the plan
 * atomically (compare-and-set on the request's version), so these checks cannot be raced around and
 * every front door (wire console, CLI, MCP) goes through the same code.
 */

export interface ApprovalPolicy {
  /**
   * approvals.executor_must_differ_from_approver. Because an approved change only runs for its
   * requester and a requester can never approve its own change, this already holds by construction;
   * the flag makes consumeApproved check it again explicitly (defence in depth).
   */
  readonly executorMustDifferFromApprover: boolean;
}

export const defaultPolicy: ApprovalPolicy = { executorMustDifferFromApprover: false };

export interface Plan {
  readonly event: ChangeEvent;
  /** Commit the event, then throw this (e.g. an approval that arrives too late expires the request). */
  readonly thenThrow?: ApprovalError;
}

const roleList = (roles: readonly string[]) => roles.join(' or ');

/** The error for acting on a request that is no longer open for this action. */
export function notOpenError(req: ChangeRequest, action: string): ApprovalError {
  const last = req.events[req.events.length - 1];
  switch (req.status) {
    case 'approved':
      return new ApprovalError('not_pending', `change ${req.id} is already approved; there is nothing left to ${action}`, `the requester (${req.requester.name}) can now run the statement once, before ${req.expiresAt}`, req.id);
    case 'executed':
      return new ApprovalError('not_pending', `change ${req.id} was already approved and executed`, 'an approval is used once; a new run of the statement opens a new change request', req.id);
    case 'rejected':
      return new ApprovalError('not_pending', `change ${req.id} was rejected${last?.type === 'rejected' ? ` by ${last.by.name}: ${last.reason}` : ''}`, 'a rejected change is final; the requester may send a corrected statement, which opens a new request', req.id);
    case 'cancelled':
      return new ApprovalError('not_pending', `change ${req.id} was cancelled${last?.type === 'cancelled' ? `: ${last.reason}` : ''}`, 'a cancelled change is final; sending the statement again opens a new request', req.id);
    case 'expired':
      return expiredError(req);
    case 'pending':
      return new ApprovalError('illegal_transition', `change ${req.id} is pending`, undefined, req.id);
  }
}

function expiredError(req: ChangeRequest): ApprovalError {
  return new ApprovalError('expired', `change ${req.id} expired at ${req.expiresAt}`, 'the requester must send the statement again, which opens a new change request', req.id);
}

function expireNow(req: ChangeRequest, now: Date): Plan {
  return { event: { type: 'expired', at: now.toISOString(), reason: `not decided before ${req.expiresAt}` }, thenThrow: expiredError(req) };
}

/** "1 more approval from a principal holding dba, and 1 more from release-manager" */
export function describeMissing(req: ChangeRequest): string {
  const parts = requirementProgress(req)
    .filter((p) => p.missing > 0)
    .map((p) => `${p.missing} more approval${p.missing === 1 ? '' : 's'} from ${p.missing === 1 ? 'a principal' : 'distinct principals'} holding ${roleList(p.requirement.roles)}`);
  return parts.length ? parts.join(', and ') : 'nothing more';
}

const holdsOneOf = (p: PrincipalRef, roles: readonly string[]) => p.roles.some((r) => roles.includes(r));

export function planApprove(req: ChangeRequest, approver: PrincipalRef, now: Date, comment?: string): Plan {
  if (req.status !== 'pending') throw notOpenError(req, 'approve');
  if (isExpiredAt(req, now)) return expireNow(req, now);
  // Names, not objects or roles: holding an approver role never lets a requester approve its own change.
  if (approver.name === req.requester.name) {
    throw new ApprovalError(
      'self_approval',
      `you (${approver.name}) requested change ${req.id}; another principal holding ${roleList(req.required.roles)} must approve it`,
      'separation of duties: nobody approves their own change, whatever roles they hold',
      req.id,
    );
  }
  if (approverNames(req).includes(approver.name)) {
    throw new ApprovalError(
      'duplicate_approval',
      `you (${approver.name}) already approved change ${req.id}; it still needs ${describeMissing(req)}`,
      'each approval must come from a distinct principal',
      req.id,
    );
  }
  if (!holdsOneOf(approver, req.required.roles)) {
    throw new ApprovalError(
      'missing_role',
      `approving change ${req.id} needs the role ${roleList(req.required.roles)}; ${approver.name} holds ${approver.roles.length ? approver.roles.join(', ') : 'no roles'}`,
      `ask a principal holding ${roleList(req.required.roles)} to approve it`,
      req.id,
    );
  }
  const text = comment?.trim();
  const event: ChangeEvent = text
    ? { type: 'approved', at: now.toISOString(), by: principalRef(approver), comment: text }
    : { type: 'approved', at: now.toISOString(), by: principalRef(approver) };
  return { event };
}

export function planReject(req: ChangeRequest, approver: PrincipalRef, now: Date, reason: string): Plan {
  const why = reason.trim();
  if (!why) {
    throw new ApprovalError('reason_required', `rejecting change ${req.id} needs a reason`, `e.g. REJECT ${req.id} 'adds an index without CONCURRENTLY on a hot table';`, req.id);
  }
  if (req.status !== 'pending') throw notOpenError(req, 'reject');
  if (isExpiredAt(req, now)) return expireNow(req, now);
  if (approver.name === req.requester.name) {
    throw new ApprovalError('not_allowed', `you (${approver.name}) requested change ${req.id}; cancel it instead of rejecting it`, `pgairlock changes cancel ${req.id} --as ${approver.name} --reason '...' (or cancel the waiting statement); otherwise it expires at ${req.expiresAt}`, req.id);
  }
  if (!holdsOneOf(approver, req.required.roles)) {
    throw new ApprovalError(
      'missing_role',
      `rejecting change ${req.id} needs the role ${roleList(req.required.roles)}; ${approver.name} holds ${approver.roles.length ? approver.roles.join(', ') : 'no roles'}`,
      `ask a principal holding ${roleList(req.required.roles)} to decide it`,
      req.id,
    );
  }
  return { event: { type: 'rejected', at: now.toISOString(), by: principalRef(approver), reason: why } };
}

/**
 * Cancelling: `by` undefined is the system (the waiting client cancelled or disconnected); a principal
 * may cancel when it is the requester or holds one of the required roles.
 */
export function planCancel(req: ChangeRequest, now: Date, reason: string, by?: PrincipalRef): Plan {
  const why = reason.trim();
  if (!why) throw new ApprovalError('reason_required', `cancelling change ${req.id} needs a reason`, undefined, req.id);
  if (isFinal(req.status)) throw notOpenError(req, 'cancel');
  if (by && by.name !== req.requester.name && !holdsOneOf(by, req.required.roles)) {
    throw new ApprovalError('not_allowed', `${by.name} may not cancel change ${req.id}: only its requester or a principal holding ${roleList(req.required.roles)} can`, undefined, req.id);
  }
  const at = now.toISOString();
  return { event: by ? { type: 'cancelled', at, reason: why, by: principalRef(by) } : { type: 'cancelled', at, reason: why } };
}

/** `force` expires an open request before its time (a wait-mode client's wait timed out). */
export function planExpire(req: ChangeRequest, now: Date, reason?: string, force = false): Plan | undefined {
  if (isFinal(req.status)) return undefined;
  if (!force && !isExpiredAt(req, now)) return undefined;
  return { event: { type: 'expired', at: now.toISOString(), reason: reason ?? `not used before ${req.expiresAt}` } };
}

/** Why an approved request cannot be used by this executor, or undefined when it can. */
export function consumeRefusal(
  req: ChangeRequest,
  executor: PrincipalRef,
  database: string,
  textHash: string,
  now: Date,
  policy: ApprovalPolicy,
  paramsHash?: string,
): string | undefined {
  if (req.status !== 'approved') return `status is ${req.status}`;
  if (req.requester.name !== executor.name) return 'a different principal requested it';
  if (req.database !== database) return 'it was approved for another database';
  if (req.textHash !== textHash) return 'it was approved for a different statement text';
  // Both absent (no parameters) or identical: an approval of some values never runs the text with others,
  // nor with none, and an approval of the bare text never runs it with bound values.
  if (req.paramsHash !== paramsHash) return 'it was approved for different parameter values';
  if (isExpiredAt(req, now)) return 'it expired';
  if (policy.executorMustDifferFromApprover && approverNames(req).includes(executor.name)) return 'the executor approved it';
  return undefined;
}

export function planConsume(
  req: ChangeRequest,
  executor: PrincipalRef,
  database: string,
  textHash: string,
  now: Date,
  policy: ApprovalPolicy,
  paramsHash?: string,
): Plan | undefined {
  if (consumeRefusal(req, executor, database, textHash, now, policy, paramsHash) !== undefined) return undefined;
  return { event: { type: 'executed', at: now.toISOString(), by: principalRef(executor) } };
}
