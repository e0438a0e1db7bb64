/**
 * The analyzer's public API. SQL text (+ server version, + script/session context) -> statement facts.
 * Call `await loadAnalyzer()` once at start-up; everything else is synchronous and pure.
 * Contract: ./types.ts. Documentation: docs/analyzer.md.
 */
export * from './types.js';
export { loadAnalyzer, analyzerLoaded, parseSql, fingerprint, normalize, OffsetMap, codePointToUnitIndex } from './parser.js';
export type { ParseOutcome, RawStatement } from './parser.js';
export { analyze, factsShape, DEFAULT_SERVER_VERSION } from './analyze.js';
export {
  AnalysisCache,
  analyzeCached,
  analyzeQueryCached,
  configureAnalysisCache,
  analysisCacheStats,
  estimateAnalysisBytes,
  DEFAULT_CACHE_MAX_BYTES,
  DEFAULT_CACHE_MAX_TEXT,
} from './cache.js';
export type { AnalysisCacheOptions, AnalysisCacheStats } from './cache.js';
export { scanLiterals, inertLiteralLocations, literalsMatch } from './literals.js';
export type { LiteralScan } from './literals.js';
export { newScriptContext, cloneScriptContext, advanceContext } from './context.js';
export { relationKey, quoteIdent, quoteRelation } from './names.js';
export { isKnownSafeFunction, isPrivilegedFunction, KNOWN_SAFE_FUNCTIONS, PRIVILEGED_FUNCTIONS } from './functions.js';
