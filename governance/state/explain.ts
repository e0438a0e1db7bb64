import pg from 'pg';
import { formatSearchPath } from '../search-path.js';

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

/** A parameter value as the Bind message carried it: text (format 0), binary (format 1, as a Buffer), or NULL. */
export type BoundValue = string | Buffer | null;

export interface ExplainOptions {
  /** statement_timeout for the planning (default 2000 ms). */
  readonly timeoutMs?: number;
  /**
   * Parameter type OIDs as the client's Parse declared them (0 or missing: the server infers the type), so the
   * parameters are typed exactly as in the client's statement (and binary values are read as that type).
   */
  readonly paramTypes?: readonly number[];
  /**
   * The session's search_path as schema names (parsed, `$user` already replaced by the session's role), so
   * unqualified names resolve as they do for the client. Undefined: the connection's own setting.
   */
  readonly searchPath?: readonly string[];
}

/**
 * Plans `sql` with `params` (the Bind values of the extended protocol) on `client`.
 * `client` must be pgairlock's own connection, idle and outside any transaction (it runs BEGIN ... ROLLBACK),
 * never the client session's upstream connection.
 * Throws the server's error (e.g. 42P01 for a missing table) unchanged; the caller decides what a failed
 * estimate means for policy (fail closed for changes).
 */
export async function explainRowEstimate(client: pg.ClientBase, sql: string, params: readonly BoundValue[] = [], opts: ExplainOptions = {}): Promise<RowEstimate> {
  await client.query('BEGIN READ ONLY');
  try {
    // Both as parameters of set_config, LOCAL to this transaction: nothing of the session's text is spliced into SQL.
    await client.query(`SELECT set_config('statement_timeout', $1, true), set_config('search_path', coalesce($2, current_setting('search_path')), true)`, [
      String(opts.timeoutMs ?? 2000),
      opts.searchPath ? formatSearchPath(opts.searchPath) : null,
    ]);
    const config: pg.QueryConfig & { queryMode: 'extended'; types?: unknown } = { text: `EXPLAIN (FORMAT JSON) ${sql}`, values: [...params], queryMode: 'extended' };
    // node-postgres sends `types` as the Parse message's parameter OIDs and asks the same object for result
    // parsers: an OID list that also answers getTypeParser serves both.
    if (opts.paramTypes && opts.paramTypes.length > 0) config.types = Object.assign(opts.paramTypes.map((o) => o | 0), { getTypeParser: pg.types.getTypeParser });
    const res = await client.query<{ 'QUERY PLAN': unknown }>(config);
    return rowEstimateFromPlan(res.rows[0]?.['QUERY PLAN']);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
  }
}

export interface RowEstimatorOptions {
  /** Server and service credentials (upstream.url); the database name is replaced per estimate. */
  readonly baseUrl: string;
  /** statement_timeout of each EXPLAIN (state.explain_timeout_ms). */
  readonly timeoutMs?: number;
  /** Connections kept per database (default 2); more concurrent estimates wait for one. */
  readonly maxConnections?: number;
  /** An idle connection is closed after this long (default 30 s). */
  readonly idleMs?: number;
}

export interface EstimateRequest {
  readonly params?: readonly BoundValue[];
  readonly paramTypes?: readonly number[];
  readonly searchPath?: readonly string[];
}

/**
 * Runs row estimates on pgairlock's own connections, a few per database, opened on first use and closed when
 * idle. Nothing of the client's session is used but its search_path (passed in) and, in the extended
 * protocol, its Parse types and Bind values.
 */
export class RowEstimator {
  private readonly pools = new Map<string, pg.Pool>();
  private closed = false;

  constructor(private readonly opts: RowEstimatorOptions) {}

  private pool(database: string): pg.Pool {
    let pool = this.pools.get(database);
    if (!pool) {
      const u = new URL(this.opts.baseUrl);
      u.pathname = `/${encodeURIComponent(database)}`;
      pool = new pg.Pool({
        connectionString: u.toString(),
        application_name: 'pgairlock-explain',
        max: this.opts.maxConnections ?? 2,
        idleTimeoutMillis: this.opts.idleMs ?? 30_000,
        // A waiting estimate gives up after the EXPLAIN timeout plus a connect allowance: fail closed, do not hang.
        connectionTimeoutMillis: (this.opts.timeoutMs ?? 2000) + 5_000,
      });
      pool.on('error', () => undefined);
      this.pools.set(database, pool);
    }
    return pool;
  }

  async estimate(database: string, sql: string, req: EstimateRequest = {}): Promise<RowEstimate> {
    if (this.closed) throw new Error('pgairlock is shutting down');
    const client = await this.pool(database).connect();
    let broken: Error | undefined;
    try {
      return await explainRowEstimate(client, sql, req.params ?? [], {
        timeoutMs: this.opts.timeoutMs ?? 2000,
        ...(req.paramTypes ? { paramTypes: req.paramTypes } : {}),
        ...(req.searchPath ? { searchPath: req.searchPath } : {}),
      });
    } catch (err) {
      // A connection-level failure (no SQLSTATE) must not go back to the pool.
      if (!(err as { code?: string }).code) broken = err as Error;
      throw err;
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.end().catch(() => undefined)));
  }
}
