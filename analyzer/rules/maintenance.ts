import { as, hasOption, list, location, num } from './ast.js';
import { createdEarlier, display, type RuleFamily } from './family.js';

/**
 * Maintenance commands that hold heavy locks for a long time. Docs "Explicit Locking" (13.3.1):
 * VACUUM FULL, CLUSTER and REFRESH MATERIALIZED VIEW (without CONCURRENTLY) take ACCESS EXCLUSIVE;
 * LOCK TABLE takes the mode it names (ACCESS EXCLUSIVE by default).
 */
export const maintenanceRules: RuleFamily = {
  rules: [
    {
      id: 'vacuum-full',
      severity: 'warning',
      title: 'VACUUM FULL',
      why: 'VACUUM FULL rewrites the whole table under an ACCESS EXCLUSIVE lock: no reads or writes until it finishes, and it needs room for a second copy of the table.',
      fix: 'Use plain VACUUM (no exclusive lock), or pg_repack / pg_squeeze to compact online (REPACK (CONCURRENTLY) on PostgreSQL 19+).',
      squawk: ['prefer-repack'],
      strongMigrations: [],
    },
    {
      id: 'cluster',
      severity: 'warning',
      title: 'CLUSTER',
      why: 'CLUSTER rewrites the whole table in index order under an ACCESS EXCLUSIVE lock: no reads or writes until it finishes.',
      fix: 'Use pg_repack --order-by to reorder online (REPACK (CONCURRENTLY) ... USING INDEX on PostgreSQL 19+).',
      squawk: ['prefer-repack'],
      strongMigrations: [],
    },
    {
      id: 'lock-table',
      severity: 'warning',
      title: 'LOCK TABLE in a mode that blocks writes',
      why: 'An explicit SHARE or stronger lock blocks every writer (ACCESS EXCLUSIVE, the default, also blocks readers) until the transaction ends.',
      fix: 'Avoid explicit table locks; if one is needed, take the weakest mode that works, set lock_timeout, and keep the transaction short (or use NOWAIT).',
      squawk: [],
      strongMigrations: [],
    },
    {
      id: 'refresh-matview-without-concurrently',
      severity: 'warning',
      title: 'REFRESH MATERIALIZED VIEW without CONCURRENTLY',
      why: 'A plain refresh takes an ACCESS EXCLUSIVE lock on the materialized view: every query reading it waits until the refresh finishes.',
      fix: 'Use REFRESH MATERIALIZED VIEW CONCURRENTLY (needs a unique index on the view); readers keep the old contents meanwhile.',
      squawk: [],
      strongMigrations: [],
    },
  ],
  nodes: ['VacuumStmt', 'ClusterStmt', 'LockStmt', 'RefreshMatViewStmt'],
  check(input, report) {
    const { stmt, context } = input;
    const vacuum = as(stmt, 'VacuumStmt');
    if (vacuum) {
      if (vacuum.is_vacuumcmd !== true || !hasOption(vacuum.options, 'full')) return;
      const rels = list(vacuum.rels).map((r) => as(r, 'VacuumRelation')?.relation);
      if (rels.length > 0 && rels.every((r) => createdEarlier(context, r))) return;
      report('vacuum-full', location(rels[0]), {
        message: rels.length > 0 ? `VACUUM FULL ${rels.map(display).join(', ')} locks out all reads and writes while it rewrites.` : 'VACUUM FULL of every table in the database locks out reads and writes on each in turn.',
      });
      return;
    }
    const cluster = as(stmt, 'ClusterStmt');
    if (cluster) {
      if (cluster.relation !== undefined && createdEarlier(context, cluster.relation)) return;
      report('cluster', location(cluster.relation), {
        message: cluster.relation !== undefined ? `CLUSTER ${display(cluster.relation)} locks out all reads and writes while it rewrites.` : 'CLUSTER of every previously clustered table locks out reads and writes on each in turn.',
      });
      return;
    }
    const lock = as(stmt, 'LockStmt');
    if (lock) {
      const mode = num(lock.mode) ?? 8;
      const rels = list(lock.relations).map((r) => as(r, 'RangeVar'));
      // 5 = SHARE, the weakest mode that blocks writers (lockdefs.h numbering).
      if (mode < 5 || rels.every((r) => createdEarlier(context, r))) return;
      report('lock-table', location(rels[0]), {
        message: `LOCK TABLE ${rels.map(display).join(', ')} IN ${LOCK_NAMES[mode] ?? 'ACCESS EXCLUSIVE'} MODE blocks ${mode === 8 ? 'all reads and writes' : 'all writes'} until the transaction ends.`,
        ...(lock.nowait === true ? { severity: 'info' as const } : {}),
      });
      return;
    }
    const refresh = as(stmt, 'RefreshMatViewStmt');
    if (refresh && refresh.concurrent !== true && refresh.skipData !== true && !createdEarlier(context, refresh.relation)) {
      report('refresh-matview-without-concurrently', location(refresh.relation), {
        message: `REFRESH MATERIALIZED VIEW ${display(refresh.relation)} without CONCURRENTLY blocks every reader of the view until it finishes.`,
      });
    }
  },
};

const LOCK_NAMES: Readonly<Record<number, string>> = {
  5: 'SHARE',
  6: 'SHARE ROW EXCLUSIVE',
  7: 'EXCLUSIVE',
  8: 'ACCESS EXCLUSIVE',
};
