/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's JSON AST is walked dynamically (see collector.ts) */
/**
 * Per-statement knowledge: for each libpg_query statement node, its kind, command tag, the role each
 * relation plays, the locks it takes and what makes it destructive, opaque or privileged.
 * One function per node type in STATEMENTS; anything not listed falls back to a generic walk.
 * Lock sources are cited in locks.ts.
 */
import { Collector, newScope } from './collector.js';
import { deleteQuery, dmlKind, insertQuery, mergeQuery, selectQuery, updateQuery } from './dml.js';
import { alterTableCmdSpec, LOCK_STMT_MODES, lockSpec } from './locks.js';
import {
  constText,
  objectWord,
  qualifiedName,
  quoteIdent,
  quoteRelation,
  rangeVarName,
  RELATION_OBJECTS,
  roleSpecName,
  stringList,
  typeNameText,
} from './names.js';
import { ROUTINE_STATEMENTS } from './routines.js';
import {
  dropCascade,
  dropObjectName,
  hasOption,
  judgeSetting,
  r,
  setting,
  stored,
  type Handler,
  type StatementEnv,
  type StatementResult,
} from './statement-kit.js';
import type { RelationName, TransactionEffect } from './types.js';

export type { StatementEnv, StatementResult } from './statement-kit.js';

const TRANSACTION: Record<string, [TransactionEffect | undefined, string]> = {
  TRANS_STMT_BEGIN: ['begin', 'BEGIN'],
  TRANS_STMT_START: ['begin', 'START TRANSACTION'],
  TRANS_STMT_COMMIT: ['commit', 'COMMIT'],
  TRANS_STMT_ROLLBACK: ['rollback', 'ROLLBACK'],
  TRANS_STMT_SAVEPOINT: ['savepoint', 'SAVEPOINT'],
  TRANS_STMT_RELEASE: ['release', 'RELEASE'],
  TRANS_STMT_ROLLBACK_TO: ['rollback-to', 'ROLLBACK'],
  TRANS_STMT_PREPARE: ['prepare', 'PREPARE TRANSACTION'],
  TRANS_STMT_COMMIT_PREPARED: ['commit-prepared', 'COMMIT PREPARED'],
  TRANS_STMT_ROLLBACK_PREPARED: ['rollback-prepared', 'ROLLBACK PREPARED'],
};

/** Narrowing target types: ALTER COLUMN TYPE to one of these may lose data (the old type is not in the text). */
const NARROW_TYPES = new Set(['int2', 'int4', 'float4', 'char', 'bool', 'date', 'smallint', 'integer', 'real']);

function alterColumnTypeIsNarrowing(cmd: any): string | undefined {
  const def = cmd.def?.ColumnDef;
  const t = typeNameText(def?.typeName);
  if (def?.raw_default) return `ALTER COLUMN ${cmd.name} TYPE ... USING converts existing values (may lose data)`;
  if (t === undefined) return undefined;
  const base = t.split('(')[0]!;
  if (t.includes('(') || NARROW_TYPES.has(base)) return `ALTER COLUMN ${cmd.name} TYPE ${t} may narrow the column (values that do not fit are lost or rejected)`;
  return undefined;
}

function inverseOfAlterCmd(cmd: any): string | undefined {
  switch (cmd.subtype) {
    case 'AT_AddColumn': {
      const col = cmd.def?.ColumnDef?.colname;
      return col ? `DROP COLUMN ${quoteIdent(col)}` : undefined;
    }
    case 'AT_AddConstraint': {
      const name = cmd.def?.Constraint?.conname;
      return name ? `DROP CONSTRAINT ${quoteIdent(name)}` : undefined;
    }
    case 'AT_SetNotNull': return cmd.name ? `ALTER COLUMN ${quoteIdent(cmd.name)} DROP NOT NULL` : undefined;
    case 'AT_DropNotNull': return cmd.name ? `ALTER COLUMN ${quoteIdent(cmd.name)} SET NOT NULL` : undefined;
    case 'AT_EnableRowSecurity': return 'DISABLE ROW LEVEL SECURITY';
    case 'AT_DisableRowSecurity': return 'ENABLE ROW LEVEL SECURITY';
    case 'AT_SetLogged': return 'SET UNLOGGED';
    case 'AT_SetUnLogged': return 'SET LOGGED';
    case 'AT_EnableTrig': return cmd.name ? `DISABLE TRIGGER ${quoteIdent(cmd.name)}` : undefined;
    case 'AT_DisableTrig': return cmd.name ? `ENABLE TRIGGER ${quoteIdent(cmd.name)}` : undefined;
    case 'AT_DropIdentity': return undefined;
    case 'AT_AddIdentity': return cmd.name ? `ALTER COLUMN ${quoteIdent(cmd.name)} DROP IDENTITY` : undefined;
    default: return undefined;
  }
}

// ---- the table -----------------------------------------------------------------------------------------

const STATEMENTS: Record<string, Handler> = {
  ...ROUTINE_STATEMENTS,
  SelectStmt: (c, n) => {
    selectQuery(c, n, undefined);
    if (n.intoClause) return r('ddl', 'SELECT');
    return r(dmlKind(c), 'SELECT');
  },
  InsertStmt: (c, n) => { insertQuery(c, n, undefined); return r('write', 'INSERT'); },
  UpdateStmt: (c, n) => { updateQuery(c, n, undefined); return r('write', 'UPDATE'); },
  DeleteStmt: (c, n) => { deleteQuery(c, n, undefined); return r('write', 'DELETE'); },
  MergeStmt: (c, n) => {
    mergeQuery(c, n, undefined);
    if (c.version < 150000) c.addOpaque('MERGE does not exist before PostgreSQL 15: the server rejects it');
    return r('write', 'MERGE');
  },

  CreateStmt: (c, n) => {
    const name = rangeVarName(n.relation);
    if (name) c.relation(name, 'create');
    stored(c, () => {
      for (const el of (n.tableElts ?? []) as any[]) {
        if (el?.ColumnDef) {
          if (name && el.ColumnDef.colname) c.column(name, 'create', el.ColumnDef.colname);
          c.walk(el, undefined);
        } else if (el?.TableLikeClause) {
          c.rangeVar(el.TableLikeClause.relation, 'read', 'AccessShareLock', 'CREATE TABLE ... (LIKE ...) reads its definition');
        } else c.walk(el, undefined);
      }
    });
    for (const p of (n.inhRelations ?? []) as any[]) {
      if (!p?.RangeVar) continue;
      if (n.partbound) c.rangeVar(p.RangeVar, 'alter', 'AccessExclusiveLock', 'CREATE TABLE ... PARTITION OF takes ACCESS EXCLUSIVE on the parent');
      else c.rangeVar(p.RangeVar, 'reference', 'ShareUpdateExclusiveLock', 'CREATE TABLE ... INHERITS takes SHARE UPDATE EXCLUSIVE on the parent');
    }
    if (n.ofTypename) c.type(typeNameText(n.ofTypename));
    const tag = n.relation?.relpersistence === 't' ? 'CREATE TABLE' : 'CREATE TABLE';
    return r('ddl', tag, name && !n.if_not_exists ? { inverse: `DROP TABLE ${quoteRelation(name)}` } : {});
  },
  CreateForeignTableStmt: (c, n, env) => {
    const res = STATEMENTS.CreateStmt!(c, n.base, env);
    return { ...res, tag: 'CREATE FOREIGN TABLE', inverse: res.inverse?.replace('DROP TABLE', 'DROP FOREIGN TABLE') };
  },
  CreateTableAsStmt: (c, n) => {
    const name = rangeVarName(n.into?.rel);
    const matview = n.objtype === 'OBJECT_MATVIEW';
    if (name) { c.relation(name, 'create'); c.relation(name, 'write'); }
    if (n.into?.skipData) stored(c, () => c.walk(n.query, undefined));
    else c.walk(n.query, undefined);
    c.addHidden(matview ? 'CREATE MATERIALIZED VIEW runs its query and stores the rows' : 'CREATE TABLE AS runs its query and stores the rows');
    const drop = matview ? 'DROP MATERIALIZED VIEW' : 'DROP TABLE';
    // The server answers "SELECT n" when the query ran, the statement's own tag WITH NO DATA.
    const tag = n.into?.skipData ? (matview ? 'CREATE MATERIALIZED VIEW' : 'CREATE TABLE AS') : 'SELECT';
    return r('ddl', tag, name && !n.if_not_exists ? { inverse: `${drop} ${quoteRelation(name)}` } : {});
  },
  ViewStmt: (c, n) => {
    const name = rangeVarName(n.view);
    if (name) c.relation(name, n.replace ? 'alter' : 'create', n.replace ? 'AccessExclusiveLock' : undefined, 'CREATE OR REPLACE VIEW');
    stored(c, () => c.walk(n.query, undefined));
    return r('ddl', 'CREATE VIEW', name && !n.replace ? { inverse: `DROP VIEW ${quoteRelation(name)}` } : {});
  },
  AlterTableStmt: (c, n) => {
    const name = rangeVarName(n.relation);
    const word = objectWord(n.objtype);
    const inverses: string[] = [];
    let invertible = true;
    for (const item of (n.cmds ?? []) as any[]) {
      const cmd = item?.AlterTableCmd;
      if (!cmd) continue;
      const spec = alterTableCmdSpec(cmd, c.version);
      const reason = word === 'TABLE' ? spec.reason : spec.reason.replace('ALTER TABLE', `ALTER ${word}`);
      if (name) c.relation(name, 'alter', { ...spec, reason });
      const col: string | undefined = cmd.subtype === 'AT_AddColumn' ? cmd.def?.ColumnDef?.colname : cmd.name;
      if (name && col && cmd.subtype !== 'AT_AddConstraint' && !cmd.subtype.includes('Trig') && !cmd.subtype.includes('Rule') && cmd.subtype !== 'AT_DropConstraint' && cmd.subtype !== 'AT_ValidateConstraint' && cmd.subtype !== 'AT_ClusterOn' && cmd.subtype !== 'AT_AlterConstraint') {
        c.column(name, 'alter', col);
      }
      switch (cmd.subtype) {
        case 'AT_DropColumn':
          if (name) c.addDestructive(`DROP COLUMN ${quoteIdent(cmd.name)} of ${quoteRelation(name)} deletes its data`);
          dropCascade(c, cmd, 'DROP COLUMN');
          break;
        case 'AT_DropConstraint':
          dropCascade(c, cmd, 'DROP CONSTRAINT');
          break;
        case 'AT_AlterColumnType': {
          const narrow = alterColumnTypeIsNarrowing(cmd);
          if (narrow) c.addDestructive(narrow);
          c.walk(cmd.def, undefined);
          break;
        }
        case 'AT_AttachPartition': {
          const part = cmd.def?.PartitionCmd?.name;
          c.rangeVar(part, 'alter', lockSpec('AccessExclusiveLock', 'ATTACH PARTITION takes ACCESS EXCLUSIVE on the table being attached and scans it to check the partition bound, unless a valid CHECK constraint proves it', false, true));
          break;
        }
        case 'AT_DetachPartition':
        case 'AT_DetachPartitionFinalize': {
          const part = cmd.def?.PartitionCmd?.name;
          c.rangeVar(part, 'alter', lockSpec(spec.mode, spec.reason.replace('on the parent and the partition', 'on the partition')));
          break;
        }
        case 'AT_AddInherit':
        case 'AT_DropInherit':
          c.rangeVar(cmd.def?.RangeVar ?? cmd.def, 'reference', 'ShareUpdateExclusiveLock', 'parent of ALTER TABLE [NO] INHERIT');
          break;
        case 'AT_AddConstraint':
        case 'AT_AddColumn':
          c.walk(cmd.def, undefined);
          break;
        case 'AT_ChangeOwner':
          c.role(roleSpecName(cmd.newowner));
          break;
        default:
          c.walk(cmd.def, undefined);
      }
      const inv = inverseOfAlterCmd(cmd);
      if (inv === undefined) invertible = false;
      else inverses.unshift(inv);
    }
    const inverse = name && invertible && inverses.length > 0 ? `ALTER ${word} ${quoteRelation(name)} ${inverses.join(', ')}` : undefined;
    return r('ddl', `ALTER ${word}`, inverse ? { inverse } : {});
  },
  AlterTableMoveAllStmt: (c, n) => {
    c.addHidden(`ALTER ... ALL IN TABLESPACE ${n.orig_tablespacename} moves every matching relation (ACCESS EXCLUSIVE on each, full copy)`);
    return r('ddl', `ALTER ${objectWord(n.objtype)}`);
  },
  IndexStmt: (c, n) => {
    const table = rangeVarName(n.relation);
    const concurrent = n.concurrent === true;
    const spec = concurrent
      ? lockSpec('ShareUpdateExclusiveLock', 'CREATE INDEX CONCURRENTLY takes SHARE UPDATE EXCLUSIVE and scans the table twice (writes continue)', false, true)
      : lockSpec('ShareLock', 'CREATE INDEX takes SHARE (blocks writes) for the whole build, which scans the table', false, true);
    const key = table ? c.relation(table, 'reference', spec) : undefined;
    const index: RelationName | undefined = n.idxname ? (table?.schema ? { schema: table.schema, name: n.idxname } : { name: n.idxname }) : undefined;
    if (index) c.relation(index, 'create');
    const role = c.readRole;
    c.readRole = 'reference';
    for (const p of (n.indexParams ?? []) as any[]) {
      const el = p?.IndexElem;
      if (!el) continue;
      if (el.name && table && key !== undefined) c.column(table, 'reference', el.name);
      const scope = newScope();
      if (key !== undefined) scope.entries.push({ ref: table!.name, key });
      c.walk(el.expr, scope);
    }
    const scope = newScope();
    if (key !== undefined) scope.entries.push({ ref: table!.name, key });
    c.walk(n.whereClause, scope);
    c.walk(n.indexIncludingParams, scope);
    c.readRole = role;
    const tag = 'CREATE INDEX';
    const inverse = index && !n.if_not_exists ? `DROP INDEX${concurrent ? ' CONCURRENTLY' : ''} ${quoteRelation(index)}` : undefined;
    return r('ddl', tag, inverse ? { inverse } : {});
  },
  ReindexStmt: (c, n) => {
    const concurrent = hasOption(n.params, 'concurrently');
    const name = rangeVarName(n.relation) ?? (n.name ? { name: n.name as string } : undefined);
    const unsupported = concurrent && c.version < 120000;
    switch (n.kind) {
      case 'REINDEX_OBJECT_INDEX':
        if (name) c.relation(name, 'lock', concurrent && !unsupported
          ? lockSpec('ShareUpdateExclusiveLock', 'REINDEX CONCURRENTLY builds a new index beside the old one (PostgreSQL 12+)', false, true)
          : lockSpec('AccessExclusiveLock', 'REINDEX INDEX takes ACCESS EXCLUSIVE on the index (reads using it wait) and SHARE on its table (writes wait)', false, true));
        break;
      case 'REINDEX_OBJECT_TABLE':
        if (name) c.relation(name, 'lock', concurrent && !unsupported
          ? lockSpec('ShareUpdateExclusiveLock', 'REINDEX TABLE CONCURRENTLY (PostgreSQL 12+)', false, true)
          : lockSpec('ShareLock', 'REINDEX TABLE takes SHARE on the table (writes wait) and ACCESS EXCLUSIVE on each index it rebuilds', false, true));
        break;
      default:
        c.addHidden(`REINDEX ${String(n.kind).replace('REINDEX_OBJECT_', '')} ${n.name ?? ''} rebuilds every index in it`.trim());
        if (n.kind === 'REINDEX_OBJECT_SCHEMA') c.schema(n.name);
        else c.database(n.name);
    }
    if (unsupported) c.addOpaque('REINDEX CONCURRENTLY does not exist before PostgreSQL 12: the server rejects it');
    return r('utility', 'REINDEX');
  },
  DropStmt: (c, n) => {
    const word = objectWord(n.removeType);
    const type: string = n.removeType;
    const concurrent = n.concurrent === true;
    for (const obj of (n.objects ?? []) as any[]) {
      if (RELATION_OBJECTS.has(type)) {
        const name = dropObjectName(obj);
        if (!name) continue;
        if (type === 'OBJECT_INDEX') {
          c.relation(name, 'drop', concurrent
            ? lockSpec('ShareUpdateExclusiveLock', 'DROP INDEX CONCURRENTLY waits for transactions using the index, without blocking the table')
            : lockSpec('AccessExclusiveLock', 'DROP INDEX takes ACCESS EXCLUSIVE on the index and on its table'));
        } else {
          c.relation(name, 'drop', 'AccessExclusiveLock', `DROP ${word} takes ACCESS EXCLUSIVE`);
          c.addDestructive(`DROP ${word} ${quoteRelation(name)}${type === 'OBJECT_VIEW' ? ' removes its definition' : ' deletes its data'}`);
        }
      } else if (type === 'OBJECT_SCHEMA') {
        const s = obj?.String?.sval;
        c.schema(s);
        c.addDestructive(`DROP SCHEMA ${quoteIdent(String(s))}`);
      } else if (type === 'OBJECT_TRIGGER' || type === 'OBJECT_RULE' || type === 'OBJECT_POLICY') {
        const parts = stringList(obj?.List?.items);
        const table = qualifiedName(parts.slice(0, -1));
        if (table) c.relation(table, 'alter', 'AccessExclusiveLock', `DROP ${word} takes ACCESS EXCLUSIVE on its table`);
      } else if (type === 'OBJECT_FUNCTION' || type === 'OBJECT_PROCEDURE' || type === 'OBJECT_ROUTINE' || type === 'OBJECT_AGGREGATE') {
        const parts = stringList(obj?.ObjectWithArgs?.objname);
        const fn = qualifiedName(parts);
        if (fn) c.fn(fn.schema, fn.name);
      } else if (type === 'OBJECT_TYPE' || type === 'OBJECT_DOMAIN') {
        c.type(typeNameText(obj?.TypeName));
      } else if (type === 'OBJECT_EXTENSION') {
        c.addDestructive(`DROP EXTENSION ${quoteIdent(String(obj?.String?.sval))} drops every object it owns`);
      }
    }
    dropCascade(c, n, `DROP ${word}`);
    return r('ddl', `DROP ${word}`);
  },
  TruncateStmt: (c, n) => {
    for (const rv of (n.relations ?? []) as any[]) {
      const name = rangeVarName(rv?.RangeVar);
      if (!name) continue;
      c.relation(name, 'truncate', 'AccessExclusiveLock', 'TRUNCATE takes ACCESS EXCLUSIVE');
      c.addDestructive(`TRUNCATE ${quoteRelation(name)} removes every row`);
    }
    if (n.behavior === 'DROP_CASCADE') c.addDestructive('TRUNCATE ... CASCADE also empties every table with a foreign key to it');
    c.writes = true;
    return r('write', 'TRUNCATE TABLE');
  },
  RenameStmt: (c, n) => {
    const type: string = n.renameType;
    const relType: string = type === 'OBJECT_COLUMN' || type === 'OBJECT_TABCONSTRAINT' || type === 'OBJECT_TRIGGER' || type === 'OBJECT_RULE' || type === 'OBJECT_POLICY' ? (n.relationType ?? 'OBJECT_TABLE') : type;
    const name = rangeVarName(n.relation);
    const tagWord = objectWord(type === 'OBJECT_COLUMN' || type === 'OBJECT_TABCONSTRAINT' ? relType : type === 'OBJECT_TRIGGER' || type === 'OBJECT_RULE' || type === 'OBJECT_POLICY' ? type : type);
    let inverse: string | undefined;
    if (name) {
      const indexLight = type === 'OBJECT_INDEX' && c.version >= 120000;
      c.relation(name, 'alter', indexLight
        ? lockSpec('ShareUpdateExclusiveLock', 'ALTER INDEX ... RENAME takes SHARE UPDATE EXCLUSIVE (PostgreSQL 12+)')
        : lockSpec('AccessExclusiveLock', `RENAME takes ACCESS EXCLUSIVE`));
      if (type === 'OBJECT_COLUMN' && n.subname) {
        c.column(name, 'alter', n.subname);
        inverse = `ALTER ${objectWord(relType)} ${quoteRelation(name)} RENAME COLUMN ${quoteIdent(n.newname)} TO ${quoteIdent(n.subname)}`;
      } else if (type === 'OBJECT_TABCONSTRAINT' && n.subname) {
        inverse = `ALTER TABLE ${quoteRelation(name)} RENAME CONSTRAINT ${quoteIdent(n.newname)} TO ${quoteIdent(n.subname)}`;
      } else if (type === 'OBJECT_TRIGGER' && n.subname) {
        inverse = `ALTER TRIGGER ${quoteIdent(n.newname)} ON ${quoteRelation(name)} RENAME TO ${quoteIdent(n.subname)}`;
      } else if (RELATION_OBJECTS.has(type)) {
        const renamed: RelationName = name.schema ? { schema: name.schema, name: n.newname } : { name: n.newname };
        inverse = `ALTER ${objectWord(type)} ${quoteRelation(renamed)} RENAME TO ${quoteIdent(name.name)}`;
      }
    } else if (type === 'OBJECT_SCHEMA' && n.subname) {
      c.schema(n.subname);
      inverse = `ALTER SCHEMA ${quoteIdent(n.newname)} RENAME TO ${quoteIdent(n.subname)}`;
    } else if (type === 'OBJECT_DATABASE' && n.subname) {
      c.database(n.subname);
      inverse = `ALTER DATABASE ${quoteIdent(n.newname)} RENAME TO ${quoteIdent(n.subname)}`;
    } else if (type === 'OBJECT_ROLE' && n.subname) {
      c.role(n.subname);
      c.addPrivileged('ALTER ROLE ... RENAME');
      return r('dcl', 'ALTER ROLE');
    } else {
      c.walk(n.object, undefined);
    }
    return r('ddl', `ALTER ${tagWord}`, inverse ? { inverse } : {});
  },
  AlterObjectSchemaStmt: (c, n) => {
    const name = rangeVarName(n.relation);
    let inverse: string | undefined;
    if (name) {
      c.relation(name, 'alter', 'AccessExclusiveLock', 'SET SCHEMA takes ACCESS EXCLUSIVE');
      if (name.schema) inverse = `ALTER ${objectWord(n.objectType)} ${quoteRelation({ schema: n.newschema, name: name.name })} SET SCHEMA ${quoteIdent(name.schema)}`;
    }
    c.schema(n.newschema);
    return r('ddl', `ALTER ${objectWord(n.objectType)}`, inverse ? { inverse } : {});
  },
  AlterOwnerStmt: (c, n) => {
    c.role(roleSpecName(n.newowner));
    const name = rangeVarName(n.relation);
    if (name) c.relation(name, 'alter', 'AccessExclusiveLock', 'OWNER TO');
    return r('ddl', `ALTER ${objectWord(n.objectType)}`);
  },
  CommentStmt: (c, n) => {
    if (n.objtype === 'OBJECT_TABLE' || n.objtype === 'OBJECT_COLUMN' || RELATION_OBJECTS.has(n.objtype)) {
      const parts = stringList(n.object?.List?.items);
      const rel = qualifiedName(n.objtype === 'OBJECT_COLUMN' ? parts.slice(0, -1) : parts);
      if (rel) {
        c.relation(rel, 'alter', 'ShareUpdateExclusiveLock', 'COMMENT ON takes SHARE UPDATE EXCLUSIVE');
        if (n.objtype === 'OBJECT_COLUMN') c.column(rel, 'alter', parts[parts.length - 1]!);
      }
    }
    return r('ddl', 'COMMENT');
  },
  CreateSeqStmt: (c, n) => {
    const name = rangeVarName(n.sequence);
    if (name) c.relation(name, 'create');
    return r('ddl', 'CREATE SEQUENCE', name && !n.if_not_exists ? { inverse: `DROP SEQUENCE ${quoteRelation(name)}` } : {});
  },
  AlterSeqStmt: (c, n) => {
    const name = rangeVarName(n.sequence);
    if (name) c.relation(name, 'alter', 'ShareRowExclusiveLock', 'ALTER SEQUENCE');
    return r('ddl', 'ALTER SEQUENCE');
  },
  CreateSchemaStmt: (c, n, env) => {
    c.schema(n.schemaname);
    c.role(roleSpecName(n.authrole));
    for (const el of (n.schemaElts ?? []) as any[]) {
      const f = env.innerFacts(el);
      c.addNested(f);
      c.absorb(f, '');
    }
    return r('ddl', 'CREATE SCHEMA', n.schemaname && !n.if_not_exists ? { inverse: `DROP SCHEMA ${quoteIdent(n.schemaname)}` } : {});
  },
  CreatedbStmt: (c, n) => {
    c.database(n.dbname);
    return r('ddl', 'CREATE DATABASE', { inverse: `DROP DATABASE ${quoteIdent(n.dbname)}` });
  },
  DropdbStmt: (c, n) => {
    c.database(n.dbname);
    c.addDestructive(`DROP DATABASE ${quoteIdent(n.dbname)} deletes the whole database`);
    return r('ddl', 'DROP DATABASE');
  },
  AlterDatabaseStmt: (c, n) => { c.database(n.dbname); return r('ddl', 'ALTER DATABASE'); },
  AlterDatabaseSetStmt: (c, n) => {
    c.database(n.dbname);
    const s = setting(n.setstmt);
    return r('ddl', 'ALTER DATABASE', s ? { setting: s } : {});
  },
  AlterDatabaseRefreshCollStmt: (c, n) => { c.database(n.dbname); return r('ddl', 'ALTER DATABASE'); },
  CreateRoleStmt: (c, n) => {
    c.role(n.role);
    c.addPrivileged(`CREATE ${n.stmt_type === 'ROLESTMT_USER' ? 'USER' : n.stmt_type === 'ROLESTMT_GROUP' ? 'GROUP' : 'ROLE'} ${n.role}`);
    for (const o of (n.options ?? []) as any[]) if (o?.DefElem?.defname === 'rolemembers' || o?.DefElem?.defname === 'addroleto') c.walk(o, undefined);
    const tag = n.stmt_type === 'ROLESTMT_USER' ? 'CREATE ROLE' : 'CREATE ROLE';
    return r('dcl', tag, { inverse: `DROP ROLE ${quoteIdent(n.role)}` });
  },
  AlterRoleStmt: (c, n) => {
    c.role(roleSpecName(n.role));
    c.addPrivileged(`ALTER ROLE ${roleSpecName(n.role) ?? ''}`.trim());
    return r('dcl', 'ALTER ROLE');
  },
  AlterRoleSetStmt: (c, n) => {
    c.role(roleSpecName(n.role));
    c.addPrivileged(`ALTER ROLE ${roleSpecName(n.role) ?? 'ALL'} SET changes another role's settings`);
    const s = setting(n.setstmt);
    return r('dcl', 'ALTER ROLE', s ? { setting: s } : {});
  },
  DropRoleStmt: (c, n) => {
    for (const rs of (n.roles ?? []) as any[]) c.role(roleSpecName(rs));
    c.addPrivileged('DROP ROLE');
    return r('dcl', 'DROP ROLE');
  },
  GrantStmt: (c, n) => {
    const verb = n.is_grant ? 'GRANT' : 'REVOKE';
    for (const g of (n.grantees ?? []) as any[]) c.role(roleSpecName(g));
    const cols: string[] = [];
    for (const p of (n.privileges ?? []) as any[]) for (const col of stringList(p?.AccessPriv?.cols)) cols.push(col);
    for (const o of (n.objects ?? []) as any[]) {
      if (o?.RangeVar) {
        const name = rangeVarName(o.RangeVar);
        if (name) { c.relation(name, 'reference'); for (const col of cols) c.column(name, 'reference', col); }
      } else if (o?.String) {
        if (n.objtype === 'OBJECT_SCHEMA' || n.targtype === 'ACL_TARGET_ALL_IN_SCHEMA') c.schema(o.String.sval);
        else if (n.objtype === 'OBJECT_DATABASE') c.database(o.String.sval);
      } else if (o?.ObjectWithArgs) {
        const fn = qualifiedName(stringList(o.ObjectWithArgs.objname));
        if (fn) c.fn(fn.schema, fn.name);
      }
    }
    // REVOKE ... CASCADE revokes privileges granted onwards: no data is lost, so it is not destructive.
    return r('dcl', verb);
  },
  GrantRoleStmt: (c, n) => {
    for (const g of (n.granted_roles ?? []) as any[]) c.role(g?.AccessPriv?.priv_name);
    for (const g of (n.grantee_roles ?? []) as any[]) c.role(roleSpecName(g));
    if (n.is_grant) c.addPrivileged('GRANT role membership gives another role\'s rights');
    return r('dcl', n.is_grant ? 'GRANT ROLE' : 'REVOKE ROLE');
  },
  AlterDefaultPrivilegesStmt: (c, n) => {
    c.walk(n.options, undefined);
    return r('dcl', 'ALTER DEFAULT PRIVILEGES');
  },
  ReassignOwnedStmt: (c, n) => {
    for (const rs of (n.roles ?? []) as any[]) c.role(roleSpecName(rs));
    c.role(roleSpecName(n.newrole));
    c.addPrivileged('REASSIGN OWNED transfers ownership of every object of a role');
    return r('dcl', 'REASSIGN OWNED');
  },
  DropOwnedStmt: (c, n) => {
    for (const rs of (n.roles ?? []) as any[]) c.role(roleSpecName(rs));
    c.addDestructive('DROP OWNED drops every object owned by the role');
    return r('dcl', 'DROP OWNED');
  },
  TransactionStmt: (_c, n) => {
    const [effect, tag] = TRANSACTION[n.kind as string] ?? [undefined, 'BEGIN'];
    return r('tcl', tag, effect ? { transaction: effect } : {});
  },
  ConstraintsSetStmt: () => r('tcl', 'SET CONSTRAINTS'),
  VariableSetStmt: (c, n) => {
    const s = setting(n);
    const reset = n.kind === 'VAR_RESET' || n.kind === 'VAR_RESET_ALL' || n.kind === 'VAR_SET_DEFAULT';
    judgeSetting(c, s, reset);
    return r('session', n.kind === 'VAR_RESET' || n.kind === 'VAR_RESET_ALL' ? 'RESET' : 'SET', s ? { setting: s } : {});
  },
  VariableShowStmt: () => r('session', 'SHOW'),
  DiscardStmt: (_c, n) => r('session', `DISCARD ${String(n.target ?? 'DISCARD_ALL').replace('DISCARD_', '')}`),
  PrepareStmt: (c, n, env) => {
    stored(c, () => c.walk(n.argtypes, undefined));
    const inner = env.innerFacts(n.query);
    return r('session', 'PREPARE', { prepare: { name: n.name, inner } });
  },
  ExecuteStmt: (c, n) => {
    c.walk(n.params, undefined);
    return r('session', 'EXECUTE', { execute: { name: n.name } });
  },
  DeallocateStmt: (_c, n) => r('session', n.isall || n.name === undefined ? 'DEALLOCATE ALL' : 'DEALLOCATE'),
  ListenStmt: () => r('session', 'LISTEN'),
  UnlistenStmt: () => r('session', 'UNLISTEN'),
  NotifyStmt: () => r('session', 'NOTIFY'),
  DeclareCursorStmt: (c, n) => { c.walk(n.query, undefined); return r(dmlKind(c), 'DECLARE CURSOR'); },
  FetchStmt: (_c, n) => r('read', n.ismove ? 'MOVE' : 'FETCH'),
  ClosePortalStmt: (_c, n) => r('session', n.portalname ? 'CLOSE CURSOR' : 'CLOSE CURSOR ALL'),
  LoadStmt: (c, n) => {
    c.addPrivileged(`LOAD ${n.filename ?? ''} loads a shared library into the server process`.replace('  ', ' '));
    return r('utility', 'LOAD');
  },
  VacuumStmt: (c, n) => {
    const vacuum = n.is_vacuumcmd === true;
    const full = vacuum && hasOption(n.options, 'full');
    const spec = full
      ? lockSpec('AccessExclusiveLock', 'VACUUM FULL rewrites the table under ACCESS EXCLUSIVE', true)
      : vacuum
        ? lockSpec('ShareUpdateExclusiveLock', 'VACUUM takes SHARE UPDATE EXCLUSIVE (reads and writes continue)', false, true)
        : lockSpec('ShareUpdateExclusiveLock', 'ANALYZE takes SHARE UPDATE EXCLUSIVE and samples the table');
    const rels = (n.rels ?? []) as any[];
    for (const vr of rels) {
      const rel = vr?.VacuumRelation;
      const name = rangeVarName(rel?.relation);
      if (!name) continue;
      c.relation(name, 'lock', spec);
      for (const col of stringList(rel.va_cols)) c.column(name, 'lock', col);
    }
    if (rels.length === 0) c.addHidden(`${vacuum ? (full ? 'VACUUM FULL' : 'VACUUM') : 'ANALYZE'} without a table processes every table of the database`);
    return r('utility', vacuum ? 'VACUUM' : 'ANALYZE');
  },
  ClusterStmt: (c, n) => {
    const name = rangeVarName(n.relation);
    if (name) c.relation(name, 'lock', lockSpec('AccessExclusiveLock', 'CLUSTER rewrites the table in index order under ACCESS EXCLUSIVE', true));
    else c.addHidden('CLUSTER without a table re-clusters every previously clustered table');
    return r('utility', 'CLUSTER');
  },
  CheckPointStmt: (c) => {
    c.addPrivileged('CHECKPOINT forces a server-wide checkpoint');
    return r('utility', 'CHECKPOINT');
  },
  CopyStmt: (c, n) => {
    const name = rangeVarName(n.relation);
    const from = n.is_from === true;
    if (name) {
      if (from) { c.relation(name, 'write', 'RowExclusiveLock', 'COPY FROM takes ROW EXCLUSIVE'); c.writes = true; }
      else c.relation(name, 'read', 'AccessShareLock', 'COPY TO reads the table');
      for (const col of stringList(n.attlist)) c.column(name, from ? 'write' : 'read', col);
    }
    if (n.query) c.walk(n.query, undefined);
    if (n.whereClause) {
      const scope = newScope();
      c.walk(n.whereClause, scope);
    }
    if (n.is_program) c.addPrivileged(`COPY ${from ? 'FROM' : 'TO'} PROGRAM runs a shell command on the database server`);
    else if (n.filename !== undefined) c.addPrivileged(`COPY ${from ? 'FROM' : 'TO'} a server file reads or writes the server's file system`);
    return r('utility', 'COPY');
  },
  ExplainStmt: (c, n, env) => {
    const analyze = hasOption(n.options, 'analyze');
    const inner = env.innerFacts(n.query);
    c.addNested(inner);
    if (analyze) {
      c.absorb(inner, '');
      if (inner.kind !== 'read') c.addHidden(`EXPLAIN ANALYZE executes the ${inner.commandTag}`);
      return r(inner.kind === 'read' ? 'read' : inner.kind, 'EXPLAIN');
    }
    // Planning takes the same relation locks as parse analysis, but runs nothing.
    for (const rel of inner.relations) c.relation(rel.relation, rel.role === 'write' ? 'read' : rel.role === 'read' ? 'read' : 'reference');
    for (const l of inner.locks) c.lock(l.relation, l.relation.schema ? `${l.relation.schema}.${l.relation.name}` : l.relation.name, l.mode, false, false, `planning ${inner.commandTag}`);
    return r('read', 'EXPLAIN');
  },
  LockStmt: (c, n) => {
    const mode = LOCK_STMT_MODES[Number(n.mode ?? 8)] ?? 'AccessExclusiveLock';
    for (const rv of (n.relations ?? []) as any[]) {
      const name = rangeVarName(rv?.RangeVar);
      if (name) c.relation(name, 'lock', mode, `LOCK TABLE IN ${mode.replace('Lock', '')} MODE`);
    }
    return r('utility', 'LOCK TABLE');
  },
  AlterSystemStmt: (c, n) => {
    const s = setting(n.setstmt);
    c.addPrivileged(`ALTER SYSTEM changes the server configuration${s ? ` (${s.name})` : ''}`);
    return r('utility', 'ALTER SYSTEM', s ? { setting: s } : {});
  },
  CreateExtensionStmt: (c, n) => {
    c.addPrivileged(`CREATE EXTENSION ${n.extname} runs the extension's install script`);
    for (const o of (n.options ?? []) as any[]) if (o?.DefElem?.defname === 'schema') c.schema(constText(o.DefElem.arg));
    return r('ddl', 'CREATE EXTENSION', n.if_not_exists ? {} : { inverse: `DROP EXTENSION ${quoteIdent(n.extname)}` });
  },
  AlterExtensionStmt: (c, n) => {
    c.addPrivileged(`ALTER EXTENSION ${n.extname} UPDATE runs the extension's update scripts`);
    return r('ddl', 'ALTER EXTENSION');
  },
  AlterExtensionContentsStmt: (c, n) => {
    c.addPrivileged(`ALTER EXTENSION ${n.extname} changes the extension's members`);
    return r('ddl', 'ALTER EXTENSION');
  },
  CreatePLangStmt: (c, n) => {
    c.addPrivileged(`CREATE LANGUAGE ${n.plname ?? ''}`.trim());
    return r('ddl', 'CREATE LANGUAGE');
  },
  CreateFdwStmt: (c) => { c.addPrivileged('CREATE FOREIGN DATA WRAPPER (superuser only)'); return r('ddl', 'CREATE FOREIGN DATA WRAPPER'); },
  AlterFdwStmt: (c) => { c.addPrivileged('ALTER FOREIGN DATA WRAPPER (superuser only)'); return r('ddl', 'ALTER FOREIGN DATA WRAPPER'); },
  CreateForeignServerStmt: (c, n) => { c.addPrivileged(`CREATE SERVER ${n.servername} reaches another server`); return r('ddl', 'CREATE SERVER'); },
  AlterForeignServerStmt: (c, n) => { c.addPrivileged(`ALTER SERVER ${n.servername}`); return r('ddl', 'ALTER SERVER'); },
  CreateUserMappingStmt: (c, n) => { c.role(roleSpecName(n.user)); c.addPrivileged('CREATE USER MAPPING stores credentials for another server'); return r('ddl', 'CREATE USER MAPPING'); },
  AlterUserMappingStmt: (c, n) => { c.role(roleSpecName(n.user)); c.addPrivileged('ALTER USER MAPPING changes credentials for another server'); return r('ddl', 'ALTER USER MAPPING'); },
  DropUserMappingStmt: (c, n) => { c.role(roleSpecName(n.user)); return r('ddl', 'DROP USER MAPPING'); },
  ImportForeignSchemaStmt: (c, n) => { c.schema(n.local_schema); return r('ddl', 'IMPORT FOREIGN SCHEMA'); },
  CreateTableSpaceStmt: (c, n) => { c.addPrivileged(`CREATE TABLESPACE ${n.tablespacename} uses a server directory`); return r('ddl', 'CREATE TABLESPACE'); },
  DropTableSpaceStmt: () => r('ddl', 'DROP TABLESPACE'),
  AlterTableSpaceOptionsStmt: () => r('ddl', 'ALTER TABLESPACE'),
  CreateSubscriptionStmt: (c, n) => { c.addPrivileged(`CREATE SUBSCRIPTION ${n.subname} connects to another server`); return r('ddl', 'CREATE SUBSCRIPTION'); },
  AlterSubscriptionStmt: (c, n) => { c.addPrivileged(`ALTER SUBSCRIPTION ${n.subname}`); return r('ddl', 'ALTER SUBSCRIPTION'); },
  DropSubscriptionStmt: () => r('ddl', 'DROP SUBSCRIPTION'),
  CreatePublicationStmt: (c, n) => { c.walk(n.pubobjects, undefined); return r('ddl', 'CREATE PUBLICATION'); },
  AlterPublicationStmt: (c, n) => { c.walk(n.pubobjects, undefined); return r('ddl', 'ALTER PUBLICATION'); },
  CreateAmStmt: (c, n) => { c.addPrivileged(`CREATE ACCESS METHOD ${n.amname} (superuser only)`); return r('ddl', 'CREATE ACCESS METHOD'); },
  CreateCastStmt: (c) => { c.addHidden('CREATE CAST changes how values convert'); return r('ddl', 'CREATE CAST'); },
  CreateDomainStmt: (c, n) => {
    const name = qualifiedName(stringList(n.domainname));
    stored(c, () => c.walk(n.typeName, undefined));
    stored(c, () => c.walk(n.constraints, undefined));
    return r('ddl', 'CREATE DOMAIN', name ? { inverse: `DROP DOMAIN ${quoteRelation(name)}` } : {});
  },
  AlterDomainStmt: (c, n) => {
    stored(c, () => c.walk(n.def, undefined));
    if (n.subtype === 'C' || n.subtype === 'V' || n.subtype === 'O') c.addHidden('ALTER DOMAIN ... ADD/VALIDATE CONSTRAINT or SET NOT NULL checks every column of the domain type');
    return r('ddl', 'ALTER DOMAIN');
  },
  CompositeTypeStmt: (c, n) => {
    const name = rangeVarName(n.typevar);
    stored(c, () => c.walk(n.coldeflist, undefined));
    return r('ddl', 'CREATE TYPE', name ? { inverse: `DROP TYPE ${quoteRelation(name)}` } : {});
  },
  CreateEnumStmt: (c, n) => {
    const name = qualifiedName(stringList(n.typeName));
    if (name) c.type(name.schema ? `${name.schema}.${name.name}` : name.name);
    return r('ddl', 'CREATE TYPE', name ? { inverse: `DROP TYPE ${quoteRelation(name)}` } : {});
  },
  CreateRangeStmt: (c, n) => {
    const name = qualifiedName(stringList(n.typeName));
    if (name) c.type(name.schema ? `${name.schema}.${name.name}` : name.name);
    return r('ddl', 'CREATE TYPE', name ? { inverse: `DROP TYPE ${quoteRelation(name)}` } : {});
  },
  AlterEnumStmt: (c, n) => {
    const name = qualifiedName(stringList(n.typeName));
    if (name) c.type(name.schema ? `${name.schema}.${name.name}` : name.name);
    return r('ddl', 'ALTER TYPE');
  },
  AlterTypeStmt: (c, n) => {
    const name = qualifiedName(stringList(n.typeName));
    if (name) c.type(name.schema ? `${name.schema}.${name.name}` : name.name);
    return r('ddl', 'ALTER TYPE');
  },
  DefineStmt: (c, n) => {
    stored(c, () => c.walk(n.definition, undefined));
    return r('ddl', `CREATE ${objectWord(n.kind)}`);
  },
  RefreshMatViewStmt: (c, n) => {
    const name = rangeVarName(n.relation);
    if (name) c.relation(name, 'write', n.concurrent
      ? lockSpec('ExclusiveLock', 'REFRESH MATERIALIZED VIEW CONCURRENTLY takes EXCLUSIVE (reads continue) and recomputes the query', false, true)
      : lockSpec('AccessExclusiveLock', 'REFRESH MATERIALIZED VIEW takes ACCESS EXCLUSIVE (reads wait) and rewrites the view', true, true));
    return r('ddl', 'REFRESH MATERIALIZED VIEW');
  },
  CreateStatsStmt: (c, n) => {
    for (const rel of (n.relations ?? []) as any[]) {
      const name = rangeVarName(rel?.RangeVar);
      if (name) c.relation(name, 'reference', 'ShareUpdateExclusiveLock', 'CREATE STATISTICS takes SHARE UPDATE EXCLUSIVE');
    }
    return r('ddl', 'CREATE STATISTICS');
  },
  AlterStatsStmt: () => r('ddl', 'ALTER STATISTICS'),
  CreatePolicyStmt: (c, n) => {
    const name = rangeVarName(n.table);
    if (name) c.relation(name, 'alter', 'AccessExclusiveLock', 'CREATE POLICY takes ACCESS EXCLUSIVE');
    for (const rs of (n.roles ?? []) as any[]) c.role(roleSpecName(rs));
    stored(c, () => { c.walk(n.qual, undefined); c.walk(n.with_check, undefined); });
    return r('ddl', 'CREATE POLICY', name && n.policy_name ? { inverse: `DROP POLICY ${quoteIdent(n.policy_name)} ON ${quoteRelation(name)}` } : {});
  },
  AlterPolicyStmt: (c, n) => {
    const name = rangeVarName(n.table);
    if (name) c.relation(name, 'alter', 'AccessExclusiveLock', 'ALTER POLICY takes ACCESS EXCLUSIVE');
    for (const rs of (n.roles ?? []) as any[]) c.role(roleSpecName(rs));
    stored(c, () => { c.walk(n.qual, undefined); c.walk(n.with_check, undefined); });
    return r('ddl', 'ALTER POLICY');
  },
  SecLabelStmt: () => r('ddl', 'SECURITY LABEL'),
  CreateConversionStmt: () => r('ddl', 'CREATE CONVERSION'),
  CreateTransformStmt: (c) => { c.addPrivileged('CREATE TRANSFORM (superuser only)'); return r('ddl', 'CREATE TRANSFORM'); },
  CreateOpClassStmt: () => r('ddl', 'CREATE OPERATOR CLASS'),
  CreateOpFamilyStmt: () => r('ddl', 'CREATE OPERATOR FAMILY'),
  AlterOpFamilyStmt: () => r('ddl', 'ALTER OPERATOR FAMILY'),
  AlterOperatorStmt: () => r('ddl', 'ALTER OPERATOR'),
  AlterCollationStmt: () => r('ddl', 'ALTER COLLATION'),
  AlterObjectDependsStmt: () => r('ddl', 'ALTER'),
  AlterTSDictionaryStmt: () => r('ddl', 'ALTER TEXT SEARCH DICTIONARY'),
  AlterTSConfigurationStmt: () => r('ddl', 'ALTER TEXT SEARCH CONFIGURATION'),
  AlterEventTrigStmt: (c) => { c.addPrivileged('ALTER EVENT TRIGGER (superuser only)'); return r('ddl', 'ALTER EVENT TRIGGER'); },
};

/**
 * Analyses one statement node into the collector. Unknown node types: DDL-looking names are `ddl`,
 * everything else `utility`; both are walked generically so relations and calls are still found.
 */
export function analyzeStatementNode(c: Collector, type: string, node: any, env: StatementEnv): StatementResult {
  const h = STATEMENTS[type];
  if (h) return h(c, node ?? {}, env);
  c.walk(node, undefined);
  const ddl = type.startsWith('Create') || type.startsWith('Alter') || type.startsWith('Drop') || type.startsWith('Define');
  return r(ddl ? 'ddl' : 'utility', type.replace('Stmt', '').toUpperCase());
}

export { newScope };
