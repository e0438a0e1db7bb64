/**
 * Pure functions that turn what the proxy knows (session, facts, rules, decision) into stored record bodies.
 */
import { createHash } from 'node:crypto';
import { fingerprintSync, normalizeSync } from 'libpg-query';
import type { RelationName, StatementFacts } from '../../analyzer/types.js';
import { CanonicalFragment, storableJson } from './canonical.js';
import type {
  ApprovalRef, DecisionBody, DecisionInput, DecisionSummary, RuleVerdict, FactsSummary, OutcomeInput, OutcomeSummary, SessionInfo, SessionStartBody,
} from './types.js';

const relName = (r: RelationName): string => (r.schema ? `${r.schema}.${r.name}` : r.name);

function walk(f: StatementFacts, visit: (f: StatementFacts) => void): void {
  visit(f);
  for (const n of f.nested) walk(n, visit);
  if (f.prepare) walk(f.prepare.inner, visit);
}

/**
 * A change is anything that may alter data, schema, privileges or server state, or whose effect cannot be
 * known from the text: such decisions are written ahead (committed before the statement is forwarded).
 * Reads, transaction control and session settings are not changes. Unanalysable text counts as a change.
 */
export function isChange(facts: StatementFacts | null): boolean {
  if (!facts) return true;
  let change = false;
  walk(facts, (f) => {
    if (f.kind === 'write' || f.kind === 'ddl' || f.kind === 'dcl' || f.kind === 'utility') change = true;
    if (f.destructive.length > 0 || f.opaque.length > 0 || f.privileged.length > 0) change = true;
    if (f.execute) change = true; // EXECUTE of a prepared statement the session layer did not resolve
  });
  return change;
}

/** Every relation named by the statement and its nested statements, as written, without duplicates. */
export function objectsOf(facts: StatementFacts | null): string[] {
  if (!facts) return [];
  const out = new Set<string>();
  walk(facts, (f) => { for (const r of f.relations) out.add(relName(r.relation)); });
  return [...out];
}

export function summarizeFacts(f: StatementFacts): FactsSummary {
  return {
    kind: f.kind,
    node: f.node,
    command_tag: f.commandTag,
    relations: f.relations.map((r) => ({ name: relName(r.relation), role: r.role, ...(r.columns ? { columns: [...r.columns] } : {}) })),
    functions: f.functions.map((fn) => (fn.schema ? `${fn.schema}.${fn.name}` : fn.name)),
    locks: f.locks.map((l) => ({ relation: relName(l.relation), mode: l.mode, rewrite: l.rewrite, scan: l.scan, reason: l.reason })),
    findings: f.findings.map((x) => ({ rule: x.rule, severity: x.severity, message: x.message })),
    destructive: [...f.destructive],
    opaque: [...f.opaque],
    privileged: [...f.privileged],
    ...(f.transaction ? { transaction: f.transaction } : {}),
    // The setting's name only: its value may be a secret (e.g. SET password_encryption is harmless, a custom GUC may not be).
    ...(f.setting ? { setting: f.setting.name } : {}),
  };
}

/**
 * Replaces every constant with $n using libpg_query's normalize (loadModule() must have run). Text that
 * does not parse is not stored at all when redaction is on: only its length and a sha256 prefix.
 */
export function redactSql(sql: string): string {
  try {
    return normalizeSync(sql);
  } catch {
    const h = createHash('sha256').update(sql, 'utf8').digest('hex').slice(0, 16);
    return `/* pgairlock: unparsable statement redacted (${Buffer.byteLength(sql, 'utf8')} bytes, sha256 ${h}...) */`;
  }
}

export function fingerprintOf(sql: string, facts: StatementFacts | null): string | null {
  if (facts?.fingerprint) return facts.fingerprint;
  try { return fingerprintSync(sql); } catch { return null; }
}

export function sessionFields(s: SessionInfo): SessionStartBody {
  return {
    session_id: s.sessionId,
    source: s.source ?? 'wire',
    principal: s.principal.name,
    roles: [...s.principal.roles],
    database_user: s.databaseUser,
    effective_role: s.effectiveRole ?? null,
    application_name: s.applicationName ?? null,
    client_address: s.clientAddress ?? null,
    database: s.database,
  };
}

// Serialised once per analysed statement (analyses are cached and shared) and per rule list (one per policy
// decision, shared by every execution of a prepared statement): most of a decision record's bytes.
const factsParts = new WeakMap<StatementFacts, { facts: CanonicalFragment; objects: CanonicalFragment; redacted?: string }>();
const rulesParts = new WeakMap<readonly RuleVerdict[], CanonicalFragment>();

// The stored members of a decision's summary and approvals: shared by decisionBody and decisionText.
const summaryBody = (d: DecisionSummary): DecisionSummary => ({
  effect: d.effect, reasons: [...d.reasons], message: d.message ?? null,
  ...(d.mode ? { mode: d.mode } : {}), ...(d.change_id ? { change_id: d.change_id } : {}),
});
const approvalBody = (a: ApprovalRef): ApprovalRef => ({
  approver: a.approver, at: a.at, comment: a.comment ?? null,
  ...(a.roles ? { roles: [...a.roles] } : {}), ...(a.change_id ? { change_id: a.change_id } : {}),
});
const ruleBody = (r: RuleVerdict) => ({ id: r.id, matched: r.matched, effect: r.effect ?? null, reason: r.reason, ...(r.source ? { source: r.source } : {}) });

function factsPartsOf(f: StatementFacts) {
  let p = factsParts.get(f);
  if (!p) {
    p = { facts: CanonicalFragment.of(summarizeFacts(f)), objects: CanonicalFragment.of(objectsOf(f)) };
    factsParts.set(f, p);
  }
  return p;
}

// Equal rule lists from different evaluations (every simple Query is evaluated anew) share one fragment,
// found by a key that is much cheaper to build than the canonical text.
let rulesByContent = new Map<string, CanonicalFragment>();

function rulesPart(rules: readonly RuleVerdict[]): CanonicalFragment {
  let p = rulesParts.get(rules);
  if (!p) {
    let key = '';
    for (const r of rules) key += `${r.id}\u0001${r.matched}\u0001${r.effect ?? ''}\u0001${r.source ?? ''}\u0001${r.reason}\u0002`;
    p = rulesByContent.get(key);
    if (!p) {
      p = CanonicalFragment.of(rules.map(ruleBody));
      if (rulesByContent.size >= 2_000) rulesByContent = new Map();
      rulesByContent.set(key, p);
    }
    rulesParts.set(rules, p);
  }
  return p;
}

/**
 * The stored body of a decision. With `serialised: true` (what the writer uses) the facts, objects and
 * rules are CanonicalFragments standing in for the same values: canonicalJson (hence the hash and the
 * stored text) is byte-identical, they are just serialised once instead of once per record.
 */
export function decisionBody(
  input: DecisionInput,
  opts: { redact: boolean; writeAhead: boolean; walLsn: string | null; serialised?: boolean },
): DecisionBody {
  const inverse = input.facts?.inverse ?? null;
  const parts = opts.serialised && input.facts ? factsPartsOf(input.facts) : undefined;
  let sql = input.sql;
  if (opts.redact) {
    sql = parts && input.facts!.text === input.sql ? (parts.redacted ??= redactSql(input.sql)) : redactSql(input.sql);
  }
  return {
    ...sessionFields(input.session),
    sql,
    sql_redacted: opts.redact,
    fingerprint: fingerprintOf(input.sql, input.facts),
    facts: parts ? (parts.facts as unknown as FactsSummary) : input.facts ? summarizeFacts(input.facts) : null,
    objects: parts ? (parts.objects as unknown as string[]) : objectsOf(input.facts),
    rules: opts.serialised ? (rulesPart(input.rules) as unknown as RuleVerdict[]) : input.rules.map(ruleBody),
    decision: summaryBody(input.decision),
    approvals: (input.approvals ?? []).map(approvalBody),
    write_ahead: opts.writeAhead,
    wal_lsn: opts.walLsn,
    catalog_version_before: input.catalogVersionBefore ?? null,
    inverse: inverse && opts.redact ? redactSql(inverse) : inverse,
    ...(input.impact ? { impact: input.impact } : {}),
  };
}

export function outcomeSummary(o: OutcomeInput): OutcomeSummary {
  return {
    status: o.status,
    command_tag: o.commandTag ?? null,
    rows: o.rows ?? null,
    duration_ms: o.durationMs ?? null,
    sqlstate: o.sqlstate ?? null,
    message: o.message ?? null,
  };
}

/** Key under which reads are aggregated: same principal, database and statement shape. */
export function aggregateKey(principal: string, database: string, fingerprint: string | null, sql: string): string {
  return JSON.stringify([principal, database, fingerprint ?? `sql:${createHash('sha256').update(sql).digest('hex')}`]);
}

// ------------------------------------------------------------------ the writer's direct serialisation
//
// The writer does not build a decision's body object and serialise it generically (sort ~23 keys, walk
// every value, copy strings): it writes the canonical text of the same body directly, from parts cached per
// analysed statement, per session and per policy decision. decisionText() is byte-identical to
// storableJson(decisionBody(..., serialised: true)) (test/audit/compact.test.ts compares them), so hashes and
// stored records do not change.

/** A decision's canonical text around its rules member, which the writer fills with `rules` or `rules_ref`. */
export interface DecisionText {
  /** `{` and every member before `"rules"`, followed by a comma. */
  readonly head: string;
  readonly rules: CanonicalFragment;
  /** A comma and every member after `"rules_ref"`, then `}`. */
  readonly tail: string;
}

interface SessionText {
  readonly applicationName: string;
  readonly clientAddress: string;
  readonly database: string;
  readonly databaseUser: string;
  readonly effectiveRole: string;
  readonly principal: string;
  readonly roles: string;
  readonly sessionId: string;
  readonly sourceJson: string;
}

const sessionTexts = new WeakMap<SessionInfo, SessionText>();

/** Member values of sessionFields(s), serialised once per SessionInfo object. */
function sessionText(s: SessionInfo): SessionText {
  let t = sessionTexts.get(s);
  if (!t) {
    const f = sessionFields(s);
    t = {
      applicationName: storableJson(f.application_name),
      clientAddress: storableJson(f.client_address),
      database: storableJson(f.database),
      databaseUser: storableJson(f.database_user),
      effectiveRole: storableJson(f.effective_role),
      principal: storableJson(f.principal),
      roles: storableJson(f.roles),
      sessionId: storableJson(f.session_id),
      sourceJson: storableJson(f.source),
    };
    sessionTexts.set(s, t);
  }
  return t;
}

const summaryTexts = new WeakMap<DecisionSummary, string>();

function summaryText(d: DecisionSummary): string {
  let t = summaryTexts.get(d);
  if (t === undefined) {
    t = storableJson(summaryBody(d));
    summaryTexts.set(d, t);
  }
  return t;
}

interface StatementText {
  readonly facts: string;
  readonly objects: string;
  readonly fingerprint?: string;
  sql?: string;
  redactedSql?: string;
  inverse?: string;
  redactedInverse?: string;
}

const statementTexts = new WeakMap<StatementFacts, StatementText>();

const NULL_STATEMENT: StatementText = { facts: 'null', objects: '[]' };

/**
 * The canonical text of decisionBody(input, { ...opts, serialised: true }), split around its rules.
 * Throws only where decisionBody would (e.g. a rule list that cannot be serialised).
 */
export function decisionText(input: DecisionInput, opts: { redact: boolean; writeAhead: boolean; walLsn: string | null }): DecisionText {
  const f = input.facts;
  let st: StatementText;
  if (f) {
    let cached = statementTexts.get(f);
    if (!cached) {
      const parts = factsPartsOf(f);
      cached = { facts: parts.facts.json, objects: parts.objects.json, ...(f.fingerprint ? { fingerprint: storableJson(f.fingerprint) } : {}) };
      statementTexts.set(f, cached);
    }
    st = cached;
  } else {
    st = NULL_STATEMENT;
  }
  // The statement's own text is the analysed one for every prepared execution: serialised once.
  const own = f !== null && f.text === input.sql;
  let sql: string;
  if (opts.redact) sql = own ? (st.redactedSql ??= storableJson(factsPartsOf(f).redacted ??= redactSql(input.sql))) : storableJson(redactSql(input.sql));
  else sql = own ? (st.sql ??= storableJson(input.sql)) : storableJson(input.sql);
  const inv = f?.inverse ?? null;
  let inverse: string;
  if (!inv) inverse = storableJson(inv);
  else if (opts.redact) inverse = f !== null ? (st.redactedInverse ??= storableJson(redactSql(inv))) : storableJson(redactSql(inv));
  else inverse = f !== null ? (st.inverse ??= storableJson(inv)) : storableJson(inv);
  const fingerprint = st.fingerprint ?? storableJson(fingerprintOf(input.sql, f));
  const s = sessionText(input.session);
  const approvals = input.approvals && input.approvals.length > 0
    ? storableJson(input.approvals.map(approvalBody))
    : '[]';
  const cvb = input.catalogVersionBefore ?? null;
  const head = `{"application_name":${s.applicationName},"approvals":${approvals},"catalog_version_before":${cvb === null ? 'null' : storableJson(cvb)},`
    + `"client_address":${s.clientAddress},"database":${s.database},"database_user":${s.databaseUser},"decision":${summaryText(input.decision)},`
    + `"effective_role":${s.effectiveRole},"facts":${st.facts},"fingerprint":${fingerprint},${input.impact ? `"impact":${storableJson(input.impact)},` : ''}`
    + `"inverse":${inverse},"objects":${st.objects},"principal":${s.principal},"roles":${s.roles},`;
  const tail = `,"session_id":${s.sessionId},"source":${s.sourceJson},"sql":${sql},"sql_redacted":${opts.redact},`
    + `"wal_lsn":${opts.walLsn === null ? 'null' : storableJson(opts.walLsn)},"write_ahead":${opts.writeAhead}}`;
  return { head, rules: rulesPart(input.rules), tail };
}

/** The canonical text of an outcome body (OutcomeBody with outcomeSummary(o)), written directly. */
export function outcomeText(decisionId: string, sessionId: string, principal: string, o: OutcomeInput): string {
  return `{"catalog_version_after":${storableJson(o.catalogVersionAfter ?? null)},"decision_id":${storableJson(decisionId)},`
    + `"outcome":{"command_tag":${storableJson(o.commandTag ?? null)},"duration_ms":${storableJson(o.durationMs ?? null)},`
    + `"message":${storableJson(o.message ?? null)},"rows":${storableJson(o.rows ?? null)},"sqlstate":${storableJson(o.sqlstate ?? null)},`
    + `"status":${storableJson(o.status)}},"principal":${storableJson(principal)},"session_id":${storableJson(sessionId)}}`;
}
