import { as, hasOption, list, names, num, str, type Node } from './ast.js';
import { createdEarlier, display, type RuleFamily } from './family.js';
import type { ScriptContext } from '../types.js';

/**
 * missing-lock-timeout: a statement that needs a strong lock on an existing relation, with no
 * lock_timeout set earlier in the script or session (ScriptContext.lockTimeoutSet). While such a
 * statement waits for its lock (behind one long-running query), every later query on the relation
 * queues behind it: a lock queue outage. Lock modes: docs "Explicit Locking", table 13.2.
 */
export const timeoutRules: RuleFamily = {
  rules: [
    {
      id: 'missing-lock-timeout',
      severity: 'warning',
      title: 'Lock-heavy statement with no lock_timeout',
      why: 'A statement that needs a strong lock waits behind any long-running query on the table, and while it waits every other query on that table queues behind it: one slow SELECT turns a migration into an outage.',
      fix: "Set a lock timeout first (SET lock_timeout = '2s', or SET LOCAL inside the transaction) and retry the migration when it times out.",
      squawk: ['require-timeout-settings', 'require-lock-timeout'],
      strongMigrations: ['lock_timeout (Configuration: lock timeout)'],
    },
  ],
  nodes: ['AlterTableStmt', 'IndexStmt', 'DropStmt', 'TruncateStmt', 'RenameStmt', 'AlterObjectSchemaStmt', 'ClusterStmt', 'VacuumStmt', 'RefreshMatViewStmt', 'ReindexStmt', 'LockStmt', 'CreateTrigStmt', 'CreateStmt'],
  check(input, report) {
    if (input.context.lockTimeoutSet) return;
    const what = lockHeavy(input.stmt, input.context);
    if (what === undefined) return;
    report('missing-lock-timeout', undefined, {
      message: `${what} with no lock_timeout set: while it waits for its lock, every other query on the table queues behind it.`,
    });
  },
};

/** A description of the strong lock this statement takes on an existing relation, if any. */
function lockHeavy(stmt: Node, ctx: ScriptContext): string | undefined {
  const existing = (rv: unknown) => rv !== undefined && !createdEarlier(ctx, rv);
  const alter = as(stmt, 'AlterTableStmt');
  if (alter) {
    if (!existing(alter.relation)) {
      // A new table's new foreign key still takes SHARE ROW EXCLUSIVE on the (existing) referenced table.
      const refs = list(alter.cmds)
        .map((c) => as(as(c, 'AlterTableCmd')?.def, 'Constraint'))
        .filter((k) => k?.contype === 'CONSTR_FOREIGN' && existing(k.pktable))
        .map((k) => display(k?.pktable));
      return refs.length > 0 ? `Adding a foreign key takes a SHARE ROW EXCLUSIVE lock on ${refs.join(', ')}` : undefined;
    }
    const cmds = list(alter.cmds).map((c) => as(c, 'AlterTableCmd'));
    // DETACH PARTITION CONCURRENTLY (SHARE UPDATE EXCLUSIVE, two transactions) and VALIDATE CONSTRAINT
    // (SHARE UPDATE EXCLUSIVE) do not block readers or writers.
    const weak = cmds.every(
      (c) => c?.subtype === 'AT_ValidateConstraint' || (c?.subtype === 'AT_DetachPartition' && as(c.def, 'PartitionCmd')?.concurrent === true),
    );
    if (weak) return undefined;
    return `ALTER ${objectWord(str(alter.objtype))} ${display(alter.relation)} takes an ACCESS EXCLUSIVE (or SHARE ROW EXCLUSIVE) lock`;
  }
  const index = as(stmt, 'IndexStmt');
  if (index) {
    return index.concurrent !== true && existing(index.relation) ? `CREATE INDEX on ${display(index.relation)} takes a SHARE lock` : undefined;
  }
  const drop = as(stmt, 'DropStmt');
  if (drop) {
    const t = str(drop.removeType);
    if (t === 'OBJECT_INDEX' && drop.concurrent === true) return undefined;
    // Dropping only objects created earlier in the script locks nothing anyone else uses.
    const dropped = list(drop.objects).map((o) => names(as(o, 'List')?.items).join('.'));
    if (dropped.length > 0 && dropped.every((n) => ctx.createdRelations.has(n))) return undefined;
    if (t === 'OBJECT_TABLE' || t === 'OBJECT_INDEX' || t === 'OBJECT_VIEW' || t === 'OBJECT_MATVIEW' || t === 'OBJECT_TRIGGER') {
      return `DROP ${(t ?? '').slice('OBJECT_'.length)} takes an ACCESS EXCLUSIVE lock`;
    }
    return undefined;
  }
  const truncate = as(stmt, 'TruncateStmt');
  if (truncate) return list(truncate.relations).some((r) => existing(as(r, 'RangeVar'))) ? 'TRUNCATE takes an ACCESS EXCLUSIVE lock' : undefined;
  const rename = as(stmt, 'RenameStmt');
  if (rename && rename.relation !== undefined) return existing(rename.relation) ? `Renaming on ${display(rename.relation)} takes an ACCESS EXCLUSIVE lock` : undefined;
  const schema = as(stmt, 'AlterObjectSchemaStmt');
  if (schema && schema.relation !== undefined) return existing(schema.relation) ? `SET SCHEMA on ${display(schema.relation)} takes an ACCESS EXCLUSIVE lock` : undefined;
  const cluster = as(stmt, 'ClusterStmt');
  if (cluster) return cluster.relation === undefined || existing(cluster.relation) ? 'CLUSTER takes an ACCESS EXCLUSIVE lock' : undefined;
  const vacuum = as(stmt, 'VacuumStmt');
  if (vacuum && vacuum.is_vacuumcmd === true && hasOption(vacuum.options, 'full')) return 'VACUUM FULL takes an ACCESS EXCLUSIVE lock';
  const refresh = as(stmt, 'RefreshMatViewStmt');
  if (refresh && refresh.concurrent !== true && existing(refresh.relation)) return `REFRESH MATERIALIZED VIEW ${display(refresh.relation)} takes an ACCESS EXCLUSIVE lock`;
  const reindex = as(stmt, 'ReindexStmt');
  if (reindex && !hasOption(reindex.params, 'concurrently') && (reindex.relation === undefined || existing(reindex.relation))) return 'REINDEX takes a SHARE (and ACCESS EXCLUSIVE on the index) lock';
  const lock = as(stmt, 'LockStmt');
  if (lock && (num(lock.mode) ?? 8) >= 5 && lock.nowait !== true && list(lock.relations).some((r) => existing(as(r, 'RangeVar')))) return 'LOCK TABLE';
  const trigger = as(stmt, 'CreateTrigStmt');
  if (trigger && existing(trigger.relation)) return `CREATE TRIGGER on ${display(trigger.relation)} takes a SHARE ROW EXCLUSIVE lock`;
  const create = as(stmt, 'CreateStmt');
  if (create) {
    // A new table's foreign keys take SHARE ROW EXCLUSIVE on the referenced (existing) tables.
    const refs: unknown[] = [];
    for (const e of list(create.tableElts)) {
      const c = as(e, 'Constraint');
      if (c?.contype === 'CONSTR_FOREIGN') refs.push(c.pktable);
      for (const cc of list(as(e, 'ColumnDef')?.constraints)) {
        const k = as(cc, 'Constraint');
        if (k?.contype === 'CONSTR_FOREIGN') refs.push(k.pktable);
      }
    }
    const old = refs.filter(existing);
    return old.length > 0 ? `CREATE TABLE with a foreign key takes a SHARE ROW EXCLUSIVE lock on ${old.map(display).join(', ')}` : undefined;
  }
  return undefined;
}

function objectWord(objtype: string | undefined): string {
  switch (objtype) {
    case 'OBJECT_INDEX':
      return 'INDEX';
    case 'OBJECT_VIEW':
      return 'VIEW';
    case 'OBJECT_MATVIEW':
      return 'MATERIALIZED VIEW';
    case 'OBJECT_SEQUENCE':
      return 'SEQUENCE';
    case 'OBJECT_FOREIGN_TABLE':
      return 'FOREIGN TABLE';
    case 'OBJECT_TYPE':
      return 'TYPE';
    default:
      return 'TABLE';
  }
}
