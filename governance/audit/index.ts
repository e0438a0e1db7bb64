/** Public surface of the audit trail (docs/audit.md). */
export { AuditLog, auditConfig, INSTANCE_LOCK_CLASS, type AuditLogOptions, type OrphanRecovery, type RecoverOptions } from './log.js';
export { AuditQuery, parseAnchor, type ChainAnchor, type SearchFilters, type StoredEntry, type ShownEntry, type VerifyReport, type ChainReport } from './query.js';
export { AuditUnavailableError, AuditInstanceInUseError, AUDIT_UNAVAILABLE_SQLSTATE } from './errors.js';
export { controlDatabaseUrl, instanceName, type AuditConfig } from './control.js';
export { openAuditLog } from './open.js';
export { auditDecisionFromPolicy } from './from-policy.js';
export { migrate, currentVersion, LATEST_VERSION, MIGRATIONS } from './migrations.js';
export { isChange, redactSql } from './build.js';
export { canonicalJson, recordHash, GENESIS_HASH } from './canonical.js';
export { ChainVerifier, type ChainBreak } from './chain.js';
export { explain } from './why.js';
export type * from './types.js';
