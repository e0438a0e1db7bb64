import { as, hasOption, list, names, str, type Node } from './ast.js';
import type { RuleFamily } from './family.js';

/**
 * Transaction-block rules, judged against ScriptContext.inTransactionBlock (the state before the
 * statement). CONCURRENTLY operations refuse to run inside a transaction block ("ERROR: CREATE INDEX
 * CONCURRENTLY cannot run inside a transaction block"); ALTER TYPE ... ADD VALUE could not run in
 * one before PostgreSQL 12, and since 12 the new value cannot be used until the transaction commits
 * (docs "ALTER TYPE", Notes).
 */
export const transactionRules: RuleFamily = {
  rules: [
    {
      id: 'concurrent-index-in-transaction',
      severity: 'error',
      title: 'CONCURRENTLY inside a transaction block',
      why: 'CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY and DETACH PARTITION CONCURRENTLY cannot run inside a transaction block: the statement fails and the migration aborts.',
      fix: 'Run the concurrent statement on its own, outside BEGIN ... COMMIT (in Rails: disable_ddl_transaction!; in most migration tools: a non-transactional migration).',
      squawk: ['ban-concurrent-index-creation-in-transaction'],
      strongMigrations: ['Adding an index non-concurrently (disable_ddl_transaction!)'],
    },
    {
      id: 'enum-add-value-in-transaction',
      severity: 'warning',
      title: 'ALTER TYPE ... ADD VALUE inside a transaction block',
      why: 'Inside a transaction block the new enum value cannot be used until the transaction commits (and before PostgreSQL 12 the statement fails outright), so later statements in the same migration that use it fail.',
      fix: 'Add the enum value in its own migration, outside a transaction block, and use it in a later one.',
      squawk: [],
      strongMigrations: [],
    },
    {
      id: 'transaction-nesting',
      severity: 'warning',
      title: 'BEGIN inside a transaction, or COMMIT/ROLLBACK outside one',
      why: 'A BEGIN inside a transaction block does not nest (PostgreSQL only warns), and a COMMIT inside a migration tool\'s own transaction ends it early: the rest of the migration runs outside the transaction the tool thinks it has.',
      fix: 'Let one layer own the transaction: remove the BEGIN/COMMIT from the file, or configure the tool not to wrap the migration (use SAVEPOINT for nested work).',
      squawk: ['transaction-nesting'],
      strongMigrations: [],
    },
    {
      id: 'uncommitted-transaction',
      severity: 'warning',
      title: 'Transaction never committed',
      why: 'A script that opens a transaction and never commits or rolls it back leaves it to whatever runs next (or rolls everything back when the session closes).',
      fix: 'End the transaction with COMMIT (or ROLLBACK) in the same file.',
      squawk: ['ban-uncommitted-transaction'],
      strongMigrations: [],
    },
    {
      id: 'enum-value-ordering',
      severity: 'info',
      title: 'ALTER TYPE ... ADD VALUE without BEFORE/AFTER',
      why: 'Without BEFORE or AFTER the value is appended at the end of the enum, so comparisons and ORDER BY on the enum (status < \'approved\') may change meaning.',
      fix: "Say where the value goes: ALTER TYPE t ADD VALUE 'v' BEFORE 'w' (or AFTER).",
      squawk: ['require-enum-value-ordering'],
      strongMigrations: [],
    },
  ],
  nodes: ['IndexStmt', 'DropStmt', 'ReindexStmt', 'AlterTableStmt', 'AlterEnumStmt', 'TransactionStmt'],
  check(input, report) {
    const { stmt, context } = input;
    if (context.inTransactionBlock) {
      const what = concurrentOperation(stmt);
      if (what !== undefined) {
        report('concurrent-index-in-transaction', undefined, {
          message: `${what} cannot run inside a transaction block; this statement follows a BEGIN.`,
        });
      }
    }
    const en = as(stmt, 'AlterEnumStmt');
    if (en && str(en.newVal) !== undefined && str(en.oldVal) === undefined) {
      const type = names(en.typeName).join('.');
      if (context.inTransactionBlock && !context.createdRelations.has(type)) {
        report(
          'enum-add-value-in-transaction',
          undefined,
          input.serverVersion < 120000
            ? {
                severity: 'error',
                message: `ALTER TYPE ${type} ADD VALUE cannot run inside a transaction block before PostgreSQL 12.`,
              }
            : { message: `Enum value '${str(en.newVal) ?? ''}' added to ${type} inside a transaction block cannot be used until it commits.` },
        );
      }
      if (str(en.newValNeighbor) === undefined) {
        report('enum-value-ordering', undefined, {
          message: `ALTER TYPE ${type} ADD VALUE '${str(en.newVal) ?? ''}' appends the value at the end of the enum.`,
        });
      }
      return;
    }
    const tx = as(stmt, 'TransactionStmt');
    if (tx) {
      const kind = str(tx.kind);
      if ((kind === 'TRANS_STMT_BEGIN' || kind === 'TRANS_STMT_START') && context.inTransactionBlock) {
        report('transaction-nesting', undefined, { message: 'BEGIN inside a transaction block does not start a nested transaction.' });
      } else if ((kind === 'TRANS_STMT_COMMIT' || kind === 'TRANS_STMT_ROLLBACK') && !context.inTransactionBlock) {
        report('transaction-nesting', undefined, {
          severity: 'info',
          message: `${kind === 'TRANS_STMT_COMMIT' ? 'COMMIT' : 'ROLLBACK'} with no transaction open here: if a migration tool wraps this file in its own transaction, this ends it early.`,
        });
      }
    }
  },
};

/** Name of the CONCURRENTLY operation this statement performs, if any. */
function concurrentOperation(stmt: Node): string | undefined {
  const index = as(stmt, 'IndexStmt');
  if (index?.concurrent === true) return 'CREATE INDEX CONCURRENTLY';
  const drop = as(stmt, 'DropStmt');
  if (drop?.concurrent === true) return 'DROP INDEX CONCURRENTLY';
  const reindex = as(stmt, 'ReindexStmt');
  if (reindex && hasOption(reindex.params, 'concurrently')) return 'REINDEX CONCURRENTLY';
  const alter = as(stmt, 'AlterTableStmt');
  if (alter) {
    for (const c of list(alter.cmds)) {
      const pc = as(as(c, 'AlterTableCmd')?.def, 'PartitionCmd');
      if (pc?.concurrent === true && as(c, 'AlterTableCmd')?.subtype === 'AT_DetachPartition') return 'DETACH PARTITION CONCURRENTLY';
    }
  }
  return undefined;
}
