/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's JSON AST is walked dynamically (see collector.ts) */
/**
 * The literal key: a cheap, conservative normalisation of a simple-protocol statement (numbers and
 * string literals replaced by a class marker), and the proof obligation that makes reusing an
 * analysis across texts with the same key sound.
 *
 * Soundness (docs/analyzer.md "Literal cache"): two texts with the same key are identical outside
 * their literal regions, and each region holds a literal of the same class (integer, decimal,
 * string). A cached analysis is stored for a key only when, in the parse tree of the text it came
 * from, every literal region is exactly one A_Const in an allowlisted position (an operand compared
 * or combined with a column expression, a VALUES item, an UPDATE SET value, LIMIT/OFFSET, or a cast
 * of such an operand to a plain scalar type). Any other text with the same key therefore parses to
 * the same tree except the values of those A_Consts, and the analyzer never reads values there: its
 * facts (except the text and positions) are the same. Anything the scanner is unsure of ($, \,
 * non-ASCII, prefixed strings like E'' U&'' B'' X'', numbers with exponents, hex or underscores)
 * yields no key, and the statement takes the ordinary path.
 */

/** Class markers inside keys; '\0' never occurs in a statement text (the wire uses C strings). */
const INT = '\u0000i';
const DEC = '\u0000d';
const STR = '\u0000s';

export interface LiteralScan {
  /** The text with each literal replaced by its class marker. */
  readonly key: string;
  /** Index of each literal's first character (strings: the opening quote). */
  readonly starts: readonly number[];
}

const isIdentStart = (c: number): boolean => (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
const isDigit = (c: number): boolean => c >= 48 && c <= 57;
const isIdentChar = (c: number): boolean => isIdentStart(c) || isDigit(c);

/**
 * Scans `sql` like PostgreSQL's lexer would for the few token classes that matter here. Returns
 * undefined when the text has no literal or holds anything this scanner does not handle exactly.
 */
export function scanLiterals(sql: string): LiteralScan | undefined {
  const n = sql.length;
  const starts: number[] = [];
  let key = '';
  let last = 0;
  let i = 0;
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (c >= 128 || c === 36 /* $ */ || c === 92 /* \ */ || c === 0) return undefined;
    if (isIdentStart(c)) {
      i++;
      while (i < n && isIdentChar(sql.charCodeAt(i))) i++;
      // E'..', B'..', X'..', N'..' and identifiers running into $ are other tokens.
      const d = sql.charCodeAt(i);
      if (d === 39 || d === 36) return undefined;
      continue;
    }
    if (c === 34 /* " */) {
      i++;
      for (;;) {
        if (i >= n) return undefined;
        const d = sql.charCodeAt(i);
        if (d >= 128 || d === 0) return undefined;
        i++;
        if (d === 34) {
          if (sql.charCodeAt(i) === 34) { i++; continue; }
          break;
        }
      }
      continue;
    }
    if (c === 45 /* - */ && sql.charCodeAt(i + 1) === 45) {
      i += 2;
      while (i < n && sql.charCodeAt(i) !== 10 && sql.charCodeAt(i) !== 13) {
        const d = sql.charCodeAt(i);
        if (d >= 128 || d === 0) return undefined;
        i++;
      }
      continue;
    }
    if (c === 47 /* / */ && sql.charCodeAt(i + 1) === 42 /* * */) {
      let depth = 1;
      i += 2;
      while (depth > 0) {
        if (i >= n) return undefined;
        const d = sql.charCodeAt(i);
        if (d >= 128 || d === 0) return undefined;
        if (d === 47 && sql.charCodeAt(i + 1) === 42) { depth++; i += 2; }
        else if (d === 42 && sql.charCodeAt(i + 1) === 47) { depth--; i += 2; }
        else i++;
      }
      continue;
    }
    if (c === 39 /* ' */) {
      // U&'..' is a Unicode-escape string (its UESCAPE can make the text invalid).
      if (i > 0 && sql.charCodeAt(i - 1) === 38 /* & */) return undefined;
      const start = i;
      i++;
      for (;;) {
        if (i >= n) return undefined;
        const d = sql.charCodeAt(i);
        if (d >= 128 || d === 0 || d === 92) return undefined;
        i++;
        if (d === 39) {
          if (sql.charCodeAt(i) === 39) { i++; continue; }
          break;
        }
      }
      const after = sql.charCodeAt(i);
      if (isIdentChar(after) || after === 39 || after === 36) return undefined;
      key += sql.slice(last, start) + STR;
      last = i;
      starts.push(start);
      continue;
    }
    if (isDigit(c)) {
      // Only plain integers and decimals (digits[.digits]) preceded by neither '.' nor an identifier.
      if (i > 0 && sql.charCodeAt(i - 1) === 46 /* . */) return undefined;
      const start = i;
      while (i < n && isDigit(sql.charCodeAt(i))) i++;
      let cls = INT;
      if (sql.charCodeAt(i) === 46) {
        if (!isDigit(sql.charCodeAt(i + 1))) return undefined;
        i++;
        while (i < n && isDigit(sql.charCodeAt(i))) i++;
        cls = DEC;
      }
      const after = sql.charCodeAt(i);
      if (isIdentChar(after) || after === 46 || after === 39 || after === 36 || after === 34) return undefined;
      key += sql.slice(last, start) + cls;
      last = i;
      starts.push(start);
      continue;
    }
    i++;
  }
  if (starts.length === 0) return undefined;
  return { key: key + sql.slice(last), starts };
}

/** Operators whose constant operands the analyzer never reads (comparison, arithmetic, LIKE). */
const INERT_OPERATORS: ReadonlySet<string> = new Set(['=', '<>', '!=', '<', '>', '<=', '>=', '+', '-', '*', '/', '%', '||', '~~', '!~~', '~~*', '!~~*']);
const INERT_EXPR_KINDS: ReadonlySet<string> = new Set(['AEXPR_OP', 'AEXPR_IN', 'AEXPR_LIKE', 'AEXPR_ILIKE', 'AEXPR_BETWEEN', 'AEXPR_NOT_BETWEEN']);
/** Casts of a literal operand that name no object (never reg* types, never user types with modifiers). */
const INERT_CAST_TYPES: ReadonlySet<string> = new Set([
  'int2', 'int4', 'int8', 'float4', 'float8', 'numeric', 'text', 'varchar', 'bpchar', 'bool', 'date', 'time', 'timetz',
  'timestamp', 'timestamptz', 'interval', 'uuid',
]);
const INERT_STATEMENTS: ReadonlySet<string> = new Set(['SelectStmt', 'InsertStmt', 'UpdateStmt', 'DeleteStmt']);

/** Thrown (and caught below) when a literal sits where its value could matter. */
class NotInert extends Error {}
const NOT_INERT = new NotInert();

/**
 * Locations of the literals of one statement when every one is in an allowlisted position; undefined
 * when the statement is not a plain SELECT/INSERT/UPDATE/DELETE, holds a parameter, or any literal
 * sits elsewhere (a function argument, a cast to an object-naming type, a constant-only expression
 * like `1 = 1`, a target list, a type modifier, CASE, ...).
 */
export function inertLiteralLocations(wrapper: Record<string, unknown>): number[] | undefined {
  let type = '';
  for (const k in wrapper) { type = k; break; }
  if (!INERT_STATEMENTS.has(type)) return undefined;
  const out: number[] = [];
  try {
    visit(wrapper, false, out);
  } catch (err) {
    if (err === NOT_INERT) return undefined;
    throw err;
  }
  return out;
}

/** `ok`: a literal directly here (a node of this value) is in an allowed position. */
function visit(v: any, ok: boolean, out: number[]): void {
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    for (const x of v) visit(x, false, out);
    return;
  }
  for (const k in v) {
    const node = v[k];
    if (node === null || typeof node !== 'object') continue;
    switch (k) {
      case 'A_Const':
        if (!ok || typeof node.location !== 'number' || node.location < 0) throw NOT_INERT;
        out.push(node.location);
        break;
      case 'ParamRef':
        throw NOT_INERT;
      case 'TypeCast':
        visit(node.arg, ok && inertCast(node.typeName), out);
        visit(node.typeName, false, out);
        break;
      case 'A_Expr':
        aExpr(node, out);
        break;
      case 'SelectStmt':
        if (node.intoClause) throw NOT_INERT;
        for (const f in node) {
          const x = node[f];
          if (f === 'valuesLists' && Array.isArray(x)) {
            for (const row of x) {
              const items = row?.List?.items;
              if (Array.isArray(items)) for (const item of items) visit(item, true, out);
              else visit(row, false, out);
            }
          } else if (f === 'limitCount' || f === 'limitOffset') visit(x, true, out);
          else visitField(x, out);
        }
        break;
      case 'UpdateStmt':
        for (const f in node) {
          const x = node[f];
          if (f === 'targetList' && Array.isArray(x)) {
            for (const t of x) {
              const rt = t?.ResTarget;
              if (!rt) { visit(t, false, out); continue; }
              visit(rt.val, true, out);
              visit(rt.indirection, false, out);
            }
          } else visitField(x, out);
        }
        break;
      default:
        visitField(node, out);
    }
  }
}

/** A field's value: a node wrapper, a list, or an inline struct (all judged with ok = false). */
function visitField(x: any, out: number[]): void {
  if (x === null || typeof x !== 'object') return;
  if (Array.isArray(x)) for (const y of x) visit(y, false, out);
  else visit(x, false, out);
}

function aExpr(e: any, out: number[]): void {
  const name = Array.isArray(e.name) && e.name.length === 1 ? e.name[0]?.String?.sval : undefined;
  const inert = INERT_EXPR_KINDS.has(e.kind) && typeof name === 'string' && (e.kind !== 'AEXPR_OP' || INERT_OPERATORS.has(name));
  const leftOk = inert && hasColumn(e.rexpr);
  const rightOk = inert && hasColumn(e.lexpr);
  visit(e.lexpr, leftOk, out);
  const items = e.rexpr?.List?.items;
  if (Array.isArray(items) && (e.kind === 'AEXPR_IN' || e.kind === 'AEXPR_BETWEEN' || e.kind === 'AEXPR_NOT_BETWEEN')) {
    for (const x of items) visit(x, rightOk, out);
  } else visit(e.rexpr, rightOk, out);
}

function inertCast(typeName: any): boolean {
  const names: any[] | undefined = typeName?.names;
  if (!Array.isArray(names) || names.length === 0 || names.length > 2) return false;
  if (typeName.typmods !== undefined || typeName.arrayBounds !== undefined || typeName.setof || typeName.pct_type) return false;
  if (names.length === 2 && names[0]?.String?.sval !== 'pg_catalog') return false;
  const last = names[names.length - 1]?.String?.sval;
  return typeof last === 'string' && INERT_CAST_TYPES.has(last);
}

/** True when the expression reads a column somewhere (so it is not a constant-only expression). */
function hasColumn(v: any): boolean {
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) {
    for (const x of v) if (hasColumn(x)) return true;
    return false;
  }
  for (const k in v) {
    if (k === 'ColumnRef') return true;
    const x = v[k];
    if (x !== null && typeof x === 'object' && hasColumn(x)) return true;
  }
  return false;
}

/**
 * True when the literal locations of the parse tree are exactly the scanner's literal regions: each
 * region one A_Const (a folded negative number starts at its '-').
 */
export function literalsMatch(sql: string, scan: LiteralScan, locations: readonly number[]): boolean {
  if (locations.length !== scan.starts.length) return false;
  const sorted = [...locations].sort((a, b) => a - b);
  for (let k = 0; k < sorted.length; k++) {
    let loc = sorted[k]!;
    const start = scan.starts[k]!;
    if (loc !== start) {
      if (sql.charCodeAt(loc) !== 45 /* - */) return false;
      loc++;
      while (loc < start && (sql.charCodeAt(loc) === 32 || (sql.charCodeAt(loc) >= 9 && sql.charCodeAt(loc) <= 13))) loc++;
      if (loc !== start) return false;
    }
  }
  return true;
}
