/**
 * A bounded LRU of analyses, keyed by the exact SQL text (plus server version and the two context
 * bits that findings depend on). Bounded by an estimate of retained BYTES, not by entry count:
 * it keeps the small facts summaries, never ASTs (see /work/shared/notes/performance.md: retained
 * ASTs made every hit cost a parse through garbage collection).
 *
 * Context: findings depend on the script context before the statement. Cached analyses are stored
 * per (inTransactionBlock, lockTimeoutSet) pair; an analysis touching a relation the context says was
 * created earlier is neither reused nor stored (its findings are specific to that session). A hit
 * replays the statements' context transitions onto the caller's context, exactly as a miss would.
 */
import { analyzeText, DEFAULT_SERVER_VERSION } from './analyze.js';
import { advanceContext, newScriptContext, touchesCreated } from './context.js';
import type { Analysis, AnalyzeOptions, StatementFacts } from './types.js';

export interface AnalysisCacheOptions {
  /** Upper bound of the estimated bytes retained by all entries (default 16 MiB). */
  readonly maxBytes?: number;
  /** Texts longer than this many UTF-16 units are analysed but never cached (default 64 Ki). */
  readonly maxTextLength?: number;
}

export interface AnalysisCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
}

interface Entry {
  readonly version: number;
  /** Indexed by context bits: 1 = in a transaction block, 2 = lock_timeout set. */
  readonly slots: Array<Analysis | undefined>;
  bytes: number;
}

export const DEFAULT_CACHE_MAX_BYTES = 16 * 1024 * 1024;
export const DEFAULT_CACHE_MAX_TEXT = 64 * 1024;

export class AnalysisCache {
  private readonly map = new Map<string, Entry>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  readonly maxBytes: number;
  readonly maxTextLength: number;

  constructor(opts: AnalysisCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    this.maxTextLength = opts.maxTextLength ?? DEFAULT_CACHE_MAX_TEXT;
  }

  /** Analyses `sql` like analyze(), reusing a cached analysis when that gives the same answer. */
  analyze(sql: string, opts: AnalyzeOptions = {}): Analysis {
    const version = opts.serverVersion ?? DEFAULT_SERVER_VERSION;
    const ctx = opts.context;
    if (sql.length > this.maxTextLength) return analyzeText(sql, version, ctx ?? newScriptContext(), 0);
    const bits = ctx ? (ctx.inTransactionBlock ? 1 : 0) | (ctx.lockTimeoutSet ? 2 : 0) : 0;
    const entry = this.map.get(sql);
    const hit = entry && entry.version === version ? entry.slots[bits] : undefined;
    if (hit !== undefined && entry !== undefined) {
      if (!ctx || !hit.ok) {
        this.touch(sql, entry);
        this.hits++;
        return hit;
      }
      if (ctx.createdRelations.size === 0 || !touchesCreated(hit.statements, ctx.createdRelations)) {
        this.touch(sql, entry);
        this.hits++;
        for (const f of hit.statements) advanceContext(ctx, f);
        return hit;
      }
    }
    this.misses++;
    const created = ctx && ctx.createdRelations.size > 0 ? new Set(ctx.createdRelations) : undefined;
    const a = analyzeText(sql, version, ctx ?? newScriptContext(), 0);
    if (created === undefined || !a.ok || !touchesCreated(a.statements, created)) this.store(sql, version, bits, a);
    return a;
  }

  stats(): AnalysisCacheStats {
    return { entries: this.map.size, bytes: this.bytes, maxBytes: this.maxBytes, hits: this.hits, misses: this.misses, evictions: this.evictions };
  }

  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  private touch(sql: string, entry: Entry): void {
    // Map keeps insertion order: re-inserting makes this the most recently used.
    this.map.delete(sql);
    this.map.set(sql, entry);
  }

  private store(sql: string, version: number, bits: number, a: Analysis): void {
    const size = estimateAnalysisBytes(a);
    if (size > this.maxBytes / 4) return;
    let entry = this.map.get(sql);
    if (entry && entry.version !== version) {
      this.bytes -= entry.bytes;
      this.map.delete(sql);
      entry = undefined;
    }
    if (!entry) {
      entry = { version, slots: [undefined, undefined, undefined, undefined], bytes: KEY_OVERHEAD + sql.length * 2 };
      this.bytes += entry.bytes;
      this.map.set(sql, entry);
    } else {
      this.touch(sql, entry);
    }
    const old = entry.slots[bits];
    if (old !== undefined) { const ob = estimateAnalysisBytes(old); entry.bytes -= ob; this.bytes -= ob; }
    entry.slots[bits] = a;
    entry.bytes += size;
    this.bytes += size;
    this.evict();
  }

  private evict(): void {
    // Oldest first; bounded by the number of entries.
    for (const [key, e] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(key);
      this.bytes -= e.bytes;
      this.evictions++;
    }
  }
}

const KEY_OVERHEAD = 120;
const STATEMENT_OVERHEAD = 700;

/**
 * Estimated retained bytes of an analysis (V8 objects, 2 bytes per string unit). An estimate, erring
 * high: it reserves room for the lazily computed normalized text and fingerprint.
 */
export function estimateAnalysisBytes(a: Analysis): number {
  if (!a.ok) return 200 + a.error.message.length * 2;
  let n = 64;
  for (const f of a.statements) n += estimateFactsBytes(f, 0);
  return n;
}

function estimateFactsBytes(f: StatementFacts, depth: number): number {
  let n = STATEMENT_OVERHEAD + f.text.length * 4; // text (if copied) + normalized text
  n += f.relations.length * 120;
  for (const r of f.relations) if (r.columns) n += r.columns.length * 40;
  n += f.locks.length * 160;
  for (const l of f.locks) n += l.reason.length * 2;
  n += (f.functions.length + f.types.length + f.schemas.length + f.databases.length + f.roles.length) * 60;
  for (const list of [f.destructive, f.opaque, f.privileged, f.hidden ?? []]) for (const s of list) n += 40 + s.length * 2;
  for (const x of f.findings) n += 200 + (x.message.length + x.why.length + x.fix.length) * 2;
  if (f.inverse) n += f.inverse.length * 2;
  if (depth < 8) {
    for (const x of f.nested) n += estimateFactsBytes(x, depth + 1);
    if (f.prepare) n += estimateFactsBytes(f.prepare.inner, depth + 1);
  }
  return n;
}

/** The process-wide cache the proxy uses. */
let shared = new AnalysisCache();

/** analyze() through the process-wide cache. */
export function analyzeCached(sql: string, opts: AnalyzeOptions = {}): Analysis {
  return shared.analyze(sql, opts);
}

/** Replaces the process-wide cache (e.g. with the configured size); the old entries are dropped. */
export function configureAnalysisCache(opts: AnalysisCacheOptions): AnalysisCache {
  shared = new AnalysisCache(opts);
  return shared;
}

export function analysisCacheStats(): AnalysisCacheStats {
  return shared.stats();
}
