/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's JSON AST is walked dynamically */
/**
 * Names: reading them out of the AST and writing them back as SQL identifiers (for `inverse`).
 * No SQL text is inspected: identifiers come from the parser, already case-folded and unquoted.
 */
import type { RelationName } from './types.js';

/** The key a relation has in ScriptContext.createdRelations and in lock maps: "schema.name" or "name". */
export function relationKey(r: RelationName): string {
  return r.schema === undefined ? r.name : `${r.schema}.${r.name}`;
}

/** RangeVar (inline struct) -> RelationName as written. */
export function rangeVarName(rv: any): RelationName | undefined {
  if (!rv || typeof rv.relname !== 'string') return undefined;
  return typeof rv.schemaname === 'string' ? { schema: rv.schemaname, name: rv.relname } : { name: rv.relname };
}

/** [{String:{sval}}...] -> ['a','b']. */
export function stringList(list: unknown): string[] {
  const out: string[] = [];
  if (!Array.isArray(list)) return out;
  for (const item of list) {
    const s = item?.String?.sval;
    if (typeof s === 'string') out.push(s);
  }
  return out;
}

/** A qualified name list ['s','t'] -> RelationName (the last element is the name). */
export function qualifiedName(parts: readonly string[]): RelationName | undefined {
  const name = parts[parts.length - 1];
  if (name === undefined) return undefined;
  const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
  return schema === undefined ? { name } : { schema, name };
}

/** RoleSpec -> role name as written ('current_user', 'public' ... for the special forms). */
export function roleSpecName(rs: any): string | undefined {
  const r = rs?.RoleSpec ?? rs;
  if (!r) return undefined;
  switch (r.roletype) {
    case 'ROLESPEC_CSTRING': return r.rolename;
    case 'ROLESPEC_CURRENT_ROLE': return 'current_role';
    case 'ROLESPEC_CURRENT_USER': return 'current_user';
    case 'ROLESPEC_SESSION_USER': return 'session_user';
    case 'ROLESPEC_PUBLIC': return 'public';
    default: return r.rolename;
  }
}

// Reserved key words (PostgreSQL docs, Appendix C, "reserved" in the PostgreSQL column): they must be quoted.
const RESERVED = new Set([
  'all', 'analyse', 'analyze', 'and', 'any', 'array', 'as', 'asc', 'asymmetric', 'authorization', 'binary', 'both',
  'case', 'cast', 'check', 'collate', 'collation', 'column', 'concurrently', 'constraint', 'create', 'cross',
  'current_catalog', 'current_date', 'current_role', 'current_schema', 'current_time', 'current_timestamp',
  'current_user', 'default', 'deferrable', 'desc', 'distinct', 'do', 'else', 'end', 'except', 'false', 'fetch',
  'for', 'foreign', 'freeze', 'from', 'full', 'grant', 'group', 'having', 'ilike', 'in', 'initially', 'inner',
  'intersect', 'into', 'is', 'isnull', 'join', 'lateral', 'leading', 'left', 'like', 'limit', 'localtime',
  'localtimestamp', 'natural', 'not', 'notnull', 'null', 'offset', 'on', 'only', 'or', 'order', 'outer',
  'overlaps', 'placing', 'primary', 'references', 'returning', 'right', 'select', 'session_user', 'similar',
  'some', 'symmetric', 'system_user', 'table', 'tablesample', 'then', 'to', 'trailing', 'true', 'union', 'unique',
  'user', 'using', 'variadic', 'verbose', 'when', 'where', 'window', 'with',
]);

/** Quotes an identifier the way quote_ident() does: bare when it is lower-case, simple and not reserved. */
export function quoteIdent(id: string): string {
  let simple = id.length > 0 && !RESERVED.has(id);
  for (let i = 0; simple && i < id.length; i++) {
    const c = id.charCodeAt(i);
    const ok = (c >= 97 && c <= 122) || c === 95 || (i > 0 && ((c >= 48 && c <= 57) || c === 36));
    if (!ok) simple = false;
  }
  return simple ? id : `"${id.split('"').join('""')}"`;
}

export function quoteRelation(r: RelationName): string {
  return r.schema === undefined ? quoteIdent(r.name) : `${quoteIdent(r.schema)}.${quoteIdent(r.name)}`;
}

/** Words of an ObjectType for command tags and messages (OBJECT_MATVIEW -> MATERIALIZED VIEW). */
const OBJECT_WORDS: Record<string, string> = {
  OBJECT_ACCESS_METHOD: 'ACCESS METHOD', OBJECT_AGGREGATE: 'AGGREGATE', OBJECT_CAST: 'CAST',
  OBJECT_COLUMN: 'COLUMN', OBJECT_COLLATION: 'COLLATION', OBJECT_CONVERSION: 'CONVERSION',
  OBJECT_DATABASE: 'DATABASE', OBJECT_DEFAULT: 'DEFAULT', OBJECT_DOMAIN: 'DOMAIN',
  OBJECT_DOMCONSTRAINT: 'CONSTRAINT', OBJECT_EVENT_TRIGGER: 'EVENT TRIGGER', OBJECT_EXTENSION: 'EXTENSION',
  OBJECT_FDW: 'FOREIGN DATA WRAPPER', OBJECT_FOREIGN_SERVER: 'SERVER', OBJECT_FOREIGN_TABLE: 'FOREIGN TABLE',
  OBJECT_FUNCTION: 'FUNCTION', OBJECT_INDEX: 'INDEX', OBJECT_LANGUAGE: 'LANGUAGE',
  OBJECT_LARGEOBJECT: 'LARGE OBJECT', OBJECT_MATVIEW: 'MATERIALIZED VIEW', OBJECT_OPCLASS: 'OPERATOR CLASS',
  OBJECT_OPERATOR: 'OPERATOR', OBJECT_OPFAMILY: 'OPERATOR FAMILY', OBJECT_PARAMETER_ACL: 'PARAMETER',
  OBJECT_POLICY: 'POLICY', OBJECT_PROCEDURE: 'PROCEDURE', OBJECT_PUBLICATION: 'PUBLICATION',
  OBJECT_PUBLICATION_NAMESPACE: 'PUBLICATION', OBJECT_PUBLICATION_REL: 'PUBLICATION', OBJECT_ROLE: 'ROLE',
  OBJECT_ROUTINE: 'ROUTINE', OBJECT_RULE: 'RULE', OBJECT_SCHEMA: 'SCHEMA', OBJECT_SEQUENCE: 'SEQUENCE',
  OBJECT_SUBSCRIPTION: 'SUBSCRIPTION', OBJECT_STATISTIC_EXT: 'STATISTICS', OBJECT_TABCONSTRAINT: 'CONSTRAINT',
  OBJECT_TABLE: 'TABLE', OBJECT_TABLESPACE: 'TABLESPACE', OBJECT_TRANSFORM: 'TRANSFORM',
  OBJECT_TRIGGER: 'TRIGGER', OBJECT_TSCONFIGURATION: 'TEXT SEARCH CONFIGURATION',
  OBJECT_TSDICTIONARY: 'TEXT SEARCH DICTIONARY', OBJECT_TSPARSER: 'TEXT SEARCH PARSER',
  OBJECT_TSTEMPLATE: 'TEXT SEARCH TEMPLATE', OBJECT_TYPE: 'TYPE', OBJECT_USER_MAPPING: 'USER MAPPING',
  OBJECT_VIEW: 'VIEW', OBJECT_ATTRIBUTE: 'TYPE', OBJECT_AMOP: 'OPERATOR FAMILY', OBJECT_AMPROC: 'OPERATOR FAMILY',
  OBJECT_DEFACL: 'DEFAULT PRIVILEGES',
};

export function objectWord(objtype: string | undefined): string {
  if (objtype === undefined) return 'TABLE';
  return OBJECT_WORDS[objtype] ?? objtype.replace('OBJECT_', '');
}

/** Relation-like object types: their names are RelationNames and they take table-level locks. */
export const RELATION_OBJECTS: ReadonlySet<string> = new Set([
  'OBJECT_TABLE', 'OBJECT_INDEX', 'OBJECT_VIEW', 'OBJECT_MATVIEW', 'OBJECT_SEQUENCE', 'OBJECT_FOREIGN_TABLE',
]);

/** TypeName (inline struct) -> a readable name: int4, varchar(10), myschema.mytype, text[]. */
export function typeNameText(tn: any): string | undefined {
  const parts = stringList(tn?.names);
  if (parts.length === 0) return undefined;
  const base = parts[0] === 'pg_catalog' && parts.length === 2 ? parts[1]! : parts.join('.');
  let mods = '';
  if (Array.isArray(tn.typmods) && tn.typmods.length > 0) {
    const vals: string[] = [];
    for (const m of tn.typmods as any[]) {
      const c = m?.A_Const;
      if (c?.ival !== undefined) vals.push(String(c.ival.ival ?? 0));
      else if (c?.sval !== undefined) vals.push(String(c.sval.sval));
      else if (c?.fval !== undefined) vals.push(String(c.fval.fval));
    }
    if (vals.length > 0) mods = `(${vals.join(',')})`;
  }
  const arr = Array.isArray(tn.arrayBounds) && tn.arrayBounds.length > 0 ? '[]'.repeat(tn.arrayBounds.length) : '';
  return base + mods + arr;
}

/** A_Const / TypeCast(A_Const) / Boolean / String node -> its value as text (for SET values and options). */
export function constText(node: any): string | undefined {
  if (!node) return undefined;
  const c = node.A_Const ?? node;
  if (c.sval !== undefined) return String(c.sval.sval ?? '');
  if (c.ival !== undefined) return String(c.ival.ival ?? 0);
  if (c.fval !== undefined) return String(c.fval.fval ?? '0');
  if (c.boolval !== undefined) return c.boolval.boolval ? 'on' : 'off';
  if (c.isnull) return undefined;
  if (node.TypeCast) return constText(node.TypeCast.arg);
  if (node.String) return String(node.String.sval ?? '');
  if (node.Integer) return String(node.Integer.ival ?? 0);
  if (node.Float) return String(node.Float.fval ?? '0');
  if (node.Boolean) return node.Boolean.boolval ? 'on' : 'off';
  if (node.TypeName) return typeNameText(node.TypeName);
  return undefined;
}
