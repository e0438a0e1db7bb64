import { makeFinding, type RuleMeta } from '../findings.js';
import type { Finding, ScriptContext } from '../types.js';
import type { RuleFamily } from './family.js';
import { alterTableRules } from './alter-table.js';
import { columnTypeRules } from './column-types.js';
import { compatRules } from './compat.js';
import { destructiveRules } from './destructive.js';
import { indexRules } from './indexes.js';
import { maintenanceRules } from './maintenance.js';
import { timeoutRules } from './timeouts.js';
import { transactionRules } from './transactions.js';

/**
 * Migration-safety rules: pure functions from one parsed statement (plus the script context
 * before it) to findings. The catalogue, with squawk and strong_migrations equivalents, is
 * docs/rules.md. Ignore comments (`-- pgairlock:ignore rule-id`) are applied by the caller with
 * analyzer/rules/ignore.ts, because they need the whole text's comment tokens.
 */

export type { RuleMeta } from '../findings.js';

export interface RuleInput {
  /** The RawStmt.stmt node from libpg-query parseSync, e.g. { IndexStmt: {...} }. */
  readonly stmt: Record<string, unknown>;
  /** The whole analysed text (node `location`s are UTF-8 byte offsets into it). */
  readonly sql: string;
  /** This statement's byte range [byteStart, byteEnd) in `sql`. */
  readonly byteStart: number;
  readonly byteEnd: number;
  /** server_version_num of the target, e.g. 170000. */
  readonly serverVersion: number;
  /** Script/session state BEFORE this statement. */
  readonly context: ScriptContext;
}

const FAMILIES: readonly RuleFamily[] = [
  indexRules,
  alterTableRules,
  destructiveRules,
  transactionRules,
  timeoutRules,
  maintenanceRules,
  columnTypeRules,
  compatRules,
];

/** Every rule, in documentation order. */
export const RULES: readonly RuleMeta[] = FAMILIES.flatMap((f) => f.rules);

const BY_ID: ReadonlyMap<string, RuleMeta> = new Map(RULES.map((r) => [r.id, r]));

export function ruleById(id: string): RuleMeta | undefined {
  return BY_ID.get(id);
}

/** Families per statement node type, so a SELECT only meets the one family that looks at SELECTs. */
const BY_NODE: ReadonlyMap<string, readonly RuleFamily[]> = (() => {
  const m = new Map<string, RuleFamily[]>();
  for (const f of FAMILIES) for (const n of f.nodes) m.set(n, [...(m.get(n) ?? []), f]);
  return m;
})();

/** All findings for one statement, in the order the families report them. Never throws on odd ASTs. */
export function runRules(input: RuleInput): Finding[] {
  const findings: Finding[] = [];
  let type: string | undefined;
  for (const k in input.stmt) {
    type = k;
    break;
  }
  const families = type === undefined ? undefined : BY_NODE.get(type);
  if (families === undefined) return findings;
  for (const family of families) {
    family.check(input, (ruleId, byte, details) => {
      const meta = BY_ID.get(ruleId);
      // A family reporting an id it did not declare is a programming error: fail loudly in tests.
      if (meta === undefined) throw new Error(`rule family reported undeclared rule ${ruleId}`);
      findings.push(makeFinding(meta, input.sql, byte ?? input.byteStart, details));
    });
  }
  return findings;
}
