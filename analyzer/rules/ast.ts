/**
 * Small readers over libpg_query's JSON AST. libpg_query omits absent booleans, empty lists and
 * zero values, so every reader tolerates missing keys. No SQL text is inspected here.
 */

export type Node = Record<string, unknown>;

export function isObject(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The single key of a wrapped node ({ IndexStmt: {...} } -> ['IndexStmt', {...}]). */
export function unwrap(v: unknown): [string, Node] | undefined {
  if (!isObject(v)) return undefined;
  const keys = Object.keys(v);
  if (keys.length !== 1) return undefined;
  const k = keys[0]!;
  const inner = v[k];
  return isObject(inner) ? [k, inner] : undefined;
}

/** The inner node when `v` is `{ [type]: inner }`. */
export function as(v: unknown, type: string): Node | undefined {
  if (!isObject(v)) return undefined;
  const inner = v[type];
  return isObject(inner) ? inner : undefined;
}

export function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' ? v : undefined;
}

/** [{String:{sval:'a'}}, {String:{sval:'b'}}] -> ['a', 'b']. */
export function names(v: unknown): string[] {
  const out: string[] = [];
  for (const item of list(v)) {
    const s = as(item, 'String');
    if (s && typeof s.sval === 'string') out.push(s.sval);
  }
  return out;
}

/** A RangeVar's name as written: "schema.name" or "name" (identifiers already case-folded by the parser). */
export function rangeVarKey(rv: unknown): string | undefined {
  if (!isObject(rv)) return undefined;
  const name = str(rv.relname);
  if (name === undefined) return undefined;
  const schema = str(rv.schemaname);
  return schema === undefined ? name : `${schema}.${name}`;
}

export function location(v: unknown): number | undefined {
  if (!isObject(v)) return undefined;
  const loc = num(v.location);
  return loc !== undefined && loc >= 0 ? loc : undefined;
}

/** DefElem options list -> is option `name` present and not explicitly false/off/0? */
export function hasOption(options: unknown, name: string): boolean {
  for (const o of list(options)) {
    const d = as(o, 'DefElem');
    if (!d || d.defname !== name) continue;
    const arg = d.arg;
    if (arg === undefined) return true;
    const b = as(arg, 'Boolean');
    if (b) return b.boolval === true;
    const c = as(arg, 'A_Const');
    if (c) {
      if (isObject(c.boolval)) return c.boolval.boolval === true;
      const sv = as(c, 'sval');
      if (sv && typeof sv.sval === 'string') return !['false', 'off', 'no', '0'].includes(sv.sval.toLowerCase());
      if (isObject(c.ival)) return (c.ival.ival ?? 0) !== 0;
    }
    const s = as(arg, 'String');
    if (s && typeof s.sval === 'string') return !['false', 'off', 'no', '0'].includes(s.sval.toLowerCase());
    const i = as(arg, 'Integer');
    if (i) return (i.ival ?? 0) !== 0;
    return true;
  }
  return false;
}

/** AST node type names start with an upper-case letter (IndexStmt, RangeVar); field names do not. */
function isNodeName(key: string): boolean {
  const c = key.charCodeAt(0);
  return c >= 65 && c <= 90;
}

/**
 * Visit every wrapped node under `root` (depth-first), with its type name. Returning false from
 * `visit` skips that node's children. Bounded by the AST's own size.
 */
export function walk(root: unknown, visit: (type: string, node: Node) => boolean | void): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const v = stack.pop();
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push(v[i]);
      continue;
    }
    if (!isObject(v)) continue;
    const keys = Object.keys(v);
    const only = keys.length === 1 ? keys[0]! : undefined;
    if (only !== undefined && isNodeName(only) && isObject(v[only])) {
      if (visit(only, v[only]) === false) continue;
      stack.push(v[only]);
      continue;
    }
    for (let i = keys.length - 1; i >= 0; i--) {
      const child = v[keys[i]!];
      if (typeof child === 'object' && child !== null) stack.push(child);
    }
  }
}
