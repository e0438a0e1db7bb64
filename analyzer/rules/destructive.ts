import { as, hasOption, isObject, list, location, names, rangeVarKey, str, walk, type Node } from './ast.js';
import { createdEarlier, display, type RuleFamily } from './family.js';

/** Statement kinds that can carry an UPDATE/DELETE/INSERT besides a SELECT with WITH (see mayHoldDml). */
const DML_HOLDERS = ['DeleteStmt', 'UpdateStmt', 'InsertStmt', 'MergeStmt', 'ExplainStmt', 'PrepareStmt', 'CreateTableAsStmt', 'RuleStmt', 'CopyStmt', 'DeclareCursorStmt', 'CreateFunctionStmt', 'ViewStmt'];

/**
 * Statements that lose data or break running clients: DROP, TRUNCATE, DELETE/UPDATE without
 * WHERE (also hidden in CTEs, EXPLAIN ANALYZE, PREPARE), renames. Objects created earlier in the
 * same script are new: dropping or renaming them breaks nobody.
 */
export const destructiveRules: RuleFamily = {
  rules: [
    {
      id: 'drop-table',
      severity: 'error',
      title: 'DROP TABLE',
      why: 'Dropping a table deletes its data permanently and breaks every query, view and application that still uses it. It also takes an ACCESS EXCLUSIVE lock.',
      fix: 'Stop all use of the table first (deploy that), keep a backup or rename it aside for a while, then drop it in a later migration.',
      squawk: ['ban-drop-table'],
      strongMigrations: ['Creating a table with the force option'],
    },
    {
      id: 'drop-database',
      severity: 'error',
      title: 'DROP DATABASE',
      why: 'Dropping a database deletes all of its data permanently.',
      fix: 'Never drop a database from a migration; do it by hand after a verified backup.',
      squawk: ['ban-drop-database'],
      strongMigrations: [],
    },
    {
      id: 'drop-object',
      severity: 'warning',
      title: 'DROP of a view, function, type, schema, sequence, trigger, policy or extension',
      why: 'Dropping an object that running code still uses (a view it reads, a function or type it calls, a sequence it draws from) breaks that code immediately, and an application rollback cannot bring it back. CASCADE silently drops dependent objects too.',
      fix: 'Remove every use first (deploy that), then drop the object in a later migration, without CASCADE.',
      squawk: [
        'ban-drop-view',
        'ban-drop-function',
        'ban-drop-type',
        'ban-drop-trigger',
        'ban-drop-schema',
        'ban-drop-sequence',
        'ban-drop-domain',
        'ban-drop-extension',
        'ban-drop-policy',
      ],
      strongMigrations: [],
    },
    {
      id: 'truncate',
      severity: 'warning',
      title: 'TRUNCATE',
      why: 'TRUNCATE deletes every row at once (no WHERE, no row triggers) and takes an ACCESS EXCLUSIVE lock.',
      fix: 'Delete the rows you mean to delete with DELETE ... WHERE in batches, or make sure the table really is disposable.',
      squawk: [],
      strongMigrations: [],
    },
    {
      id: 'truncate-cascade',
      severity: 'error',
      title: 'TRUNCATE ... CASCADE',
      why: 'CASCADE also truncates every table with a foreign key to the named tables, and their referencing tables in turn: data disappears from tables the statement never names.',
      fix: 'Name every table to truncate explicitly, without CASCADE.',
      squawk: ['ban-truncate-cascade'],
      strongMigrations: [],
    },
    {
      id: 'delete-without-where',
      severity: 'warning',
      title: 'DELETE without WHERE',
      why: 'A DELETE without WHERE removes every row of the table, in one long transaction that holds row locks and bloats the table.',
      fix: 'Add a WHERE clause; to empty a table on purpose, delete in batches (or TRUNCATE a table nobody else uses).',
      squawk: [],
      strongMigrations: ['Backfilling data'],
    },
    {
      id: 'update-without-where',
      severity: 'warning',
      title: 'UPDATE without WHERE',
      why: 'An UPDATE without WHERE rewrites every row of the table in one transaction: every row stays locked until it commits, and the table doubles in size until vacuum.',
      fix: 'Add a WHERE clause; to backfill, update in batches of a few thousand rows, each in its own transaction.',
      squawk: [],
      strongMigrations: ['Backfilling data'],
    },
    {
      id: 'duplicate-column-assignment',
      severity: 'error',
      title: 'Column assigned twice in one UPDATE / INSERT',
      why: 'PostgreSQL rejects a statement that assigns the same column twice ("multiple assignments to same column").',
      fix: 'Assign each column once.',
      squawk: ['ban-duplicate-column-assignments'],
      strongMigrations: [],
    },
    {
      id: 'rename-column',
      severity: 'warning',
      title: 'RENAME COLUMN',
      why: 'Renaming a column breaks every running query, view and application that uses the old name, from the moment it commits.',
      fix: 'Add a new column, write to both, backfill, move readers to the new column, then drop the old one (or expose the new name through a view).',
      squawk: ['renaming-column'],
      strongMigrations: ['Renaming a column'],
    },
    {
      id: 'rename-table',
      severity: 'warning',
      title: 'RENAME TABLE',
      why: 'Renaming a table breaks every running query and application that uses the old name, from the moment it commits.',
      fix: 'Create the new table (or a view with the new name over the old table), move readers and writers, then drop the old name.',
      squawk: ['renaming-table'],
      strongMigrations: ['Renaming a table'],
    },
    {
      id: 'rename-object',
      severity: 'info',
      title: 'RENAME of a view, index, constraint, function, type, schema or sequence',
      why: 'Code that refers to the object by its old name (queries, hints, error handling on constraint names, rollbacks) stops working.',
      fix: 'Check every user of the old name first; for views and functions, create the new name alongside the old one and drop the old one later.',
      squawk: ['renaming-object'],
      strongMigrations: [],
    },
  ],
  nodes: ['DropStmt', 'DropdbStmt', 'TruncateStmt', 'RenameStmt', 'SelectStmt', ...DML_HOLDERS],
  check(input, report) {
    const { stmt, context } = input;
    const drop = as(stmt, 'DropStmt');
    if (drop) {
      const type = str(drop.removeType) ?? '';
      const objects = list(drop.objects).map(objectName);
      const allNew = objects.length > 0 && objects.every((n) => context.createdRelations.has(n));
      const cascade = drop.behavior === 'DROP_CASCADE';
      if (type === 'OBJECT_TABLE') {
        if (!allNew) {
          report('drop-table', undefined, {
            message: `DROP TABLE ${objects.join(', ')}${cascade ? ' CASCADE' : ''} permanently deletes the table${objects.length > 1 ? 's' : ''} and ${objects.length > 1 ? 'their' : 'its'} data.`,
          });
        }
        return;
      }
      const kind = DROP_KINDS[type];
      if (kind !== undefined && !allNew) {
        report('drop-object', undefined, {
          message: `DROP ${kind} ${objects.join(', ')}${cascade ? ' CASCADE' : ''} breaks code that still uses it${cascade ? ', and CASCADE drops everything that depends on it' : ''}.`,
          ...(type === 'OBJECT_SCHEMA' || cascade ? { severity: 'error' as const } : {}),
        });
      }
      return;
    }
    const dropdb = as(stmt, 'DropdbStmt');
    if (dropdb) {
      report('drop-database', undefined, { message: `DROP DATABASE ${str(dropdb.dbname) ?? ''} permanently deletes the whole database.` });
      return;
    }
    const truncate = as(stmt, 'TruncateStmt');
    if (truncate) {
      const rels = list(truncate.relations).map((r) => as(r, 'RangeVar'));
      const names_ = rels.map((r) => display(r)).join(', ');
      if (!rels.every((r) => createdEarlier(context, r))) {
        report('truncate', location(rels[0]), { message: `TRUNCATE ${names_} deletes every row and takes an ACCESS EXCLUSIVE lock.` });
      }
      if (truncate.behavior === 'DROP_CASCADE') {
        report('truncate-cascade', location(rels[0]), {
          message: `TRUNCATE ${names_} CASCADE also empties every table that references ${rels.length > 1 ? 'them' : 'it'} by foreign key.`,
        });
      }
      return;
    }
    const rename = as(stmt, 'RenameStmt');
    if (rename) {
      const type = str(rename.renameType) ?? '';
      const rel = rename.relation;
      if (rel !== undefined && createdEarlier(context, rel)) return;
      const newName = str(rename.newname) ?? '';
      if (type === 'OBJECT_COLUMN') {
        report('rename-column', location(rel), {
          message: `Renaming column ${display(rel)}.${str(rename.subname) ?? ''} to ${newName} breaks code that uses the old name.`,
        });
      } else if (type === 'OBJECT_TABLE') {
        report('rename-table', location(rel), { message: `Renaming table ${display(rel)} to ${newName} breaks code that uses the old name.` });
      } else if (RENAME_KINDS[type] !== undefined) {
        const old = rel !== undefined ? display(rel) : (str(rename.subname) ?? objectName(rename.object));
        report('rename-object', location(rel), {
          message: `Renaming ${RENAME_KINDS[type]} ${old}${type === 'OBJECT_TABCONSTRAINT' ? '.' + (str(rename.subname) ?? '') : ''} to ${newName} breaks code that uses the old name.`,
        });
      }
      return;
    }
    if (mayHoldDml(input.stmt)) checkDml(input.stmt, context.createdRelations, report);
  },
};

/**
 * Statement kinds that can carry an UPDATE/DELETE/INSERT (directly, in a WITH, or as the statement
 * they run or define). A plain SELECT without WITH cannot: the hot read path skips the walk.
 */
function mayHoldDml(stmt: Node): boolean {
  const select = as(stmt, 'SelectStmt');
  if (select) return select.withClause !== undefined;
  for (const k of DML_HOLDERS) if (stmt[k] !== undefined) return true;
  return false;
}

/** DELETE / UPDATE without WHERE anywhere in the statement (CTEs, EXPLAIN ANALYZE, PREPARE, rules). */
function checkDml(stmt: Node, created: ReadonlySet<string>, report: Parameters<RuleFamily['check']>[1]): void {
  walk(stmt, (type, node) => {
    // EXPLAIN without ANALYZE only plans: nothing inside runs.
    if (type === 'ExplainStmt') return hasOption(node.options, 'analyze');
    if (type === 'DeleteStmt' || type === 'UpdateStmt') {
      const rel = node.relation;
      const key = rangeVarKey(rel);
      const isNew = key !== undefined && created.has(key);
      if (node.whereClause === undefined && !isNew) {
        const verb = type === 'DeleteStmt' ? 'DELETE' : 'UPDATE';
        report(type === 'DeleteStmt' ? 'delete-without-where' : 'update-without-where', location(rel), {
          message: `${verb} on ${display(rel)} without WHERE ${verb === 'DELETE' ? 'deletes' : 'changes'} every row${node.usingClause !== undefined || node.fromClause !== undefined ? ' matched by the join' : ''}.`,
        });
      }
      if (type === 'UpdateStmt') duplicateTargets(node.targetList, rel, report);
    }
    if (type === 'InsertStmt') duplicateTargets(node.cols, node.relation, report);
    return true;
  });
}

function duplicateTargets(targets: unknown, rel: unknown, report: Parameters<RuleFamily['check']>[1]): void {
  const seen = new Set<string>();
  for (const t of list(targets)) {
    const rt = as(t, 'ResTarget');
    const name = str(rt?.name);
    if (name === undefined) continue;
    // a.b[1] and a.b.c assign parts of one column: only whole-column assignments are duplicates.
    if (rt?.indirection !== undefined) continue;
    if (seen.has(name)) {
      report('duplicate-column-assignment', location(rt), { message: `Column ${display(rel)}.${name} is assigned more than once.` });
    }
    seen.add(name);
  }
}

const DROP_KINDS: Readonly<Record<string, string>> = {
  OBJECT_VIEW: 'VIEW',
  OBJECT_MATVIEW: 'MATERIALIZED VIEW',
  OBJECT_FOREIGN_TABLE: 'FOREIGN TABLE',
  OBJECT_FUNCTION: 'FUNCTION',
  OBJECT_PROCEDURE: 'PROCEDURE',
  OBJECT_ROUTINE: 'ROUTINE',
  OBJECT_AGGREGATE: 'AGGREGATE',
  OBJECT_TYPE: 'TYPE',
  OBJECT_DOMAIN: 'DOMAIN',
  OBJECT_SCHEMA: 'SCHEMA',
  OBJECT_SEQUENCE: 'SEQUENCE',
  OBJECT_TRIGGER: 'TRIGGER',
  OBJECT_POLICY: 'POLICY',
  OBJECT_EXTENSION: 'EXTENSION',
  OBJECT_RULE: 'RULE',
};

const RENAME_KINDS: Readonly<Record<string, string>> = {
  OBJECT_VIEW: 'view',
  OBJECT_MATVIEW: 'materialized view',
  OBJECT_INDEX: 'index',
  OBJECT_SEQUENCE: 'sequence',
  OBJECT_TABCONSTRAINT: 'constraint',
  OBJECT_FUNCTION: 'function',
  OBJECT_PROCEDURE: 'procedure',
  OBJECT_TYPE: 'type',
  OBJECT_DOMAIN: 'domain',
  OBJECT_SCHEMA: 'schema',
  OBJECT_TRIGGER: 'trigger',
  OBJECT_FOREIGN_TABLE: 'foreign table',
  OBJECT_ATTRIBUTE: 'attribute',
};

/** Dotted name of a dropped object: List of Strings, String, TypeName, ObjectWithArgs. */
function objectName(o: unknown): string {
  const l = as(o, 'List');
  if (l) return names(l.items).join('.');
  const s = as(o, 'String');
  if (s) return str(s.sval) ?? '?';
  const t = as(o, 'TypeName');
  if (t) return names(t.names).join('.');
  const f = as(o, 'ObjectWithArgs');
  if (f) return names(f.objname).join('.');
  if (isObject(o) && Array.isArray(o)) return names(o).join('.');
  return '?';
}
