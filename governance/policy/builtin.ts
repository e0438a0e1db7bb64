import type { RelationName, StatementFacts } from '../../analyzer/types.js';
import { YES, NO, type Check } from './conditions.js';
import { parseSearchPath, type EvalEnv } from './units.js';

/**
 * Invariants no policy can override. They are evaluated before the policy's rules, always deny, and
 * appear in every decision's verdicts under fixed ids.
 */
export const PROTECTED_SCHEMA = 'pgairlock';
export const BUILTIN_PROTECT_SCHEMA_ID = 'builtin-protect-pgairlock-schema';

export interface BuiltinRule {
  readonly id: string;
  readonly description: string;
  readonly message: string;
  readonly hint: string;
  readonly sqlstate: string;
  test(facts: StatementFacts, env: EvalEnv): Check;
  /** Verdict for text that could not be parsed. */
  readonly unparsedReason: string;
}

function relationWhy(rel: RelationName, onPath: boolean): string | undefined {
  if (rel.schema === PROTECTED_SCHEMA) return `it uses ${PROTECTED_SCHEMA}.${rel.name}`;
  if (rel.schema === undefined && onPath) return `the search_path includes ${PROTECTED_SCHEMA}, so ${rel.name} may resolve to ${PROTECTED_SCHEMA}.${rel.name}`;
  return undefined;
}

function touchesProtected(f: StatementFacts, env: EvalEnv): string | undefined {
  const onPath = env.searchPath.includes(PROTECTED_SCHEMA);
  for (const r of f.relations) {
    const why = relationWhy(r.relation, onPath);
    if (why) return why;
  }
  for (const l of f.locks) {
    const why = relationWhy(l.relation, onPath);
    if (why) return why;
  }
  for (const fn of f.functions) {
    if (fn.schema === PROTECTED_SCHEMA) return `it calls ${PROTECTED_SCHEMA}.${fn.name}()`;
    if (fn.schema === undefined && onPath) {
      return `the search_path includes ${PROTECTED_SCHEMA}, so ${fn.name}() may resolve to ${PROTECTED_SCHEMA}.${fn.name}()`;
    }
  }
  if (f.schemas.includes(PROTECTED_SCHEMA)) return `it names the schema ${PROTECTED_SCHEMA}`;
  const prefix = `${PROTECTED_SCHEMA}.`;
  const t = f.types.find((x) => x.startsWith(prefix));
  if (t) return `it uses the type ${t}`;
  if (f.setting?.name === 'search_path' && f.setting.value !== undefined && parseSearchPath(f.setting.value).includes(PROTECTED_SCHEMA)) {
    return `it puts ${PROTECTED_SCHEMA} on the search_path`;
  }
  // set_config('search_path', ...) changes the path where the session layer cannot see the new value, so a
  // later unqualified name could reach pgairlock.*: refused (fail closed), as is set_config with a setting
  // named at run time. The analyzer says which setting in its opaque reasons (pinned by test/policy/builtin.test.ts).
  if (f.functions.some((fn) => fn.name === 'set_config' && (fn.schema === undefined || fn.schema === 'pg_catalog'))) {
    const why = f.opaque.find((o) => o.startsWith('set_config(') && (o.includes("'search_path'") || o.includes('named at run time')));
    if (why) return `${why}, where pgairlock cannot follow the search_path (use SET search_path instead)`;
  }
  return undefined;
}

export const protectSchemaRule: BuiltinRule = {
  id: BUILTIN_PROTECT_SCHEMA_ID,
  description: `pgairlock's own schema (${PROTECTED_SCHEMA}: audit trail, change requests) can be neither read nor written by a governed principal`,
  message: `pgairlock: the schema "${PROTECTED_SCHEMA}" belongs to pgairlock and cannot be read or written through it`,
  hint: 'Use `pgairlock audit` or the admin console to read the audit trail.',
  sqlstate: '42501',
  unparsedReason: 'the statement could not be parsed, so nothing it touches is known; PostgreSQL rejects text its own grammar cannot parse',
  test(facts, env) {
    const why = touchesProtected(facts, env);
    return why ? { outcome: YES, reason: why } : { outcome: NO, reason: `it does not touch the ${PROTECTED_SCHEMA} schema` };
  },
};

export const BUILTIN_RULES: readonly BuiltinRule[] = [protectSchemaRule];
