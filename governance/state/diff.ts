import { indexSnapshot } from './deps.js';
import type { CatalogObject, CatalogSnapshot, ObjectKey } from './types.js';

/**
 * Differences between two snapshots (pure): objects added, removed, changed, with the changed definition
 * lines. "base" is the reference (a saved snapshot, another database, the previous refresh); "live" is
 * compared against it: added = in live only, removed = in base only.
 */

export interface LineChanges {
  /** Lines only in base's definition. */
  readonly removed: readonly string[];
  /** Lines only in live's definition. */
  readonly added: readonly string[];
}

export interface ObjectChange {
  readonly key: ObjectKey;
  readonly kind: string;
  /** `schema.name` (constraints, triggers: `schema.table.name`; functions: with argument types). */
  readonly name: string;
  readonly change: 'added' | 'removed' | 'changed';
  /** Hash in base (absent for added). */
  readonly before?: string;
  /** Hash in live (absent for removed). */
  readonly after?: string;
  /** For changed objects whose base definition is known: the differing lines. */
  readonly lines?: LineChanges;
}

export interface SnapshotSide {
  readonly database: string;
  readonly schemaHash: string;
  readonly takenAt: string;
}

export interface SnapshotDiff {
  readonly base: SnapshotSide;
  readonly live: SnapshotSide;
  readonly equal: boolean;
  readonly added: readonly ObjectChange[];
  readonly removed: readonly ObjectChange[];
  readonly changed: readonly ObjectChange[];
}

const side = (s: CatalogSnapshot): SnapshotSide => ({ database: s.database, schemaHash: s.schemaHash, takenAt: s.takenAt });
const nameOf = (key: ObjectKey): string => key.slice(key.indexOf(':') + 1);
const kindOf = (key: ObjectKey): string => key.slice(0, key.indexOf(':'));

export interface DiffOptions {
  /** Only these keys (e.g. the objects a DDL touches). */
  readonly only?: ReadonlySet<ObjectKey>;
  /** Leave these keys out (e.g. objects the session changed itself). */
  readonly ignore?: ReadonlySet<ObjectKey>;
}

export function diffSnapshots(base: CatalogSnapshot, live: CatalogSnapshot, opts: DiffOptions = {}): SnapshotDiff {
  const keep = (k: ObjectKey): boolean => (!opts.only || opts.only.has(k)) && !opts.ignore?.has(k);
  const objectsOf = (s: CatalogSnapshot): ReadonlyMap<ObjectKey, CatalogObject> => {
    // Unfiltered: the snapshot's cached index (CatalogState builds it after each refresh) saves two maps of every object.
    if (!opts.only && !opts.ignore) return indexSnapshot(s).byKey;
    const m = new Map<ObjectKey, CatalogObject>();
    for (const o of s.objects) if (keep(o.key)) m.set(o.key, o);
    return m;
  };
  const a = objectsOf(base);
  const b = objectsOf(live);
  const added: ObjectChange[] = [];
  const removed: ObjectChange[] = [];
  const changed: ObjectChange[] = [];
  for (const [k, o] of b) if (!a.has(k)) added.push({ key: k, kind: o.kind, name: nameOf(k), change: 'added', after: o.hash });
  for (const [k, o] of a) {
    const l = b.get(k);
    if (!l) removed.push({ key: k, kind: o.kind, name: nameOf(k), change: 'removed', before: o.hash });
    else if (l.hash !== o.hash) {
      changed.push({ key: k, kind: o.kind, name: nameOf(k), change: 'changed', before: o.hash, after: l.hash, lines: lineDiff(o.definition, l.definition) });
    }
  }
  const byKey = (x: ObjectChange, y: ObjectChange): number => (x.key < y.key ? -1 : x.key > y.key ? 1 : 0);
  added.sort(byKey);
  removed.sort(byKey);
  changed.sort(byKey);
  const equal = added.length + removed.length + changed.length === 0;
  return { base: side(base), live: side(live), equal, added, removed, changed };
}

/** Above this many line pairs the LCS table is skipped for a multiset difference (same lines, order ignored). */
const LCS_CELL_LIMIT = 4_000_000;

/** Lines removed from `before` and added in `after`, by longest common subsequence. */
export function lineDiff(before: string, after: string): LineChanges {
  const x = before.split('\n');
  const y = after.split('\n');
  // Trim the common head and tail first: most changes touch a few lines of a long definition.
  let start = 0;
  while (start < x.length && start < y.length && x[start] === y[start]) start++;
  let endX = x.length;
  let endY = y.length;
  while (endX > start && endY > start && x[endX - 1] === y[endY - 1]) { endX--; endY--; }
  const xs = x.slice(start, endX);
  const ys = y.slice(start, endY);
  if (xs.length * ys.length > LCS_CELL_LIMIT) {
    const count = new Map<string, number>();
    for (const l of xs) count.set(l, (count.get(l) ?? 0) + 1);
    const added: string[] = [];
    for (const l of ys) {
      const c = count.get(l) ?? 0;
      if (c > 0) count.set(l, c - 1);
      else added.push(l);
    }
    const removed = xs.filter((l) => {
      const c = count.get(l) ?? 0;
      if (c > 0) { count.set(l, c - 1); return true; }
      return false;
    });
    return { removed, added };
  }
  const n = xs.length;
  const m = ys.length;
  const table = new Uint32Array((n + 1) * (m + 1));
  const at = (i: number, j: number): number => table[i * (m + 1) + j] ?? 0;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      table[i * (m + 1) + j] = xs[i] === ys[j] ? at(i + 1, j + 1) + 1 : Math.max(at(i + 1, j), at(i, j + 1));
    }
  }
  const removed: string[] = [];
  const added: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (xs[i] === ys[j]) { i++; j++; }
    else if (at(i + 1, j) >= at(i, j + 1)) removed.push(xs[i++] ?? '');
    else added.push(ys[j++] ?? '');
  }
  while (i < n) removed.push(xs[i++] ?? '');
  while (j < m) added.push(ys[j++] ?? '');
  return { removed, added };
}

/** All changes of a diff in one list (removed, changed, added). */
export const allChanges = (d: SnapshotDiff): ObjectChange[] => [...d.removed, ...d.changed, ...d.added];

/** Readable text of a diff, for the CLI and for ErrorResponse DETAIL lines. */
export function formatDiff(d: SnapshotDiff, opts: { readonly maxLines?: number; readonly baseLabel?: string; readonly liveLabel?: string } = {}): string {
  const maxLines = opts.maxLines ?? 40;
  const out: string[] = [];
  const short = (h: string): string => h.slice(0, 12);
  out.push(`${opts.liveLabel ?? `live ${d.live.database}`} (schema ${short(d.live.schemaHash)}) against ${opts.baseLabel ?? d.base.database} (schema ${short(d.base.schemaHash)})`);
  if (d.equal) {
    out.push('no drift: every object has the same definition');
    return out.join('\n');
  }
  for (const c of allChanges(d)) {
    const mark = c.change === 'added' ? '+' : c.change === 'removed' ? '-' : '~';
    out.push(`${mark} ${c.change.padEnd(7)} ${kindOf(c.key)} ${c.name}`);
    if (c.lines) {
      const lines = [...c.lines.removed.map((l) => `      - ${l}`), ...c.lines.added.map((l) => `      + ${l}`)];
      out.push(...lines.slice(0, maxLines));
      if (lines.length > maxLines) out.push(`      ... ${lines.length - maxLines} more changed lines`);
    }
  }
  out.push(`${d.added.length + d.removed.length + d.changed.length} objects differ: ${d.added.length} added, ${d.removed.length} removed, ${d.changed.length} changed`);
  return out.join('\n');
}
