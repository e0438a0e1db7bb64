import { parseSync } from 'libpg-query';
import { as, list, names, rangeVarKey, str } from './ast.js';
import type { RuleInput } from './index.js';

/**
 * Does the script, before this statement, prove `column` of `relation` NOT NULL with a valid
 * constraint? That is the safe recipe for SET NOT NULL (PostgreSQL 12+ skips the table scan when a
 * valid CHECK (col IS NOT NULL) exists): ADD CONSTRAINT c CHECK (col IS NOT NULL) NOT VALID, then
 * VALIDATE CONSTRAINT c (or the PostgreSQL 18 form, ADD CONSTRAINT c NOT NULL col NOT VALID).
 *
 * The rules see one statement; this reads the statements before it from the same text, parsing that
 * prefix only when a SET NOT NULL finding is about to be reported (rare), so the common path pays nothing.
 */
export function provenNotNullEarlier(input: RuleInput, relation: unknown, column: string): boolean {
  if (input.byteStart <= 0) return false;
  const key = rangeVarKey(relation);
  if (key === undefined) return false;
  let stmts: { stmt: unknown }[];
  try {
    stmts = (parseSync(Buffer.from(input.sql, 'utf8').subarray(0, input.byteStart).toString('utf8')).stmts ?? []) as { stmt: unknown }[];
  } catch {
    return false;
  }
  const pending = new Set<string>();
  let proven = false;
  for (const s of stmts) {
    const alter = as(s.stmt, 'AlterTableStmt');
    if (!alter || rangeVarKey(alter.relation) !== key) continue;
    for (const c of list(alter.cmds)) {
      const cmd = as(c, 'AlterTableCmd');
      if (!cmd) continue;
      if (cmd.subtype === 'AT_AddConstraint') {
        const con = as(cmd.def, 'Constraint');
        if (!con || !provesNotNull(con, column)) continue;
        if (con.skip_validation === true) pending.add(str(con.conname) ?? '');
        else proven = true;
      } else if (cmd.subtype === 'AT_ValidateConstraint' && pending.has(str(cmd.name) ?? '\u0000')) {
        proven = true;
      } else if (cmd.subtype === 'AT_DropConstraint') {
        pending.delete(str(cmd.name) ?? '');
      }
    }
  }
  return proven;
}

function provesNotNull(con: Record<string, unknown>, column: string): boolean {
  if (con.contype === 'CONSTR_NOTNULL') return names(con.keys).includes(column);
  if (con.contype !== 'CONSTR_CHECK') return false;
  const test = as(con.raw_expr, 'NullTest');
  if (!test || test.nulltesttype !== 'IS_NOT_NULL') return false;
  const fields = names(as(test.arg, 'ColumnRef')?.fields);
  return fields.length === 1 && fields[0] === column;
}
