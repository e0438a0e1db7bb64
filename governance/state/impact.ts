import type { LockFact, RelationName, RelationRole, StatementFacts } from '../../analyzer/types.js';
import { lockRank } from '../../analyzer/types.js';
import { dependentsOf, indexSnapshot, resolveFunctions, resolveRelation, type Dependent } from './deps.js';
import type { ImpactSummary } from '../audit/types.js';
import type { CatalogObject, CatalogSnapshot, ObjectKey, QualifiedName } from './types.js';

/**
 * Impact facts (pure): the analyzer's facts for one statement joined with a catalog snapshot and the
 * session's search_path. This is the input the policy engine's conditions read (size and row thresholds,
 * dependents present, lock duration), so it is plain data with no methods.
 */

/**
 * How long the statement's strongest lock on a relation is held, as a function of the table:
 * - instant: catalog-only change (or a new/empty relation); held for milliseconds whatever the size
 * - proportional: the table (or an index) is scanned or built under the lock: grows with the table's size
 * - rewrite: the table and all its indexes are rewritten under the lock: the worst case
 */
export type LockDurationClass = 'instant' | 'proportional' | 'rewrite';
const durationRank: Record<LockDurationClass, number> = { instant: 0, proportional: 1, rewrite: 2 };

export interface RelationImpact {
  /** As written in the SQL. */
  readonly relation: RelationName;
  /** After search_path resolution; absent when the relation does not exist in the snapshot. */
  readonly resolved?: QualifiedName;
  readonly key?: ObjectKey;
  readonly kind?: CatalogObject['kind'];
  readonly roles: readonly RelationRole[];
  readonly columns: readonly string[];
  /** Planner row estimate (pg_class.reltuples; partitions summed); null when unknown or not a table. */
  readonly rowEstimate: number | null;
  /** Total bytes with indexes and TOAST; null when the relation does not exist yet. */
  readonly totalBytes: number | null;
  /** Strongest lock the statement takes on it (from the analyzer). */
  readonly lock?: LockFact;
  readonly lockDuration: LockDurationClass;
  /** Objects that depend on what this statement drops, renames or alters here, with their chains. */
  readonly dependents: readonly Dependent[];
}

export interface FunctionImpact {
  readonly function: { readonly schema?: string; readonly name: string };
  /** Existing overloads it resolves to. */
  readonly keys: readonly ObjectKey[];
  readonly dependents: readonly Dependent[];
}

export interface ImpactFacts {
  readonly database: string;
  /** Schema version the impact was computed against. */
  readonly schemaHash: string;
  readonly snapshotTakenAt: string;
  readonly relations: readonly RelationImpact[];
  readonly functions: readonly FunctionImpact[];
  /** Largest row estimate over the relations the statement takes a lock on (null: none known). */
  readonly maxRowEstimate: number | null;
  readonly maxTotalBytes: number;
  /** Worst duration class over all relations. */
  readonly lockDuration: LockDurationClass;
  /** All dependents, deduplicated by key (first chain found wins). */
  readonly dependents: readonly Dependent[];
  /** Relations named by the statement that are not in the snapshot (new ones, temp tables, system catalogs). */
  readonly unresolved: readonly RelationName[];
  /** Keys of existing objects this statement changes (for checkExpected): relations altered/dropped/replaced, their indexes, constraints and triggers, functions replaced or dropped. */
  readonly touched: readonly ObjectKey[];
}

export interface ImpactInput {
  readonly facts: StatementFacts;
  readonly snapshot: CatalogSnapshot;
  /** Session search_path as parsed names, e.g. ['$user', 'public'] (see governance/search-path.ts parseSearchPath). */
  readonly searchPath: readonly string[];
  /** Session user, for "$user" in the search_path. */
  readonly user?: string;
}

const CHANGE_ROLES: ReadonlySet<RelationRole> = new Set(['create', 'alter', 'drop']);
/** Statements that rewrite their target whatever the analyzer's lock facts say. */
const REWRITE_NODES = new Set(['RefreshMatViewStmt', 'ClusterStmt']);
/** Statements that scan or build over the whole target under their lock. */
const PROPORTIONAL_NODES = new Set(['IndexStmt', 'ReindexStmt', 'VacuumStmt']);

function flatten(f: StatementFacts): StatementFacts[] {
  const out = [f];
  for (const n of f.nested) out.push(...flatten(n));
  if (f.prepare) out.push(...flatten(f.prepare.inner));
  return out;
}

function durationOf(node: string, locks: readonly LockFact[], exists: boolean): LockDurationClass {
  if (!exists || locks.length === 0) return 'instant';
  if (locks.some((l) => l.rewrite) || REWRITE_NODES.has(node)) return 'rewrite';
  if (locks.some((l) => l.scan) || PROPORTIONAL_NODES.has(node)) return 'proportional';
  return 'instant';
}

function strongest(locks: readonly LockFact[]): LockFact | undefined {
  let best: LockFact | undefined;
  for (const l of locks) if (!best || lockRank(l.mode) > lockRank(best.mode) || (l.mode === best.mode && l.rewrite && !best.rewrite)) best = l;
  return best;
}

const relId = (r: RelationName): string => `${r.schema ?? ''}.${r.name}`;

/** Joins one statement's facts (with nested statements) with the snapshot. */
export function computeImpact(input: ImpactInput): ImpactFacts {
  const { snapshot, searchPath, user } = input;
  const idx = indexSnapshot(snapshot);
  const resolve = (r: RelationName): CatalogObject | undefined => resolveRelation(snapshot, r, searchPath, user);

  interface Acc { relation: RelationName; obj?: CatalogObject; roles: Set<RelationRole>; columns: Set<string>; locks: LockFact[]; nodes: Set<string>; ddl: boolean }
  const accs = new Map<string, Acc>();
  const accFor = (r: RelationName): Acc => {
    const obj = resolve(r);
    const id = obj ? obj.key : `?${relId(r)}`;
    let a = accs.get(id);
    if (!a) accs.set(id, (a = { relation: r, ...(obj ? { obj } : {}), roles: new Set(), columns: new Set(), locks: [], nodes: new Set(), ddl: false }));
    return a;
  };
  const fnImpacts: FunctionImpact[] = [];
  const touched = new Set<ObjectKey>();

  for (const f of flatten(input.facts)) {
    for (const use of f.relations) {
      const a = accFor(use.relation);
      a.roles.add(use.role);
      for (const c of use.columns ?? []) a.columns.add(c);
      a.nodes.add(f.node);
      if (f.kind === 'ddl') a.ddl = true;
    }
    for (const l of f.locks) {
      const a = accFor(l.relation);
      a.locks.push(l);
      a.nodes.add(f.node);
      if (f.kind === 'ddl') a.ddl = true;
    }
    if (f.kind === 'ddl') {
      for (const fn of f.functions) {
        const found = resolveFunctions(snapshot, fn, searchPath, user);
        if (found.length === 0) continue; // a new function: nothing depends on it yet
        const deps = found.flatMap((o) => dependentsOf(snapshot, o.key));
        for (const o of found) touched.add(o.key);
        fnImpacts.push({ function: fn, keys: found.map((o) => o.key), dependents: deps });
      }
    }
  }

  const relations: RelationImpact[] = [];
  const unresolved: RelationName[] = [];
  for (const a of accs.values()) {
    const obj = a.obj;
    if (!obj) unresolved.push(a.relation);
    const roles = [...a.roles];
    const columns = [...a.columns];
    let dependents: Dependent[] = [];
    if (obj) {
      const changes = roles.some((r) => CHANGE_ROLES.has(r));
      if (roles.includes('drop')) dependents = dependentsOf(snapshot, obj.key);
      else if (changes && columns.length > 0) dependents = dependentsOf(snapshot, obj.key, { columns });
      else if (changes) dependents = dependentsOf(snapshot, obj.key);
      else if (roles.includes('truncate')) dependents = dependentsOf(snapshot, obj.key, { via: ['foreign-key'], maxDepth: 1 });
      if (changes || (a.ddl && a.locks.length > 0)) {
        touched.add(obj.key);
        const table = `${obj.schema}.${obj.name}`;
        for (const k of idx.ownedBy.get(table) ?? []) touched.add(k);
      }
    }
    const stats = obj && (obj.kind === 'table' || obj.kind === 'view' || obj.kind === 'matview') ? obj.stats : undefined;
    const lock = strongest(a.locks);
    const node = [...a.nodes][0] ?? '';
    relations.push({
      relation: a.relation,
      ...(obj ? { resolved: { schema: obj.schema, name: obj.name }, key: obj.key, kind: obj.kind } : {}),
      roles,
      columns,
      rowEstimate: stats?.rowEstimate ?? null,
      totalBytes: stats ? stats.totalBytes : obj?.kind === 'index' ? obj.totalBytes : null,
      ...(lock ? { lock } : {}),
      lockDuration: durationOf(node, a.locks, obj !== undefined),
      dependents,
    });
  }

  let lockDuration: LockDurationClass = 'instant';
  let maxRowEstimate: number | null = null;
  let maxTotalBytes = 0;
  for (const r of relations) {
    if (durationRank[r.lockDuration] > durationRank[lockDuration]) lockDuration = r.lockDuration;
    if (r.lock && r.rowEstimate !== null) maxRowEstimate = Math.max(maxRowEstimate ?? 0, r.rowEstimate);
    if (r.lock && r.totalBytes !== null) maxTotalBytes = Math.max(maxTotalBytes, r.totalBytes);
  }
  const allDeps = new Map<ObjectKey, Dependent>();
  for (const d of [...relations.flatMap((r) => r.dependents), ...fnImpacts.flatMap((f) => f.dependents)]) if (!allDeps.has(d.key)) allDeps.set(d.key, d);

  return {
    database: snapshot.database,
    schemaHash: snapshot.schemaHash,
    snapshotTakenAt: snapshot.takenAt,
    relations,
    functions: fnImpacts,
    maxRowEstimate,
    maxTotalBytes,
    lockDuration,
    dependents: [...allDeps.values()],
    unresolved,
    touched: [...touched].sort(),
  };
}

/** Human-readable chain, e.g. `table public.t <- view public.v1 <- view public.v2`. */
export function describeChain(chain: readonly ObjectKey[]): string {
  return chain.map((k) => k.replace(':', ' ')).join(' <- ');
}

export type { Dependent } from './deps.js';

const MAX_AUDIT_DEPENDENTS = 20;

/**
 * The part of the impact an audit record keeps (plain JSON, bounded): what the policy could see about the
 * statement when it judged it. `estimatedRows`: the planner's estimate, when a rule asked for one.
 */
export function impactSummary(impact: ImpactFacts, estimatedRows?: number): ImpactSummary {
  return {
    schema_hash: impact.schemaHash,
    relations: impact.relations.map((r) => ({
      name: r.resolved ? `${r.resolved.schema}.${r.resolved.name}` : `${r.relation.schema ? `${r.relation.schema}.` : ''}${r.relation.name}`,
      kind: r.kind ?? null,
      rows: r.rowEstimate,
      bytes: r.totalBytes,
      lock: r.lock?.mode ?? null,
      lock_duration: r.lockDuration,
    })),
    lock_duration: impact.lockDuration,
    max_rows: impact.maxRowEstimate,
    max_bytes: impact.maxTotalBytes,
    dependents: impact.dependents.slice(0, MAX_AUDIT_DEPENDENTS).map((d) => ({ name: d.name, kind: d.kind, via: d.via, chain: describeChain(d.chain) })),
    dependents_total: impact.dependents.length,
    estimated_rows: estimatedRows ?? null,
  };
}
