import type { ScriptContext, StatementFacts } from '../../analyzer/types.js';
import { parseSearchPath } from '../../governance/policy/units.js';

/**
 * What a session has set up that later statements depend on, tracked from the statements the
 * gate lets through, so session state cannot be used to slip past the policy:
 * - `PREPARE name AS ...` then `EXECUTE name` is judged by what it runs;
 * - protocol-level named statements (Parse) are judged at Parse and remembered by name;
 * - `SET search_path` changes how unqualified names resolve;
 * - `SET ROLE` / `SET SESSION AUTHORIZATION` change the effective identity recorded in the audit;
 * - `SET lock_timeout` feeds the missing-lock-timeout rule;
 * - `SET pgairlock.expect_schema` declares the schema the client believes in (drift).
 * State is updated when a statement is forwarded; a statement that then fails on the server is
 * still counted (the conservative direction for search_path and prepared names: see docs/policy.md).
 */
export class SessionState {
  searchPath: string[] | undefined;
  lockTimeoutSet = false;
  effectiveRole: string | undefined;
  expectSchema: string | undefined;
  readonly prepared = new Map<string, StatementFacts>();

  constructor(startupParams: ReadonlyMap<string, string>) {
    const sp = startupParams.get('search_path');
    if (sp !== undefined) this.searchPath = parseSearchPath(sp);
  }

  /** The analyzer's carried-in context for the next statement string. */
  scriptContext(inTransactionBlock: boolean): ScriptContext {
    return { inTransactionBlock, lockTimeoutSet: this.lockTimeoutSet, createdRelations: new Set() };
  }

  /** Applies what forwarded statements change. */
  apply(statements: readonly StatementFacts[]): void {
    for (const f of statements) {
      if (f.prepare) this.prepared.set(f.prepare.name, f.prepare.inner);
      if (f.node === 'DeallocateStmt') {
        const name = f.execute?.name;
        if (name) this.prepared.delete(name);
        else this.prepared.clear();
      }
      // Only DISCARD ALL resets the session (SET SESSION AUTHORIZATION DEFAULT; RESET ALL;
      // DEALLOCATE ALL ...); DISCARD PLANS / SEQUENCES / TEMP leave settings and prepared statements.
      if (f.node === 'DiscardStmt' && f.commandTag === 'DISCARD ALL') {
        this.prepared.clear();
        this.searchPath = undefined;
        this.lockTimeoutSet = false;
        this.effectiveRole = undefined;
        this.expectSchema = undefined;
      }
      const s = f.setting;
      if (!s) continue;
      switch (s.name) {
        case 'search_path':
          this.searchPath = s.value === undefined ? undefined : parseSearchPath(s.value);
          break;
        case 'lock_timeout':
          this.lockTimeoutSet = s.value !== undefined && s.value !== '0';
          break;
        case 'role':
        case 'session_authorization':
          this.effectiveRole = s.value === undefined || s.value.toLowerCase() === 'none' ? undefined : s.value;
          break;
        case 'pgairlock.expect_schema':
          this.expectSchema = s.value;
          break;
        case 'all':
          if (s.value === undefined) {
            this.searchPath = undefined;
            this.lockTimeoutSet = false;
            this.effectiveRole = undefined;
            this.expectSchema = undefined;
          }
          break;
      }
    }
  }
}
