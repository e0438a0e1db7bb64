import type { StatementFacts } from '../../analyzer/types.js';
import type { Principal } from '../principal.js';
import { stateFromSnapshot } from '../policy/state.js';
import type { ImpactSummary } from '../audit/types.js';
import type { StateFacts } from '../policy/types.js';
import { searchPathSchemas } from '../search-path.js';
import type { BoundValue, RowEstimate, RowEstimator } from './explain.js';
import { checkExpected, describeStale } from './expected.js';
import { computeImpact, impactSummary } from './impact.js';
import type { CatalogState } from './service.js';
import { prefetchUsage } from './usage-glue.js';
import { rolePrincipal, STATS_APPLICATION } from './pg-stat-usage.js';
import type { RecentUser, UsageIndex } from './usage.js';

/**
 * Real state for one statement string, before the policy judges it: the catalog snapshot (sizes,
 * dependents), who else used what a DDL alters or drops (usage index, async), and whether the
 * session's declared expected schema is stale for the objects it touches.
 */
export interface PolicyStateInput {
  readonly catalog: CatalogState;
  readonly usage?: UsageIndex;
  readonly database: string;
  readonly searchPath: readonly string[];
  readonly user: string;
  readonly principal: Principal;
  readonly application: string;
  readonly statements: readonly StatementFacts[];
  /** SET pgairlock.expect_schema of the session (or expected_schema of an MCP call). */
  readonly expectSchema?: string;
  /** How far back "recent use by others" looks. */
  readonly usageWindowMs: number;
  /** The session's login user when it differs from `user` (SET ROLE): its pg_stat_statements uses are its own too. */
  readonly loginUser?: string;
  /** Runs EXPLAIN for `state.min_estimated_rows` (only when a rule asks: see estimateRows below). */
  readonly estimator?: RowEstimator;
}

/** The extended protocol's Bind values of one execution, with the types its Parse declared. */
export interface BoundParams {
  readonly values: readonly BoundValue[];
  readonly types: readonly number[];
}

export interface PolicyState {
  readonly state?: StateFacts;
  /** The expected schema is stale for what this DDL touches: refuse, with this DETAIL. */
  readonly stale?: { readonly detail: string; readonly liveSchemaHash: string };
  /**
   * The planner's estimate for one DML statement of this string, on pgairlock's own connection with the
   * session's search_path (and the Bind values when given). The gate calls it only when a policy rule asked
   * for the estimate of that statement; a rejection (bad SQL, permission, timeout) leaves it unknown.
   */
  readonly estimateRows?: (statement: StatementFacts, params?: BoundParams) => Promise<RowEstimate>;
  /** The impact facts of one statement of this string for its audit record (computed only when asked). */
  readonly impactOf?: (statement: StatementFacts, estimatedRows?: number) => ImpactSummary;
}

const changesSchema = (statements: readonly StatementFacts[]) => statements.some((f) => f.kind === 'ddl' || f.nested.some((n) => n.kind === 'ddl'));

/** Reads skip all of this (the hot path); only statements that write or change the schema pay for it. */
export function needsState(statements: readonly StatementFacts[]): boolean {
  return statements.some((f) => f.kind !== 'read' && f.kind !== 'tcl' && f.kind !== 'session');
}

/**
 * Uses seen in pg_stat_statements are recorded by database role (pg-stat-usage.ts), and a session's own
 * statements appear there under its role: those are not "others".
 */
function withoutOwnRoles(usage: Map<string, RecentUser[]>, roles: readonly string[]): Map<string, RecentUser[]> {
  const own = new Set(roles.map(rolePrincipal));
  for (const [k, users] of usage) {
    const others = users.filter((u) => !(own.has(u.principal) && u.application === STATS_APPLICATION));
    if (others.length === 0) usage.delete(k);
    else if (others.length !== users.length) usage.set(k, others);
  }
  return usage;
}

export async function policyStateFor(input: PolicyStateInput): Promise<PolicyState> {
  const ddl = changesSchema(input.statements);
  // DDL is judged against the catalog as it is now (a cheap stats-only read when nothing changed);
  // other writes use the last snapshot.
  const snapshot = ddl
    ? await input.catalog.refresh(input.database, 'demand')
    : (input.catalog.get(input.database) ?? (await input.catalog.current(input.database)));
  const path = [...input.searchPath];
  let stale: PolicyState['stale'];
  if (ddl && input.expectSchema) {
    const touched = input.statements.flatMap((facts) => computeImpact({ facts, snapshot, searchPath: path, user: input.user }).touched);
    const check = checkExpected(snapshot, { schemaHash: input.expectSchema }, touched, { findSnapshot: (h) => input.catalog.findVersion(input.database, h) });
    if (check.stale) stale = { detail: describeStale(check), liveSchemaHash: check.liveSchemaHash };
  }
  const usage =
    ddl && input.usage
      ? withoutOwnRoles(
          await prefetchUsage(input.usage, { database: input.database, snapshot, searchPath: path, user: input.user }, input.statements, Date.now() - input.usageWindowMs, input.principal.name),
          [input.user, ...(input.loginUser ? [input.loginUser] : [])],
        )
      : undefined;
  const state = stateFromSnapshot(snapshot, { searchPath: path, user: input.user, ...(usage ? { usage } : {}), drift: stale !== undefined });
  const estimator = input.estimator;
  const estimateRows = estimator
    ? (statement: StatementFacts, params?: BoundParams) =>
        estimator.estimate(input.database, statement.text, {
          // `$user` is the client's role, not pgairlock's service user: resolve it here.
          searchPath: searchPathSchemas(path, input.user),
          ...(params ? { params: params.values, paramTypes: params.types } : {}),
        })
    : undefined;
  const impactOf = (statement: StatementFacts, estimatedRows?: number) =>
    impactSummary(computeImpact({ facts: statement, snapshot, searchPath: path, user: input.user }), estimatedRows);
  return { state, ...(stale ? { stale } : {}), ...(estimateRows ? { estimateRows } : {}), impactOf };
}
