/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's JSON AST is walked dynamically (see collector.ts) */
/**
 * Queries and row changes: SELECT (set operations, FROM, FOR UPDATE, INTO), INSERT (ON CONFLICT),
 * UPDATE, DELETE, MERGE, and WITH clauses, wherever they appear (top level, CTEs, sub-queries, COPY,
 * EXPLAIN, rule actions). Each query level gets its own name scope for column attribution.
 */
import { Collector, newScope, registerDmlHandlers, type Scope } from './collector.js';
import { qualifiedName, quoteRelation, rangeVarName } from './names.js';
import type { RelationName, StatementKind } from './types.js';

export function withClause(c: Collector, w: any, scope: Scope): void {
  if (!w?.ctes) return;
  const names: string[] = [];
  for (const cte of w.ctes as any[]) if (cte?.CommonTableExpr?.ctename) names.push(cte.CommonTableExpr.ctename);
  scope.ctes = names;
  for (const cte of w.ctes as any[]) {
    const e = cte?.CommonTableExpr;
    if (!e) continue;
    const q = e.ctequery;
    if (q && !q.SelectStmt) {
      const type = Object.keys(q)[0] ?? 'statement';
      c.addHidden(`${type.replace('Stmt', '').toUpperCase()} inside WITH ${e.ctename}`);
    }
    c.walk(q, scope);
  }
}

export function selectQuery(c: Collector, n: any, parent: Scope | undefined): void {
  const scope = newScope(parent);
  if (n.withClause) withClause(c, n.withClause, scope);
  if (n.op && n.op !== 'SETOP_NONE') {
    // larg/rarg are inline SelectStmts (no wrapper): each is its own query level.
    if (n.larg) selectQuery(c, n.larg, scope);
    if (n.rarg) selectQuery(c, n.rarg, scope);
    c.walk(n.sortClause, scope);
    c.walk(n.limitCount, scope);
    c.walk(n.limitOffset, scope);
    return;
  }
  c.walk(n.fromClause, scope);
  if (n.lockingClause) {
    for (const lc of n.lockingClause as any[]) {
      const rels = lc?.LockingClause?.lockedRels;
      if (Array.isArray(rels) && rels.length > 0) {
        // FOR UPDATE OF names FROM entries (aliases included), not relations.
        for (const rv of rels) {
          const ref: string | undefined = rv?.RangeVar?.relname;
          const e = scope.entries.find((x) => x.ref === ref && (rv.RangeVar.schemaname === undefined || x.schema === rv.RangeVar.schemaname));
          if (e?.key !== undefined) c.lock(qualifiedName(e.key.split('.'))!, e.key, 'RowShareLock', false, false, 'SELECT ... FOR UPDATE/SHARE');
        }
      } else {
        for (const e of scope.entries) if (e.key !== undefined) c.lock(qualifiedName(e.key.split('.'))!, e.key, 'RowShareLock', false, false, 'SELECT ... FOR UPDATE/SHARE');
      }
    }
  }
  c.walk(n.targetList, scope);
  c.walk(n.whereClause, scope);
  c.walk(n.groupClause, scope);
  c.walk(n.havingClause, scope);
  c.walk(n.windowClause, scope);
  c.walk(n.sortClause, scope);
  c.walk(n.limitCount, scope);
  c.walk(n.limitOffset, scope);
  c.walk(n.valuesLists, scope);
  c.walk(n.distinctClause, scope);
  if (n.intoClause?.rel) {
    c.writes = true;
    c.rangeVar(n.intoClause.rel, 'create');
    c.rangeVar(n.intoClause.rel, 'write');
    c.addHidden('SELECT ... INTO creates a table');
  }
}

export function targetRelation(c: Collector, rv: any, scope: Scope, what: string): string | undefined {
  const key = c.rangeVar(rv, 'write', 'RowExclusiveLock', `${what} takes ROW EXCLUSIVE on its target`);
  scope.entries.push({ ref: rv.alias?.aliasname ?? rv.relname, schema: rv.alias ? undefined : rv.schemaname, key });
  return key;
}

export function returning(c: Collector, n: any, scope: Scope): void {
  c.walk(n.returningClause?.exprs ?? n.returningList, scope);
}

export function insertQuery(c: Collector, n: any, parent: Scope | undefined): void {
  c.writes = true;
  const scope = newScope(parent);
  if (n.withClause) withClause(c, n.withClause, scope);
  const name = rangeVarName(n.relation);
  // The SELECT/VALUES source does not see the target table.
  c.walk(n.selectStmt, scope);
  const key = targetRelation(c, n.relation, scope, 'INSERT');
  if (name && key !== undefined) for (const col of (n.cols ?? []) as any[]) if (col?.ResTarget?.name) c.column(name, 'write', col.ResTarget.name);
  const oc = n.onConflictClause;
  if (oc) {
    scope.entries.push({ ref: 'excluded', key: undefined });
    c.walk(oc.infer, scope);
    if (oc.targetList && name) for (const t of oc.targetList as any[]) if (t?.ResTarget?.name) c.column(name, 'write', t.ResTarget.name);
    for (const t of (oc.targetList ?? []) as any[]) c.walk(t?.ResTarget?.val, scope);
    c.walk(oc.whereClause, scope);
  }
  returning(c, n, scope);
}

/** UPDATE/DELETE that reaches every row of its target: no WHERE at all, or one that filters nothing. */
function everyRow(c: Collector, command: 'UPDATE' | 'DELETE', verb: 'change' | 'remove', name: RelationName | undefined, where: any): void {
  if (!name) return;
  if (where === undefined) c.addDestructive(`${command} without WHERE ${verb}s every row of ${quoteRelation(name)}`);
  else if (filtersNothing(where)) c.addDestructive(`${command} with a constant WHERE (no column in it, or an OR branch true for every row) may ${verb} every row of ${quoteRelation(name)}`);
}

export function updateQuery(c: Collector, n: any, parent: Scope | undefined): void {
  c.writes = true;
  const scope = newScope(parent);
  if (n.withClause) withClause(c, n.withClause, scope);
  const name = rangeVarName(n.relation);
  targetRelation(c, n.relation, scope, 'UPDATE');
  c.walk(n.fromClause, scope);
  for (const t of (n.targetList ?? []) as any[]) {
    const rt = t?.ResTarget;
    if (!rt) continue;
    if (name && rt.name) c.column(name, 'write', rt.name);
    c.walk(rt.val, scope);
  }
  everyRow(c, 'UPDATE', 'change', name, n.whereClause);
  c.walk(n.whereClause, scope);
  returning(c, n, scope);
}

export function deleteQuery(c: Collector, n: any, parent: Scope | undefined): void {
  c.writes = true;
  const scope = newScope(parent);
  if (n.withClause) withClause(c, n.withClause, scope);
  const name = rangeVarName(n.relation);
  targetRelation(c, n.relation, scope, 'DELETE');
  c.walk(n.usingClause, scope);
  everyRow(c, 'DELETE', 'remove', name, n.whereClause);
  c.walk(n.whereClause, scope);
  returning(c, n, scope);
}

export function mergeQuery(c: Collector, n: any, parent: Scope | undefined): void {
  c.writes = true;
  const scope = newScope(parent);
  if (n.withClause) withClause(c, n.withClause, scope);
  const name = rangeVarName(n.relation);
  c.walk(n.sourceRelation, scope);
  targetRelation(c, n.relation, scope, 'MERGE');
  c.walk(n.joinCondition, scope);
  for (const w of (n.mergeWhenClauses ?? []) as any[]) {
    const m = w?.MergeWhenClause;
    if (!m) continue;
    c.walk(m.condition, scope);
    for (const t of (m.targetList ?? []) as any[]) {
      const rt = t?.ResTarget;
      if (name && rt?.name) c.column(name, 'write', rt.name);
      c.walk(rt?.val, scope);
    }
    c.walk(m.values, scope);
    if (m.commandType === 'CMD_DELETE' && m.matchKind === 'MERGE_WHEN_NOT_MATCHED_BY_SOURCE' && !m.condition && name) {
      c.addDestructive(`MERGE ... WHEN NOT MATCHED BY SOURCE THEN DELETE removes every row of ${quoteRelation(name)} absent from the source`);
    }
  }
  returning(c, n, scope);
}

registerDmlHandlers({
  select: (c, n, s) => selectQuery(c, n, s),
  insert: (c, n, s) => insertQuery(c, n, s),
  update: (c, n, s) => updateQuery(c, n, s),
  delete: (c, n, s) => deleteQuery(c, n, s),
  merge: (c, n, s) => mergeQuery(c, n, s),
});

/**
 * A WHERE that mentions no column, parameter, sub-query, function or cursor (WHERE true, WHERE 1 = 1):
 * it is the same for every row, so it filters nothing (or everything). The usual way around a
 * "no DELETE without WHERE" check.
 */
export function constantPredicate(expr: any): boolean {
  let constant = true;
  const visit = (v: any, depth: number): void => {
    if (!constant || v === null || typeof v !== 'object' || depth > 100) return;
    if (Array.isArray(v)) { for (const x of v) visit(x, depth + 1); return; }
    for (const k in v) {
      if (k === 'ColumnRef' || k === 'ParamRef' || k === 'SubLink' || k === 'FuncCall' || k === 'CurrentOfExpr') { constant = false; return; }
      visit(v[k], depth + 1);
    }
  };
  visit(expr, 0);
  return constant;
}

/**
 * A WHERE that may keep every row: a constant one, one with an OR branch that does (`id = 5 OR true`,
 * `id = 5 OR 1 = 1`), an AND whose every part does, or a column compared with itself (`id = id`).
 * Tautologies that need the schema or algebra (`id > 0`, `a IS NULL OR a IS NOT NULL`) are not
 * caught: this closes the textual ways around a "no DELETE without WHERE" check, not all of logic.
 */
export function filtersNothing(expr: any): boolean {
  if (expr === null || typeof expr !== 'object') return false;
  if (constantPredicate(expr)) return true;
  const b = expr.BoolExpr;
  if (b && Array.isArray(b.args)) {
    if (b.boolop === 'OR_EXPR') return b.args.some((a: any) => filtersNothing(a));
    if (b.boolop === 'AND_EXPR') return b.args.every((a: any) => filtersNothing(a));
    return false;
  }
  const a = expr.A_Expr;
  if (a && a.kind === 'AEXPR_OP' && sameColumn(a.lexpr, a.rexpr)) {
    const op = a.name?.[0]?.String?.sval;
    return op === '=' || op === '<=' || op === '>=';
  }
  return false;
}

function sameColumn(l: any, r: any): boolean {
  if (!l?.ColumnRef || !r?.ColumnRef) return false;
  const name = (c: any) => JSON.stringify((c.ColumnRef.fields ?? []).map((f: any) => f.String?.sval ?? '*'));
  return name(l) === name(r);
}

export const dmlKind = (c: Collector): StatementKind => (c.writes ? 'write' : 'read');
