/**
 * Pure: turns a stored record (and the records linked to it) into a human-readable answer to
 * "what happened, and why was it allowed / refused / held?".
 */
import type { AuditEntry, Json } from './types.js';

type Obj = { readonly [k: string]: Json };
const obj = (v: Json | undefined): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});
const arr = (v: Json | undefined): readonly Json[] => (Array.isArray(v) ? v : []);
const str = (v: Json | undefined): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: Json | undefined): number | undefined => (typeof v === 'number' ? v : undefined);

const VERDICT: Record<string, string> = { allow: 'ALLOWED', deny: 'REFUSED', hold: 'HELD for approval' };

function who(b: Obj): string {
  const roles = arr(b.roles).map(String);
  const parts = [`${str(b.principal) ?? '(unknown principal)'}${roles.length ? ` (roles: ${roles.join(', ')})` : ''}`];
  if (str(b.database_user)) parts.push(`as database user ${str(b.database_user)}`);
  if (str(b.effective_role) && b.effective_role !== b.database_user) parts.push(`with effective role ${str(b.effective_role)}`);
  if (str(b.application_name)) parts.push(`via application "${str(b.application_name)}"`);
  if (str(b.client_address)) parts.push(`from ${str(b.client_address)}`);
  if (str(b.database)) parts.push(`on database ${str(b.database)}`);
  if (str(b.session_id)) parts.push(`(session ${str(b.session_id)})`);
  return parts.join(' ');
}

function outcomeLine(o: AuditEntry): string {
  const b = obj(o.body);
  const out = obj(b.outcome);
  const status = str(out.status);
  if (status === 'ok') {
    const rows = num(out.rows);
    const d = num(out.duration_ms);
    return `succeeded at ${o.time}: ${str(out.command_tag) ?? 'done'}${rows !== undefined ? `, ${rows} row(s)` : ''}${d !== undefined ? `, ${d.toFixed(1)} ms` : ''}`;
  }
  if (status === 'error') return `failed at ${o.time}: SQLSTATE ${str(out.sqlstate) ?? '?'}: ${str(out.message) ?? ''}`;
  const rec = obj(b.recovered);
  const exist = Object.entries(obj(rec.objects_exist)).map(([k, v]) => `${k} ${v === null ? 'not checked' : v ? 'exists now' : 'does not exist now'}`);
  return `UNKNOWN (recorded at ${o.time} by ${str(rec.by_instance) ?? '?'} after pgairlock stopped before the server answered)${exist.length ? `; ${exist.join('; ')}` : ''}`;
}

function explainDecision(e: AuditEntry, related: readonly AuditEntry[]): string[] {
  const b = obj(e.body);
  const d = obj(b.decision);
  const effect = str(d.effect) ?? '?';
  const facts = obj(b.facts);
  const lines: string[] = [];
  const what = b.facts ? `${str(facts.command_tag) ?? str(facts.node) ?? 'statement'} (${str(facts.kind) ?? '?'})` : 'a statement that could not be analysed';
  const objects = arr(b.objects).map(String);
  lines.push(`Decision ${e.id} at ${e.time} (chain ${e.instance}, seq ${e.seq})`);
  lines.push(`Who:      ${who(b)}`);
  lines.push(`What:     ${what}${objects.length ? ` on ${objects.join(', ')}` : ''}`);
  lines.push(`SQL${b.sql_redacted ? ' (literals redacted)' : ''}: ${str(b.sql) ?? ''}`);
  lines.push(`Verdict:  ${VERDICT[effect] ?? effect}${str(d.mode) ? ` (mode ${str(d.mode)})` : ''}${str(d.change_id) ? `, change ${str(d.change_id)}` : ''}`);
  if (str(d.message)) lines.push(`Told the client: ${str(d.message)}`);
  const reasons = arr(d.reasons).map(String);
  lines.push(reasons.length ? 'Because:' : 'Because: (no reasons recorded)');
  for (const r of reasons) lines.push(`  - ${r}`);
  const ref = str(obj(b.rules_ref).decision_id);
  const rulesFrom = b.rules === undefined && ref ? related.find((r) => r.id === ref) : undefined;
  const rules = arr(rulesFrom ? rulesFrom.body.rules : b.rules).map(obj);
  if (b.rules === undefined && ref) lines.push(`(Rules as recorded with decision ${ref}, which had the same evaluation${rulesFrom ? '' : ': not found'})`);
  const matched = rules.filter((r) => r.matched === true);
  lines.push(`Policy rules evaluated: ${rules.length}, matched: ${matched.length}`);
  for (const r of rules) {
    lines.push(`  ${r.matched === true ? '[matched]    ' : '[not matched]'} ${str(r.id) ?? '?'}${str(r.effect) ? ` -> ${str(r.effect)}` : ''}: ${str(r.reason) ?? ''}`);
  }
  const findings = arr(facts.findings).map(obj);
  if (findings.length) {
    lines.push('Analyzer findings:');
    for (const f of findings) lines.push(`  - ${str(f.severity) ?? ''} ${str(f.rule) ?? ''}: ${str(f.message) ?? ''}`);
  }
  const locks = arr(facts.locks).map(obj);
  for (const l of locks) lines.push(`Lock:     ${str(l.mode) ?? ''} on ${str(l.relation) ?? ''}${l.rewrite === true ? ' (rewrites the table)' : ''}: ${str(l.reason) ?? ''}`);
  const approvals = arr(b.approvals).map(obj);
  const approvalEvents = related.filter((r) => r.kind === 'approval');
  if (approvals.length === 0 && approvalEvents.length === 0) {
    lines.push('Approvals: none');
  } else {
    lines.push('Approvals:');
    for (const a of approvals) lines.push(`  - ${str(a.approver) ?? '?'} at ${str(a.at) ?? '?'}${str(a.comment) ? `: "${str(a.comment)}"` : ''}`);
    for (const a of approvalEvents) {
      const ab = obj(a.body);
      lines.push(`  - event ${str(ab.event) ?? '?'} by ${str(ab.principal) ?? '?'} at ${a.time}${str(ab.comment) ? `: "${str(ab.comment)}"` : ''}`);
    }
  }
  const outcomes = related.filter((r) => r.kind === 'outcome');
  if (outcomes.length === 0) {
    lines.push(effect === 'allow' ? 'Outcome:  none recorded (still running, or its outcome record was lost)' : 'Outcome:  not forwarded to the server');
  }
  for (const o of outcomes) lines.push(`Outcome:  ${outcomeLine(o)}`);
  if (str(b.wal_lsn)) lines.push(`Restore point: WAL position before the change ${str(b.wal_lsn)}`);
  if (str(b.inverse)) lines.push(`Inverse:  ${str(b.inverse)}`);
  if (str(b.catalog_version_before)) lines.push(`Catalog version before: ${str(b.catalog_version_before)}`);
  for (const o of outcomes) {
    const after = str(obj(o.body).catalog_version_after);
    if (after) lines.push(`Catalog version after: ${after}`);
  }
  return lines;
}

export function explain(e: AuditEntry, related: readonly AuditEntry[] = []): string {
  const b = obj(e.body);
  switch (e.kind) {
    case 'decision':
      return explainDecision(e, related).join('\n');
    case 'read_aggregate': {
      const d = obj(b.decision);
      return [
        `Aggregate ${e.id}: ${num(b.count) ?? 0} read(s) with fingerprint ${str(b.fingerprint) ?? '?'} by ${str(b.principal) ?? '?'} on ${str(b.database) ?? '?'}`,
        `between ${str(b.first_time) ?? '?'} and ${str(b.last_time) ?? '?'}; sample: ${str(b.sample_sql) ?? ''}`,
        `Verdict: ${VERDICT[str(d.effect) ?? ''] ?? str(d.effect) ?? '?'}; because: ${arr(d.reasons).map(String).join('; ') || '(no reasons recorded)'}`,
      ].join('\n');
    }
    case 'outcome':
      return `Outcome ${e.id} of decision ${str(b.decision_id) ?? '?'}: ${outcomeLine(e)} (the decision record was not found)`;
    case 'approval':
      return `Approval event "${str(b.event) ?? '?'}" on change ${str(b.change_id) ?? '?'} by ${str(b.principal) ?? '?'} at ${e.time}${str(b.comment) ? `: "${str(b.comment)}"` : ''}`;
    case 'session_start':
      return `Session start at ${e.time}: ${who(b)}`;
    case 'session_end':
      return `Session end at ${e.time} (${str(b.reason) ?? '?'}): ${who(b)}`;
    case 'drift':
      return `Drift at ${e.time} on ${str(b.database) ?? '?'}.${str(b.object) ?? '?'}: ${str(b.detail) ?? ''} (expected ${str(b.expected_version) ?? '?'}, found ${str(b.actual_version) ?? '?'})`;
    default:
      return `${String(e.kind)} ${e.id} at ${e.time}`;
  }
}
