/**
 * Errors pgairlock itself reports to PostgreSQL clients. Each carries a SQLSTATE so drivers and
 * people can act on it (https://www.postgresql.org/docs/current/errcodes-appendix.html).
 */
export const SqlState = {
  ProtocolViolation: '08P01',
  ConnectionFailure: '08006',
  SqlclientUnableToEstablishSqlconnection: '08001',
  AdminShutdown: '57P01',
  CannotConnectNow: '57P03',
  TooManyConnections: '53300',
  InsufficientPrivilege: '42501',
  FeatureNotSupported: '0A000',
  InvalidAuthorizationSpecification: '28000',
  InvalidCatalogName: '3D000',
  SyntaxError: '42601',
  InternalError: 'XX000',
  QueryCanceled: '57014',
} as const;

export type Severity = 'ERROR' | 'FATAL' | 'PANIC' | 'WARNING' | 'NOTICE' | 'INFO' | 'LOG' | 'DEBUG';

export interface PgErrorFields {
  readonly severity?: Severity;
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  /** 1-based character position in the statement text. */
  readonly position?: number;
}

/** An error meant for the client, rendered as an ErrorResponse. */
export class PgError extends Error implements PgErrorFields {
  readonly code: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: number;
  readonly severity: Severity;
  constructor(fields: PgErrorFields) {
    super(fields.message);
    this.name = 'PgError';
    this.code = fields.code;
    this.detail = fields.detail;
    this.hint = fields.hint;
    this.position = fields.position;
    this.severity = fields.severity ?? 'ERROR';
  }
}

/** Malformed bytes from a client: the connection ends with 08P01, everyone else carries on. */
export class ProtocolViolation extends PgError {
  constructor(message: string, hint?: string) {
    super({ severity: 'FATAL', code: SqlState.ProtocolViolation, message, hint });
    this.name = 'ProtocolViolation';
  }
}
