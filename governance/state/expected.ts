import { indexSnapshot } from './deps.js';
import { diffSnapshots, type ObjectChange } from './diff.js';
import type { CatalogSnapshot, ObjectKey } from './types.js';

/**
 * Expected state (pure): a client declares the schema it believes in, and its DDL is checked against the
 * live version of the objects that DDL touches.
 * - `{ schemaHash }` (what `SET pgairlock.expect_schema = '<hash>'` carries): the hash of a whole snapshot.
 *   Equal to live: fine. Different: the snapshot with that hash is looked up in the refresh history
 *   (CatalogState keeps the last N versions) and only the touched objects are compared. A hash pgairlock
 *   has never seen (or no longer remembers) is stale with reason 'unknown-version': fail closed.
 * - `{ objects: { name: hash } }`: per-object hashes; names are object keys (`view:public.v`) or, for
 *   relations, `schema.name`. Only touched objects are checked when a touched list is given.
 * Hashes may be given in full (64 hex) or as a prefix of at least 12 hex digits.
 */

export type ExpectedState =
  | { readonly schemaHash: string }
  | { readonly objects: Readonly<Record<string, string>> };

export type ExpectedReason =
  /** Live equals what the client expects (for the touched objects). */
  | 'match'
  /** The schema moved on, but not in the objects this statement touches. */
  | 'unrelated-changes'
  /** Some touched object differs: see changes. */
  | 'changed'
  /** The expected schema hash is not the live one and not in the refresh history: cannot tell what changed. */
  | 'unknown-version';

export interface ExpectedCheck {
  readonly stale: boolean;
  readonly reason: ExpectedReason;
  readonly liveSchemaHash: string;
  readonly changes: readonly ObjectChange[];
}

export interface CheckExpectedOptions {
  /** Finds a remembered snapshot by schema hash (CatalogState.findVersion). */
  readonly findSnapshot?: (schemaHash: string) => CatalogSnapshot | undefined;
  /** Keys to leave out, e.g. objects the same session changed itself through pgairlock since it declared. */
  readonly ignore?: ReadonlySet<ObjectKey>;
}

export const MIN_HASH_PREFIX = 12;

/** True when `given` is `full` or a prefix of it of at least 12 hex digits (case-insensitive). */
export function hashMatches(full: string, given: string): boolean {
  const g = given.trim().toLowerCase();
  return g === full || (g.length >= MIN_HASH_PREFIX && full.startsWith(g));
}

/**
 * @param touched keys of the objects the statement changes (ImpactFacts.touched); undefined = the whole schema.
 */
export function checkExpected(
  live: CatalogSnapshot,
  expected: ExpectedState,
  touched?: readonly ObjectKey[],
  opts: CheckExpectedOptions = {},
): ExpectedCheck {
  const only = touched ? new Set(touched) : undefined;
  const liveSchemaHash = live.schemaHash;
  if ('schemaHash' in expected) {
    if (hashMatches(live.schemaHash, expected.schemaHash)) return { stale: false, reason: 'match', liveSchemaHash, changes: [] };
    const base = opts.findSnapshot?.(expected.schemaHash.trim().toLowerCase());
    if (!base) return { stale: true, reason: 'unknown-version', liveSchemaHash, changes: [] };
    const d = diffSnapshots(base, live, { ...(only ? { only } : {}), ...(opts.ignore ? { ignore: opts.ignore } : {}) });
    const changes = [...d.removed, ...d.changed, ...d.added];
    return changes.length > 0
      ? { stale: true, reason: 'changed', liveSchemaHash, changes }
      : { stale: false, reason: 'unrelated-changes', liveSchemaHash, changes: [] };
  }
  const idx = indexSnapshot(live);
  const changes: ObjectChange[] = [];
  for (const [name, hash] of Object.entries(expected.objects)) {
    const key = resolveExpectedName(live, name);
    if (only && !only.has(key)) continue;
    if (opts.ignore?.has(key)) continue;
    const obj = idx.byKey.get(key);
    const kind = key.includes(':') ? key.slice(0, key.indexOf(':')) : 'object';
    const shortName = key.slice(key.indexOf(':') + 1);
    if (!obj) changes.push({ key, kind, name: shortName, change: 'removed', before: hash });
    else if (!hashMatches(obj.hash, hash)) changes.push({ key, kind, name: shortName, change: 'changed', before: hash, after: obj.hash });
  }
  return changes.length > 0 ? { stale: true, reason: 'changed', liveSchemaHash, changes } : { stale: false, reason: 'match', liveSchemaHash, changes: [] };
}

/** `view:public.v` stays as is; `public.v` becomes the key of the relation (or the only function) with that name. */
export function resolveExpectedName(live: CatalogSnapshot, name: string): ObjectKey {
  if (name.includes(':')) return name;
  const idx = indexSnapshot(live);
  const rel = idx.relationsByName.get(name);
  if (rel) return rel.key;
  const fns = idx.functionsByName.get(name);
  if (fns?.length === 1 && fns[0]) return fns[0].key;
  return `table:${name}`;
}

/** The hashes of some objects, to hand to a client that will later declare them as expected. */
export function expectedHashes(snapshot: CatalogSnapshot, keys: readonly ObjectKey[]): Record<ObjectKey, string> {
  const idx = indexSnapshot(snapshot);
  const out: Record<ObjectKey, string> = {};
  for (const k of keys) {
    const o = idx.byKey.get(k);
    if (o) out[k] = o.hash;
  }
  return out;
}

/** DETAIL text for a refusal: one line per changed object (kept short; the full diff is in the audit record). */
export function describeStale(check: ExpectedCheck, maxLines = 10): string {
  if (check.reason === 'unknown-version') {
    return `the expected schema version is not the live one (${check.liveSchemaHash.slice(0, 12)}) and pgairlock does not remember it, so what changed cannot be shown`;
  }
  const lines = check.changes.slice(0, maxLines).map((c) => `${c.change} since expected: ${c.kind} ${c.name}`);
  if (check.changes.length > maxLines) lines.push(`... and ${check.changes.length - maxLines} more`);
  return lines.join('\n');
}
