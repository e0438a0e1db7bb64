/**
 * PostgreSQL frontend/backend protocol constants (protocol 3.0 and 3.2).
 * Source: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */

/** Codes carried in the untyped startup-phase packets. */
export const StartupCode = {
  /** 3.0 */
  Protocol30: 196608,
  /** 3.2 (PostgreSQL 18): longer cancel keys. */
  Protocol32: 196610,
  SSLRequest: 80877103,
  GSSENCRequest: 80877104,
  CancelRequest: 80877102,
} as const;

/** Frontend (client -> server) message type bytes. */
export const Frontend = {
  Query: 0x51, // 'Q'
  Parse: 0x50, // 'P'
  Bind: 0x42, // 'B'
  Describe: 0x44, // 'D'
  Execute: 0x45, // 'E'
  Sync: 0x53, // 'S'
  Flush: 0x48, // 'H'
  Close: 0x43, // 'C'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  CopyFail: 0x66, // 'f'
  FunctionCall: 0x46, // 'F'
  Terminate: 0x58, // 'X'
  /** PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse all share 'p'. */
  Password: 0x70, // 'p'
} as const;

/** Backend (server -> client) message type bytes. */
export const Backend = {
  Authentication: 0x52, // 'R'
  BackendKeyData: 0x4b, // 'K'
  ParameterStatus: 0x53, // 'S'
  ReadyForQuery: 0x5a, // 'Z'
  ErrorResponse: 0x45, // 'E'
  NoticeResponse: 0x4e, // 'N'
  NotificationResponse: 0x41, // 'A'
  NegotiateProtocolVersion: 0x76, // 'v'
  CommandComplete: 0x43, // 'C'
  CopyInResponse: 0x47, // 'G'
  CopyOutResponse: 0x48, // 'H'
  CopyBothResponse: 0x57, // 'W'
  CopyData: 0x64, // 'd'
  CopyDone: 0x63, // 'c'
  RowDescription: 0x54, // 'T'
  DataRow: 0x44, // 'D'
  EmptyQueryResponse: 0x49, // 'I'
  ParseComplete: 0x31, // '1'
  PortalSuspended: 0x73, // 's'
} as const;

/** Authentication request codes inside an 'R' message. */
export const AuthCode = {
  Ok: 0,
  CleartextPassword: 3,
  MD5Password: 5,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;

/** ReadyForQuery transaction status bytes. */
export const TxStatus = { Idle: 0x49, InBlock: 0x54, Failed: 0x45 } as const; // 'I' 'T' 'E'
