import type { FindingDetails, RuleMeta } from '../findings.js';
import type { ScriptContext } from '../types.js';
import { isObject, rangeVarKey, str } from './ast.js';
import type { RuleInput } from './index.js';

/**
 * A rule family: a few related rules that look at the same kinds of statement. `check` is a pure
 * function of its input; it calls `report` once per finding with the rule id (one of `rules`), the
 * UTF-8 byte offset to point at (the statement start when undefined) and the words.
 */
export interface RuleFamily {
  readonly rules: readonly RuleMeta[];
  /** Statement node types (e.g. 'IndexStmt') this family looks at; runRules skips it for others. */
  readonly nodes: readonly string[];
  check(input: RuleInput, report: Report): void;
}

export type Report = (ruleId: string, byte: number | undefined, details: FindingDetails) => void;

/**
 * Was this relation created earlier in the same script (so it is new and empty, and locking or
 * rewriting it costs nothing)? ScriptContext.createdRelations holds names as written, "schema.name"
 * or "name" (parser-folded); an unqualified use matches either form of the same name.
 */
export function createdEarlier(context: ScriptContext, rangeVar: unknown): boolean {
  const key = rangeVarKey(rangeVar);
  if (key === undefined) return false;
  if (context.createdRelations.has(key)) return true;
  if (isObject(rangeVar) && str(rangeVar.schemaname) === undefined) {
    for (const k of context.createdRelations) {
      const dot = k.lastIndexOf('.');
      if (dot >= 0 && k.slice(dot + 1) === key) return true;
    }
  } else if (isObject(rangeVar)) {
    const bare = str(rangeVar.relname);
    // "public.t" after "CREATE TABLE t": the default schema is usually public.
    if (bare !== undefined && str(rangeVar.schemaname) === 'public' && context.createdRelations.has(bare)) return true;
  }
  return false;
}

/** Human name of a RangeVar for messages, quoted like the docs do: "schema.name". */
export function display(rangeVar: unknown): string {
  return rangeVarKey(rangeVar) ?? '?';
}
