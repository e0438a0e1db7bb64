import type { ParseFailure, RelationName, StatementFacts } from '../../analyzer/types.js';
import type { Principal } from '../principal.js';
import type { EvaluationInput, StateFacts } from './types.js';

/**
 * A "unit" is one thing a rule is judged against: a top-level statement, or a statement nested in it
 * (PL/pgSQL bodies, EXPLAIN ANALYZE's target, rule actions, PREPARE's inner statement, what EXECUTE runs),
 * or the unparseable text as a whole. A rule matches a top-level statement when it matches any unit in its tree.
 */
export type Unit =
  | { readonly parsed: true; readonly facts: StatementFacts; /** "" for the statement itself, else where it sits, in words. */ readonly via: string }
  | { readonly parsed: false; readonly error: ParseFailure };

/** Per-evaluation facts the conditions share, computed once per evaluate() call. */
export interface EvalEnv {
  readonly input: EvaluationInput;
  readonly principal: Principal;
  readonly now: Date;
  /** The session search_path with `$user` expanded (dropped when the user is not known). */
  readonly searchPath: readonly string[];
  readonly state: StateFacts | undefined;
}

/** search_path parsing and `$user` expansion live in one place (governance/search-path.ts). */
export { parseSearchPath } from '../search-path.js';

/** Schemas an unqualified name may resolve to (never empty: falls back to public). */
export function candidateSchemas(rel: RelationName, env: EvalEnv): readonly string[] {
  if (rel.schema !== undefined) return [rel.schema];
  return env.searchPath.length > 0 ? env.searchPath : ['public'];
}

/** Walks the statement tree depth-first: the statement, its nested statements, PREPARE's inner, EXECUTE's target. */
export function collectUnits(facts: StatementFacts, prepared: ReadonlyMap<string, StatementFacts> | undefined, out: Unit[], via = '', depth = 0): void {
  out.push({ parsed: true, facts, via });
  if (depth > 32) return; // nesting this deep is not written by hand; the outer units are still judged
  const where = (what: string): string => (via ? `${via}, ${what}` : what);
  for (const inner of facts.nested) collectUnits(inner, prepared, out, where(`inside ${facts.commandTag}`), depth + 1);
  if (facts.prepare) collectUnits(facts.prepare.inner, prepared, out, where(`prepared as ${facts.prepare.name}`), depth + 1);
  if (facts.execute) {
    const target = prepared?.get(facts.execute.name);
    if (target) collectUnits(target, prepared, out, where(`run by EXECUTE ${facts.execute.name}`), depth + 1);
  }
}
