import { scanSync } from 'libpg-query';
import { as, isObject, list, location, names, str, type Node } from './ast.js';
import { createdEarlier, display, type Report, type RuleFamily } from './family.js';
import type { RuleMeta } from '../findings.js';
import type { RuleInput } from './index.js';

/**
 * Changes that finish quickly but can break running clients or an application-only rollback
 * (squawk's compatibility rules), domain constraints, and naming. Most are opt-in (`optIn`): whether
 * they hurt depends on how the application uses the object, which the text cannot tell.
 */
const compat = (id: string, title: string, why: string, fix: string, squawk: string[]): RuleMeta => ({
  id,
  severity: 'info',
  title,
  why,
  fix,
  squawk,
  strongMigrations: [],
  optIn: true,
});

export const compatRules: RuleFamily = {
  rules: [
    {
      id: 'create-domain-with-constraint',
      severity: 'warning',
      title: 'CREATE DOMAIN with a constraint',
      why: 'A domain CHECK constraint cannot later be changed without validating every column that uses the domain, under locks on all of those tables.',
      fix: 'Put CHECK constraints on the table columns instead (they can be added NOT VALID and validated online).',
      squawk: ['ban-create-domain-with-constraint'],
      strongMigrations: [],
    },
    {
      id: 'alter-domain-add-constraint',
      severity: 'warning',
      title: 'ALTER DOMAIN ... ADD CONSTRAINT',
      why: 'Adding a constraint to a domain checks every column of every table that uses the domain, while holding locks on them.',
      fix: 'Add the constraint with NOT VALID and VALIDATE it separately, or move the check to table columns.',
      squawk: ['ban-alter-domain-with-add-constraint'],
      strongMigrations: [],
    },
    {
      id: 'identifier-too-long',
      severity: 'warning',
      title: 'Identifier longer than 63 bytes',
      why: 'PostgreSQL silently truncates identifiers to 63 bytes (NAMEDATALEN - 1): the object gets a different name than the one written, and later statements using the full name fail or hit another object.',
      fix: 'Use a name of at most 63 bytes (mind multi-byte characters).',
      squawk: ['identifier-too-long'],
      strongMigrations: [],
    },
    {
      id: 'alter-generated-expression',
      severity: 'warning',
      title: 'ALTER COLUMN ... SET EXPRESSION',
      why: 'Changing a stored generated column\'s expression recomputes it for every row: a table rewrite under an ACCESS EXCLUSIVE lock (PostgreSQL 17+).',
      fix: 'Add a new generated column (VIRTUAL on PostgreSQL 18+), move readers, then drop the old one.',
      squawk: ['ban-alter-generated-expression'],
      strongMigrations: [],
    },
    compat('require-table-schema', 'CREATE TABLE without a schema', 'An unqualified name lands in whatever schema search_path points at when the migration runs, which may differ between environments.', 'Qualify the table name: CREATE TABLE app.orders (...).', ['require-table-schema']),
    compat('add-column', 'ADD COLUMN to an existing table', 'A new column changes what SELECT * returns and breaks INSERTs that list no columns.', 'Check clients that use SELECT * or positional INSERTs first.', ['ban-add-column']),
    compat('drop-constraint', 'DROP CONSTRAINT', 'Clients (and an application rollback) may rely on the guarantee the constraint gave, or on its name in error handling.', 'Make sure nothing depends on the constraint before dropping it.', ['ban-drop-constraint']),
    compat('alter-column-default', 'SET DEFAULT / DROP DEFAULT', 'Inserts from clients that omit the column start getting a different value (or NULL, or an error).', 'Update every writer to set the column explicitly first.', ['ban-set-default', 'ban-drop-default']),
    compat('alter-identity', 'ADD / SET / DROP IDENTITY', 'Clients that insert explicit ids, or that read the sequence, break when identity behaviour changes.', 'Check every writer of the column first.', ['ban-alter-identity']),
    compat('drop-generated-expression', 'ALTER COLUMN ... DROP EXPRESSION', 'The column stops being computed: writers that relied on it now store stale values or NULL.', 'Update writers to maintain the column first.', ['ban-drop-generated-expression']),
    compat('set-schema', 'SET SCHEMA', 'Code that finds the object through the old schema or search_path stops finding it.', 'Create the object in the new schema alongside (or a view), move users, then drop the old one.', ['ban-set-schema']),
    compat('disable-trigger', 'DISABLE TRIGGER', 'Whatever the trigger enforces (audit, denormalised data, constraints) silently stops for every session.', 'Avoid disabling triggers in migrations; if needed, re-enable in the same transaction.', ['ban-disable-trigger']),
    compat('replica-identity', 'REPLICA IDENTITY change', 'Logical replication and CDC consumers rely on the replica identity; changing it can stop UPDATE/DELETE replication or bloat WAL.', 'Coordinate with every logical replication consumer first.', ['ban-replica-identity']),
    compat('revoke', 'REVOKE', 'Running code (or an application rollback) that still needs the privilege starts failing with permission errors.', 'Check which roles still use the privilege before revoking.', ['ban-revoke']),
    compat('policy-change', 'CREATE / ALTER POLICY', 'Row-level security policy changes silently change which rows clients can see or write.', 'Test every role\'s reads and writes against the new policy before deploying.', ['ban-create-policy', 'ban-alter-policy-condition', 'ban-alter-policy-roles']),
    compat('row-level-security', 'ENABLE / DISABLE / FORCE ROW LEVEL SECURITY', 'Turning RLS on hides every row from roles without a policy; turning it off exposes all rows.', 'Create and test the policies first; change RLS in its own reviewed migration.', ['ban-alter-row-level-security']),
    compat('alter-object-options', 'ALTER of function, view, role, database, system, extension or sequence options', 'Option changes (SECURITY DEFINER, search_path, volatility, role attributes, database settings, ALTER SYSTEM, extension versions, sequence restarts) change behaviour for every session at once.', 'Review the option change on its own and test clients against it.', ['ban-alter-function-options', 'ban-alter-view-options', 'ban-alter-role-options', 'ban-alter-database-options', 'ban-alter-system-options', 'ban-alter-extension', 'ban-alter-sequence-values']),
    compat('new-write-restriction', 'New constraint or unique index on an existing table', 'A new constraint (even NOT VALID), SET NOT NULL or a unique index rejects writes that existing clients (or an application rollback) still make.', 'Update every writer to satisfy the restriction before adding it.', ['ban-new-write-restriction']),
    compat('add-enum-value', 'ALTER TYPE ... ADD VALUE', 'Older application versions cannot decode the new value when they read it back.', 'Deploy readers that understand the new value before writers start using it.', ['ban-add-enum-value']),
    compat('add-composite-attribute', 'ALTER TYPE ... ADD ATTRIBUTE', 'Clients that decode the composite type positionally break when its shape changes.', 'Update every decoder of the type first.', ['ban-add-composite-attribute']),
    compat('detach-inheritance', 'NO INHERIT', 'Queries on the parent table stop seeing the child\'s rows.', 'Check every query on the parent first.', ['ban-detach-inheritance']),
    compat('replace-view-function', 'CREATE OR REPLACE VIEW / FUNCTION', 'Replacing a view or function changes behaviour for every running client at once, with no old version left for a rollback.', 'Create a new versioned view/function, move callers, then drop the old one.', ['ban-replace-view-function']),
    compat('drop-index', 'DROP INDEX (even CONCURRENTLY)', 'Queries (and an application rollback) may depend on the index for speed or, for unique indexes, correctness.', 'Check pg_stat_user_indexes and the query plans that use the index before dropping it.', ['ban-drop-index']),
  ],
  nodes: [
    'CreateDomainStmt', 'AlterDomainStmt', 'CreateStmt', 'AlterTableStmt', 'IndexStmt', 'DropStmt', 'AlterEnumStmt', 'GrantStmt',
    'CreatePolicyStmt', 'AlterPolicyStmt', 'ViewStmt', 'CreateFunctionStmt', 'AlterObjectSchemaStmt', 'CreateTableAsStmt',
    'CreateSeqStmt', 'CreateForeignTableStmt', 'AlterFunctionStmt', 'AlterRoleStmt', 'AlterDatabaseStmt', 'AlterDatabaseSetStmt',
    'AlterSystemStmt', 'AlterExtensionStmt', 'AlterSeqStmt',
  ],
  check(input, report) {
    const { stmt, context } = input;
    if (CREATING.some((k) => as(stmt, k) !== undefined)) identifiers(input, report);
    const domain = as(stmt, 'CreateDomainStmt');
    if (domain) {
      const checks = list(domain.constraints).map((c) => as(c, 'Constraint')).filter((c) => c?.contype === 'CONSTR_CHECK');
      if (checks.length > 0) {
        report('create-domain-with-constraint', location(checks[0]), {
          message: `CREATE DOMAIN ${names(domain.domainname).join('.')} with a CHECK constraint: changing it later validates every column that uses it.`,
        });
      }
      return;
    }
    const alterDomain = as(stmt, 'AlterDomainStmt');
    if (alterDomain) {
      const con = as(alterDomain.def, 'Constraint');
      if (alterDomain.subtype === 'C' && con && con.skip_validation !== true) {
        report('alter-domain-add-constraint', location(con), {
          message: `ALTER DOMAIN ${names(alterDomain.typeName).join('.')} ADD CONSTRAINT checks every column that uses the domain.`,
        });
      }
      return;
    }
    const create = as(stmt, 'CreateStmt');
    if (create) {
      if (isObject(create.relation) && str(create.relation.schemaname) === undefined && create.relation.relpersistence !== 't') {
        report('require-table-schema', location(create.relation), { message: `CREATE TABLE ${display(create.relation)} without a schema name.` });
      }
      return;
    }
    const alter = as(stmt, 'AlterTableStmt');
    if (alter) {
      checkAlter(alter, createdEarlier(context, alter.relation), report);
      return;
    }
    const index = as(stmt, 'IndexStmt');
    if (index) {
      if (index.unique === true && !createdEarlier(context, index.relation)) {
        report('new-write-restriction', location(index.relation), { message: `Unique index on ${display(index.relation)} rejects duplicate writes from existing clients.` });
      }
      return;
    }
    const drop = as(stmt, 'DropStmt');
    if (drop && drop.removeType === 'OBJECT_INDEX') {
      report('drop-index', undefined, { message: 'Dropping an index that queries may still rely on.' });
      return;
    }
    const en = as(stmt, 'AlterEnumStmt');
    if (en && str(en.newVal) !== undefined) {
      report('add-enum-value', undefined, { message: `Adding value '${str(en.newVal) ?? ''}' to enum ${names(en.typeName).join('.')}: older readers may not understand it.` });
      return;
    }
    const grant = as(stmt, 'GrantStmt');
    if (grant && grant.is_grant !== true) {
      report('revoke', undefined, { message: 'REVOKE removes privileges that running code may still use.' });
      return;
    }
    if (as(stmt, 'CreatePolicyStmt') || as(stmt, 'AlterPolicyStmt')) {
      report('policy-change', undefined, { message: 'Row-level security policy change alters which rows clients see or write.' });
      return;
    }
    const view = as(stmt, 'ViewStmt');
    if (view?.replace === true) {
      report('replace-view-function', location(view.view), { message: `CREATE OR REPLACE VIEW ${display(view.view)} changes it for every client at once.` });
      return;
    }
    const fn = as(stmt, 'CreateFunctionStmt');
    if (fn?.replace === true) {
      report('replace-view-function', undefined, { message: `CREATE OR REPLACE ${fn.is_procedure === true ? 'PROCEDURE' : 'FUNCTION'} ${names(fn.funcname).join('.')} changes it for every caller at once.` });
      return;
    }
    const schema = as(stmt, 'AlterObjectSchemaStmt');
    if (schema) {
      report('set-schema', location(schema.relation), { message: `Moving ${schema.relation !== undefined ? display(schema.relation) : 'an object'} to schema ${str(schema.newschema) ?? ''}.` });
      return;
    }
    for (const [node, label] of OPTION_STATEMENTS) {
      if (as(stmt, node)) {
        report('alter-object-options', undefined, { message: `${label} changes behaviour for every session at once.` });
        return;
      }
    }
  },
};

/** Statements whose names create objects (a long name in a query is truncated consistently and harmless). */
const CREATING = ['CreateStmt', 'IndexStmt', 'AlterTableStmt', 'ViewStmt', 'CreateTableAsStmt', 'CreateSeqStmt', 'CreateForeignTableStmt'];

const OPTION_STATEMENTS: ReadonlyArray<readonly [string, string]> = [
  ['AlterFunctionStmt', 'ALTER FUNCTION'],
  ['AlterRoleStmt', 'ALTER ROLE'],
  ['AlterDatabaseStmt', 'ALTER DATABASE'],
  ['AlterDatabaseSetStmt', 'ALTER DATABASE ... SET'],
  ['AlterSystemStmt', 'ALTER SYSTEM'],
  ['AlterExtensionStmt', 'ALTER EXTENSION'],
  ['AlterSeqStmt', 'ALTER SEQUENCE'],
];

function checkAlter(alter: Node, isNew: boolean, report: Report): void {
  const objtype = str(alter.objtype) ?? 'OBJECT_TABLE';
  const rel = display(alter.relation);
  for (const c of list(alter.cmds)) {
    const cmd = as(c, 'AlterTableCmd');
    if (!cmd) continue;
    const sub = str(cmd.subtype) ?? '';
    const col = str(cmd.name) ?? '';
    if (objtype === 'OBJECT_TYPE') {
      if (sub === 'AT_AddColumn') report('add-composite-attribute', location(alter.relation), { message: `Adding an attribute to composite type ${rel}.` });
      continue;
    }
    if (objtype === 'OBJECT_VIEW' || objtype === 'OBJECT_MATVIEW') {
      if (sub === 'AT_SetRelOptions' || sub === 'AT_ResetRelOptions') report('alter-object-options', location(alter.relation), { message: `ALTER VIEW ${rel} SET/RESET options changes behaviour for every reader.` });
      continue;
    }
    if (sub === 'AT_SetExpression') {
      // A rewrite even on a new table is cheap; still flag only existing ones.
      if (!isNew) report('alter-generated-expression', location(alter.relation), { message: `Changing the expression of ${rel}.${col} recomputes every row under an ACCESS EXCLUSIVE lock.` });
      continue;
    }
    if (isNew) continue;
    switch (sub) {
      case 'AT_AddColumn':
        report('add-column', location(as(cmd.def, 'ColumnDef')), { message: `Adding column ${rel}.${str(as(cmd.def, 'ColumnDef')?.colname) ?? ''} changes SELECT * results.` });
        break;
      case 'AT_DropConstraint':
        report('drop-constraint', location(alter.relation), { message: `Dropping constraint ${col} on ${rel}.` });
        break;
      case 'AT_ColumnDefault':
        report('alter-column-default', location(alter.relation), { message: `${cmd.def === undefined ? 'Dropping' : 'Changing'} the default of ${rel}.${col}.` });
        break;
      case 'AT_AddIdentity':
      case 'AT_SetIdentity':
      case 'AT_DropIdentity':
        report('alter-identity', location(alter.relation), { message: `Changing identity behaviour of ${rel}.${col}.` });
        break;
      case 'AT_DropExpression':
        report('drop-generated-expression', location(alter.relation), { message: `${rel}.${col} stops being a generated column.` });
        break;
      case 'AT_DisableTrig':
      case 'AT_DisableTrigAll':
      case 'AT_DisableTrigUser':
        report('disable-trigger', location(alter.relation), { message: `Disabling trigger${col ? ' ' + col : 's'} on ${rel}.` });
        break;
      case 'AT_ReplicaIdentity':
        report('replica-identity', location(alter.relation), { message: `Changing the replica identity of ${rel}.` });
        break;
      case 'AT_EnableRowSecurity':
      case 'AT_DisableRowSecurity':
      case 'AT_ForceRowSecurity':
      case 'AT_NoForceRowSecurity':
        report('row-level-security', location(alter.relation), { message: `Changing row level security on ${rel}.` });
        break;
      case 'AT_DropInherit':
        report('detach-inheritance', location(alter.relation), { message: `${rel} stops inheriting from ${display(cmd.def && as(cmd.def, 'RangeVar'))}.` });
        break;
      case 'AT_SetNotNull':
        report('new-write-restriction', location(alter.relation), { message: `SET NOT NULL on ${rel}.${col} rejects NULL writes from existing clients.` });
        break;
      case 'AT_AddConstraint': {
        const con = as(cmd.def, 'Constraint');
        const t = str(con?.contype);
        if (t === 'CONSTR_CHECK' || t === 'CONSTR_FOREIGN' || t === 'CONSTR_UNIQUE' || t === 'CONSTR_PRIMARY' || t === 'CONSTR_EXCLUSION' || t === 'CONSTR_NOTNULL') {
          report('new-write-restriction', location(con), { message: `New constraint on ${rel} rejects writes from existing clients that violate it.` });
        }
        break;
      }
      default:
        break;
    }
  }
}

const NAME_KEYS = new Set(['relname', 'colname', 'conname', 'idxname', 'indexname', 'name', 'schemaname', 'newname']);

function hasNameNear63(v: unknown, depth: number): boolean {
  if (depth > 200 || typeof v !== 'object' || v === null) return false;
  if (Array.isArray(v)) {
    for (const x of v) if (hasNameNear63(x, depth + 1)) return true;
    return false;
  }
  const o = v as Record<string, unknown>;
  for (const k in o) {
    const x = o[k];
    if (typeof x === 'string') {
      if (NAME_KEYS.has(k) && x.length >= 15 && Buffer.byteLength(x, 'utf8') >= 60) return true;
    } else if (hasNameNear63(x, depth + 1)) {
      return true;
    }
  }
  return false;
}

/**
 * Names longer than 63 bytes in what the statement creates. The parser has already truncated them in
 * the AST, so this reads the scanner's IDENT tokens (their source text) over the statement's bytes.
 */
function identifiers(input: RuleInput, report: Report): void {
  // The parser truncates a long name to at most 63 bytes on a character boundary (60..63 bytes):
  // only a name that long in the AST makes the (costlier) scan of the source worth doing.
  const suspect = hasNameNear63(input.stmt, 0);
  if (!suspect) return;
  const bytes = Buffer.from(input.sql, 'utf8').subarray(input.byteStart, input.byteEnd);
  let tokens: { start: number; text: string; tokenName: string }[];
  try {
    tokens = scanSync(bytes.toString('utf8')).tokens;
  } catch {
    return;
  }
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.tokenName !== 'IDENT') continue;
    const name = t.text.startsWith('"') ? t.text.slice(1, -1).split('""').join('"') : t.text.toLowerCase();
    const len = Buffer.byteLength(name, 'utf8');
    if (len <= 63 || seen.has(name)) continue;
    seen.add(name);
    report('identifier-too-long', input.byteStart + t.start, {
      message: `Identifier "${name}" is ${len} bytes; PostgreSQL silently truncates it to 63.`,
    });
  }
}
