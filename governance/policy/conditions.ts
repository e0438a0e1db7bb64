import { lockRank, type LockMode, type RelationName, type RelationUse, type Severity, type StatementFacts } from '../../analyzer/types.js';
import { formatDuration } from './duration.js';
import { compileGlobs, type NameMatcher } from './glob.js';
import type { MatchSpec } from './schema.js';
import type { RelationState } from './types.js';
import { candidateSchemas, type EvalEnv, type Unit } from './units.js';
import { compileWindow, type ZoneClock } from './window.js';

/**
 * Conditions compiled from a rule's `match`. Each answers YES, NO or UNKNOWN with a reason in words.
 * Context conditions (who, where, when) are judged once per evaluation; unit conditions once per unit.
 */
export const NO = 0;
export const YES = 1;
export const UNKNOWN = 2;
export type Outcome = typeof NO | typeof YES | typeof UNKNOWN;

export interface Check {
  readonly outcome: Outcome;
  readonly reason: string;
}

export interface ContextCondition {
  readonly key: string;
  test(env: EvalEnv): Check;
}

export interface UnitCondition {
  readonly key: string;
  test(unit: Extract<Unit, { parsed: true }>, env: EvalEnv): Check;
  /** What to say when the text could not be parsed (the condition is unknown then). */
  readonly unknownWhenUnparsed: string;
}

const yes = (reason: string): Check => ({ outcome: YES, reason });
const no = (reason: string): Check => ({ outcome: NO, reason });
const unknown = (reason: string): Check => ({ outcome: UNKNOWN, reason });

const list = (xs: readonly string[]): string => xs.join(', ');
const qualified = (r: RelationName): string => (r.schema !== undefined ? `${r.schema}.${r.name}` : r.name);
const SEVERITY_RANK: Readonly<Record<Severity, number>> = { info: 0, warning: 1, error: 2 };

export function compileContextConditions(m: MatchSpec, clocks: Map<string, ZoneClock>): ContextCondition[] {
  const out: ContextCondition[] = [];
  if (m.roles) {
    const wanted = new Set(m.roles);
    const label = list(m.roles);
    out.push({
      key: 'roles',
      test: (env) => {
        for (const r of env.principal.roles) if (wanted.has(r)) return yes(`principal ${env.principal.name} has role ${r}`);
        return no(`principal ${env.principal.name} has roles [${list(env.principal.roles)}], none of ${label}`);
      },
    });
  }
  if (m.principals) {
    const match = compileGlobs(m.principals);
    const label = list(m.principals);
    out.push({
      key: 'principals',
      test: (env) =>
        match(env.principal.name) ? yes(`principal is ${env.principal.name}`) : no(`principal ${env.principal.name} is not one of ${label}`),
    });
  }
  if (m.databases) {
    const match = compileGlobs(m.databases);
    const label = list(m.databases);
    out.push({
      key: 'databases',
      test: (env) => (match(env.input.database) ? yes(`database is ${env.input.database}`) : no(`database ${env.input.database} is not one of ${label}`)),
    });
  }
  if (m.environments) {
    const match = compileGlobs(m.environments);
    const label = list(m.environments);
    out.push({
      key: 'environments',
      test: (env) =>
        match(env.input.environment) ? yes(`environment is ${env.input.environment}`) : no(`environment ${env.input.environment} is not one of ${label}`),
    });
  }
  if (m.during) {
    const windows = m.during.map((w) => compileWindow(w, clocks));
    out.push({
      key: 'during',
      test: (env) => {
        for (const w of windows) if (w.contains(env.now)) return yes(`now is within ${w.label}`);
        return no(`now is outside ${windows.map((w) => w.label).join(' and ')}`);
      },
    });
  }
  if (m.outside) {
    const windows = m.outside.map((w) => compileWindow(w, clocks));
    out.push({
      key: 'outside',
      test: (env) => {
        for (const w of windows) if (w.contains(env.now)) return no(`now is within ${w.label}`);
        return yes(`now is outside ${windows.map((w) => w.label).join(' and ')}`);
      },
    });
  }
  return out;
}

function flagCondition(key: 'destructive' | 'opaque' | 'privileged', wanted: boolean, extra?: (f: StatementFacts, env: EvalEnv) => string[]): UnitCondition {
  const adjective = key;
  return {
    key,
    unknownWhenUnparsed: `whether it is ${adjective} is unknown (the statement could not be parsed)`,
    test: (unit, env) => {
      const more = extra ? extra(unit.facts, env) : [];
      const why = more.length ? [...unit.facts[key], ...more] : unit.facts[key];
      const is = why.length > 0;
      if (is === wanted) return yes(is ? `it is ${adjective}: ${why.join('; ')}` : `it is not ${adjective}`);
      return no(is ? `it is ${adjective} (${why.join('; ')})` : `it is not ${adjective}`);
    },
  };
}

/** Relations a unit touches (not those it creates: they do not exist yet), with the columns it names for each. */
function relationsOf(f: StatementFacts): { readonly rel: RelationName; readonly columns: string[] }[] {
  const byKey = new Map<string, { rel: RelationName; columns: string[] }>();
  const add = (r: RelationName, columns: readonly string[] | undefined): void => {
    const k = qualified(r);
    let e = byKey.get(k);
    if (!e) {
      e = { rel: r, columns: [] };
      byKey.set(k, e);
    }
    for (const c of columns ?? []) if (!e.columns.includes(c)) e.columns.push(c);
  };
  for (const u of f.relations) if (u.role !== 'create') add(u.relation, u.columns);
  for (const l of f.locks) add(l.relation, undefined);
  return [...byKey.values()];
}

/** Matches one relation use against relation globs: YES for every candidate schema, NO for none, else UNKNOWN. */
function relationOutcome(use: RelationUse, match: NameMatcher, env: EvalEnv): Outcome {
  const rel = use.relation;
  if (match(rel.name)) return YES; // a pattern without a schema part
  let hits = 0;
  const schemas = candidateSchemas(rel, env);
  for (const s of schemas) if (match(`${s}.${rel.name}`)) hits++;
  if (hits === 0) return NO;
  return hits === schemas.length ? YES : UNKNOWN;
}

export function compileUnitConditions(m: MatchSpec): UnitCondition[] {
  const out: UnitCondition[] = [];
  if (m.kinds) {
    const wanted = new Set<string>(m.kinds);
    const label = m.kinds.join('/');
    out.push({
      key: 'kinds',
      unknownWhenUnparsed: 'its kind is unknown (the statement could not be parsed)',
      test: ({ facts }) =>
        wanted.has(facts.kind)
          ? yes(`it is a ${facts.kind} statement (${facts.commandTag})`)
          : no(`it is a ${facts.kind} statement (${facts.commandTag}), not ${label}`),
    });
  }
  if (m.commands) {
    const wanted = new Set(m.commands);
    const label = m.commands.join(', ');
    out.push({
      key: 'commands',
      unknownWhenUnparsed: 'its command is unknown (the statement could not be parsed)',
      test: ({ facts }) =>
        wanted.has(facts.commandTag.toUpperCase()) ? yes(`it is ${facts.commandTag}`) : no(`it is ${facts.commandTag}, not ${label}`),
    });
  }
  if (m.findings) {
    const ruleMatch = m.findings.rules ? compileGlobs(m.findings.rules) : undefined;
    const minRank = SEVERITY_RANK[m.findings.min_severity ?? 'info'];
    const label = [m.findings.rules ? `finding ${m.findings.rules.join('/')}` : 'a finding', m.findings.min_severity ? `of severity ${m.findings.min_severity} or worse` : '']
      .filter(Boolean)
      .join(' ');
    out.push({
      key: 'findings',
      unknownWhenUnparsed: 'its findings are unknown (the statement could not be parsed)',
      test: ({ facts }) => {
        for (const f of facts.findings) {
          if (SEVERITY_RANK[f.severity] >= minRank && (!ruleMatch || ruleMatch(f.rule))) return yes(`finding ${f.rule} (${f.severity}): ${f.message}`);
        }
        return no(facts.findings.length ? `no ${label} (has ${facts.findings.map((f) => f.rule).join(', ')})` : `no ${label} (no findings)`);
      },
    });
  }
  if (m.destructive !== undefined) out.push(flagCondition('destructive', m.destructive));
  if (m.opaque !== undefined) {
    out.push(
      flagCondition('opaque', m.opaque, (f, env) =>
        // EXECUTE of a statement the session layer did not see PREPAREd: what it runs is unknown.
        f.execute && !env.input.session?.prepared?.has(f.execute.name) ? [`EXECUTE ${f.execute.name} runs a prepared statement pgairlock has not seen`] : [],
      ),
    );
  }
  if (m.privileged !== undefined) out.push(flagCondition('privileged', m.privileged));
  if (m.lock_at_least !== undefined) {
    const min: LockMode = m.lock_at_least;
    const minRank = lockRank(min);
    out.push({
      key: 'lock_at_least',
      unknownWhenUnparsed: 'its locks are unknown (the statement could not be parsed)',
      test: ({ facts }) => {
        let strongest: (typeof facts.locks)[number] | undefined;
        for (const l of facts.locks) if (!strongest || lockRank(l.mode) > lockRank(strongest.mode)) strongest = l;
        if (strongest && lockRank(strongest.mode) >= minRank) return yes(`it takes ${strongest.mode} on ${qualified(strongest.relation)} (${strongest.reason})`);
        return no(strongest ? `its strongest lock is ${strongest.mode} on ${qualified(strongest.relation)}, below ${min}` : `it takes no table lock of ${min} or stronger`);
      },
    });
  }
  if (m.rewrite !== undefined) {
    const wanted = m.rewrite;
    out.push({
      key: 'rewrite',
      unknownWhenUnparsed: 'whether it rewrites a table is unknown (the statement could not be parsed)',
      test: ({ facts }) => {
        const l = facts.locks.find((x) => x.rewrite);
        const is = l !== undefined;
        const text = l ? `it rewrites ${qualified(l.relation)} (${l.reason})` : 'it rewrites no table';
        return is === wanted ? yes(text) : no(text);
      },
    });
  }
  if (m.objects) {
    const rel = m.objects.relations ? compileGlobs(m.objects.relations) : undefined;
    const col = m.objects.columns ? compileGlobs(m.objects.columns) : undefined;
    const access = m.objects.access ? new Set<string>(m.objects.access) : undefined;
    const label = [
      m.objects.access ? `${m.objects.access.join('/')} of` : 'use of',
      m.objects.relations ? `relations ${m.objects.relations.join(', ')}` : 'any relation',
      m.objects.columns ? `columns ${m.objects.columns.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join(' ');
    out.push({
      key: 'objects',
      unknownWhenUnparsed: 'the objects it touches are unknown (the statement could not be parsed)',
      test: ({ facts }, env) => {
        let sawUnknown: string | undefined;
        for (const use of facts.relations) {
          if (access && !access.has(use.role)) continue;
          const r = rel ? relationOutcome(use, rel, env) : YES;
          if (r === NO) continue;
          let c: string | undefined;
          if (col) {
            c = use.columns?.find((x) => col(x));
            if (c === undefined) continue;
          }
          const what = `${use.role} of ${qualified(use.relation)}${c ? ` column ${c}` : ''}`;
          if (r === YES) return yes(`it does ${what}`);
          sawUnknown ??= `${what}: the unqualified name may resolve to schemas ${candidateSchemas(use.relation, env).join(', ')} (search_path)`;
        }
        return sawUnknown ? unknown(sawUnknown) : no(`no ${label}`);
      },
    });
  }
  if (m.unparseable !== undefined) {
    const wanted = m.unparseable;
    out.push({
      key: 'unparseable',
      unknownWhenUnparsed: '', // never consulted: unparseable is judged directly by the evaluator
      test: () => (wanted ? no('the statement was parsed') : yes('the statement was parsed')),
    });
  }
  if (m.state) out.push(...compileStateConditions(m.state));
  return out;
}

type StateSpec = NonNullable<MatchSpec['state']>;

/** For each relation the unit touches: the per-relation test; YES if any relation passes, UNKNOWN if any lacks state. */
function anyRelation(
  key: string,
  label: string,
  test: (s: RelationState, env: EvalEnv, columns: readonly string[]) => string | undefined,
): UnitCondition {
  return {
    key,
    unknownWhenUnparsed: `${label} is unknown (the statement could not be parsed)`,
    test: ({ facts }, env) => {
      const rels = relationsOf(facts);
      if (rels.length === 0) return no(`it touches no table, so not ${label}`);
      if (!env.state) return unknown(`${label} is unknown: no live state was available`);
      const missing: string[] = [];
      for (const { rel: r, columns } of rels) {
        const s = env.state.relation(r);
        if (!s) {
          missing.push(qualified(r));
          continue;
        }
        const hit = test(s, env, columns);
        if (hit !== undefined) return yes(`${qualified(r)} ${hit}`);
      }
      if (missing.length) return unknown(`${label} is unknown for ${missing.join(', ')} (not in the catalog snapshot)`);
      return no(`no table it touches is ${label}`);
    },
  };
}

function compileStateConditions(s: StateSpec): UnitCondition[] {
  const out: UnitCondition[] = [];
  if (s.min_rows !== undefined) {
    const n = s.min_rows;
    out.push(anyRelation('state.min_rows', `at least ${n} rows`, (st) => (st.rows >= n ? `has about ${st.rows} rows (at least ${n})` : undefined)));
  }
  if (s.min_bytes !== undefined) {
    const n = s.min_bytes;
    out.push(anyRelation('state.min_bytes', `at least ${n} bytes`, (st) => (st.bytes >= n ? `takes ${st.bytes} bytes (at least ${n})` : undefined)));
  }
  if (s.has_dependents === true) {
    out.push(anyRelation('state.has_dependents', 'depended on', (st) => (st.dependents.length ? `has dependents: ${st.dependents.join(', ')}` : undefined)));
  }
  if (s.has_dependents === false) {
    const inner = anyRelation('state.has_dependents', 'depended on', (st) => (st.dependents.length ? `has dependents: ${st.dependents.join(', ')}` : undefined));
    out.push({ ...inner, test: (u, env) => invert(inner.test(u, env), 'no table it touches has dependents') });
  }
  if (s.used_by_others_within !== undefined) {
    const ms = s.used_by_others_within;
    const label = `used by others in the last ${formatDuration(ms)}`;
    out.push(
      anyRelation('state.used_by_others_within', label, (st, env, columns) => {
        const since = env.now.getTime() - ms;
        const app = env.input.session?.applicationName;
        const u = st.recentUsers.find(
          (x) =>
            x.lastUsed.getTime() >= since &&
            // Another principal, or the same principal from another application.
            (x.principal !== env.principal.name || (app !== undefined && x.application !== undefined && x.application !== app)) &&
            // A use of one column counts only when the statement names that column (or names none).
            (x.column === undefined || columns.length === 0 || columns.includes(x.column)),
        );
        return u
          ? `${u.column ? `column ${u.column} ` : ''}was used by ${u.principal}${u.application ? ` (${u.application})` : ''} at ${u.lastUsed.toISOString()}`
          : undefined;
      }),
    );
  }
  if (s.min_estimated_rows !== undefined) {
    const n = s.min_estimated_rows;
    out.push({
      key: 'state.min_estimated_rows',
      unknownWhenUnparsed: 'its row estimate is unknown (the statement could not be parsed)',
      test: ({ facts }, env) => {
        const est = env.state?.estimatedRows?.(facts);
        if (est === undefined) {
          const why = env.state?.estimateError?.(facts);
          return unknown(`its row estimate is unknown: ${why ?? `no planner estimate was available for this ${facts.commandTag}`}`);
        }
        return est >= n ? yes(`the planner estimates ${est} rows (at least ${n})`) : no(`the planner estimates ${est} rows, fewer than ${n}`);
      },
    });
  }
  if (s.drift !== undefined) {
    const wanted = s.drift;
    out.push({
      key: 'state.drift',
      unknownWhenUnparsed: 'drift is unknown (the statement could not be parsed)',
      test: (_u, env) => {
        const d = env.state?.drift;
        if (d === undefined) return unknown('drift is unknown: the session declared no expected schema or no live state was available');
        const text = d ? 'the live schema differs from the one the session expects' : 'the live schema is the one the session expects';
        return d === wanted ? yes(text) : no(text);
      },
    });
  }
  return out;
}

function invert(c: Check, noneText: string): Check {
  if (c.outcome === UNKNOWN) return c;
  return c.outcome === YES ? no(c.reason) : yes(noneText);
}

