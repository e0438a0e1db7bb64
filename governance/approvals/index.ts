/** Public surface of governance/approvals (see docs/approvals.md). */
export * from './errors.js';
export * from './ids.js';
export * from './model.js';
export * from './sod.js';
export type { ApprovalStore, CreateInput, ListFilter, OnChangeEvent, StoreOptions } from './store.js';
export { MemoryApprovalStore } from './memory-store.js';
export { RedisApprovalStore, type RedisStoreOptions } from './redis-store.js';
export { ApprovalService, requirementsFromHoldSpec, type ApprovalsConfig, type HoldInput } from './service.js';
export { createApprovalService, createApprovalStore, redisUrlFrom, type FactoryOptions } from './factory.js';
export { formatChange, formatChangeList } from './format.js';
export { approvalAuditEvent, SYSTEM_ACTOR } from './audit.js';
export { changeDetailRows, changeListRows, LIST_COLUMNS } from './format.js';
export { deferDetail, outcomeError, waitNotice, type ClientMessage } from './messages.js';
export { hasParams, paramLines, paramsHash, showParams, PARAM_SHOW_BYTES, PARAMS_SHOW_TOTAL_BYTES, type BoundParameters, type ChangeParams, type ShownParam } from './params.js';
