import type { RelationName } from '../../analyzer/types.js';
import { DEFAULT_SEARCH_PATH, searchPathSchemas } from '../search-path.js';
import { dependentsOf, resolveRelation } from '../state/deps.js';
import type { CatalogSnapshot } from '../state/types.js';
import type { RelationState, StateFacts } from './types.js';

/**
 * Builds StateFacts from a plain record keyed by `schema.table` (tests, `policy test` cases, and callers
 * without a catalog object). Unqualified names resolve to the first schema on the search_path holding them.
 */
export function stateFromRecord(
  relations: Readonly<Record<string, RelationState>>,
  options: { readonly drift?: boolean; readonly searchPath?: readonly string[]; readonly user?: string; readonly estimatedRows?: number } = {},
): StateFacts {
  const path = searchPathSchemas(options.searchPath, options.user);
  const est = options.estimatedRows;
  return {
    ...(options.drift !== undefined ? { drift: options.drift } : {}),
    ...(est !== undefined ? { estimatedRows: () => est } : {}),
    relation(name: RelationName): RelationState | undefined {
      if (name.schema !== undefined) return relations[`${name.schema}.${name.name}`];
      for (const s of path.length ? path : ['public']) {
        const hit = relations[`${s}.${name.name}`];
        if (hit) return hit;
      }
      return undefined;
    },
  };
}

/** What a caller prefetched from the usage index (async) before the synchronous evaluation. */
export interface PrefetchedUser {
  readonly principal: string;
  readonly application?: string;
  /** A use of this column (undefined: of the table). */
  readonly column?: string;
  /** Epoch ms or Date. */
  readonly lastUsed: number | Date;
}

/**
 * StateFacts over a catalog snapshot (governance/state): unqualified names resolve through the session's
 * search_path as PostgreSQL would; rows and bytes come from the snapshot's statistics, dependents from its
 * dependency graph (transitive, as "kind name"). Usage must be prefetched (the usage index is async) into
 * `usage`, keyed `schema.table`; a relation absent from it has no known recent users.
 * A relation not in the snapshot (new, temporary, system catalog) is unknown to the policy.
 */
export function stateFromSnapshot(
  snapshot: CatalogSnapshot,
  options: {
    readonly searchPath?: readonly string[];
    readonly user?: string;
    readonly usage?: ReadonlyMap<string, readonly PrefetchedUser[]>;
    readonly drift?: boolean;
  } = {},
): StateFacts {
  const path = options.searchPath ?? DEFAULT_SEARCH_PATH;
  const memo = new Map<string, RelationState | null>();
  return {
    ...(options.drift !== undefined ? { drift: options.drift } : {}),
    relation(name: RelationName): RelationState | undefined {
      const k = name.schema !== undefined ? `${name.schema}.${name.name}` : `\u0000${name.name}`;
      const hit = memo.get(k);
      if (hit !== undefined) return hit ?? undefined;
      const obj = resolveRelation(snapshot, name, path, options.user);
      let state: RelationState | null = null;
      if (obj && (obj.kind === 'table' || obj.kind === 'view' || obj.kind === 'matview')) {
        const qualified = `${obj.schema}.${obj.name}`;
        state = {
          rows: obj.stats.rowEstimate ?? 0,
          bytes: obj.stats.totalBytes,
          dependents: dependentsOf(snapshot, obj.key).map((d) => `${d.kind} ${d.name}`),
          recentUsers: (options.usage?.get(qualified) ?? []).map((u) => ({
            principal: u.principal,
            ...(u.application !== undefined ? { application: u.application } : {}),
            ...(u.column !== undefined ? { column: u.column } : {}),
            lastUsed: u.lastUsed instanceof Date ? u.lastUsed : new Date(u.lastUsed),
          })),
        };
      }
      memo.set(k, state);
      return state ?? undefined;
    },
  };
}
