import type pg from 'pg';
import type { StatementFacts } from '../../analyzer/types.js';
import { DEFAULT_SEARCH_PATH } from '../search-path.js';
import { resolveRelation } from './deps.js';
import { readStatementStats } from './pg-stat-statements.js';
import type { CatalogSnapshot } from './types.js';
import { withNested } from './usage-glue.js';
import { usesFromRelations, type UsageIndex } from './usage.js';

/**
 * Traffic that did not pass through pgairlock, from pg_stat_statements, into the usage index: each sample
 * compares the `calls` of every (role, statement) with the previous sample of that database; a statement
 * called since then was used by that role, at about the sample's time (within one sampling interval).
 * The first sample of a database is only a baseline: when its calls happened is unknown.
 *
 * Uses are recorded as principal `role:<database role>`, application `pg_stat_statements`. Statements that
 * went through pgairlock appear there too, under their session's database role: the policy state leaves out
 * `role:<the session's own role>` (a session is not "another user" of what it ran itself).
 */

export const STATS_APPLICATION = 'pg_stat_statements';
export const rolePrincipal = (role: string): string => `role:${role}`;

export interface StatsSamplerOptions {
  readonly usage: UsageIndex;
  /** A connected client for `database` (pgairlock's service credentials); ended after each sample. */
  readonly connect: (database: string) => Promise<pg.Client>;
  /** The latest catalog snapshot (names resolve against it; statements on unknown tables are skipped). */
  readonly snapshot: (database: string) => CatalogSnapshot | undefined;
  /** The analyzer (normalised texts with $n parse); a statement it cannot parse is skipped. */
  readonly analyze: (sql: string) => readonly StatementFacts[];
  /** Roles whose statements are not usage (pgairlock's own service user: catalog reads, EXPLAIN). */
  readonly excludeRoles?: readonly string[];
  /** Statements read per sample, most called first (default 1000). */
  readonly limit?: number;
  readonly now?: () => number;
}

export interface SampleResult {
  readonly available: boolean;
  readonly reason?: string;
  /** Statements found called since the previous sample and recorded. */
  readonly recorded: number;
}

export class StatementStatsSampler {
  private readonly calls = new Map<string, Map<string, number>>();
  private readonly running = new Map<string, Promise<SampleResult>>();

  constructor(private readonly opts: StatsSamplerOptions) {}

  /** One sample of `database` (concurrent calls for the same database share it). Never throws for a missing extension. */
  sample(database: string): Promise<SampleResult> {
    let p = this.running.get(database);
    if (!p) {
      p = this.read(database).finally(() => this.running.delete(database));
      this.running.set(database, p);
    }
    return p;
  }

  private async read(database: string): Promise<SampleResult> {
    const client = await this.opts.connect(database);
    let res;
    try {
      res = await readStatementStats(client, this.opts.limit ?? 1000);
    } finally {
      await client.end().catch(() => undefined);
    }
    if (!res.available) return { available: false, reason: res.reason, recorded: 0 };
    const previous = this.calls.get(database);
    const next = new Map<string, number>();
    const snapshot = this.opts.snapshot(database);
    const excluded = new Set(this.opts.excludeRoles ?? []);
    const at = (this.opts.now ?? Date.now)();
    let recorded = 0;
    for (const s of res.statements) {
      const key = `${s.role}\u0000${s.queryid}`;
      next.set(key, s.calls);
      if (!previous || !snapshot || excluded.has(s.role)) continue;
      // A statement new since the last sample (or evicted and back) was called in between too.
      if (s.calls <= (previous.get(key) ?? 0)) continue;
      let facts: readonly StatementFacts[];
      try {
        facts = this.opts.analyze(s.query);
      } catch {
        continue;
      }
      // EXPLAIN plans without running (pgairlock's own row estimates are EXPLAINs): not a use.
      if (facts.some((f) => f.node === 'ExplainStmt')) continue;
      const relations = facts.flatMap((f) => withNested(f)).flatMap((f) => f.relations);
      // Other sessions' search_path is unknown: the default one, with $user as the role.
      const uses = usesFromRelations(relations, (rel) => resolveRelation(snapshot, rel, DEFAULT_SEARCH_PATH, s.role)?.schema);
      if (uses.length === 0) continue;
      this.opts.usage.recordUse({ principal: rolePrincipal(s.role), application: STATS_APPLICATION, database, relations: uses, at });
      recorded++;
    }
    this.calls.set(database, next);
    return { available: true, recorded };
  }
}
