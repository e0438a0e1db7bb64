/**
 * The catalog snapshot of one database: what pgairlock believes the live schema is.
 * Plain JSON-serialisable data (a snapshot is saved to files and compared across databases), so no
 * Maps, no Dates, no OIDs (OIDs differ between databases and would make every hash database-specific).
 */

/** The object kinds that carry a version hash. Columns are part of their relation's definition. */
export type ObjectKind =
  | 'schema'
  | 'extension'
  | 'table'
  | 'view'
  | 'matview'
  | 'sequence'
  | 'index'
  | 'constraint'
  | 'function'
  | 'trigger';

/**
 * Stable identity of an object, readable and equal across databases:
 * `table:public.orders`, `view:public.v`, `index:public.orders_pkey`, `sequence:public.s`,
 * `constraint:public.orders.orders_pkey` (constraints and triggers are named per table),
 * `trigger:public.orders.audit`, `function:public.f(integer, text)`, `schema:public`, `extension:pgcrypto`.
 * A column is addressed as `column:public.orders.email` in dependency edges only.
 */
export type ObjectKey = string;

export interface ColumnInfo {
  readonly name: string;
  /** format_type(): e.g. `bigint`, `character varying(40)`, `public.mood`. */
  readonly type: string;
  readonly notNull: boolean;
  /** Default expression as pg_get_expr() prints it, or null. */
  readonly default: string | null;
  /** '' none, 'a' GENERATED ALWAYS AS IDENTITY, 'd' BY DEFAULT. */
  readonly identity: '' | 'a' | 'd';
  /** '' none, 's' stored generated column (its expression is in `default`). */
  readonly generated: '' | 's' | 'v';
  /** Collation when it differs from the type's default, else null. */
  readonly collation: string | null;
}

/** Planner statistics and size: not part of any hash (they change all the time). */
export interface RelationStats {
  /** pg_class.reltuples; null when the relation was never vacuumed or analysed (reltuples = -1). */
  readonly rowEstimate: number | null;
  /** pg_total_relation_size(): heap + indexes + TOAST, bytes. */
  readonly totalBytes: number;
  readonly lastVacuum: string | null;
  readonly lastAutovacuum: string | null;
  readonly lastAnalyze: string | null;
  readonly lastAutoanalyze: string | null;
}

interface ObjectBase {
  readonly key: ObjectKey;
  readonly schema: string;
  readonly name: string;
  /** The canonical definition text the hash is computed over (see hash.ts); also what drift diffs line by line. */
  readonly definition: string;
  /** sha256 hex over `kind + "\n" + definition`. */
  readonly hash: string;
}

export interface SchemaObject extends ObjectBase { readonly kind: 'schema' }
export interface ExtensionObject extends ObjectBase { readonly kind: 'extension'; readonly version: string }

export interface TableObject extends ObjectBase {
  readonly kind: 'table';
  /** r ordinary, p partitioned, f foreign. */
  readonly relkind: 'r' | 'p' | 'f';
  readonly columns: readonly ColumnInfo[];
  readonly stats: RelationStats;
}

export interface ViewObject extends ObjectBase {
  readonly kind: 'view' | 'matview';
  readonly columns: readonly ColumnInfo[];
  /** pg_get_viewdef(oid, true) with search_path = pg_catalog (names schema-qualified). */
  readonly viewdef: string;
  /** Materialised views have storage; for plain views totalBytes is 0 and rowEstimate null. */
  readonly stats: RelationStats;
}

export interface SequenceObject extends ObjectBase {
  readonly kind: 'sequence';
  /** The column that owns the sequence (serial / identity), as `schema.table.column`. */
  readonly ownedBy: string | null;
}

export interface IndexObject extends ObjectBase {
  readonly kind: 'index';
  /** The indexed relation (`schema.name`). */
  readonly table: string;
  readonly unique: boolean;
  readonly primary: boolean;
  /** false after a failed CREATE INDEX CONCURRENTLY. */
  readonly valid: boolean;
  readonly totalBytes: number;
}

export type ConstraintType = 'p' | 'f' | 'u' | 'c' | 'x' | 't' | 'n';
export interface ConstraintObject extends ObjectBase {
  readonly kind: 'constraint';
  readonly table: string;
  readonly type: ConstraintType;
  /** The referenced table for a foreign key (`schema.name`). */
  readonly references: string | null;
}

export interface FunctionObject extends ObjectBase {
  readonly kind: 'function';
  /** pg_get_function_identity_arguments(), e.g. `a integer, b text`. */
  readonly args: string;
  readonly language: string;
  /** f function, p procedure, a aggregate, w window. */
  readonly prokind: 'f' | 'p' | 'a' | 'w';
}

export interface TriggerObject extends ObjectBase {
  readonly kind: 'trigger';
  readonly table: string;
  /** Key of the trigger function. */
  readonly function: ObjectKey;
  /** O origin (enabled), D disabled, R replica, A always. */
  readonly enabled: string;
}

export type CatalogObject =
  | SchemaObject
  | ExtensionObject
  | TableObject
  | ViewObject
  | SequenceObject
  | IndexObject
  | ConstraintObject
  | FunctionObject
  | TriggerObject;

/** How a dependent object uses what it depends on (from the catalog that recorded the pg_depend row). */
export type DependencyVia = 'view' | 'foreign-key' | 'constraint' | 'trigger' | 'index' | 'default' | 'sequence' | 'function' | 'relation';

/** One pg_depend edge, translated to object keys: `dependent` needs `referenced` (or one of its columns). */
export interface DependencyEdge {
  readonly dependent: ObjectKey;
  readonly referenced: ObjectKey;
  /** Set when the dependency is on one column of `referenced`. */
  readonly column?: string;
  readonly via: DependencyVia;
  /** pg_depend.deptype: n normal (DROP needs CASCADE), a auto (dropped along). */
  readonly deptype: 'n' | 'a';
}

/** What reading the snapshot cost, for the refresh metrics and docs/benchmarks.md. */
export interface SnapshotCost {
  readonly durationMs: number;
  readonly queries: number;
  readonly rowsRead: number;
}

export const SNAPSHOT_FORMAT = 'pgairlock.snapshot/1' as const;

export interface CatalogSnapshot {
  readonly format: typeof SNAPSHOT_FORMAT;
  readonly database: string;
  /** server_version_num, e.g. 150020. */
  readonly serverVersion: number;
  /** ISO time the catalog read started. */
  readonly takenAt: string;
  /** sha256 hex over every object's key and hash (see hash.ts). */
  readonly schemaHash: string;
  /** Every object, sorted by key. */
  readonly objects: readonly CatalogObject[];
  readonly dependencies: readonly DependencyEdge[];
  readonly cost: SnapshotCost;
  /** Fingerprint of the system catalogs when read (see SQL_CATALOG_VERSION); not part of any hash. */
  readonly catalogVersion?: string;
  /** 'full': definitions read; 'stats': definitions reused from the previous snapshot (catalogs unchanged), statistics re-read. */
  readonly readMode?: 'full' | 'stats';
}

/** A relation in the SQL, after search_path resolution. */
export interface QualifiedName {
  readonly schema: string;
  readonly name: string;
}
