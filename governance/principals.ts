import { compileGlobs, type NameMatcher } from './policy/glob.js';
import { principalsConfigSchema, type PrincipalsConfig } from './policy/schema.js';
import type { ConnectionIdentity, Principal } from './principal.js';

/**
 * Principal resolution: connection (user, database, application_name) -> who is acting.
 * Entries are tried in config order; the first whose every given key matches wins; nobody else is the
 * default principal (by default "unknown" with role agent, the most restricted). Patterns use * and ?.
 * Done once per session by the wire layer (and per token by MCP); the result goes in every log line and decision.
 */

export interface ResolvedPrincipal {
  readonly principal: Principal;
  /** Which entry matched, in words (for logs and `policy explain`), e.g. `principals.map[2] (users: bot_*)`. */
  readonly matchedBy: string;
  readonly isDefault: boolean;
}

interface CompiledEntry {
  readonly name: string;
  readonly roles: readonly string[];
  readonly users?: NameMatcher;
  readonly databases?: NameMatcher;
  readonly applications?: NameMatcher;
  readonly label: string;
}

export interface PrincipalResolver {
  resolve(identity: ConnectionIdentity): ResolvedPrincipal;
  /** Principals by the names written in config (templates unexpanded), for `policy explain --as`. */
  byName(name: string): Principal | undefined;
  readonly defaultPrincipal: Principal;
}

/** Fills {user}, {database}, {application_name} in a principal name. */
function expandName(template: string, id: ConnectionIdentity): string {
  if (!template.includes('{')) return template;
  return template
    .replaceAll('{user}', id.user)
    .replaceAll('{database}', id.database)
    .replaceAll('{application_name}', id.applicationName ?? '');
}

export function compilePrincipals(input: PrincipalsConfig | undefined): PrincipalResolver {
  const config = input ?? principalsConfigSchema.parse({});
  const entries: CompiledEntry[] = config.map.map((e, i) => {
    const keys = [
      e.match.users && `users: ${e.match.users.join(', ')}`,
      e.match.databases && `databases: ${e.match.databases.join(', ')}`,
      e.match.application_names && `application_names: ${e.match.application_names.join(', ')}`,
    ].filter(Boolean);
    return {
      name: e.name,
      roles: Object.freeze([...e.roles]),
      ...(e.match.users ? { users: compileGlobs(e.match.users) } : {}),
      ...(e.match.databases ? { databases: compileGlobs(e.match.databases) } : {}),
      ...(e.match.application_names ? { applications: compileGlobs(e.match.application_names) } : {}),
      label: `principals.map[${i}] (${keys.join('; ')})`,
    };
  });
  const defaultPrincipal: Principal = Object.freeze({ name: config.default_principal.name, roles: Object.freeze([...config.default_principal.roles]) });
  return {
    defaultPrincipal,
    resolve(id) {
      for (const e of entries) {
        if (e.users && !e.users(id.user)) continue;
        if (e.databases && !e.databases(id.database)) continue;
        if (e.applications && !e.applications(id.applicationName ?? '')) continue;
        return { principal: Object.freeze({ name: expandName(e.name, id), roles: e.roles }), matchedBy: e.label, isDefault: false };
      }
      return { principal: defaultPrincipal, matchedBy: 'principals.default_principal (no entry matched)', isDefault: true };
    },
    byName(name) {
      if (name === defaultPrincipal.name) return defaultPrincipal;
      const e = entries.find((x) => x.name === name);
      return e ? { name: e.name, roles: e.roles } : undefined;
    },
  };
}

/** One-shot convenience: resolve a connection against a principals config. */
export function resolvePrincipal(identity: ConnectionIdentity, config: PrincipalsConfig | PrincipalResolver | undefined): ResolvedPrincipal {
  const resolver = config && 'resolve' in config ? config : compilePrincipals(config);
  return resolver.resolve(identity);
}
