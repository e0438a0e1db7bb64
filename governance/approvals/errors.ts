/**
 * Errors of the approval workflow. Every one carries a stable `code` (for the CLI, MCP and tests),
 * the SQLSTATE a Postgres client sees when the wire proxy relays it, and a hint saying what to do.
 */
export type ApprovalErrorCode =
  | 'invalid_id' // not a well-formed change id
  | 'not_found' // no such change request (or it aged out of retention)
  | 'invalid_request' // a create() input that cannot be stored (empty roles, oversized SQL, ...)
  | 'self_approval' // the requester tried to approve its own change
  | 'missing_role' // the approver holds none of the required roles
  | 'duplicate_approval' // this principal already approved it
  | 'reason_required' // rejection or cancellation without a reason
  | 'not_allowed' // e.g. cancelling someone else's change without an approver role
  | 'not_pending' // the request is already decided (approved, rejected, expired, ...)
  | 'expired' // it expired before this action
  | 'illegal_transition' // a status change the state machine forbids
  | 'conflict' // lost too many optimistic-concurrency races in a row
  | 'store_unavailable' // Redis unreachable or not answering
  | 'in_process_store'; // the CLI cannot reach a proxy's in-process store

/** SQLSTATE per code (PostgreSQL errcodes). Documented in docs/approvals.md. */
export const SQLSTATE: Readonly<Record<ApprovalErrorCode, string>> = {
  invalid_id: '22023', // invalid_parameter_value
  not_found: '42704', // undefined_object
  invalid_request: '22023',
  self_approval: '42501', // insufficient_privilege
  missing_role: '42501',
  duplicate_approval: '42501',
  reason_required: '22023',
  not_allowed: '42501',
  not_pending: '55000', // object_not_in_prerequisite_state
  expired: '55000',
  illegal_transition: '55000',
  conflict: '40001', // serialization_failure: retrying is safe
  store_unavailable: '58000', // system_error: an external component pgairlock depends on is down
  in_process_store: '58000',
};

export class ApprovalError extends Error {
  readonly sqlstate: string;
  constructor(
    readonly code: ApprovalErrorCode,
    message: string,
    readonly hint?: string,
    readonly changeId?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApprovalError';
    this.sqlstate = SQLSTATE[code];
  }
}

export const isApprovalError = (e: unknown): e is ApprovalError => e instanceof ApprovalError;

/** Wraps an I/O failure of the store so callers get one error shape (fail closed, never hang). */
export function storeUnavailable(where: string, cause: unknown): ApprovalError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new ApprovalError(
    'store_unavailable',
    `approval store unavailable (${where}): ${why}`,
    'statements that need an approval are refused until the store is reachable again; pgairlock reconnects automatically. Check that Redis is running and REDIS_URL is right.',
    undefined,
    { cause },
  );
}
