import type pg from 'pg';
import * as Q from './catalog-sql.js';
import { runAll, runInSlices } from './slices.js';
import {
  columnKey, constraintKey, extensionKey, functionKey, objectHash, relationKey, schemaHashOf, schemaKey,
  tableDefinition, triggerKey, viewDefinition,
} from './hash.js';
import {
  SNAPSHOT_FORMAT, type CatalogObject, type CatalogSnapshot, type ColumnInfo, type ConstraintType, type DependencyEdge,
  type DependencyVia, type ObjectKey, type RelationStats, type SnapshotCost,
} from './types.js';

/**
 * Reading a snapshot: `readSnapshot(client)` does the I/O (one connection, one read-only transaction,
 * nine set-based queries); `buildSnapshot(raw)` turns the rows into a CatalogSnapshot (pure).
 */

/** Schemas never snapshotted besides pg_* (pg_catalog, pg_toast, pg_temp_N): information_schema and pgairlock's own. */
export const ALWAYS_EXCLUDED_SCHEMAS = ['information_schema', 'pgairlock'] as const;

type Num = string | number;
type Ts = Date | string | null;

export interface RawRelation {
  oid: Num; schema: string; name: string; relkind: string; persistence: string; reltuples: number | null;
  total_bytes: Num | null; last_vacuum: Ts; last_autovacuum: Ts; last_analyze: Ts; last_autoanalyze: Ts;
  viewdef: string | null; partkey: string | null; partbound: string | null; parents: string | null; options: string | null;
}
export interface RawColumn {
  relid: Num; attnum: number; name: string; type: string; not_null: boolean; default: string | null; identity: string; generated: string; collation: string | null;
}
export interface RawIndex { oid: Num; relid: Num; schema: string; name: string; def: string; is_unique: boolean; is_primary: boolean; is_valid: boolean; bytes: Num }
export interface RawConstraint { oid: Num; relid: Num; name: string; type: string; def: string; frelid: Num }
export interface RawFunction { oid: Num; schema: string; name: string; args: string; language: string; prokind: string; def: string }
export interface RawTrigger { oid: Num; relid: Num; name: string; def: string; foid: Num; enabled: string }
export interface RawSequence { relid: Num; type: string; start: string; increment: string; min: string; max: string; cache: string; cycle: boolean }
export interface RawDependency {
  cls: string; objid: Num; objsubid: number; refcls: string; refobjid: Num; refobjsubid: number; deptype: string;
  rule_rel: Num | null; def_rel: Num | null; def_col: number | null;
}

export interface RawCatalog {
  database: string;
  catalogVersion?: string;
  serverVersion: number;
  takenAt: string;
  schemas: { name: string }[];
  extensions: { name: string; version: string; schema: string }[];
  relations: RawRelation[];
  columns: RawColumn[];
  indexes: RawIndex[];
  constraints: RawConstraint[];
  functions: RawFunction[];
  triggers: RawTrigger[];
  sequences: RawSequence[];
  dependencies: RawDependency[];
}

export interface ReadSnapshotOptions {
  /** Schemas to leave out besides pg_*, information_schema and pgairlock. */
  readonly excludeSchemas?: readonly string[];
  /** statement_timeout for the catalog read (ms). */
  readonly timeoutMs?: number;
}

const iso = (t: Ts): string | null => (t === null ? null : t instanceof Date ? t.toISOString() : new Date(t).toISOString());
const oidOf = (v: Num | null): string => String(v ?? '');

/** Reads the raw catalog rows of the database `client` is connected to. Leaves the client usable. */
export async function readRawCatalog(client: pg.ClientBase, opts: ReadSnapshotOptions = {}): Promise<{ raw: RawCatalog; cost: SnapshotCost }> {
  const started = performance.now();
  const takenAt = new Date().toISOString();
  const excluded = [...ALWAYS_EXCLUDED_SCHEMAS, ...(opts.excludeSchemas ?? [])];
  let queries = 0;
  let rowsRead = 0;
  const q = async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<R[]> => {
    // Rows come in pages (a portal executed FETCH_ROWS at a time, one round trip each): tens of thousands of
    // rows arriving at once would be parsed in one go and stall the proxy's event loop for hundreds of ms.
    const res = await client.query<R>({ text: sql, values: params, rows: FETCH_ROWS } as pg.QueryConfig);
    queries += 1;
    // rows.length: with paging, rowCount is only the last page's.
    rowsRead += res.rows.length;
    return res.rows;
  };
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    // SET LOCAL: the settings end with the transaction, so a shared connection is left as it was.
    await client.query(`SELECT set_config('search_path', 'pg_catalog', true), set_config('statement_timeout', $1, true)`, [
      String(opts.timeoutMs ?? 30_000),
    ]);
    const [server] = await q<{ database: string; version: number }>(Q.SQL_SERVER);
    const [probe] = await q<{ version: string }>(Q.SQL_CATALOG_VERSION);
    const raw: RawCatalog = {
      database: server?.database ?? '',
      ...(probe ? { catalogVersion: probe.version } : {}),
      serverVersion: server?.version ?? 0,
      takenAt,
      schemas: await q(Q.SQL_SCHEMAS, [excluded]),
      extensions: await q(Q.SQL_EXTENSIONS),
      relations: await q(Q.SQL_RELATIONS, [excluded]),
      columns: await q(Q.SQL_COLUMNS, [excluded]),
      indexes: await q(Q.SQL_INDEXES, [excluded]),
      constraints: await q(Q.SQL_CONSTRAINTS, [excluded]),
      functions: await q(Q.SQL_FUNCTIONS, [excluded]),
      triggers: await q(Q.SQL_TRIGGERS),
      sequences: await q(Q.SQL_SEQUENCES),
      dependencies: await q(Q.SQL_DEPENDENCIES),
    };
    await client.query('COMMIT');
    return { raw, cost: { durationMs: Math.round((performance.now() - started) * 10) / 10, queries, rowsRead } };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** Reads a full snapshot of the database `client` is connected to (built in slices: see buildSnapshotAsync). */
export async function readSnapshot(client: pg.ClientBase, opts: ReadSnapshotOptions = {}): Promise<CatalogSnapshot> {
  const { raw, cost } = await readRawCatalog(client, opts);
  return buildSnapshotAsync(raw, cost);
}

interface RelInfo { key: ObjectKey; schema: string; name: string; relkind: string; columns: ColumnInfo[]; attnames: Map<number, string> }

function toColumn(c: RawColumn): ColumnInfo {
  return {
    name: c.name,
    type: c.type,
    notNull: c.not_null,
    default: c.default,
    identity: (c.identity === 'a' || c.identity === 'd' ? c.identity : ''),
    generated: (c.generated === 's' || c.generated === 'v' ? c.generated : ''),
    collation: c.collation,
  };
}

function relKindToKey(relkind: string): 'table' | 'view' | 'matview' | 'sequence' | 'index' | undefined {
  switch (relkind) {
    case 'r': case 'p': case 'f': return 'table';
    case 'v': return 'view';
    case 'm': return 'matview';
    case 'S': return 'sequence';
    case 'i': case 'I': return 'index';
    default: return undefined;
  }
}

/** Rows per page of a catalog query (see readRawCatalog). */
const FETCH_ROWS = 2000;
/** Building yields to the event loop after this much work (see buildSnapshotAsync). */
const SLICE_MS = 8;
/** Work items between two looks at the clock. */
const CHECK_EVERY = 128;

/** Turns raw catalog rows into a snapshot: canonical definitions, hashes, dependency edges by key (pure, synchronous). */
export function buildSnapshot(raw: RawCatalog, cost: SnapshotCost = { durationMs: 0, queries: 0, rowsRead: 0 }): CatalogSnapshot {
  return runAll(buildSteps(raw, cost));
}

/**
 * buildSnapshot in slices of about SLICE_MS, yielding to the event loop (setImmediate) between them: on
 * 5,000 tables the build is most of a second of CPU, which would otherwise stall every proxy session.
 * Same result as buildSnapshot.
 */
export async function buildSnapshotAsync(raw: RawCatalog, cost: SnapshotCost = { durationMs: 0, queries: 0, rowsRead: 0 }, sliceMs = SLICE_MS): Promise<CatalogSnapshot> {
  return runInSlices(buildSteps(raw, cost), sliceMs);
}

/** The build as a generator: it yields every CHECK_EVERY work items, where a driver may pause. */
function* buildSteps(raw: RawCatalog, cost: SnapshotCost): Generator<void, CatalogSnapshot> {
  let work = 0;
  const objects: CatalogObject[] = [];
  const push = <T extends Omit<CatalogObject, 'hash'>>(o: T): void => {
    objects.push({ ...o, hash: objectHash(o.kind, o.definition) } as unknown as CatalogObject);
  };

  for (const s of raw.schemas) push({ kind: 'schema', key: schemaKey(s.name), schema: s.name, name: s.name, definition: `SCHEMA ${s.name}` });
  for (const x of raw.extensions) {
    push({ kind: 'extension', key: extensionKey(x.name), schema: x.schema, name: x.name, version: x.version, definition: `EXTENSION ${x.name} VERSION ${x.version} SCHEMA ${x.schema}` });
  }

  const columnsByRel = new Map<string, ColumnInfo[]>();
  const attnamesByRel = new Map<string, Map<number, string>>();
  for (const c of raw.columns) {
    if (++work % CHECK_EVERY === 0) yield;
    const id = oidOf(c.relid);
    let list = columnsByRel.get(id);
    if (!list) columnsByRel.set(id, (list = []));
    list.push(toColumn(c));
    let names = attnamesByRel.get(id);
    if (!names) attnamesByRel.set(id, (names = new Map()));
    names.set(Number(c.attnum), c.name);
  }

  // Every relation-like object by OID (tables, views, sequences, then indexes): dependency rows are mapped through it.
  const rels = new Map<string, RelInfo>();
  const sequences = new Map(raw.sequences.map((s) => [oidOf(s.relid), s]));
  const seqRows: { rel: RelInfo; seq: RawSequence | undefined }[] = [];
  for (const r of raw.relations) {
    if (++work % CHECK_EVERY === 0) yield;
    const k = relKindToKey(r.relkind);
    if (!k) continue;
    const id = oidOf(r.oid);
    const columns = columnsByRel.get(id) ?? [];
    const rel: RelInfo = { key: relationKey(k, r.schema, r.name), schema: r.schema, name: r.name, relkind: r.relkind, columns, attnames: attnamesByRel.get(id) ?? new Map() };
    rels.set(id, rel);
    const stats: RelationStats = {
      rowEstimate: r.reltuples === null || r.reltuples < 0 ? null : r.reltuples,
      totalBytes: Number(r.total_bytes ?? 0),
      lastVacuum: iso(r.last_vacuum),
      lastAutovacuum: iso(r.last_autovacuum),
      lastAnalyze: iso(r.last_analyze),
      lastAutoanalyze: iso(r.last_autoanalyze),
    };
    if (k === 'table') {
      const relkind = r.relkind as 'r' | 'p' | 'f';
      const definition = tableDefinition({
        schema: r.schema, name: r.name, relkind, persistence: r.persistence, columns,
        partitionKey: r.partkey, partitionBound: r.partbound, parents: r.parents, options: r.options,
      });
      push({ kind: 'table', key: rel.key, schema: r.schema, name: r.name, relkind, columns, stats, definition });
    } else if (k === 'view' || k === 'matview') {
      const viewdef = (r.viewdef ?? '').trim();
      const viewStats = k === 'view' ? { ...stats, rowEstimate: null, totalBytes: 0 } : stats;
      push({ kind: k, key: rel.key, schema: r.schema, name: r.name, columns, viewdef, stats: viewStats, definition: viewDefinition(k, r.schema, r.name, columns, viewdef) });
    } else if (k === 'sequence') {
      seqRows.push({ rel, seq: sequences.get(id) });
    }
  }
  for (const x of raw.indexes) {
    if (++work % CHECK_EVERY === 0) yield;
    const table = rels.get(oidOf(x.relid));
    if (!table) continue; // an index of an excluded relation (extension member, system schema)
    const key = relationKey('index', x.schema, x.name);
    rels.set(oidOf(x.oid), { key, schema: x.schema, name: x.name, relkind: 'i', columns: [], attnames: new Map() });
    const definition = x.is_valid ? x.def : `${x.def}\n-- INVALID (a failed CREATE INDEX CONCURRENTLY)`;
    push({ kind: 'index', key, schema: x.schema, name: x.name, table: `${table.schema}.${table.name}`, unique: x.is_unique, primary: x.is_primary, valid: x.is_valid, totalBytes: Number(x.bytes), definition });
  }

  const funcs = new Map<string, ObjectKey>();
  for (const f of raw.functions) {
    if (++work % CHECK_EVERY === 0) yield;
    const key = functionKey(f.schema, f.name, f.args);
    funcs.set(oidOf(f.oid), key);
    push({ kind: 'function', key, schema: f.schema, name: f.name, args: f.args, language: f.language, prokind: f.prokind as 'f', definition: f.def.trim() });
  }

  const constraints = new Map<string, { key: ObjectKey; type: string }>();
  for (const c of raw.constraints) {
    if (++work % CHECK_EVERY === 0) yield;
    const table = rels.get(oidOf(c.relid));
    if (!table) continue;
    const key = constraintKey(table.schema, table.name, c.name);
    constraints.set(oidOf(c.oid), { key, type: c.type });
    const ref = c.type === 'f' ? rels.get(oidOf(c.frelid)) : undefined;
    push({
      kind: 'constraint', key, schema: table.schema, name: c.name, table: `${table.schema}.${table.name}`, type: c.type as ConstraintType,
      references: ref ? `${ref.schema}.${ref.name}` : null, definition: `CONSTRAINT ${c.name} ON ${table.schema}.${table.name}\n${c.def}`,
    });
  }

  const triggers = new Map<string, ObjectKey>();
  for (const t of raw.triggers) {
    if (++work % CHECK_EVERY === 0) yield;
    const table = rels.get(oidOf(t.relid));
    if (!table) continue;
    const key = triggerKey(table.schema, table.name, t.name);
    triggers.set(oidOf(t.oid), key);
    const definition = t.enabled === 'O' ? t.def : `${t.def}\n-- ENABLED STATE ${t.enabled}`;
    push({ kind: 'trigger', key, schema: table.schema, name: t.name, table: `${table.schema}.${table.name}`, function: funcs.get(oidOf(t.foid)) ?? `function:?${oidOf(t.foid)}`, enabled: t.enabled, definition });
  }

  const dependencies = yield* buildEdges(raw.dependencies, rels, funcs, constraints, triggers);

  const sequenceOwners = new Map<ObjectKey, DependencyEdge>();
  for (const e of dependencies) if (e.via === 'sequence' && e.column !== undefined) sequenceOwners.set(e.dependent, e);
  for (const { rel, seq } of seqRows) {
    if (++work % CHECK_EVERY === 0) yield;
    const owner = sequenceOwners.get(rel.key);
    const ownedBy = owner ? `${owner.referenced.slice(owner.referenced.indexOf(':') + 1)}.${owner.column}` : null;
    const body = seq
      ? `AS ${seq.type} START ${seq.start} INCREMENT ${seq.increment} MINVALUE ${seq.min} MAXVALUE ${seq.max} CACHE ${seq.cache}${seq.cycle ? ' CYCLE' : ''}`
      : '';
    const definition = `SEQUENCE ${rel.schema}.${rel.name} ${body}${ownedBy ? `\nOWNED BY ${ownedBy}` : ''}`;
    push({ kind: 'sequence', key: rel.key, schema: rel.schema, name: rel.name, ownedBy, definition });
  }

  yield;
  objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  yield;
  const schemaHash = schemaHashOf(objects);
  yield;
  return {
    format: SNAPSHOT_FORMAT,
    database: raw.database,
    serverVersion: raw.serverVersion,
    takenAt: raw.takenAt,
    schemaHash,
    objects,
    dependencies,
    cost,
    ...(raw.catalogVersion ? { catalogVersion: raw.catalogVersion } : {}),
    readMode: 'full',
  };
}

/** The catalog fingerprint alone (one cheap query): equal to the last snapshot's means no definition changed. */
export async function readCatalogVersion(client: pg.ClientBase): Promise<string> {
  const res = await client.query<{ version: string }>(Q.SQL_CATALOG_VERSION);
  return res.rows[0]?.version ?? '';
}

export interface RawStats {
  relations: RawRelation[];
  indexes: { schema: string; name: string; bytes: Num }[];
  takenAt: string;
}

/** Statistics and sizes only: what changes while the definitions do not (the refresh fast path). */
export async function readStats(client: pg.ClientBase, opts: ReadSnapshotOptions = {}): Promise<{ raw: RawStats; cost: SnapshotCost }> {
  const started = performance.now();
  const takenAt = new Date().toISOString();
  const excluded = [...ALWAYS_EXCLUDED_SCHEMAS, ...(opts.excludeSchemas ?? [])];
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  try {
    await client.query(`SELECT set_config('search_path', 'pg_catalog', true), set_config('statement_timeout', $1, true)`, [String(opts.timeoutMs ?? 30_000)]);
    const relations = (await client.query<RawRelation>({ text: Q.SQL_RELATION_STATS, values: [excluded], rows: FETCH_ROWS } as pg.QueryConfig)).rows;
    const indexes = (await client.query<{ schema: string; name: string; bytes: Num }>({ text: Q.SQL_INDEX_SIZES, values: [excluded], rows: FETCH_ROWS } as pg.QueryConfig)).rows;
    await client.query('COMMIT');
    return { raw: { relations, indexes, takenAt }, cost: { durationMs: Math.round((performance.now() - started) * 10) / 10, queries: 2, rowsRead: relations.length + indexes.length } };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

/** A copy of `prev` with fresh statistics and sizes (pure); definitions, hashes and dependencies are kept. */
export function withFreshStats(prev: CatalogSnapshot, raw: RawStats, cost: SnapshotCost, catalogVersion: string): CatalogSnapshot {
  const rel = new Map(raw.relations.map((r) => [`${r.schema}.${r.name}`, r]));
  const idx = new Map(raw.indexes.map((r) => [`${r.schema}.${r.name}`, Number(r.bytes)]));
  const objects = prev.objects.map((o): CatalogObject => {
    if (o.kind === 'table' || o.kind === 'view' || o.kind === 'matview') {
      const r = rel.get(`${o.schema}.${o.name}`);
      if (!r) return o;
      const stats: RelationStats = {
        rowEstimate: o.kind === 'view' || r.reltuples === null || r.reltuples < 0 ? null : r.reltuples,
        totalBytes: o.kind === 'view' ? 0 : Number(r.total_bytes ?? 0),
        lastVacuum: iso(r.last_vacuum),
        lastAutovacuum: iso(r.last_autovacuum),
        lastAnalyze: iso(r.last_analyze),
        lastAutoanalyze: iso(r.last_autoanalyze),
      };
      return { ...o, stats };
    }
    if (o.kind === 'index') {
      const bytes = idx.get(`${o.schema}.${o.name}`);
      return bytes === undefined ? o : { ...o, totalBytes: bytes };
    }
    return o;
  });
  return { ...prev, takenAt: raw.takenAt, objects, cost, catalogVersion, readMode: 'stats' };
}

function* buildEdges(
  rows: readonly RawDependency[],
  rels: Map<string, RelInfo>,
  funcs: Map<string, ObjectKey>,
  constraints: Map<string, { key: ObjectKey; type: string }>,
  triggers: Map<string, ObjectKey>,
): Generator<void, DependencyEdge[]> {
  const out = new Map<string, DependencyEdge>();
  const columnName = (rel: RelInfo, attnum: number): string | undefined => (attnum > 0 ? rel.attnames.get(Number(attnum)) : undefined);
  let work = 0;
  for (const d of rows) {
    if (++work % CHECK_EVERY === 0) yield;
    // What is depended on.
    let referenced: ObjectKey | undefined;
    let column: string | undefined;
    if (d.refcls === 'pg_class') {
      const rel = rels.get(oidOf(d.refobjid));
      if (!rel) continue;
      referenced = rel.key;
      column = d.refobjsubid > 0 ? columnName(rel, d.refobjsubid) : undefined;
    } else if (d.refcls === 'pg_proc') {
      referenced = funcs.get(oidOf(d.refobjid));
    }
    if (!referenced) continue;
    // Who depends on it.
    let dependent: ObjectKey | undefined;
    let via: DependencyVia | undefined;
    switch (d.cls) {
      case 'pg_rewrite': {
        const view = rels.get(oidOf(d.rule_rel));
        dependent = view?.key;
        via = 'view';
        break;
      }
      case 'pg_constraint': {
        const c = constraints.get(oidOf(d.objid));
        dependent = c?.key;
        via = c?.type === 'f' ? 'foreign-key' : 'constraint';
        break;
      }
      case 'pg_trigger':
        dependent = triggers.get(oidOf(d.objid));
        via = 'trigger';
        break;
      case 'pg_attrdef': {
        const rel = rels.get(oidOf(d.def_rel));
        const col = rel && d.def_col !== null ? columnName(rel, d.def_col) : undefined;
        // A default always depends on its own column: that edge says nothing, keep only the ones on other objects.
        dependent = rel && col && rel.key !== referenced ? columnKey(rel.schema, rel.name, col) : undefined;
        via = 'default';
        break;
      }
      case 'pg_class': {
        const rel = rels.get(oidOf(d.objid));
        dependent = rel?.key;
        via = rel?.relkind === 'i' ? 'index' : rel?.relkind === 'S' ? 'sequence' : 'relation';
        break;
      }
      case 'pg_proc':
        dependent = funcs.get(oidOf(d.objid));
        via = 'function';
        break;
      default:
        break;
    }
    if (!dependent || !via || dependent === referenced) continue;
    const deptype = d.deptype === 'n' ? 'n' : 'a';
    const edge: DependencyEdge = column === undefined ? { dependent, referenced, via, deptype } : { dependent, referenced, column, via, deptype };
    const id = `${dependent}\0${referenced}\0${column ?? ''}`;
    const prev = out.get(id);
    if (!prev || (prev.deptype === 'a' && deptype === 'n')) out.set(id, edge);
  }
  // Sort keys computed once (not in the comparator): this runs over tens of thousands of edges.
  yield;
  const keyed = [...out.values()].map((e) => ({ e, k: `${e.referenced}\0${e.column ?? ''}\0${e.dependent}` }));
  yield;
  keyed.sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  return keyed.map((x) => x.e);
}
