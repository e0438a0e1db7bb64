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
import { analyzeParsed, analyzeText, DEFAULT_SERVER_VERSION, rebindFacts } from './analyze.js';
import { advanceContext, newScriptContext, touchesCreated } from './context.js';
import { inertLiteralLocations, literalsMatch, scanLiterals, type LiteralScan } from './literals.js';
import { parseSql, skipSpaceAndComments } from './parser.js';
import type { Analysis, AnalyzeOptions, StatementFacts } from './types.js';

export interface AnalysisCacheOptions {
  /** Upper bound of the estimated bytes retained by all entries (default 16 MiB). */
  readonly maxBytes?: number;
  /** Texts longer than this many UTF-16 units are analysed but never cached (default 64 Ki). */
  readonly maxTextLength?: number;
  /**
   * analyzeQuery() reuses one analysis for statements that differ only in inert literals (default
   * true; see analyzer/literals.ts). False: analyzeQuery() is analyze().
   */
  readonly literals?: boolean;
}

export interface AnalysisCacheStats {
  readonly entries: number;
  readonly bytes: number;
  readonly maxBytes: number;
  readonly hits: number;
  readonly misses: number;
  readonly evictions: number;
  /** Literal templates held (one per statement shape), and the hits served from them (counted in hits too). */
  readonly templates: number;
  readonly templateHits: number;
}

interface Slots<T> {
  readonly version: number;
  /** Indexed by context bits: 1 = in a transaction block, 2 = lock_timeout set. */
  readonly slots: Array<T | undefined>;
  bytes: number;
}

type Entry = Slots<Analysis>;

/** The facts of one statement shape, reusable for every text with its literal key. */
interface Template {
  readonly facts: StatementFacts;
  /** The text after the statement (e.g. ';'), the same in every text with this key. */
  readonly tail: string;
}

/** Slot null: texts of this shape are not reusable (seen once, proven not). */
type TemplateEntry = Slots<Template | null>;

export const DEFAULT_CACHE_MAX_BYTES = 16 * 1024 * 1024;
export const DEFAULT_CACHE_MAX_TEXT = 64 * 1024;

export class AnalysisCache {
  private readonly map = new Map<string, Entry>();
  /** Literal templates by literal key (a separate map: a key is not a statement text). */
  private readonly templates = new Map<string, TemplateEntry>();
  private bytes = 0;
  private hits = 0;
  private misses = 0;
  private evictions = 0;
  private templateHits = 0;
  readonly maxBytes: number;
  readonly maxTextLength: number;
  readonly literals: boolean;

  constructor(opts: AnalysisCacheOptions = {}) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    this.maxTextLength = opts.maxTextLength ?? DEFAULT_CACHE_MAX_TEXT;
    this.literals = opts.literals ?? true;
  }

  /**
   * analyze() for a simple-protocol statement string, which usually carries its values inline: a
   * text that differs from an earlier one only in inert literals reuses that one's facts (with its
   * own text and positions). `accept` says which facts may be reused at all (the gate: not those
   * for which the policy needs live state); it is asked when storing and again on every hit.
   */
  analyzeQuery(sql: string, opts: AnalyzeOptions = {}, accept?: (facts: StatementFacts) => boolean): Analysis {
    if (!this.literals || this.maxBytes === 0 || sql.length > this.maxTextLength) return this.analyze(sql, opts);
    // Texts without literals, and shapes proven not reusable, take the exact-text path.
    const scan = scanLiterals(sql);
    if (scan === undefined) return this.analyze(sql, opts);
    const version = opts.serverVersion ?? DEFAULT_SERVER_VERSION;
    const ctx = opts.context;
    const bits = contextBits(ctx);
    const entry = this.templates.get(scan.key);
    const slot = entry !== undefined && entry.version === version ? entry.slots[bits] : undefined;
    if (slot === null) return this.analyze(sql, opts);
    if (slot !== undefined && sql.endsWith(slot.tail) && (accept === undefined || accept(slot.facts))) {
      if (!ctx || ctx.createdRelations.size === 0 || !touchesCreated([slot.facts], ctx.createdRelations)) {
        this.templates.delete(scan.key);
        this.templates.set(scan.key, entry!);
        this.hits++;
        this.templateHits++;
        const end = sql.length - slot.tail.length;
        const first = skipSpaceAndComments(sql, 0, end);
        // ASCII only (scanLiterals refuses anything else): byte offsets are character offsets.
        const f = rebindFacts(slot.facts, sql.slice(0, end), end, { char: first, byte: first });
        if (ctx) advanceContext(ctx, f);
        return { ok: true, sql, statements: [f] };
      }
    }
    this.misses++;
    const created = ctx && ctx.createdRelations.size > 0 ? new Set(ctx.createdRelations) : undefined;
    const parsed = parseSql(sql);
    const a: Analysis = parsed.ok ? analyzeParsed(sql, parsed.stmts, version, ctx ?? newScriptContext(), 0) : { ok: false, sql, error: parsed.error };
    if (created !== undefined && a.ok && touchesCreated(a.statements, created)) return a;
    const template = parsed.ok && a.ok ? templateOf(sql, scan, parsed.stmts[0]?.stmt, a.statements, accept) : undefined;
    this.storeTemplate(scan.key, version, bits, template ?? null);
    if (template === undefined) this.store(sql, version, bits, a);
    return a;
  }

  /** Analyses `sql` like analyze(), reusing a cached analysis when that gives the same answer. */
  analyze(sql: string, opts: AnalyzeOptions = {}): Analysis {
    const version = opts.serverVersion ?? DEFAULT_SERVER_VERSION;
    const ctx = opts.context;
    if (sql.length > this.maxTextLength) return analyzeText(sql, version, ctx ?? newScriptContext(), 0);
    const bits = contextBits(ctx);
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
    return {
      entries: this.map.size, bytes: this.bytes, maxBytes: this.maxBytes, hits: this.hits, misses: this.misses, evictions: this.evictions,
      templates: this.templates.size, templateHits: this.templateHits,
    };
  }

  clear(): void {
    this.map.clear();
    this.templates.clear();
    this.bytes = 0;
  }

  private storeTemplate(key: string, version: number, bits: number, t: Template | null): void {
    this.put(this.templates, key, version, bits, t, templateBytes);
  }

  private touch(sql: string, entry: Entry): void {
    // Map keeps insertion order: re-inserting makes this the most recently used.
    this.map.delete(sql);
    this.map.set(sql, entry);
  }

  private store(sql: string, version: number, bits: number, a: Analysis): void {
    this.put(this.map, sql, version, bits, a, estimateAnalysisBytes);
  }

  /** Stores `value` in slot `bits` of `key` (most recently used), replacing an entry of another server version. */
  private put<T>(map: Map<string, Slots<T>>, key: string, version: number, bits: number, value: T, sizeOf: (v: T) => number): void {
    const size = sizeOf(value);
    if (size > this.maxBytes / 4) return;
    let entry = map.get(key);
    if (entry && entry.version !== version) {
      this.bytes -= entry.bytes;
      map.delete(key);
      entry = undefined;
    }
    if (!entry) {
      entry = { version, slots: [undefined, undefined, undefined, undefined], bytes: KEY_OVERHEAD + key.length * 2 };
      this.bytes += entry.bytes;
    } else {
      // Map keeps insertion order: re-inserting makes this the most recently used.
      map.delete(key);
      const old = entry.slots[bits];
      if (old !== undefined) { const ob = sizeOf(old); entry.bytes -= ob; this.bytes -= ob; }
    }
    map.set(key, entry);
    entry.slots[bits] = value;
    entry.bytes += size;
    this.bytes += size;
    this.evict();
  }

  private evict(): void {
    // Oldest first; bounded by the number of entries. Exact texts go first: a template serves many texts.
    for (const [key, e] of this.map) {
      if (this.bytes <= this.maxBytes) return;
      this.map.delete(key);
      this.bytes -= e.bytes;
      this.evictions++;
    }
    for (const [key, e] of this.templates) {
      if (this.bytes <= this.maxBytes) return;
      this.templates.delete(key);
      this.bytes -= e.bytes;
      this.evictions++;
    }
  }
}

/**
 * The template a statement string gives, when reusing it for other texts with the same literal key is
 * sound: one plain DML statement from the start of the text, every literal an inert A_Const (see
 * analyzer/literals.ts), and facts that hold nothing positional or value-derived (no findings, nothing
 * nested, no setting, no inverse statement).
 */
function templateOf(
  sql: string, scan: LiteralScan, raw: Record<string, unknown> | undefined, statements: readonly StatementFacts[],
  accept: ((facts: StatementFacts) => boolean) | undefined,
): Template | undefined {
  if (raw === undefined || statements.length !== 1) return undefined;
  const f = statements[0]!;
  if (f.byteStart !== 0 || f.findings.length > 0 || f.nested.length > 0 || f.hidden !== undefined || f.inverse !== undefined) return undefined;
  if (f.setting || f.prepare || f.execute || f.transaction) return undefined;
  if (scan.starts[scan.starts.length - 1]! >= f.byteEnd) return undefined;
  const locations = inertLiteralLocations(raw);
  if (locations === undefined || !literalsMatch(sql, scan, locations)) return undefined;
  if (accept !== undefined && !accept(f)) return undefined;
  return { facts: f, tail: sql.slice(f.byteEnd) };
}

/** The slot index of a context: the context state an analysis depends on. */
function contextBits(ctx: AnalyzeOptions['context']): number {
  return ctx ? (ctx.inTransactionBlock ? 1 : 0) | (ctx.lockTimeoutSet ? 2 : 0) : 0;
}

function templateBytes(t: Template | null): number {
  return t ? estimateFactsBytes(t.facts, 0) + t.tail.length * 2 : 16;
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

/** AnalysisCache.analyzeQuery() through the process-wide cache (simple-protocol statement strings). */
export function analyzeQueryCached(sql: string, opts: AnalyzeOptions = {}, accept?: (facts: StatementFacts) => boolean): Analysis {
  return shared.analyzeQuery(sql, opts, accept);
}

/** Replaces the process-wide cache (e.g. with the configured size); the old entries are dropped. */
export function configureAnalysisCache(opts: AnalysisCacheOptions): AnalysisCache {
  shared = new AnalysisCache(opts);
  return shared;
}

export function analysisCacheStats(): AnalysisCacheStats {
  return shared.stats();
}
