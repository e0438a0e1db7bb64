import { approvalsMissing, approverNames, type ChangeRequest } from './model.js';
import { paramLines } from './params.js';

/**
 * Rows for showing change requests: the console turns them into result sets (psql prints tables),
 * the CLI into text. Kept here so every front door shows the same thing.
 */

export const LIST_COLUMNS = ['id', 'status', 'requester', 'database', 'approvals', 'approver_roles', 'expires_at', 'statement'] as const;

const oneLine = (sql: string, max = 60): string => {
  // Display only: collapse runs of whitespace so a statement fits one table cell.
  let flat = '';
  for (const ch of sql.trim()) {
    const space = ch === ' ' || ch === '\n' || ch === '\r' || ch === '\t';
    if (!space) flat += ch;
    else if (!flat.endsWith(' ')) flat += ' ';
  }
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
};

export function changeListRows(reqs: readonly ChangeRequest[]): string[][] {
  return reqs.map((r) => [
    r.id,
    r.status,
    r.requester.name,
    r.database,
    r.status === 'pending' ? `${approverNames(r).length}, ${approvalsMissing(r)} missing` : String(approverNames(r).length),
    r.required.roles.join(','),
    r.expiresAt,
    r.params ? `${oneLine(r.sql, 44)} [${r.params.count} param${r.params.count === 1 ? '' : 's'}]` : oneLine(r.sql),
  ]);
}

/** SHOW CHANGE: one (field, value) pair per row. */
export function changeDetailRows(r: ChangeRequest): [string, string][] {
  const rows: [string, string][] = [
    ['id', r.id],
    ['status', r.status],
    ['requester', `${r.requester.name} (${r.requester.roles.join(', ') || 'no roles'})`],
    ['database', r.database],
    ['mode', r.mode],
    ...r.requirements.map((q): [string, string] => ['required', `${q.count === 1 ? '1 approval from a principal' : `${q.count} approvals from distinct principals`} holding ${q.roles.join(' or ')}${q.rule ? ` (rule ${q.rule})` : ''}`]),
    ['approved_by', approverNames(r).join(', ') || '-'],
    ['created_at', r.createdAt],
    ['expires_at', r.expiresAt],
    ['fingerprint', r.fingerprint],
    ['text_sha256', r.textHash],
  ];
  for (const rule of r.rules) rows.push(['rule', `${rule.rule}: ${rule.reason}`]);
  rows.push(['facts', JSON.stringify(r.facts)]);
  rows.push(['sql', r.sql]);
  // Right after the text: the values it runs with are as much a part of what is approved.
  if (r.params) {
    for (const line of paramLines(r.params)) rows.push(['param', line]);
    rows.push(['params_sha256', `${r.paramsHash ?? '-'} (text, types and values: the approval runs the text with exactly these values, once)`]);
  }
  for (const e of r.events) {
    const who = 'by' in e && e.by ? ` by ${e.by.name}` : '';
    const extra = e.type === 'approved' ? (e.comment ? `: ${e.comment}` : '') : e.type === 'rejected' || e.type === 'cancelled' || e.type === 'expired' ? `: ${e.reason}` : '';
    rows.push(['event', `${e.at} ${e.type}${who}${extra}`]);
  }
  return rows;
}

function table(header: readonly string[], rows: readonly string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatChangeList(reqs: readonly ChangeRequest[]): string {
  if (reqs.length === 0) return '(no change requests)';
  return table(LIST_COLUMNS, changeListRows(reqs));
}

export function formatChange(r: ChangeRequest): string {
  const rows = changeDetailRows(r);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v.split('\n').join(`\n${' '.repeat(w + 2)}`)}`).join('\n');
}
