/** The policy engine's public surface; see docs/policy.md. */
export { evaluate, defaultEffectFor } from './evaluate.js';
export { compilePolicy, type CompiledPolicy, type CompiledRule } from './compile.js';
export { PolicyError, loadPolicyFile, loadDefaultPolicy, defaultPolicyPath, parsePolicy, policyFromConfig } from './load.js';
export { BUILTIN_PROTECT_SCHEMA_ID, PROTECTED_SCHEMA } from './builtin.js';
export { parseSearchPath } from './units.js';
export { statementsOf } from './analysis.js';
export { stateFromRecord, stateFromSnapshot, type PrefetchedUser } from './state.js';
export type * from './types.js';
export type { PolicySpec, RuleSpec, PolicyConfig, PrincipalsConfig, EffectName } from './schema.js';
