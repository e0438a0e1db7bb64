import { searchPathSchemas } from '../search-path.js';
import { runAll, runInSlices } from './slices.js';
import type { CatalogObject, CatalogSnapshot, DependencyEdge, DependencyVia, ObjectKey, QualifiedName } from './types.js';

/**
 * Lookups over a snapshot (pure): objects by key and by qualified name, and the dependency graph walked
 * backwards (who depends on X, transitively, with the chain of objects in between).
 * Indexes are built once per snapshot object and cached in a WeakMap (snapshots are immutable).
 */

export interface SnapshotIndex {
  readonly byKey: ReadonlyMap<ObjectKey, CatalogObject>;
  /** `schema.name` -> relation-like objects (table, view, matview, sequence, index) with that name. */
  readonly relationsByName: ReadonlyMap<string, CatalogObject>;
  /** `schema.name` -> functions of that name (all overloads). */
  readonly functionsByName: ReadonlyMap<string, readonly CatalogObject[]>;
  /** referenced key -> edges pointing at it. */
  readonly dependentsOf: ReadonlyMap<ObjectKey, readonly DependencyEdge[]>;
  /** `schema.table` -> keys of the indexes, constraints and triggers that belong to it. */
  readonly ownedBy: ReadonlyMap<string, readonly ObjectKey[]>;
}

const cache = new WeakMap<CatalogSnapshot, SnapshotIndex>();

export function indexSnapshot(snapshot: CatalogSnapshot): SnapshotIndex {
  const hit = cache.get(snapshot);
  if (hit) return hit;
  return runAll(indexSteps(snapshot));
}

/**
 * Builds (and caches) the index in slices of about `sliceMs`, yielding to the event loop between them. On
 * 5,000 tables the index takes tens of milliseconds: CatalogState builds it this way after each refresh, so
 * the first statement judged against a new snapshot does not pay for it on the proxy's event loop.
 */
export async function indexSnapshotAsync(snapshot: CatalogSnapshot, sliceMs = 8): Promise<SnapshotIndex> {
  const hit = cache.get(snapshot);
  if (hit) return hit;
  return runInSlices(indexSteps(snapshot), sliceMs);
}

function* indexSteps(snapshot: CatalogSnapshot): Generator<void, SnapshotIndex> {
  const byKey = new Map<ObjectKey, CatalogObject>();
  const relationsByName = new Map<string, CatalogObject>();
  const functionsByName = new Map<string, CatalogObject[]>();
  const ownedBy = new Map<string, ObjectKey[]>();
  const add = <V>(m: Map<string, V[]>, k: string, v: V): void => {
    const list = m.get(k);
    if (list) list.push(v);
    else m.set(k, [v]);
  };
  let work = 0;
  for (const o of snapshot.objects) {
    if ((++work & 511) === 0) yield;
    byKey.set(o.key, o);
    switch (o.kind) {
      case 'table': case 'view': case 'matview': case 'sequence':
        relationsByName.set(`${o.schema}.${o.name}`, o);
        break;
      case 'index':
        relationsByName.set(`${o.schema}.${o.name}`, o);
        add(ownedBy, o.table, o.key);
        break;
      case 'constraint': case 'trigger':
        add(ownedBy, o.table, o.key);
        break;
      case 'function':
        add(functionsByName, `${o.schema}.${o.name}`, o);
        break;
      default:
        break;
    }
  }
  const dependentsOf = new Map<ObjectKey, DependencyEdge[]>();
  for (const e of snapshot.dependencies) {
    if ((++work & 511) === 0) yield;
    add(dependentsOf, e.referenced, e);
  }
  // Another caller may have built it meanwhile (sync lookups do not wait): keep the first.
  const built = cache.get(snapshot);
  if (built) return built;
  const idx: SnapshotIndex = { byKey, relationsByName, functionsByName, dependentsOf, ownedBy };
  cache.set(snapshot, idx);
  return idx;
}

/**
 * Resolves a relation name as PostgreSQL would: a qualified name directly, an unqualified one through the
 * search_path (`"$user"` is replaced by `user`; pg_catalog and pg_temp are not in snapshots and are skipped).
 */
export function resolveRelation(
  snapshot: CatalogSnapshot,
  rel: { readonly schema?: string; readonly name: string },
  searchPath: readonly string[],
  user?: string,
): CatalogObject | undefined {
  const idx = indexSnapshot(snapshot);
  if (rel.schema) return idx.relationsByName.get(`${rel.schema}.${rel.name}`);
  for (const s of searchPathSchemas(searchPath, user)) {
    const hit = idx.relationsByName.get(`${s}.${rel.name}`);
    if (hit) return hit;
  }
  return undefined;
}

/** The schema an unqualified CREATE would land in: the first search_path entry that exists. */
export function creationSchema(snapshot: CatalogSnapshot, searchPath: readonly string[], user?: string): string | undefined {
  const idx = indexSnapshot(snapshot);
  return searchPathSchemas(searchPath, user).find((s) => idx.byKey.has(`schema:${s}`));
}

export { parseSearchPath, searchPathSchemas } from '../search-path.js';

export function resolveFunctions(snapshot: CatalogSnapshot, fn: { readonly schema?: string; readonly name: string }, searchPath: readonly string[], user?: string): readonly CatalogObject[] {
  const idx = indexSnapshot(snapshot);
  if (fn.schema) return idx.functionsByName.get(`${fn.schema}.${fn.name}`) ?? [];
  for (const s of searchPathSchemas(searchPath, user)) {
    const hit = idx.functionsByName.get(`${s}.${fn.name}`);
    if (hit) return hit;
  }
  return [];
}

export interface Dependent {
  readonly key: ObjectKey;
  readonly kind: string;
  /** `schema.name` (constraints and triggers: `schema.table.name`; columns: `schema.table.column`). */
  readonly name: string;
  /** How it depends on the previous link of the chain. */
  readonly via: DependencyVia;
  /** The column of the previous link it uses, when the dependency is on one column. */
  readonly column?: string;
  /** n: a plain DROP of the target fails (needs CASCADE); a: dropped along with it. */
  readonly deptype: 'n' | 'a';
  /** From the target to this object, e.g. ['table:public.t', 'view:public.v1', 'view:public.v2']. */
  readonly chain: readonly ObjectKey[];
}

export interface DependentsOptions {
  /** Only dependencies on these columns of the target (for ALTER/DROP/RENAME COLUMN). */
  readonly columns?: readonly string[];
  /** Only these kinds of first-level dependency (e.g. ['foreign-key'] for TRUNCATE). */
  readonly via?: readonly DependencyVia[];
  /** Depth bound for the transitive walk (default 16). */
  readonly maxDepth?: number;
  /** Result bound (default 500). */
  readonly limit?: number;
}

/** Everything that depends on `target` (or on some of its columns), transitively, breadth-first, each with its chain. */
export function dependentsOf(snapshot: CatalogSnapshot, target: ObjectKey, opts: DependentsOptions = {}): Dependent[] {
  const idx = indexSnapshot(snapshot);
  const maxDepth = opts.maxDepth ?? 16;
  const limit = opts.limit ?? 500;
  const out: Dependent[] = [];
  const seen = new Set<ObjectKey>([target]);
  let frontier: { key: ObjectKey; chain: ObjectKey[] }[] = [{ key: target, chain: [target] }];
  for (let depth = 0; depth < maxDepth && frontier.length > 0 && out.length < limit; depth++) {
    const next: { key: ObjectKey; chain: ObjectKey[] }[] = [];
    for (const node of frontier) {
      for (const e of idx.dependentsOf.get(node.key) ?? []) {
        if (depth === 0 && opts.columns && (e.column === undefined || !opts.columns.includes(e.column))) continue;
        if (depth === 0 && opts.via && !opts.via.includes(e.via)) continue;
        if (seen.has(e.dependent)) continue;
        seen.add(e.dependent);
        const chain = [...node.chain, e.dependent];
        const sep = e.dependent.indexOf(':');
        const dep: Dependent = {
          key: e.dependent,
          kind: e.dependent.slice(0, sep),
          name: e.dependent.slice(sep + 1),
          via: e.via,
          ...(e.column !== undefined ? { column: e.column } : {}),
          deptype: e.deptype,
          chain,
        };
        out.push(dep);
        if (out.length >= limit) break;
        // A column default is not an object of its own: what depends on the table is not affected through it.
        if (dep.kind !== 'column') next.push({ key: e.dependent, chain });
      }
      if (out.length >= limit) break;
    }
    frontier = next;
  }
  return out;
}

export const qualifiedName = (o: { schema: string; name: string }): QualifiedName => ({ schema: o.schema, name: o.name });
