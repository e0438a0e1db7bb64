import { as, hasOption, list, location, names, str } from './ast.js';
import { createdEarlier, display, type RuleFamily } from './family.js';

/**
 * Index builds and drops. Lock modes from the PostgreSQL docs, "CREATE INDEX"
 * (https://www.postgresql.org/docs/current/sql-createindex.html): a plain build takes SHARE on the
 * table (writes blocked for the whole build); CONCURRENTLY takes SHARE UPDATE EXCLUSIVE.
 * "DROP INDEX": a plain drop takes ACCESS EXCLUSIVE on the table. "REINDEX": a plain reindex takes
 * SHARE on the table and ACCESS EXCLUSIVE on the index being rebuilt; CONCURRENTLY since 12.
 */
export const indexRules: RuleFamily = {
  rules: [
    {
      id: 'create-index-without-concurrently',
      severity: 'warning',
      title: 'CREATE INDEX without CONCURRENTLY',
      why: 'A plain CREATE INDEX holds a SHARE lock on the table for the whole build: every INSERT, UPDATE and DELETE waits until the index is built, which takes minutes on a large table.',
      fix: 'Use CREATE INDEX CONCURRENTLY (outside a transaction block); if it fails it leaves an INVALID index: drop it with DROP INDEX CONCURRENTLY and retry. A partitioned table cannot be indexed concurrently: CREATE INDEX ... ON ONLY the parent, CREATE INDEX CONCURRENTLY on each partition, then ALTER INDEX ... ATTACH PARTITION.',
      squawk: ['require-concurrent-index-creation'],
      strongMigrations: ['Adding an index non-concurrently', 'Adding a reference'],
    },
    {
      id: 'drop-index-without-concurrently',
      severity: 'warning',
      title: 'DROP INDEX without CONCURRENTLY',
      why: 'A plain DROP INDEX takes an ACCESS EXCLUSIVE lock on the table: reads and writes queue behind it, and behind any long query it waits for.',
      fix: 'Use DROP INDEX CONCURRENTLY (outside a transaction block, one index per statement).',
      squawk: ['require-concurrent-index-deletion'],
      strongMigrations: ['Removing an index non-concurrently'],
    },
    {
      id: 'reindex-without-concurrently',
      severity: 'warning',
      title: 'REINDEX without CONCURRENTLY',
      why: 'A plain REINDEX blocks writes to the table and reads that use the index being rebuilt, for as long as the rebuild takes.',
      fix: 'Use REINDEX (CONCURRENTLY) ... (PostgreSQL 12 and later; outside a transaction block).',
      squawk: [],
      strongMigrations: [],
    },
    {
      id: 'prefer-robust-stmts',
      severity: 'info',
      title: 'Concurrent index operation that cannot be re-run',
      why: 'A concurrent index build or drop runs outside a transaction: if it fails half-way the migration cannot simply be re-run, because the (possibly INVALID) index already exists or is already gone.',
      fix: 'Write CREATE INDEX CONCURRENTLY IF NOT EXISTS / DROP INDEX CONCURRENTLY IF EXISTS so a retry succeeds (and check for INVALID indexes after a failure).',
      squawk: ['prefer-robust-stmts'],
      strongMigrations: [],
    },
    {
      id: 'index-too-many-columns',
      severity: 'info',
      title: 'Non-unique index on more than three columns',
      why: 'Wide non-unique indexes are large, slow to build and rarely used beyond their first columns.',
      fix: 'Keep non-unique indexes to three columns or fewer; index the most selective columns first.',
      squawk: [],
      strongMigrations: ['Keeping non-unique indexes to three columns or less'],
    },
  ],
  nodes: ['IndexStmt', 'DropStmt', 'ReindexStmt'],
  check(input, report) {
    const { stmt, context } = input;
    const index = as(stmt, 'IndexStmt');
    if (index) {
      const rel = index.relation;
      const onNew = createdEarlier(context, rel);
      const at = location(rel);
      if (index.concurrent !== true && !onNew) {
        report('create-index-without-concurrently', at, {
          message: `CREATE INDEX on ${display(rel)} without CONCURRENTLY blocks writes to the table while the index is built.`,
        });
      }
      if (index.concurrent === true && index.if_not_exists !== true && !context.inTransactionBlock) {
        report('prefer-robust-stmts', at, {
          message: `CREATE INDEX CONCURRENTLY on ${display(rel)} without IF NOT EXISTS cannot be re-run after a failure.`,
        });
      }
      if (index.unique !== true && list(index.indexParams).length > 3) {
        report('index-too-many-columns', at, {
          message: `Non-unique index on ${display(rel)} has ${list(index.indexParams).length} columns.`,
        });
      }
      return;
    }
    const drop = as(stmt, 'DropStmt');
    if (drop && drop.removeType === 'OBJECT_INDEX') {
      const dropped = list(drop.objects).map((o) => names(as(o, 'List')?.items).join('.'));
      const allNew = dropped.length > 0 && dropped.every((n) => context.createdRelations.has(n));
      if (drop.concurrent !== true && !allNew) {
        report('drop-index-without-concurrently', undefined, {
          message: `DROP INDEX ${dropped.join(', ')} without CONCURRENTLY takes an ACCESS EXCLUSIVE lock on the table.`,
        });
      }
      if (drop.concurrent === true && drop.missing_ok !== true && !context.inTransactionBlock) {
        report('prefer-robust-stmts', undefined, {
          message: `DROP INDEX CONCURRENTLY ${dropped.join(', ')} without IF EXISTS cannot be re-run after a failure.`,
        });
      }
      return;
    }
    const reindex = as(stmt, 'ReindexStmt');
    if (reindex && !hasOption(reindex.params, 'concurrently')) {
      const kind = str(reindex.kind) ?? '';
      // SYSTEM catalogs cannot be reindexed concurrently at all: nothing safer to suggest.
      if (kind === 'REINDEX_OBJECT_SYSTEM') return;
      if (reindex.relation !== undefined && createdEarlier(context, reindex.relation)) return;
      const what = reindex.relation !== undefined ? display(reindex.relation) : (str(reindex.name) ?? '');
      report('reindex-without-concurrently', location(reindex.relation), {
        message: `REINDEX ${what} without CONCURRENTLY blocks writes while the index is rebuilt.`,
        ...(input.serverVersion < 120000
          ? { fix: 'REINDEX CONCURRENTLY needs PostgreSQL 12; on older servers build a new index CONCURRENTLY and drop the old one CONCURRENTLY.' }
          : {}),
      });
    }
  },
};
