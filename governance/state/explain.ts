import type pg from 'pg';

/**
 * The planner's row estimate for a DML statement: `EXPLAIN (FORMAT JSON)` without ANALYZE, so nothing runs.
 * Only called when a policy condition asks for it (it costs a round trip and planning time).
 * Safety: the statement is planned in the extended protocol (one statement only, so `...; DROP ...` cannot
 * ride along), inside a READ ONLY transaction that is rolled back, with a statement_timeout.
 */

export interface RowEstimate {
  /** Rows the planner expects the statement to touch (for UPDATE/DELETE/MERGE: rows fed into the modification). */
  readonly rows: number;
  /** Top plan node type, e.g. ModifyTable, Seq Scan. */
  readonly node: string;
  readonly totalCost: number;
}

interface PlanNode { 'Node Type'?: string; 'Plan Rows'?: number; 'Total Cost'?: number; Plans?: PlanNode[] }

/** Picks the estimate out of EXPLAIN's JSON (pure): ModifyTable reports 0 rows, its input carries the number. */
export function rowEstimateFromPlan(plan: unknown): RowEstimate {
  const root = (Array.isArray(plan) ? (plan[0] as { Plan?: PlanNode } | undefined)?.Plan : undefined) ?? {};
  const node = root['Node Type'] ?? 'unknown';
  let rows = root['Plan Rows'] ?? 0;
  if (node === 'ModifyTable') rows = root.Plans?.[0]?.['Plan Rows'] ?? rows;
  return { rows, node, totalCost: root['Total Cost'] ?? 0 };
}

export interface ExplainOptions {
  /** statement_timeout for the planning (default 2000 ms). */
  readonly timeoutMs?: number;
}

/**
 * Plans `sql` with `params` (the Bind values of the extended protocol, as text or null) on `client`.
 * `client` must be pgairlock's own connection, idle and outside any transaction (it runs BEGIN ... ROLLBACK),
 * never the client session's upstream connection.
 * Throws the server's error (e.g. 42P01 for a missing table) unchanged; the caller decides what a failed
 * estimate means for policy (fail closed for changes).
 */
export async function explainRowEstimate(client: pg.ClientBase, sql: string, params: readonly unknown[] = [], opts: ExplainOptions = {}): Promise<RowEstimate> {
  await client.query('BEGIN READ ONLY');
  try {
    await client.query(`SELECT set_config('statement_timeout', $1, true)`, [String(opts.timeoutMs ?? 2000)]);
    const res = await client.query<{ 'QUERY PLAN': unknown }>({ text: `EXPLAIN (FORMAT JSON) ${sql}`, values: [...params], queryMode: 'extended' } as pg.QueryConfig);
    return rowEstimateFromPlan(res.rows[0]?.['QUERY PLAN']);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}
