import type pg from 'pg';
import type { StatementFacts } from '../../analyzer/types.js';
import { quoteIdentifier } from '../search-path.js';

/**
 * Optional usage from pg_stat_statements: who ran which statements on this database, including traffic that
 * never passed through pgairlock. Skipped gracefully when the extension is not installed in the database or
 * not loaded (shared_preload_libraries): the result says why.
 */

export interface StatementStat {
  /** Role that ran it. */
  readonly role: string;
  readonly queryid: string;
  /** Normalised text ($n for constants), as pg_stat_statements stores it. */
  readonly query: string;
  readonly calls: number;
  readonly rows: number;
  readonly totalExecMs: number;
}

export type StatementStatsResult =
  | { readonly available: true; readonly statements: readonly StatementStat[] }
  | { readonly available: false; readonly reason: string };

/** Reads the top `limit` statements of the current database by calls. Never throws for a missing extension. */
export async function readStatementStats(client: pg.ClientBase, limit = 500): Promise<StatementStatsResult> {
  const ext = await client.query<{ schema: string }>(
    `SELECT n.nspname AS schema FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace WHERE x.extname = 'pg_stat_statements'`,
  );
  const schema = ext.rows[0]?.schema;
  if (!schema) return { available: false, reason: 'the pg_stat_statements extension is not installed in this database (CREATE EXTENSION pg_stat_statements)' };
  try {
    const res = await client.query<{ role: string; queryid: string; query: string; calls: string; rows: string; total_exec_ms: number }>(
      `SELECT s.userid::regrole::text AS role, s.queryid::text AS queryid, s.query, s.calls::text AS calls, s.rows::text AS rows,
              s.total_exec_time::float8 AS total_exec_ms
         FROM ${quoteIdentifier(schema)}.pg_stat_statements s
        WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY s.calls DESC
        LIMIT $1`,
      [limit],
    );
    return {
      available: true,
      statements: res.rows.map((r) => ({ role: r.role, queryid: r.queryid, query: r.query, calls: Number(r.calls), rows: Number(r.rows), totalExecMs: r.total_exec_ms })),
    };
  } catch (err) {
    // 55000: "pg_stat_statements must be loaded via shared_preload_libraries"; 42501: not allowed to read it.
    const code = (err as { code?: string }).code;
    if (code === '55000' || code === '42501') return { available: false, reason: (err as Error).message };
    throw err;
  }
}

export interface TableUseFromStats {
  readonly role: string;
  readonly schema?: string;
  readonly table: string;
  readonly columns: readonly string[];
  readonly mode: 'read' | 'write';
  readonly calls: number;
}

/**
 * Which roles read or wrote which tables according to pg_stat_statements (pure given `analyze`, which is the
 * analyzer: normalised texts with $n parse fine). Statements the analyzer cannot parse are skipped.
 * pg_stat_statements has no timestamps per statement: these are uses "since the statistics were last reset".
 */
export function tableUsesFromStats(stats: readonly StatementStat[], analyze: (sql: string) => readonly StatementFacts[]): TableUseFromStats[] {
  const out: TableUseFromStats[] = [];
  for (const s of stats) {
    let facts: readonly StatementFacts[];
    try {
      facts = analyze(s.query);
    } catch {
      continue;
    }
    for (const f of facts) {
      for (const r of f.relations) {
        const mode = r.role === 'read' ? 'read' : r.role === 'write' || r.role === 'truncate' ? 'write' : undefined;
        if (!mode) continue;
        out.push({ role: s.role, ...(r.relation.schema ? { schema: r.relation.schema } : {}), table: r.relation.name, columns: r.columns ?? [], mode, calls: s.calls });
      }
    }
  }
  return out;
}
