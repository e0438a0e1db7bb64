/** Real state: catalog snapshots, impact facts, usage index, drift. See docs/state.md. */
export * from './types.js';
export { sha256, objectHash, schemaHashOf, kindOfKey, nameOfKey } from './hash.js';
export { readSnapshot, readRawCatalog, buildSnapshot, buildSnapshotAsync, ALWAYS_EXCLUDED_SCHEMAS, type ReadSnapshotOptions, type RawCatalog } from './snapshot.js';
export { indexSnapshot, indexSnapshotAsync, resolveRelation, resolveFunctions, dependentsOf, parseSearchPath, searchPathSchemas, creationSchema, type Dependent, type DependentsOptions, type SnapshotIndex } from './deps.js';
export { computeImpact, describeChain, impactSummary, type ImpactFacts, type ImpactInput, type RelationImpact, type FunctionImpact, type LockDurationClass } from './impact.js';
export { explainRowEstimate, rowEstimateFromPlan, RowEstimator, type RowEstimate, type ExplainOptions, type BoundValue, type EstimateRequest, type RowEstimatorOptions } from './explain.js';
export { diffSnapshots, lineDiff, formatDiff, allChanges, type SnapshotDiff, type ObjectChange, type LineChanges, type DiffOptions } from './diff.js';
export { checkExpected, expectedHashes, describeStale, hashMatches, resolveExpectedName, type ExpectedState, type ExpectedCheck, type ExpectedReason, type CheckExpectedOptions } from './expected.js';
export { CatalogState, connectByUrl, type CatalogStateOptions, type DriftEvent, type RefreshReason } from './service.js';
export {
  MemoryUsageIndex, RedisUsageIndex, createUsageIndex, usesFromRelations, targetId,
  type UsageIndex, type UseEvent, type UsageQuery, type RecentUser, type RelationUseRecord, type UseMode, type UsageExclusion, type UsageStats,
  type MemoryUsageOptions, type RedisUsageOptions,
} from './usage.js';
export { readStatementStats, tableUsesFromStats, type StatementStat, type StatementStatsResult, type TableUseFromStats } from './pg-stat-statements.js';
export { StatementStatsSampler, rolePrincipal, STATS_APPLICATION, type StatsSamplerOptions, type SampleResult } from './pg-stat-usage.js';
export { loadSnapshotFile, parseSnapshotJson } from './file.js';
export { catalogStateFromConfig, usageIndexFromConfig, type CatalogStateWiring } from './from-config.js';
export { driftAuditInputs } from './drift-audit.js';
export { recordStatementUse, prefetchUsage, type StatementContext } from './usage-glue.js';
