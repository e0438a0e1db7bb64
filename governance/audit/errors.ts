/**
 * Raised when the audit store cannot take a record that must be committed first (a change, or a read under
 * on_store_failure_for_reads: refuse). The proxy turns it into an ErrorResponse with these fields and does
 * NOT forward the statement (fail closed).
 *
 * SQLSTATE 58000 (system_error, "an error external to PostgreSQL itself"): the server is fine, pgairlock's
 * own audit store is not. A client should treat it like a transient server error: nothing ran, retry later.
 */
export const AUDIT_UNAVAILABLE_SQLSTATE = '58000';

export class AuditUnavailableError extends Error {
  readonly sqlstate = AUDIT_UNAVAILABLE_SQLSTATE;
  readonly detail: string;
  readonly hint: string;

  constructor(what: 'change' | 'read' | 'event', cause: unknown) {
    const why = cause instanceof Error ? cause.message : String(cause);
    super(
      what === 'change'
        ? 'pgairlock refused the statement: its audit record could not be written, and changes are only forwarded once audited'
        : what === 'read'
          ? 'pgairlock refused the statement: the audit log is unavailable and this proxy is configured to refuse unaudited reads'
          : 'pgairlock could not write an audit record',
      { cause },
    );
    this.name = 'AuditUnavailableError';
    this.detail = `audit store error: ${why}. The statement was not sent to the server.`;
    this.hint = 'Retry later. Operators: check the control database (config audit.database_url) and `pgairlock audit verify`.';
  }
}

/** Thrown by AuditLog.open when another live process already writes this instance's chain. */
export class AuditInstanceInUseError extends Error {
  constructor(readonly instance: string) {
    super(`another live pgairlock process is writing audit chain ${JSON.stringify(instance)}; give each replica its own \`instance\` name in the config`);
    this.name = 'AuditInstanceInUseError';
  }
}
