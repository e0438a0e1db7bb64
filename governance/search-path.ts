/**
 * search_path values, read and written as PostgreSQL does (one implementation for the policy engine, the
 * catalog state and the session tracker).
 *
 * The server splits the setting with SplitIdentifierString(): entries are separated by commas, with any
 * whitespace around them; a double-quoted entry keeps its case and may contain commas and spaces (`""` is a
 * quote); an unquoted entry is folded to lower case (ASCII letters only, as downcase_identifier() does for
 * UTF-8); every entry is truncated to NAMEDATALEN - 1 = 63 bytes. `$user`, quoted or not, stands for the
 * current role (recomputeNamespacePath compares the split name with "$user").
 */

/** The entry that stands for the current role. */
export const USER_ENTRY = '$user';

/** PostgreSQL's default search_path, as parsed names. */
export const DEFAULT_SEARCH_PATH: readonly string[] = Object.freeze([USER_ENTRY, 'public']);

const MAX_IDENTIFIER_BYTES = 63;

const isSpace = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';

function truncateIdentifier(name: string): string {
  if (Buffer.byteLength(name) <= MAX_IDENTIFIER_BYTES) return name;
  // Cut at a character boundary, as pg_mbcliplen does.
  let bytes = 0;
  let out = '';
  for (const ch of name) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > MAX_IDENTIFIER_BYTES) break;
    bytes += n;
    out += ch;
  }
  return out;
}

const asciiLower = (s: string): string => s.replace(/[A-Z]+/g, (m) => m.toLowerCase());

/**
 * Splits a search_path setting value (`"$user", public, "My Schema"`) into schema names: quotes removed,
 * unquoted names lower-cased. Lenient where the server would reject the whole value (an unterminated
 * quote, a missing comma, an empty entry): the server refuses such a SET, so what is returned then does
 * not matter for resolution; empty names are dropped.
 */
export function parseSearchPath(value: string): string[] {
  const out: string[] = [];
  const n = value.length;
  let i = 0;
  while (i < n) {
    while (i < n && (isSpace(value[i]) || value[i] === ',')) i++;
    if (i >= n) break;
    let name = '';
    if (value[i] === '"') {
      i++;
      while (i < n) {
        if (value[i] === '"') {
          if (value[i + 1] === '"') {
            name += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        name += value[i];
        i++;
      }
    } else {
      const start = i;
      while (i < n && value[i] !== ',' && !isSpace(value[i])) i++;
      name = asciiLower(value.slice(start, i));
    }
    name = truncateIdentifier(name);
    if (name.length > 0) out.push(name);
    // Anything up to the next comma (whitespace; junk the server would refuse) ends this entry.
    while (i < n && value[i] !== ',') i++;
  }
  return out;
}

/**
 * Parsed names as the schemas they resolve to: `$user` replaced by `user` (dropped when the user is not
 * known), empty names dropped. Schemas that do not exist are left for the caller to skip, as the server does.
 */
export function searchPathSchemas(names: readonly string[] | undefined, user: string | undefined): string[] {
  const out: string[] = [];
  for (const s of names ?? DEFAULT_SEARCH_PATH) {
    if (s === USER_ENTRY) {
      if (user) out.push(user);
    } else if (s.length > 0) {
      out.push(s);
    }
  }
  return out;
}

/** An identifier always double-quoted (`""` for a quote): safe to splice into SQL whatever its content. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Parsed names back to a setting value the server reads as the same list (every name quoted). */
export function formatSearchPath(names: readonly string[]): string {
  return names.map(quoteIdentifier).join(', ');
}
