import { approverNames, type ChangeRequest, type Resolution } from './model.js';
import { describeMissing } from './sod.js';

/**
 * The words a client sees about its held statement, in one place for the wire and MCP. Pure.
 * SQLSTATEs: rejected 42501 (insufficient_privilege, like a policy refusal); expired and cancelled
 * 57014 (query_canceled, what PostgreSQL sends for statement_timeout and a CancelRequest).
 */

export interface ClientMessage {
  readonly sqlstate: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

const howToApprove = (req: ChangeRequest) =>
  `an approver runs APPROVE ${req.id}; in the pgairlock admin console (psql -d pgairlock) or \`pgairlock changes approve ${req.id} --as <approver>\``;

/** NoticeResponse text while a `wait` statement is pending. */
export function waitNotice(req: ChangeRequest): string {
  return `pgairlock: change ${req.id} is waiting for approval (${describeMissing(req)}); ${howToApprove(req)}. Cancelling the statement cancels the request.`;
}

/** Lines to add to the policy's hold error in `defer` mode (its DETAIL and HINT). */
export function deferDetail(req: ChangeRequest): { detail: string; hint: string } {
  return {
    detail: `change request ${req.id} was created; it needs ${describeMissing(req)}; it expires at ${req.expiresAt}`,
    hint: `once approved (${howToApprove(req)}), send exactly the same statement again as ${req.requester.name} on database ${req.database}; it then runs once`,
  };
}

/** The error for a wait that did not end in approval (undefined for 'approved'). */
export function outcomeError(req: ChangeRequest, outcome: Resolution): ClientMessage | undefined {
  const last = req.events[req.events.length - 1];
  switch (outcome) {
    case 'approved':
      return undefined;
    case 'rejected':
      return {
        sqlstate: '42501',
        message: `pgairlock: change ${req.id} was rejected${last?.type === 'rejected' ? ` by ${last.by.name}: ${last.reason}` : ''}`,
        hint: 'the statement was not run; address the reason and send a new statement, which opens a new change request',
      };
    case 'expired':
      return {
        sqlstate: '57014',
        message: `pgairlock: canceling statement: change ${req.id} was not approved in time${last?.type === 'expired' ? ` (${last.reason})` : ''}`,
        ...(approverNames(req).length ? { detail: `approved so far by ${approverNames(req).join(', ')}; it still needed ${describeMissing(req)}` } : {}),
        hint: 'send the statement again to open a new change request, or use defer mode and re-send after approval',
      };
    case 'cancelled':
      return {
        sqlstate: '57014',
        message: `pgairlock: canceling statement: change ${req.id} was cancelled${last?.type === 'cancelled' ? ` (${last.reason})` : ''}`,
      };
  }
}
