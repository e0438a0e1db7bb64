/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's PL/pgSQL JSON is walked dynamically */
/**
 * Function and DO bodies. PL/pgSQL is parsed with libpg_query's PL/pgSQL parser; every embedded SQL
 * statement becomes a nested StatementFacts, every expression is analysed for function calls, and
 * dynamic SQL (EXECUTE, OPEN ... FOR EXECUTE, RETURN QUERY EXECUTE, FOR ... IN EXECUTE) makes the
 * body opaque: what it runs is built at run time.
 */
import type { Collector } from './collector.js';
import { parsePlpgsql, plpgsqlAssignmentValue } from './parser.js';
import type { StatementEnv } from './statement-kit.js';

const DYNAMIC = 'dynamic SQL (EXECUTE) in a PL/pgSQL body: the statement is built at run time';

/** libpg_query's PLpgSQL_expr.parseMode values (RawParseMode in parser.h). */
const MODE_DEFAULT = 0;
const MODE_EXPR = 2;

/**
 * Analyses the PL/pgSQL function in `functionSql` (a whole CREATE FUNCTION statement).
 * `runsNow`: a DO block executes at once, so its statements' facts are folded into the DO statement;
 * a CREATE FUNCTION only stores the body, so they stay nested.
 */
export function analyzePlpgsqlBody(c: Collector, functionSql: string, runsNow: boolean, env: StatementEnv): void {
  let tree: any;
  try {
    tree = parsePlpgsql(functionSql);
  } catch (err) {
    c.addOpaque(`PL/pgSQL body does not parse: ${err instanceof Error ? err.message : String(err)}`);
    return;
  }
  const prefix = runsNow ? 'in DO block: ' : '';
  const visit = (v: any, depth: number): void => {
    if (v === null || typeof v !== 'object' || depth > 300) return;
    if (Array.isArray(v)) { for (const x of v) visit(x, depth + 1); return; }
    for (const k in v) {
      const child = v[k];
      if (child === null || typeof child !== 'object') continue;
      if (k === 'PLpgSQL_stmt_dynexecute' || k === 'PLpgSQL_stmt_dynfors' || (k === 'PLpgSQL_stmt_open' && child.dynquery) || (k === 'PLpgSQL_stmt_return_query' && child.dynquery)) {
        c.addOpaque(DYNAMIC);
      }
      if (k === 'PLpgSQL_stmt_commit' || k === 'PLpgSQL_stmt_rollback') c.addHidden('the body ends transactions itself (COMMIT/ROLLBACK in a procedure)');
      if (k === 'PLpgSQL_expr') expr(child);
      else visit(child, depth + 1);
    }
  };
  const expr = (e: any): void => {
    const query = e?.query;
    if (typeof query !== 'string' || query.length === 0) return;
    const mode = typeof e.parseMode === 'number' ? e.parseMode : MODE_DEFAULT;
    let sql: string | undefined;
    if (mode === MODE_DEFAULT) sql = query;
    else if (mode === MODE_EXPR) sql = `SELECT ${query}`;
    else {
      const value = plpgsqlAssignmentValue(query);
      sql = value === undefined ? undefined : `SELECT ${value}`;
    }
    if (sql === undefined) { c.addOpaque(`PL/pgSQL expression cannot be analysed: ${query}`); return; }
    const res = env.textFacts(sql);
    if (!res.ok) { c.addOpaque(`PL/pgSQL statement does not parse: ${res.message}`); return; }
    for (const f of res.statements) {
      if (mode === MODE_DEFAULT) c.addNested(f);
      if (runsNow) c.absorb(f, prefix);
      else if (mode !== MODE_DEFAULT && (f.privileged.length > 0 || f.opaque.length > 0)) c.addNested(f);
    }
  };
  visit(tree?.plpgsql_funcs, 0);
}

/** SQL-standard bodies (BEGIN ATOMIC ... END, RETURN expr): already parsed, each statement becomes nested facts. */
export function analyzeSqlBody(c: Collector, body: any, env: StatementEnv): void {
  const visit = (v: any, depth: number): void => {
    if (v === null || typeof v !== 'object' || depth > 50) return;
    if (Array.isArray(v)) { for (const x of v) visit(x, depth + 1); return; }
    if (v.List) { visit(v.List.items, depth + 1); return; }
    c.addNested(env.innerFacts(v));
  };
  visit(body, 0);
}
