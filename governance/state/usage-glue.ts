import type { StatementFacts } from '../../analyzer/types.js';
import { resolveRelation } from './deps.js';
import type { CatalogSnapshot } from './types.js';
import { usesFromRelations, type RecentUser, type RelationUseRecord, type UsageExclusion, type UsageIndex } from './usage.js';

/**
 * Glue between analyzer facts and the usage index, for the proxy and MCP:
 * - recordStatementUse: after a statement ran, record what it read and wrote (hot path: synchronous, buffered);
 * - prefetchUsage: before a DDL is judged, who used the tables and columns it alters, drops or truncates
 *   (async; the result feeds policy's stateFromSnapshot `usage` option, keyed `schema.table`).
 * Unqualified names resolve through the session's search_path against the snapshot.
 */

export interface StatementContext {
  readonly database: string;
  readonly snapshot: CatalogSnapshot | undefined;
  readonly searchPath: readonly string[];
  readonly user?: string;
}

/** A statement and every statement nested in it (function bodies, DO blocks), depth first. */
export function withNested(f: StatementFacts, out: StatementFacts[] = []): StatementFacts[] {
  out.push(f);
  for (const n of f.nested) withNested(n, out);
  return out;
}

/**
 * The usage records of one statement's relations as resolved last time, per relations list: the
 * analysis cache hands out the same facts (or, for literal templates, the same relations list) for
 * the same statement shape, so the hot path resolves names once per shape, snapshot and search_path.
 */
const resolvedUses = new WeakMap<readonly StatementFacts['relations'][number][], {
  readonly snapshot: CatalogSnapshot | undefined;
  readonly searchPath: readonly string[];
  readonly user: string | undefined;
  readonly uses: readonly RelationUseRecord[];
}>();

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function usesOf(ctx: StatementContext, relations: readonly StatementFacts['relations'][number][]): readonly RelationUseRecord[] {
  return usesFromRelations(relations, (rel) => (ctx.snapshot ? resolveRelation(ctx.snapshot, rel, ctx.searchPath, ctx.user)?.schema : undefined));
}

export function recordStatementUse(
  usage: UsageIndex,
  who: { readonly principal: string; readonly application?: string },
  ctx: StatementContext,
  statements: readonly StatementFacts[],
  at?: number,
): void {
  let uses: readonly RelationUseRecord[];
  const only = statements.length === 1 ? statements[0]! : undefined;
  if (only !== undefined && only.nested.length === 0) {
    const rels = only.relations;
    if (rels.length === 0) return;
    const memo = resolvedUses.get(rels);
    if (memo !== undefined && memo.snapshot === ctx.snapshot && memo.user === ctx.user && sameList(memo.searchPath, ctx.searchPath)) uses = memo.uses;
    else {
      uses = usesOf(ctx, rels);
      resolvedUses.set(rels, { snapshot: ctx.snapshot, searchPath: [...ctx.searchPath], user: ctx.user, uses });
    }
  } else {
    uses = usesOf(ctx, statements.flatMap((f) => withNested(f)).flatMap((f) => f.relations));
  }
  if (uses.length === 0) return;
  usage.recordUse({ principal: who.principal, application: who.application, database: ctx.database, relations: uses, at });
}

const CHANGING = new Set(['alter', 'drop', 'truncate', 'create']);

/**
 * Recent users of what the statements change: per relation altered/dropped/truncated (or replaced), the
 * users of the named columns when columns are named (RENAME/DROP/ALTER COLUMN), else of the table.
 * Keyed `schema.table`; each user once, with the latest use and the summed count.
 */
export async function prefetchUsage(
  usage: UsageIndex,
  ctx: StatementContext,
  statements: readonly StatementFacts[],
  sinceMs: number,
  exclude?: string | UsageExclusion,
): Promise<Map<string, RecentUser[]>> {
  const out = new Map<string, RecentUser[]>();
  if (!ctx.snapshot) return out;
  const wanted = new Map<string, { schema: string; table: string; columns: Set<string>; whole: boolean }>();
  for (const f of statements.flatMap((f) => withNested(f))) {
    for (const r of f.relations) {
      if (!CHANGING.has(r.role)) continue;
      const obj = resolveRelation(ctx.snapshot, r.relation, ctx.searchPath, ctx.user);
      if (!obj || (obj.kind !== 'table' && obj.kind !== 'view' && obj.kind !== 'matview')) continue;
      const key = `${obj.schema}.${obj.name}`;
      let w = wanted.get(key);
      if (!w) wanted.set(key, (w = { schema: obj.schema, table: obj.name, columns: new Set(), whole: false }));
      if (r.columns && r.columns.length > 0 && r.role === 'alter') for (const c of r.columns) w.columns.add(c);
      else w.whole = true;
    }
  }
  for (const [key, w] of wanted) {
    const lists = await Promise.all([
      ...(w.whole ? [usage.recentUsers({ database: ctx.database, schema: w.schema, table: w.table }, sinceMs, exclude)] : []),
      ...[...w.columns].map((column) => usage.recentUsers({ database: ctx.database, schema: w.schema, table: w.table, column }, sinceMs, exclude)),
    ]);
    const merged = new Map<string, RecentUser>();
    for (const u of lists.flat()) {
      const id = `${u.principal}\0${u.application}`;
      const prev = merged.get(id);
      merged.set(id, prev
        ? { ...prev, lastUsed: Math.max(prev.lastUsed, u.lastUsed), count: prev.count + u.count, reads: prev.reads + u.reads, writes: prev.writes + u.writes }
        : u);
    }
    if (merged.size > 0) out.set(key, [...merged.values()].sort((a, b) => b.lastUsed - a.lastUsed));
  }
  return out;
}
