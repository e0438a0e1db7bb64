/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's JSON AST is walked dynamically (see collector.ts) */
/**
 * Which table-level lock a statement takes, and whether it rewrites or scans the table under it.
 *
 * Sources (PostgreSQL documentation, versions 13 to 18):
 * - "Explicit Locking", 13.3.1 Table-Level Locks: https://www.postgresql.org/docs/current/explicit-locking.html
 *   (which command takes which of the eight modes).
 * - ALTER TABLE, "Description" and "Notes": https://www.postgresql.org/docs/current/sql-altertable.html
 *   (each sub-command's lock level; "ACCESS EXCLUSIVE unless explicitly noted"; which forms rewrite or scan).
 * - CREATE INDEX https://www.postgresql.org/docs/current/sql-createindex.html, REINDEX
 *   https://www.postgresql.org/docs/current/sql-reindex.html, CLUSTER, VACUUM, REFRESH MATERIALIZED VIEW,
 *   LOCK, CREATE TRIGGER, CREATE RULE, CREATE POLICY, COMMENT, CREATE STATISTICS reference pages.
 * - Release notes: 11 (ADD COLUMN with a non-volatile DEFAULT no longer rewrites), 12 (SET NOT NULL skips the
 *   scan when a valid CHECK constraint proves it; REINDEX CONCURRENTLY; ATTACH PARTITION takes only SHARE UPDATE
 *   EXCLUSIVE on the parent), 14 (DETACH PARTITION CONCURRENTLY), 15 (SET ACCESS METHOD), 17 (SET EXPRESSION),
 *   18 (VIRTUAL generated columns, NOT ENFORCED constraints, NOT NULL ... NOT VALID).
 * Each claim below was also checked against a real server by reading pg_locks inside a transaction
 * (test/analyzer/facts-locks-pg.test.ts).
 */
import { isKnownSafeFunction } from './functions.js';
import { LOCK_MODES, type LockMode } from './types.js';

export interface LockSpec {
  readonly mode: LockMode;
  readonly rewrite: boolean;
  readonly scan: boolean;
  readonly reason: string;
}

const spec = (mode: LockMode, reason: string, rewrite = false, scan = false): LockSpec => ({ mode, rewrite, scan, reason });

/** Built-in functions that are VOLATILE: a DEFAULT calling one is evaluated per row, so ADD COLUMN rewrites. */
const VOLATILE_BUILTINS = new Set([
  'random', 'random_normal', 'clock_timestamp', 'timeofday', 'gen_random_uuid', 'uuidv4', 'uuidv7',
  'nextval', 'setval', 'txid_current', 'pg_current_xact_id', 'setseed',
]);

/**
 * Whether an expression may be volatile: a call of a volatile built-in, or of any function the analyzer
 * does not know (its volatility lives in the catalog, not in the text). Sub-queries are not allowed in DEFAULTs.
 */
export function mayBeVolatile(expr: unknown): boolean {
  let found = false;
  const visit = (v: unknown, depth: number): void => {
    if (found || depth > 200 || v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) { for (const x of v) visit(x, depth + 1); return; }
    const o = v as Record<string, any>;
    const call = o.FuncCall;
    if (call) {
      const names: any[] = call.funcname ?? [];
      const name = names[names.length - 1]?.String?.sval as string | undefined;
      const schema = names.length > 1 ? (names[names.length - 2]?.String?.sval as string | undefined) : undefined;
      if (!name || VOLATILE_BUILTINS.has(name) || !isKnownSafeFunction(schema, name)) { found = true; return; }
    }
    for (const k in o) visit(o[k], depth + 1);
  };
  visit(expr, 0);
  return found;
}

const SERIAL_TYPES = new Set(['serial', 'serial4', 'bigserial', 'serial8', 'smallserial', 'serial2']);

/** Storage parameters whose change takes only SHARE UPDATE EXCLUSIVE (ALTER TABLE docs, SET ( storage_parameter )). */
const LIGHT_RELOPTIONS = new Set([
  'fillfactor', 'toast_tuple_target', 'parallel_workers', 'vacuum_index_cleanup', 'vacuum_truncate',
  'log_autovacuum_min_duration', 'autovacuum_enabled',
]);
const isLightReloption = (name: string): boolean =>
  LIGHT_RELOPTIONS.has(name) || name.startsWith('autovacuum_') || name.startsWith('toast.');

/** ADD COLUMN: rewrite depends on the default, generated and identity clauses, and on the version. */
function addColumnSpec(colDef: any, version: number): LockSpec {
  const typeNames: any[] = colDef?.typeName?.names ?? [];
  const typeName = typeNames[typeNames.length - 1]?.String?.sval as string | undefined;
  if (typeName && SERIAL_TYPES.has(typeName)) {
    return spec('AccessExclusiveLock', 'ALTER TABLE ADD COLUMN of a serial type: its nextval() default is volatile, the table is rewritten', true);
  }
  let rewrite = false;
  let scan = false;
  let why = 'ALTER TABLE ADD COLUMN';
  for (const c of (colDef?.constraints ?? []) as any[]) {
    const con = c.Constraint;
    if (!con) continue;
    switch (con.contype) {
      case 'CONSTR_DEFAULT':
        if (version < 110000) { rewrite = true; why += ' with a DEFAULT rewrites the table before PostgreSQL 11'; }
        else if (mayBeVolatile(con.raw_expr)) { rewrite = true; why += ' with a volatile (or unknown) DEFAULT rewrites the table'; }
        break;
      case 'CONSTR_IDENTITY':
        rewrite = true; why += ' GENERATED AS IDENTITY fills every row: the table is rewritten'; break;
      case 'CONSTR_GENERATED':
        // PostgreSQL 18 adds VIRTUAL (computed on read); STORED (the only kind before 18) rewrites.
        if (con.generated_kind === 'v') why += ' GENERATED ... VIRTUAL: no rewrite';
        else { rewrite = true; why += ' GENERATED ... STORED computes every row: the table is rewritten'; }
        break;
      case 'CONSTR_CHECK':
        scan = true; why += ' with a CHECK constraint checks every row'; break;
      case 'CONSTR_PRIMARY': case 'CONSTR_UNIQUE':
        scan = true; why += ' with a UNIQUE/PRIMARY KEY builds an index'; break;
      default: break;
    }
  }
  if (!rewrite && !scan) why += ' (no rewrite: catalog-only change)';
  return spec('AccessExclusiveLock', why, rewrite, scan);
}

/** Lock facts for one ALTER TABLE sub-command, on the altered relation. */
export function alterTableCmdSpec(cmd: any, version: number): LockSpec {
  const t: string = cmd.subtype;
  switch (t) {
    case 'AT_AddColumn':
    case 'AT_AddColumnToView':
      return addColumnSpec(cmd.def?.ColumnDef, version);
    case 'AT_DropColumn':
      return spec('AccessExclusiveLock', 'ALTER TABLE DROP COLUMN (catalog-only: no rewrite)');
    case 'AT_AlterColumnType':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN TYPE rewrites the table and its indexes unless the old type is binary-coercible to the new one (e.g. varchar(n) to text)', true);
    case 'AT_ColumnDefault':
    case 'AT_CookedColumnDefault':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN SET/DROP DEFAULT (catalog-only)');
    case 'AT_SetNotNull':
      return version >= 120000
        ? spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN SET NOT NULL scans the whole table unless a valid CHECK (col IS NOT NULL) constraint already proves it (PostgreSQL 12+)', false, true)
        : spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN SET NOT NULL scans the whole table', false, true);
    case 'AT_DropNotNull':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN DROP NOT NULL (catalog-only)');
    case 'AT_SetExpression':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN SET EXPRESSION recomputes a stored generated column: the table is rewritten (PostgreSQL 17+)', true);
    case 'AT_DropExpression':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN DROP EXPRESSION (catalog-only, PostgreSQL 13+)');
    case 'AT_SetStatistics':
      return spec('ShareUpdateExclusiveLock', 'ALTER TABLE ALTER COLUMN SET STATISTICS');
    case 'AT_SetOptions':
    case 'AT_ResetOptions':
      return spec('ShareUpdateExclusiveLock', 'ALTER TABLE ALTER COLUMN SET/RESET (attribute_option)');
    case 'AT_SetStorage':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN SET STORAGE (affects future rows only)');
    case 'AT_SetCompression':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN SET COMPRESSION (affects future rows only)');
    case 'AT_AddIdentity':
    case 'AT_SetIdentity':
    case 'AT_DropIdentity':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER COLUMN ... IDENTITY');
    case 'AT_AlterColumnGenericOptions':
    case 'AT_GenericOptions':
      return spec('AccessExclusiveLock', 'ALTER ... OPTIONS (foreign table)');
    case 'AT_AddConstraint':
    case 'AT_ReAddConstraint':
      return addConstraintSpec(cmd.def?.Constraint);
    case 'AT_AddIndex':
    case 'AT_ReAddIndex':
      return spec('AccessExclusiveLock', 'ALTER TABLE ADD CONSTRAINT builds an index', false, true);
    case 'AT_AddIndexConstraint':
      return spec('AccessExclusiveLock', 'ALTER TABLE ADD CONSTRAINT ... USING INDEX (no index build)');
    case 'AT_AlterConstraint':
      return spec('AccessExclusiveLock', 'ALTER TABLE ALTER CONSTRAINT');
    case 'AT_ValidateConstraint':
      return spec('ShareUpdateExclusiveLock', 'ALTER TABLE VALIDATE CONSTRAINT scans the table under SHARE UPDATE EXCLUSIVE (reads and writes continue)', false, true);
    case 'AT_DropConstraint':
      return spec('AccessExclusiveLock', 'ALTER TABLE DROP CONSTRAINT');
    case 'AT_ChangeOwner':
      return spec('AccessExclusiveLock', 'ALTER ... OWNER TO');
    case 'AT_ClusterOn':
    case 'AT_DropCluster':
      return spec('ShareUpdateExclusiveLock', 'ALTER TABLE CLUSTER ON / SET WITHOUT CLUSTER');
    case 'AT_SetLogged':
    case 'AT_SetUnLogged':
      return spec('AccessExclusiveLock', 'ALTER TABLE SET LOGGED/UNLOGGED rewrites the table', true);
    case 'AT_DropOids':
      return spec('AccessExclusiveLock', 'ALTER TABLE SET WITHOUT OIDS (no-op since PostgreSQL 12)');
    case 'AT_SetAccessMethod':
      return spec('AccessExclusiveLock', 'ALTER TABLE SET ACCESS METHOD rewrites the table (PostgreSQL 15+)', true);
    case 'AT_SetTableSpace':
      return spec('AccessExclusiveLock', 'SET TABLESPACE copies the whole relation to the new tablespace', true);
    case 'AT_SetRelOptions':
    case 'AT_ResetRelOptions':
    case 'AT_ReplaceRelOptions': {
      const names = ((cmd.def?.List?.items ?? []) as any[]).map((d) => {
        const de = d.DefElem;
        return de?.defnamespace ? `${de.defnamespace}.${de.defname}` : (de?.defname as string | undefined) ?? '';
      });
      return names.length > 0 && names.every(isLightReloption)
        ? spec('ShareUpdateExclusiveLock', 'SET/RESET (storage_parameter) of fillfactor, autovacuum, toast or parallel_workers parameters')
        : spec('AccessExclusiveLock', 'SET/RESET (storage_parameter) of a parameter that needs ACCESS EXCLUSIVE');
    }
    case 'AT_EnableTrig': case 'AT_EnableAlwaysTrig': case 'AT_EnableReplicaTrig': case 'AT_DisableTrig':
    case 'AT_EnableTrigAll': case 'AT_DisableTrigAll': case 'AT_EnableTrigUser': case 'AT_DisableTrigUser':
      return spec('ShareRowExclusiveLock', 'ALTER TABLE ENABLE/DISABLE TRIGGER');
    case 'AT_EnableRule': case 'AT_EnableAlwaysRule': case 'AT_EnableReplicaRule': case 'AT_DisableRule':
      return spec('AccessExclusiveLock', 'ALTER TABLE ENABLE/DISABLE RULE');
    case 'AT_AddInherit':
    case 'AT_DropInherit':
      return spec('AccessExclusiveLock', 'ALTER TABLE [NO] INHERIT (the parent gets SHARE UPDATE EXCLUSIVE)');
    case 'AT_AddOf':
    case 'AT_DropOf':
      return spec('AccessExclusiveLock', 'ALTER TABLE [NOT] OF type');
    case 'AT_ReplicaIdentity':
      return spec('AccessExclusiveLock', 'ALTER TABLE REPLICA IDENTITY');
    case 'AT_EnableRowSecurity': case 'AT_DisableRowSecurity': case 'AT_ForceRowSecurity': case 'AT_NoForceRowSecurity':
      return spec('AccessExclusiveLock', 'ALTER TABLE ... ROW LEVEL SECURITY');
    case 'AT_AttachPartition':
      return version >= 120000
        ? spec('ShareUpdateExclusiveLock', 'ATTACH PARTITION takes SHARE UPDATE EXCLUSIVE on the parent (PostgreSQL 12+)')
        : spec('AccessExclusiveLock', 'ATTACH PARTITION takes ACCESS EXCLUSIVE on the parent before PostgreSQL 12');
    case 'AT_DetachPartition':
      if (cmd.def?.PartitionCmd?.concurrent) {
        return version >= 140000
          ? spec('ShareUpdateExclusiveLock', 'DETACH PARTITION CONCURRENTLY takes SHARE UPDATE EXCLUSIVE (PostgreSQL 14+; cannot run in a transaction block)')
          : spec('AccessExclusiveLock', 'DETACH PARTITION CONCURRENTLY does not exist before PostgreSQL 14: the server rejects it');
      }
      return spec('AccessExclusiveLock', 'DETACH PARTITION takes ACCESS EXCLUSIVE on the parent and the partition');
    case 'AT_DetachPartitionFinalize':
      return spec('ShareUpdateExclusiveLock', 'DETACH PARTITION ... FINALIZE (PostgreSQL 14+)');
    default:
      // ALTER TABLE docs: "An ACCESS EXCLUSIVE lock is acquired unless explicitly noted."
      return spec('AccessExclusiveLock', `ALTER TABLE ${t.slice(3)} (ACCESS EXCLUSIVE unless the docs say otherwise)`);
  }
}

/** ADD CONSTRAINT: FOREIGN KEY takes SHARE ROW EXCLUSIVE (on both tables), others ACCESS EXCLUSIVE. */
export function addConstraintSpec(con: any): LockSpec {
  const notValid = con?.skip_validation === true;
  // PostgreSQL 18: NOT ENFORCED constraints are never checked.
  const notEnforced = con?.is_enforced === false;
  switch (con?.contype) {
    case 'CONSTR_FOREIGN':
      return spec('ShareRowExclusiveLock',
        notValid || notEnforced
          ? 'ADD FOREIGN KEY ... NOT VALID: SHARE ROW EXCLUSIVE on both tables, no validation scan'
          : 'ADD FOREIGN KEY takes SHARE ROW EXCLUSIVE on both tables and scans the table to validate it',
        false, !(notValid || notEnforced));
    case 'CONSTR_CHECK':
      return spec('AccessExclusiveLock',
        notValid || notEnforced ? 'ADD CHECK ... NOT VALID (no scan)' : 'ADD CHECK scans the whole table under ACCESS EXCLUSIVE',
        false, !(notValid || notEnforced));
    case 'CONSTR_NOTNULL':
      return spec('AccessExclusiveLock', notValid ? 'ADD NOT NULL ... NOT VALID (no scan, PostgreSQL 18+)' : 'ADD NOT NULL constraint scans the whole table', false, !notValid);
    case 'CONSTR_PRIMARY':
    case 'CONSTR_UNIQUE':
      return con.indexname
        ? spec('AccessExclusiveLock', 'ADD CONSTRAINT ... USING INDEX (no index build)')
        : spec('AccessExclusiveLock', 'ADD PRIMARY KEY/UNIQUE builds an index under ACCESS EXCLUSIVE (blocks reads and writes)', false, true);
    case 'CONSTR_EXCLUSION':
      return spec('AccessExclusiveLock', 'ADD EXCLUDE builds an index under ACCESS EXCLUSIVE', false, true);
    default:
      return spec('AccessExclusiveLock', 'ALTER TABLE ADD CONSTRAINT');
  }
}

/** Modes LOCK TABLE accepts, by libpg_query's numeric mode (lockdefs.h). */
// 0 = NoLock is never produced by the grammar; 1..8 are the modes in LOCK_MODES order.
export const LOCK_STMT_MODES: readonly LockMode[] = ['AccessShareLock', ...LOCK_MODES];

export { spec as lockSpec };
