/**
 * The analyzer's output contract: what pgairlock knows about one SQL statement.
 * Produced by pure functions over libpg_query's AST; consumed by policy, audit, approvals, MCP.
 * Positions are given both as UTF-8 byte offsets (libpg_query's unit) and as 0-based character
 * offsets (what an ErrorResponse `P` field and editors want, after +1).
 */

export type StatementKind = 'read' | 'write' | 'ddl' | 'dcl' | 'tcl' | 'session' | 'utility';

/** The eight table-level lock modes, weakest first (PostgreSQL docs, "Explicit Locking", 13.3.1). */
export const LOCK_MODES = [
  'AccessShareLock',
  'RowShareLock',
  'RowExclusiveLock',
  'ShareUpdateExclusiveLock',
  'ShareLock',
  'ShareRowExclusiveLock',
  'ExclusiveLock',
  'AccessExclusiveLock',
] as const;
export type LockMode = (typeof LOCK_MODES)[number];
export const lockRank = (m: LockMode): number => LOCK_MODES.indexOf(m);

export interface SourceLocation {
  /** UTF-8 byte offset into the analysed text. */
  readonly byte: number;
  /** 0-based character (UTF-16 code unit) offset into the analysed text. */
  readonly char: number;
}

/** A relation as written in the SQL: schema only when the text qualified it. */
export interface RelationName {
  readonly schema?: string;
  readonly name: string;
}

export type RelationRole =
  | 'read' // SELECT from, joined, subquery, COPY TO
  | 'write' // INSERT/UPDATE/DELETE/MERGE target, COPY FROM, SELECT INTO / CTAS target
  | 'create'
  | 'alter'
  | 'drop'
  | 'truncate'
  | 'lock' // LOCK TABLE, VACUUM, CLUSTER, REINDEX ...
  | 'reference'; // referenced by a foreign key, a view definition, an index, a trigger

export interface RelationUse {
  readonly relation: RelationName;
  readonly role: RelationRole;
  /** Columns named for this relation where the text tells (e.g. UPDATE SET cols, ALTER COLUMN). */
  readonly columns?: readonly string[];
}

export interface LockFact {
  readonly relation: RelationName;
  readonly mode: LockMode;
  /** The whole table (and its indexes) is rewritten under the lock. */
  readonly rewrite: boolean;
  /** The whole table is scanned under the lock (e.g. validating a constraint, SET NOT NULL). */
  readonly scan: boolean;
  /** Why this lock, in words (e.g. "ALTER TABLE ... ALTER COLUMN TYPE rewrites the table"). */
  readonly reason: string;
}

export type Severity = 'error' | 'warning' | 'info';

export interface Finding {
  /** Stable kebab-case id (docs/rules.md), e.g. create-index-without-concurrently. */
  readonly rule: string;
  readonly severity: Severity;
  readonly message: string;
  /** Why it is dangerous. */
  readonly why: string;
  /** The safe alternative. */
  readonly fix: string;
  readonly location?: SourceLocation;
}

export interface FunctionUse {
  readonly schema?: string;
  readonly name: string;
}

export interface SettingChange {
  /** Lower-cased GUC name, e.g. lock_timeout, search_path, role. */
  readonly name: string;
  /** New value as text; undefined for RESET / SET ... TO DEFAULT. */
  readonly value?: string;
  /** SET LOCAL (lasts until the end of the transaction). */
  readonly local: boolean;
}

export type TransactionEffect = 'begin' | 'commit' | 'rollback' | 'savepoint' | 'release' | 'rollback-to' | 'prepare' | 'commit-prepared' | 'rollback-prepared';

export interface StatementFacts {
  /** Position of this statement in the analysed text (0-based). */
  readonly index: number;
  /** Byte range [start, end) in the UTF-8 text, and the statement's own text. */
  readonly byteStart: number;
  readonly byteEnd: number;
  readonly text: string;
  readonly location: SourceLocation;
  /** libpg_query node name, e.g. SelectStmt, AlterTableStmt. */
  readonly node: string;
  readonly kind: StatementKind;
  /** The command tag the server will answer with (e.g. SELECT, INSERT, ALTER TABLE). */
  readonly commandTag: string;
  readonly relations: readonly RelationUse[];
  readonly functions: readonly FunctionUse[];
  readonly types: readonly string[];
  readonly schemas: readonly string[];
  readonly databases: readonly string[];
  readonly roles: readonly string[];
  readonly locks: readonly LockFact[];
  /** Non-empty when the statement could lose data; each entry says how. */
  readonly destructive: readonly string[];
  /** Non-empty when the effect cannot be known from the text; each entry says why. */
  readonly opaque: readonly string[];
  /** Non-empty for escapes and server-level actions; each entry says which. */
  readonly privileged: readonly string[];
  readonly setting?: SettingChange;
  readonly transaction?: TransactionEffect;
  /** PREPARE name AS <inner>: the inner statement's facts travel with the name. */
  readonly prepare?: { readonly name: string; readonly inner: StatementFacts };
  /** EXECUTE name: resolved by the session layer against its PREPAREs. */
  readonly execute?: { readonly name: string };
  /** Statements inside: PL/pgSQL bodies (DO, CREATE FUNCTION), EXPLAIN ANALYZE's target, rule actions. */
  readonly nested: readonly StatementFacts[];
  readonly findings: readonly Finding[];
  /** libpg_query fingerprint (hex) and normalized text ($n for constants). */
  readonly fingerprint: string;
  readonly normalized: string;
  /** A statement that undoes this one, where the analyzer can give one. */
  readonly inverse?: string;
  /**
   * Effects the command tag does not show, in words: DML inside WITH, SELECT INTO, EXPLAIN ANALYZE
   * executing its statement, rules and triggers created (future statements will also run something).
   * Absent when there are none.
   */
  readonly hidden?: readonly string[];
}

export interface ParseFailure {
  readonly message: string;
  /** Where the parser stopped, if it said. */
  readonly location?: SourceLocation;
}

export type Analysis =
  | { readonly ok: true; readonly sql: string; readonly statements: readonly StatementFacts[] }
  | { readonly ok: false; readonly sql: string; readonly error: ParseFailure };

/** What an analysis of a script remembers between statements. */
export interface ScriptContext {
  inTransactionBlock: boolean;
  /** lock_timeout has been set (SET or SET LOCAL) earlier in the script or session. */
  lockTimeoutSet: boolean;
  /** Relations created earlier in the same script: new and empty, so locking them is harmless. */
  readonly createdRelations: Set<string>;
  /** lock_timeout was set with SET LOCAL: it ends with the transaction block. */
  lockTimeoutLocal?: boolean;
}

export interface AnalyzeOptions {
  /** server_version_num of the target, e.g. 150000 (default 180000). */
  readonly serverVersion?: number;
  /** Carried-in context (the proxy passes the session's). */
  readonly context?: ScriptContext;
}
