/**
 * Glob patterns for names (users, databases, schemas, tables, columns, rule ids): `*` matches any run of
 * characters (also none), `?` exactly one; everything else matches itself, case-sensitively (identifiers
 * reach us already case-folded by the parser; role and database names are case-sensitive in PostgreSQL).
 * Compiled once per policy load into the cheapest matcher that fits; no regular expressions involved.
 */

export type NameMatcher = (name: string) => boolean;

export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/** Classic two-pointer wildcard match with backtracking to the last `*`: O(n*m) worst case, no recursion. */
function wildcardMatch(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    const pc = pattern[p];
    if (pc === '?' || (pc !== undefined && pc !== '*' && pc === text[t])) {
      p++;
      t++;
    } else if (pc === '*') {
      star = p++;
      mark = t;
    } else if (star >= 0) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p++;
  return p === pattern.length;
}

export function compileGlob(pattern: string): NameMatcher {
  if (pattern === '*') return () => true;
  if (!isGlob(pattern)) return (name) => name === pattern;
  const body = pattern.slice(0, -1);
  if (pattern.endsWith('*') && !isGlob(body)) return (name) => name.startsWith(body);
  const tail = pattern.slice(1);
  if (pattern.startsWith('*') && !isGlob(tail)) return (name) => name.endsWith(tail);
  return (name) => wildcardMatch(pattern, name);
}

/** Any of several patterns; exact names go through one Set lookup. */
export function compileGlobs(patterns: readonly string[]): NameMatcher {
  const exact = new Set<string>();
  const globs: NameMatcher[] = [];
  for (const p of patterns) {
    if (isGlob(p)) globs.push(compileGlob(p));
    else exact.add(p);
  }
  if (globs.length === 0) return (name) => exact.has(name);
  return (name) => {
    if (exact.has(name)) return true;
    for (const g of globs) if (g(name)) return true;
    return false;
  };
}
