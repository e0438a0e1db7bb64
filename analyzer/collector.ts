/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's JSON AST is walked dynamically:
   the @pgsql/types unions would need a cast at every step and buy nothing for a generic walk. */
/**
 * Collector: accumulates the facts of ONE statement during ONE walk of its AST.
 * `walk` is the generic expression walker: it visits every node once, dispatching on node type
 * (ColumnRef, FuncCall, RangeVar, SubLink, nested DML, ...) and recursing into everything else, so
 * a construct nobody wrote a handler for is still searched for relations and function calls.
 */
import { isKnownSafeFunction, isPrivilegedFunction, SEQUENCE_FUNCTIONS } from './functions.js';
import type { LockSpec } from './locks.js';
import { constText, rangeVarName, relationKey, stringList, typeNameText } from './names.js';
import {
  lockRank,
  type FunctionUse,
  type LockFact,
  type LockMode,
  type RelationName,
  type RelationRole,
  type RelationUse,
  type StatementFacts,
} from './types.js';

/** Name resolution scope of one query level: its FROM entries and visible CTE names. */
export interface Scope {
  readonly parent: Scope | undefined;
  /** FROM entries: alias (or relation name) -> relation key; key undefined for sub-queries/CTEs/functions. */
  readonly entries: Array<{ readonly ref: string; readonly schema?: string; readonly key: string | undefined }>;
  ctes: string[] | undefined;
}

export const newScope = (parent?: Scope): Scope => ({ parent, entries: [], ctes: undefined });

interface RelEntry { relation: RelationName; role: RelationRole; columns: string[] | undefined }

const EMPTY: readonly never[] = Object.freeze([]);
const MAX_DEPTH = 400;

/** Handlers for DML met inside another statement (CTEs); set by statements.ts to avoid an import cycle. */
export interface DmlHandlers {
  select(c: Collector, node: any, scope: Scope | undefined): void;
  insert(c: Collector, node: any, scope: Scope | undefined): void;
  update(c: Collector, node: any, scope: Scope | undefined): void;
  delete(c: Collector, node: any, scope: Scope | undefined): void;
  merge(c: Collector, node: any, scope: Scope | undefined): void;
}
let dml: DmlHandlers | undefined;
export function registerDmlHandlers(h: DmlHandlers): void { dml = h; }

export class Collector {
  private readonly rels = new Map<string, RelEntry>();
  /** relation key -> name, for attributing columns found by key. */
  private readonly names = new Map<string, RelationName>();
  private readonly lockMap = new Map<string, { relation: RelationName; mode: LockMode; rewrite: boolean; scan: boolean; reason: string }>();
  private fnMap: Map<string, FunctionUse> | undefined;
  private typeSet: Set<string> | undefined;
  private schemaSet: Set<string> | undefined;
  private dbSet: Set<string> | undefined;
  private roleSet: Set<string> | undefined;
  destructive: string[] | undefined;
  opaque: string[] | undefined;
  privileged: string[] | undefined;
  hidden: string[] | undefined;
  nested: StatementFacts[] | undefined;
  /** A data-modifying statement was met (top level or hidden in a CTE). */
  writes = false;
  /** Function calls run now (false inside CREATE VIEW / CREATE FUNCTION / CREATE TABLE definitions). */
  executing = true;
  /** Role given to relations read in FROM clauses (a view definition only references them). */
  readRole: RelationRole = 'read';
  /** Lock taken on relations read in FROM clauses (none inside definitions that are only stored). */
  readLock: LockMode | undefined = 'AccessShareLock';
  /** Relations whose rows are locked by SELECT ... FOR UPDATE/SHARE in the current query level. */
  private depth = 0;

  constructor(readonly version: number, readonly nestDepth: number) {}

  // ---- recording -------------------------------------------------------------------------------

  relation(name: RelationName, role: RelationRole, lock?: LockSpec | LockMode, reason?: string): string {
    const key = relationKey(name);
    const rk = `${role}\u0000${key}`;
    if (!this.rels.has(rk)) {
      this.rels.set(rk, { relation: name, role, columns: undefined });
      if (!this.names.has(key)) this.names.set(key, name);
    }
    if (lock !== undefined) {
      if (typeof lock === 'string') this.lock(name, key, lock, false, false, reason ?? lockReason(role, lock));
      else this.lock(name, key, lock.mode, lock.rewrite, lock.scan, reason ?? lock.reason);
    }
    return key;
  }

  rangeVar(rv: any, role: RelationRole, lock?: LockSpec | LockMode, reason?: string): string | undefined {
    const name = rangeVarName(rv);
    return name ? this.relation(name, role, lock, reason) : undefined;
  }

  column(name: RelationName, role: RelationRole, column: string, key = relationKey(name)): void {
    const rk = `${role}\u0000${key}`;
    let e = this.rels.get(rk);
    if (!e) {
      e = { relation: name, role, columns: undefined };
      this.rels.set(rk, e);
      if (!this.names.has(key)) this.names.set(key, name);
    }
    if (!e.columns) e.columns = [column];
    else if (!e.columns.includes(column)) e.columns.push(column);
  }

  /** Records a column of the relation whose key is `key` (already recorded under some role). */
  columnByKey(key: string, role: RelationRole, column: string): void {
    const name = this.names.get(key);
    if (name) this.column(name, role, column, key);
  }

  lock(name: RelationName, key: string, mode: LockMode, rewrite: boolean, scan: boolean, reason: string): void {
    const cur = this.lockMap.get(key);
    if (!cur) { this.lockMap.set(key, { relation: name, mode, rewrite, scan, reason }); return; }
    if (lockRank(mode) > lockRank(cur.mode)) { cur.mode = mode; cur.reason = reason; }
    else if (lockRank(mode) === lockRank(cur.mode) && (rewrite || scan) && cur.reason !== reason) cur.reason = `${cur.reason}; ${reason}`;
    cur.rewrite ||= rewrite;
    cur.scan ||= scan;
  }

  fn(schema: string | undefined, name: string): void {
    this.fnMap ??= new Map();
    const k = schema === undefined ? name : `${schema}.${name}`;
    if (!this.fnMap.has(k)) this.fnMap.set(k, schema === undefined ? { name } : { schema, name });
  }
  type(t: string | undefined): void { if (t !== undefined) (this.typeSet ??= new Set()).add(t); }
  schema(s: string | undefined): void { if (s !== undefined) (this.schemaSet ??= new Set()).add(s); }
  database(d: string | undefined): void { if (d !== undefined) (this.dbSet ??= new Set()).add(d); }
  role(r: string | undefined): void { if (r !== undefined) (this.roleSet ??= new Set()).add(r); }
  addDestructive(why: string): void { const a = (this.destructive ??= []); if (!a.includes(why)) a.push(why); }
  addOpaque(why: string): void { const a = (this.opaque ??= []); if (!a.includes(why)) a.push(why); }
  addPrivileged(why: string): void { const a = (this.privileged ??= []); if (!a.includes(why)) a.push(why); }
  addHidden(why: string): void { const a = (this.hidden ??= []); if (!a.includes(why)) a.push(why); }
  addNested(f: StatementFacts): void { (this.nested ??= []).push(f); }

  /** Folds the facts of a statement that this one executes now (DO body, EXPLAIN ANALYZE target). */
  absorb(f: StatementFacts, prefix: string, withLocks = true): void {
    for (const r of f.relations) {
      this.relation(r.relation, r.role);
      if (r.columns) for (const col of r.columns) this.column(r.relation, r.role, col);
    }
    if (withLocks) for (const l of f.locks) this.lock(l.relation, relationKey(l.relation), l.mode, l.rewrite, l.scan, l.reason);
    for (const x of f.functions) this.fn(x.schema, x.name);
    for (const x of f.types) this.type(x);
    for (const x of f.schemas) this.schema(x);
    for (const x of f.databases) this.database(x);
    for (const x of f.roles) this.role(x);
    for (const x of f.destructive) this.addDestructive(prefix + x);
    for (const x of f.opaque) this.addOpaque(prefix + x);
    for (const x of f.privileged) this.addPrivileged(prefix + x);
    for (const x of f.hidden ?? EMPTY) this.addHidden(prefix + x);
    if (f.kind === 'write') this.writes = true;
  }

  // ---- results ---------------------------------------------------------------------------------

  relations(): readonly RelationUse[] {
    if (this.rels.size === 0) return EMPTY;
    // The entries themselves (no copies); `columns` is undefined where the text named none.
    return [...this.rels.values()] as RelationUse[];
  }
  locks(): readonly LockFact[] {
    if (this.lockMap.size === 0) return EMPTY;
    return [...this.lockMap.values()];
  }
  functions(): readonly FunctionUse[] { return this.fnMap ? [...this.fnMap.values()] : EMPTY; }
  types(): readonly string[] { return this.typeSet ? [...this.typeSet] : EMPTY; }
  schemas(): readonly string[] { return this.schemaSet ? [...this.schemaSet] : EMPTY; }
  databases(): readonly string[] { return this.dbSet ? [...this.dbSet] : EMPTY; }
  roles(): readonly string[] { return this.roleSet ? [...this.roleSet] : EMPTY; }
  list(a: string[] | undefined): readonly string[] { return a ?? EMPTY; }

  // ---- the generic walk --------------------------------------------------------------------------

  walk(v: any, scope: Scope | undefined): void {
    if (v === null || typeof v !== 'object') return;
    if (++this.depth > MAX_DEPTH) {
      this.depth--;
      this.addOpaque('expression nested too deeply to analyse');
      return;
    }
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) this.walk(v[i], scope);
    } else {
      for (const k in v) {
        const child = v[k];
        if (child === null || typeof child !== 'object') continue;
        const h = HANDLERS[k];
        if (h !== undefined) h(this, child, scope);
        else this.walk(child, scope);
      }
    }
    this.depth--;
  }

  /** Resolves a ColumnRef against the scopes and records the column on the relation it belongs to. */
  columnRef(fields: any[], scope: Scope | undefined, role: RelationRole = 'read'): void {
    const parts: string[] = [];
    for (const f of fields) {
      const s = f?.String?.sval;
      if (typeof s !== 'string') return; // A_Star: no column name
      parts.push(s);
    }
    const col = parts[parts.length - 1];
    if (col === undefined) return;
    if (parts.length === 1) {
      // Unqualified: belongs to the only relation of the nearest query level that has one.
      for (let s = scope; s; s = s.parent) {
        if (s.entries.length === 0) continue;
        if (s.entries.length === 1 && s.entries[0]!.key !== undefined) this.columnByKey(s.entries[0]!.key, role, col);
        return;
      }
      return;
    }
    const qual = parts[parts.length - 2]!;
    const qschema = parts.length > 2 ? parts[parts.length - 3] : undefined;
    for (let s = scope; s; s = s.parent) {
      for (const e of s.entries) {
        if (e.ref === qual && (qschema === undefined || e.schema === qschema)) {
          if (e.key !== undefined) this.columnByKey(e.key, role, col);
          return;
        }
      }
    }
  }

  isCte(name: string, scope: Scope | undefined): boolean {
    for (let s = scope; s; s = s.parent) if (s.ctes?.includes(name)) return true;
    return false;
  }

  /** A relation met in a FROM clause (or any list of RangeVars) of the current query level. */
  fromRangeVar(rv: any, scope: Scope | undefined): void {
    const alias: string | undefined = rv.alias?.aliasname;
    if (rv.schemaname === undefined && this.isCte(rv.relname, scope)) {
      scope?.entries.push({ ref: alias ?? rv.relname, key: undefined });
      return;
    }
    const key = this.rangeVar(rv, this.readRole, this.readLock);
    scope?.entries.push({ ref: alias ?? rv.relname, schema: alias ? undefined : rv.schemaname, key });
  }

  funcCall(call: any, scope: Scope | undefined): void {
    const parts = stringList(call.funcname);
    const name = parts[parts.length - 1];
    if (name !== undefined) {
      const schema = parts.length > 1 ? parts[parts.length - 2] : undefined;
      this.fn(schema, name);
      this.judgeFunction(schema, name, call.args);
    }
    this.walk(call.args, scope);
    this.walk(call.agg_order, scope);
    this.walk(call.agg_filter, scope);
    this.walk(call.over, scope);
  }

  /** Decides what a call of schema.name(args) makes of the statement. */
  judgeFunction(schema: string | undefined, name: string, args: any): void {
    const qualified = schema === undefined ? name : `${schema}.${name}`;
    if (isPrivilegedFunction(schema, name)) {
      this.addPrivileged(`calls ${qualified}()`);
      return;
    }
    const seqRole = SEQUENCE_FUNCTIONS.get(name);
    if (seqRole !== undefined && (schema === undefined || schema === 'pg_catalog')) {
      const seq = constText(Array.isArray(args) ? args[0] : undefined);
      if (seq !== undefined && this.executing) {
        const dot = seq.indexOf('.');
        const rel: RelationName = dot > 0 ? { schema: seq.slice(0, dot), name: seq.slice(dot + 1) } : { name: seq };
        this.relation(rel, seqRole, seqRole === 'write' ? 'RowExclusiveLock' : 'AccessShareLock', `${name}() on the sequence`);
      }
      return;
    }
    if (name === 'set_config' && (schema === undefined || schema === 'pg_catalog')) {
      const setting = constText(Array.isArray(args) ? args[0] : undefined)?.toLowerCase();
      if (setting === 'role' || setting === 'session_authorization') this.addPrivileged(`set_config('${setting}', ...) changes the current role`);
      else if (this.executing) this.addOpaque(setting === undefined ? 'set_config() of a setting named at run time' : `set_config('${setting}', ...) changes a setting`);
      return;
    }
    if (!isKnownSafeFunction(schema, name) && this.executing) {
      this.addOpaque(`calls ${qualified}(), which is not on the known-safe function list`);
    }
  }
}

function lockReason(role: RelationRole, mode: LockMode): string {
  switch (role) {
    case 'read': return mode === 'RowShareLock' ? 'SELECT ... FOR UPDATE/SHARE' : 'read';
    case 'write': return 'row changes (INSERT/UPDATE/DELETE/MERGE/COPY FROM)';
    default: return role;
  }
}

type Handler = (c: Collector, node: any, scope: Scope | undefined) => void;

/** Dispatch by node type (wrapper key) or by field name for inline structs (typeName). */
const HANDLERS: Record<string, Handler> = {
  ColumnRef: (c, n, s) => { if (Array.isArray(n.fields)) c.columnRef(n.fields, s, c.readRole); },
  FuncCall: (c, n, s) => c.funcCall(n, s),
  RangeVar: (c, n, s) => c.fromRangeVar(n, s),
  TypeName: (c, n) => c.type(typeNameText(n)),
  typeName: (c, n) => c.type(typeNameText(n)),
  A_Const: () => undefined,
  location: () => undefined,
  RangeSubselect: (c, n, s) => {
    const child = newScope(s);
    // LATERAL sub-queries see the FROM entries before them; others do not need them for column resolution.
    c.walk(n.subquery, child);
    s?.entries.push({ ref: n.alias?.aliasname ?? '', key: undefined });
  },
  RangeFunction: (c, n, s) => {
    c.walk(n.functions, s);
    s?.entries.push({ ref: n.alias?.aliasname ?? '', key: undefined });
  },
  SubLink: (c, n, s) => {
    c.walk(n.testexpr, s);
    c.walk(n.subselect, s);
  },
  SelectStmt: (c, n, s) => dml?.select(c, n, s),
  InsertStmt: (c, n, s) => dml?.insert(c, n, s),
  UpdateStmt: (c, n, s) => dml?.update(c, n, s),
  DeleteStmt: (c, n, s) => dml?.delete(c, n, s),
  MergeStmt: (c, n, s) => dml?.merge(c, n, s),
  Constraint: (c, n, s) => {
    if (n.contype === 'CONSTR_FOREIGN' && n.pktable) {
      // ADD FOREIGN KEY / REFERENCES: SHARE ROW EXCLUSIVE on the referenced table too (ALTER TABLE docs).
      const key = c.rangeVar(n.pktable, 'reference', 'ShareRowExclusiveLock', 'referenced by a new FOREIGN KEY');
      if (key !== undefined) for (const col of stringList(n.pk_attrs)) c.columnByKey(key, 'reference', col);
    }
    c.walk(n.raw_expr, s);
    c.walk(n.where_clause, s);
    c.walk(n.exclusions, s);
  },
};
