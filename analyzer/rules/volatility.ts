import { isObject, names, walk } from './ast.js';

/**
 * Volatility of a DEFAULT expression, judged from the text alone. Since PostgreSQL 11, ADD COLUMN
 * with a non-volatile default stores the value once in the catalog (no rewrite); a volatile default
 * (random(), clock_timestamp(), gen_random_uuid(), nextval()) must be evaluated per row, so the
 * table is rewritten under ACCESS EXCLUSIVE. Docs: "ALTER TABLE", Notes
 * (https://www.postgresql.org/docs/current/sql-altertable.html#SQL-ALTERTABLE-NOTES).
 */

/** Built-in functions marked VOLATILE in pg_proc (and the common extension ones). */
const VOLATILE = new Set([
  'random',
  'random_normal',
  'setseed',
  'gen_random_uuid',
  'uuidv4',
  'uuidv7',
  'uuid_generate_v1',
  'uuid_generate_v1mc',
  'uuid_generate_v4',
  'clock_timestamp',
  'timeofday',
  'nextval',
  'setval',
  'currval',
  'lastval',
  'txid_current',
  'pg_current_xact_id',
  'gen_random_bytes',
  'gen_salt',
  'crypt',
]);

/** Built-ins known to be IMMUTABLE or STABLE (a stable default is evaluated once, at ALTER time). */
const NON_VOLATILE = new Set([
  'now',
  'current_timestamp',
  'statement_timestamp',
  'transaction_timestamp',
  'localtimestamp',
  'current_date',
  'current_setting',
  'current_user',
  'current_schema',
  'lower',
  'upper',
  'trim',
  'btrim',
  'ltrim',
  'rtrim',
  'concat',
  'concat_ws',
  'length',
  'md5',
  'abs',
  'round',
  'floor',
  'ceil',
  'greatest',
  'least',
  'coalesce',
  'nullif',
  'to_char',
  'to_date',
  'to_timestamp',
  'to_json',
  'to_jsonb',
  'json_build_object',
  'jsonb_build_object',
  'json_build_array',
  'jsonb_build_array',
  'array_fill',
  'make_interval',
  'make_date',
  'make_timestamp',
  'make_timestamptz',
  'date_trunc',
  'timezone',
  'int4',
  'int8',
  'text',
  'uuid_nil',
]);

export type Volatility =
  | { readonly kind: 'constant' }
  | { readonly kind: 'volatile'; readonly fn: string }
  | { readonly kind: 'unknown'; readonly fn: string };

/** Worst volatility among the function calls in `expr` (nodes: FuncCall; SQLValueFunction is stable). */
export function defaultVolatility(expr: unknown): Volatility {
  let unknown: string | undefined;
  let volatile: string | undefined;
  walk(expr, (type, node) => {
    if (type === 'FuncCall') {
      const fn = names(node.funcname);
      const name = fn[fn.length - 1] ?? '';
      const schema = fn.length > 1 ? fn[0] : undefined;
      if (VOLATILE.has(name)) volatile ??= fn.join('.');
      else if (!(NON_VOLATILE.has(name) && (schema === undefined || schema === 'pg_catalog'))) unknown ??= fn.join('.');
    }
    // A sub-select in a DEFAULT is rejected by PostgreSQL anyway; nothing to judge.
    return true;
  });
  if (volatile !== undefined) return { kind: 'volatile', fn: volatile };
  if (unknown !== undefined) return { kind: 'unknown', fn: unknown };
  return { kind: 'constant' };
}

/** serial, bigserial, smallserial (and serial2/4/8): a nextval() default in disguise. */
export function isSerialType(typeName: unknown): boolean {
  const n = isObject(typeName) ? names(typeName.names) : [];
  const last = n[n.length - 1];
  return n.length === 1 && last !== undefined && ['serial', 'bigserial', 'smallserial', 'serial2', 'serial4', 'serial8'].includes(last);
}
