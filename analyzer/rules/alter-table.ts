import { as, list, location, names, str, type Node } from './ast.js';
import { createdEarlier, display, type Report, type RuleFamily } from './family.js';
import type { RuleInput } from './index.js';
import { provenNotNullEarlier } from './not-null-proof.js';
import { defaultVolatility, isSerialType } from './volatility.js';

/**
 * ALTER TABLE sub-commands that lock, rewrite, scan or break clients. Lock modes and rewrite
 * behaviour per sub-command: PostgreSQL docs "ALTER TABLE"
 * (https://www.postgresql.org/docs/current/sql-altertable.html): most sub-commands take ACCESS
 * EXCLUSIVE; ADD FOREIGN KEY takes SHARE ROW EXCLUSIVE on both tables; VALIDATE CONSTRAINT takes
 * SHARE UPDATE EXCLUSIVE; DETACH PARTITION CONCURRENTLY (14+) takes SHARE UPDATE EXCLUSIVE.
 * A table created earlier in the same script is new and empty: lock and rewrite rules stay quiet.
 */
export const alterTableRules: RuleFamily = {
  rules: [
    {
      id: 'add-column-volatile-default',
      severity: 'warning',
      title: 'ADD COLUMN with a volatile DEFAULT',
      why: 'A volatile default (random(), clock_timestamp(), gen_random_uuid(), nextval()) is evaluated for every existing row, so PostgreSQL rewrites the whole table and its indexes under an ACCESS EXCLUSIVE lock: no reads or writes until it finishes. (Before PostgreSQL 11 any default rewrote the table.)',
      fix: 'Add the column without a default (or with a constant one), then set the default with ALTER COLUMN ... SET DEFAULT, and backfill existing rows in small batches.',
      squawk: ['adding-field-with-default'],
      strongMigrations: ['Adding a column with a volatile default value', 'Adding a column with a default value (PostgreSQL < 11)'],
    },
    {
      id: 'add-not-null-column-without-default',
      severity: 'error',
      title: 'ADD COLUMN ... NOT NULL without a DEFAULT',
      why: 'Existing rows would get NULL in a NOT NULL column: the statement fails on any table that has rows.',
      fix: 'Add the column nullable (or with a constant DEFAULT), backfill it in batches, then add a CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, and SET NOT NULL.',
      squawk: ['adding-required-field'],
      strongMigrations: [],
    },
    {
      id: 'add-column-auto-increment',
      severity: 'warning',
      title: 'ADD COLUMN with serial or IDENTITY',
      why: 'Filling a serial or identity column computes a value for every existing row: the table is rewritten under an ACCESS EXCLUSIVE lock.',
      fix: 'Create a new table with the column and migrate data to it in batches, or add a nullable bigint column with a sequence default set afterwards and backfill in batches.',
      squawk: ['adding-serial-primary-key-field'],
      strongMigrations: ['Adding an auto-incrementing column'],
    },
    {
      id: 'add-column-stored-generated',
      severity: 'warning',
      title: 'ADD COLUMN ... GENERATED ALWAYS AS (...) STORED',
      why: 'A stored generated column is computed and written for every existing row: the table is rewritten under an ACCESS EXCLUSIVE lock.',
      fix: 'Add a plain column and fill it with a trigger and batched backfill, or (PostgreSQL 18+) use a VIRTUAL generated column, which needs no rewrite.',
      squawk: [],
      strongMigrations: ['Adding a stored generated column'],
    },
    {
      id: 'set-not-null',
      severity: 'warning',
      title: 'SET NOT NULL on an existing column',
      why: 'SET NOT NULL scans the whole table to check for NULLs while holding an ACCESS EXCLUSIVE lock, blocking reads and writes for the duration of the scan.',
      fix: 'Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it (no exclusive lock), then SET NOT NULL, which skips the scan on PostgreSQL 12+ when that valid CHECK exists; then drop the CHECK.',
      squawk: ['adding-not-nullable-field'],
      strongMigrations: ['Setting NOT NULL on an existing column'],
    },
    {
      id: 'add-foreign-key-without-not-valid',
      severity: 'warning',
      title: 'ADD FOREIGN KEY without NOT VALID',
      why: 'Adding a foreign key validates every existing row while holding SHARE ROW EXCLUSIVE locks on both tables, blocking writes to both for the whole scan.',
      fix: 'Add the constraint with NOT VALID (instant), then ALTER TABLE ... VALIDATE CONSTRAINT in a separate statement/transaction, which only takes SHARE UPDATE EXCLUSIVE on the table (and ROW SHARE on the referenced one). NOT VALID foreign keys on partitioned tables need PostgreSQL 18.',
      squawk: ['adding-foreign-key-constraint', 'constraint-missing-not-valid'],
      strongMigrations: ['Adding a foreign key', 'Adding a reference'],
    },
    {
      id: 'add-check-without-not-valid',
      severity: 'warning',
      title: 'ADD CHECK constraint without NOT VALID',
      why: 'Adding a CHECK constraint scans the whole table to validate it while holding an ACCESS EXCLUSIVE lock.',
      fix: 'Add the constraint with NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT in a separate transaction (SHARE UPDATE EXCLUSIVE: reads and writes continue).',
      squawk: ['constraint-missing-not-valid'],
      strongMigrations: ['Adding a check constraint'],
    },
    {
      id: 'unique-constraint-without-index',
      severity: 'warning',
      title: 'ADD UNIQUE / PRIMARY KEY constraint that builds its own index',
      why: 'Adding a UNIQUE or PRIMARY KEY constraint builds its index while holding an ACCESS EXCLUSIVE lock: reads and writes are blocked for the whole build.',
      fix: 'CREATE UNIQUE INDEX CONCURRENTLY first, then ALTER TABLE ... ADD CONSTRAINT name UNIQUE USING INDEX idx (or PRIMARY KEY USING INDEX idx).',
      squawk: ['disallowed-unique-constraint', 'adding-serial-primary-key-field'],
      strongMigrations: ['Adding a unique constraint'],
    },
    {
      id: 'add-exclusion-constraint',
      severity: 'warning',
      title: 'ADD EXCLUDE constraint',
      why: 'An exclusion constraint builds its index and checks every row under an ACCESS EXCLUSIVE lock, and there is no concurrent way to add one.',
      fix: 'Add it while the table is small or during a maintenance window, or enforce the rule in the application / with a trigger.',
      squawk: [],
      strongMigrations: ['Adding an exclusion constraint'],
    },
    {
      id: 'change-column-type',
      severity: 'warning',
      title: 'ALTER COLUMN ... TYPE',
      why: 'Changing a column type usually rewrites the whole table and rebuilds its indexes under an ACCESS EXCLUSIVE lock, and breaks clients that expect the old type. (Binary-compatible changes such as varchar(n) to a longer varchar or to text do not rewrite.)',
      fix: 'Add a new column with the new type, write to both, backfill in batches, switch reads, then drop the old column.',
      squawk: ['changing-column-type'],
      strongMigrations: ['Changing the type of a column'],
    },
    {
      id: 'drop-column',
      severity: 'warning',
      title: 'DROP COLUMN',
      why: 'Dropping a column loses its data, and running application code that still reads or writes it starts failing immediately.',
      fix: 'Stop the application using the column first (deploy that), then drop it in a later migration.',
      squawk: ['ban-drop-column'],
      strongMigrations: ['Removing a column'],
    },
    {
      id: 'drop-not-null',
      severity: 'warning',
      title: 'DROP NOT NULL',
      why: 'Clients that rely on the column never being NULL (and older application versions after a rollback) break when NULLs appear.',
      fix: 'Make sure every reader handles NULL before dropping the constraint.',
      squawk: ['ban-drop-not-null'],
      strongMigrations: [],
    },
    {
      id: 'detach-partition-without-concurrently',
      severity: 'warning',
      title: 'DETACH PARTITION without CONCURRENTLY',
      why: 'A plain DETACH PARTITION takes an ACCESS EXCLUSIVE lock on the partitioned table, blocking all queries on every partition.',
      fix: 'Use ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY (PostgreSQL 14+, outside a transaction block).',
      squawk: ['require-concurrent-partition-detach'],
      strongMigrations: [],
    },
  ],
  nodes: ['AlterTableStmt'],
  check(input, report) {
    const alter = as(input.stmt, 'AlterTableStmt');
    // ALTER TYPE ... ADD ATTRIBUTE and ALTER VIEW also arrive as AlterTableStmt: only tables here.
    if (!alter || (str(alter.objtype) ?? 'OBJECT_TABLE') !== 'OBJECT_TABLE') return;
    const rel = alter.relation;
    if (createdEarlier(input.context, rel)) return;
    for (const c of list(alter.cmds)) {
      const cmd = as(c, 'AlterTableCmd');
      if (cmd) checkCommand(input, report, cmd, rel);
    }
  },
};

function checkCommand(input: RuleInput, report: Report, cmd: Node, relation: unknown): void {
  const rel = display(relation);
  const relLoc = location(relation);
  const col = str(cmd.name) ?? '';
  switch (str(cmd.subtype)) {
    case 'AT_AddColumn': {
      const def = as(cmd.def, 'ColumnDef');
      if (def) checkAddColumn(input, report, def, rel);
      return;
    }
    case 'AT_AlterColumnType': {
      const def = as(cmd.def, 'ColumnDef');
      report('change-column-type', location(def?.typeName) ?? relLoc, {
        message: `Changing the type of ${rel}.${col} may rewrite the table under an ACCESS EXCLUSIVE lock.`,
      });
      return;
    }
    case 'AT_SetNotNull':
      // The safe recipe's last step: a valid CHECK (col IS NOT NULL) earlier in the script lets 12+ skip the scan.
      if (input.serverVersion >= 120000 && provenNotNullEarlier(input, relation, col)) return;
      report('set-not-null', relLoc, { message: setNotNullMessage(rel, col), fix: setNotNullFix(input.serverVersion) });
      return;
    case 'AT_DropNotNull':
      report('drop-not-null', relLoc, { message: `Dropping NOT NULL on ${rel}.${col} can break clients that expect a value.` });
      return;
    case 'AT_DropColumn':
      report('drop-column', relLoc, { message: `Dropping column ${rel}.${col} deletes its data and breaks code that still uses it.` });
      return;
    case 'AT_AddConstraint': {
      const con = as(cmd.def, 'Constraint');
      if (con) checkConstraint(input, report, con, rel, relLoc);
      return;
    }
    case 'AT_DetachPartition': {
      const pc = as(cmd.def, 'PartitionCmd');
      // CONCURRENTLY exists only from 14: before that a plain detach is the only way.
      if (pc && pc.concurrent !== true && input.serverVersion >= 140000) {
        report('detach-partition-without-concurrently', location(pc.name) ?? relLoc, {
          message: `Detaching partition ${display(pc.name)} from ${rel} without CONCURRENTLY locks the whole partitioned table.`,
        });
      }
      return;
    }
    default:
      return;
  }
}

function setNotNullMessage(rel: string, col: string): string {
  return `SET NOT NULL on ${rel}${col ? '.' + col : ''} scans the whole table under an ACCESS EXCLUSIVE lock.`;
}

function setNotNullFix(version: number): string {
  if (version >= 180000) {
    return 'On PostgreSQL 18+: ALTER TABLE ... ADD CONSTRAINT name NOT NULL col NOT VALID, then ALTER TABLE ... VALIDATE CONSTRAINT name (SHARE UPDATE EXCLUSIVE: reads and writes continue).';
  }
  if (version >= 120000) {
    return 'Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT it, then SET NOT NULL (PostgreSQL 12+ skips the scan when that valid CHECK exists), then drop the CHECK.';
  }
  return 'Before PostgreSQL 12 SET NOT NULL always scans: use a validated CHECK (col IS NOT NULL) constraint instead of NOT NULL.';
}

function checkAddColumn(input: RuleInput, report: Report, def: Node, rel: string): void {
  const col = str(def.colname) ?? '';
  const at = location(def);
  const constraints = list(def.constraints).map((c) => as(c, 'Constraint')).filter((c): c is Node => c !== undefined);
  const byType = (t: string) => constraints.find((c) => c.contype === t);
  const dflt = byType('CONSTR_DEFAULT');
  const identity = byType('CONSTR_IDENTITY');
  const generated = byType('CONSTR_GENERATED');
  const serial = isSerialType(def.typeName);

  if (serial || identity) {
    report('add-column-auto-increment', at, {
      message: `Adding ${serial ? 'serial' : 'identity'} column ${rel}.${col} rewrites the table under an ACCESS EXCLUSIVE lock.`,
    });
  }
  if (generated && str(generated.generated_kind) !== 'v') {
    report('add-column-stored-generated', location(generated) ?? at, {
      message: `Adding stored generated column ${rel}.${col} rewrites the table under an ACCESS EXCLUSIVE lock.`,
    });
  }
  if (dflt) {
    if (input.serverVersion < 110000) {
      report('add-column-volatile-default', location(dflt) ?? at, {
        message: `Adding ${rel}.${col} with a DEFAULT rewrites the table before PostgreSQL 11.`,
      });
    } else {
      const v = defaultVolatility(dflt.raw_expr);
      if (v.kind === 'volatile') {
        report('add-column-volatile-default', location(dflt) ?? at, {
          message: `Adding ${rel}.${col} with volatile default ${v.fn}() rewrites the table under an ACCESS EXCLUSIVE lock.`,
        });
      } else if (v.kind === 'unknown') {
        report('add-column-volatile-default', location(dflt) ?? at, {
          severity: 'info',
          message: `Adding ${rel}.${col} with default ${v.fn}(): if that function is VOLATILE the table is rewritten under an ACCESS EXCLUSIVE lock.`,
        });
      }
    }
  }
  const notNull = byType('CONSTR_NOTNULL') ?? byType('CONSTR_PRIMARY');
  if (notNull && !dflt && !identity && !serial && !(generated && str(generated.generated_kind) !== 'v')) {
    report('add-not-null-column-without-default', location(notNull) ?? at, {
      message: `Adding NOT NULL column ${rel}.${col} without a DEFAULT fails on a table that has rows.`,
    });
  }
  for (const con of constraints) {
    const t = str(con.contype);
    if (t === 'CONSTR_UNIQUE' || t === 'CONSTR_PRIMARY') {
      report('unique-constraint-without-index', location(con) ?? at, {
        message: `Adding column ${rel}.${col} with ${t === 'CONSTR_UNIQUE' ? 'UNIQUE' : 'PRIMARY KEY'} builds an index under an ACCESS EXCLUSIVE lock.`,
        fix: 'Add the column plain, CREATE UNIQUE INDEX CONCURRENTLY on it, then ADD CONSTRAINT ... UNIQUE USING INDEX (or PRIMARY KEY USING INDEX).',
      });
    } else if (t === 'CONSTR_FOREIGN') {
      report('add-foreign-key-without-not-valid', location(con) ?? at, {
        message: `Adding column ${rel}.${col} with REFERENCES validates a foreign key while locking both tables against writes.`,
        fix: 'Add the column without REFERENCES, then ADD CONSTRAINT ... FOREIGN KEY ... NOT VALID and VALIDATE CONSTRAINT separately.',
      });
    } else if (t === 'CONSTR_CHECK') {
      report('add-check-without-not-valid', location(con) ?? at, {
        message: `Adding column ${rel}.${col} with a CHECK constraint validates it under an ACCESS EXCLUSIVE lock.`,
        fix: 'Add the column without the CHECK, then ADD CONSTRAINT ... CHECK (...) NOT VALID and VALIDATE CONSTRAINT separately.',
      });
    }
  }
}

function checkConstraint(input: RuleInput, report: Report, con: Node, rel: string, relLoc: number | undefined): void {
  const at = location(con) ?? relLoc;
  const name = str(con.conname);
  const label = name !== undefined ? ` ${name}` : '';
  const notValid = con.skip_validation === true;
  switch (str(con.contype)) {
    case 'CONSTR_FOREIGN':
      if (!notValid) {
        report('add-foreign-key-without-not-valid', at, {
          message: `Adding foreign key${label} on ${rel} without NOT VALID validates every row while blocking writes to ${rel} and ${display(con.pktable)}.`,
        });
      }
      return;
    case 'CONSTR_CHECK':
      if (!notValid) {
        report('add-check-without-not-valid', at, {
          message: `Adding CHECK constraint${label} on ${rel} without NOT VALID scans the table under an ACCESS EXCLUSIVE lock.`,
        });
      }
      return;
    case 'CONSTR_UNIQUE':
    case 'CONSTR_PRIMARY':
      if (str(con.indexname) === undefined) {
        const kind = con.contype === 'CONSTR_UNIQUE' ? 'UNIQUE' : 'PRIMARY KEY';
        report('unique-constraint-without-index', at, {
          message: `Adding ${kind} constraint${label} on ${rel} builds its index under an ACCESS EXCLUSIVE lock.`,
        });
      }
      return;
    case 'CONSTR_EXCLUSION':
      report('add-exclusion-constraint', at, {
        message: `Adding exclusion constraint${label} on ${rel} builds an index and checks every row under an ACCESS EXCLUSIVE lock.`,
      });
      return;
    case 'CONSTR_NOTNULL':
      // PostgreSQL 18: ADD CONSTRAINT name NOT NULL col [NOT VALID].
      if (!notValid) {
        report('set-not-null', at, {
          message: setNotNullMessage(rel, names(con.keys).join(', ')),
          fix: setNotNullFix(input.serverVersion),
        });
      }
      return;
    default:
      return;
  }
}
