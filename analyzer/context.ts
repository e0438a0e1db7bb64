/**
 * Script context: what an analysis remembers between the statements of one text (a migration file)
 * or one session (the proxy passes the session's context in). Pure transitions over StatementFacts.
 */
import { relationKey } from './names.js';
import type { ScriptContext, StatementFacts } from './types.js';

export function newScriptContext(): ScriptContext {
  return { inTransactionBlock: false, lockTimeoutSet: false, createdRelations: new Set<string>() };
}

/** A copy that can be changed without touching the original (e.g. to try a statement). */
export function cloneScriptContext(ctx: ScriptContext): ScriptContext {
  return {
    inTransactionBlock: ctx.inTransactionBlock,
    lockTimeoutSet: ctx.lockTimeoutSet,
    createdRelations: new Set(ctx.createdRelations),
    ...(ctx.lockTimeoutLocal !== undefined ? { lockTimeoutLocal: ctx.lockTimeoutLocal } : {}),
  };
}

/** lock_timeout values that mean "no timeout". */
const isZero = (v: string | undefined): boolean => v === undefined || v.trim() === '0' || v.trim() === '';

/** Applies one statement's effect on the context (after the statement). */
export function advanceContext(ctx: ScriptContext, f: StatementFacts): void {
  switch (f.transaction) {
    case 'begin':
      ctx.inTransactionBlock = true;
      break;
    case 'commit':
    case 'rollback':
    case 'prepare':
      ctx.inTransactionBlock = false;
      if (ctx.lockTimeoutLocal) { ctx.lockTimeoutSet = false; ctx.lockTimeoutLocal = false; }
      break;
    default:
      break;
  }
  const s = f.setting;
  if (s && (s.name === 'lock_timeout' || s.name === 'all')) {
    if (s.name === 'all' || isZero(s.value)) { ctx.lockTimeoutSet = false; ctx.lockTimeoutLocal = false; }
    else {
      ctx.lockTimeoutSet = true;
      // SET LOCAL outside a transaction block has no effect (the server warns).
      if (s.local && !ctx.inTransactionBlock) ctx.lockTimeoutSet = false;
      ctx.lockTimeoutLocal = s.local;
    }
  }
  for (const r of f.relations) {
    if (r.role === 'create') ctx.createdRelations.add(relationKey(r.relation));
    else if (r.role === 'drop') ctx.createdRelations.delete(relationKey(r.relation));
  }
}

/**
 * True when any relation the statements use may be one of `created` (matching unqualified names against
 * qualified ones): their findings depend on the context, so a cached analysis cannot be reused.
 */
export function touchesCreated(statements: readonly StatementFacts[], created: ReadonlySet<string>): boolean {
  if (created.size === 0) return false;
  const bare = new Set<string>();
  for (const k of created) { bare.add(k); const dot = k.lastIndexOf('.'); if (dot >= 0) bare.add(k.slice(dot + 1)); }
  // A relation the text itself creates does not count: its findings do not depend on the context.
  // Nested statements count too: they are judged from a copy of the same context.
  const touches = (list: readonly StatementFacts[], depth: number): boolean => {
    for (const f of list) {
      for (const r of f.relations) if (r.role !== 'create' && (bare.has(r.relation.name) || bare.has(relationKey(r.relation)))) return true;
      if (depth < 8 && (touches(f.nested, depth + 1) || (f.prepare !== undefined && touches([f.prepare.inner], depth + 1)))) return true;
    }
    return false;
  };
  return touches(statements, 0);
}
