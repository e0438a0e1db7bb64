import type { RelationName } from '../../analyzer/types.js';
import type { RelationState, StateFacts } from './types.js';
import { expandSearchPath } from './units.js';

/**
 * Builds StateFacts from a plain record keyed by `schema.table` (tests, `policy test` cases, and callers
 * without a catalog object). Unqualified names resolve to the first schema on the search_path holding them.
 */
export function stateFromRecord(
  relations: Readonly<Record<string, RelationState>>,
  options: { readonly drift?: boolean; readonly searchPath?: readonly string[]; readonly user?: string } = {},
): StateFacts {
  const path = expandSearchPath(options.searchPath, options.user);
  return {
    ...(options.drift !== undefined ? { drift: options.drift } : {}),
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
