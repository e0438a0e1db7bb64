/** Inputs for audit tests: StatementFacts fixtures shaped like the analyzer's output, sessions, decisions. */
import type { StatementFacts } from '../../analyzer/types.js';
import type { DecisionInput, SessionInfo } from '../../governance/audit/types.js';

export function facts(over: Partial<StatementFacts> & Pick<StatementFacts, 'kind' | 'node' | 'commandTag'>): StatementFacts {
  const text = over.text ?? 'SELECT 1';
  return {
    index: 0, byteStart: 0, byteEnd: Buffer.byteLength(text), text, location: { byte: 0, char: 0 },
    relations: [], functions: [], types: [], schemas: [], databases: [], roles: [], locks: [],
    destructive: [], opaque: [], privileged: [], nested: [], findings: [],
    fingerprint: 'f00dfeed', normalized: text,
    ...over,
  };
}

export const selectFacts = (table = 'users', fp = 'aaaa0001'): StatementFacts => facts({
  kind: 'read', node: 'SelectStmt', commandTag: 'SELECT', text: `SELECT * FROM ${table} WHERE id = 1`, fingerprint: fp,
  relations: [{ relation: { schema: 'public', name: table }, role: 'read' }],
  locks: [{ relation: { schema: 'public', name: table }, mode: 'AccessShareLock', rewrite: false, scan: false, reason: 'SELECT reads the table' }],
});

export const updateFacts = (table = 'accounts'): StatementFacts => facts({
  kind: 'write', node: 'UpdateStmt', commandTag: 'UPDATE', text: `UPDATE ${table} SET balance = 0 WHERE id = 42`, fingerprint: 'bbbb0002',
  relations: [{ relation: { name: table }, role: 'write', columns: ['balance'] }],
  locks: [{ relation: { name: table }, mode: 'RowExclusiveLock', rewrite: false, scan: false, reason: 'UPDATE takes ROW EXCLUSIVE' }],
});

export const dropFacts = (table = 'orders'): StatementFacts => facts({
  kind: 'ddl', node: 'DropStmt', commandTag: 'DROP TABLE', text: `DROP TABLE ${table}`, fingerprint: 'cccc0003',
  relations: [{ relation: { schema: 'public', name: table }, role: 'drop' }],
  destructive: ['DROP TABLE removes the table and its data'],
  locks: [{ relation: { schema: 'public', name: table }, mode: 'AccessExclusiveLock', rewrite: false, scan: false, reason: 'DROP TABLE takes ACCESS EXCLUSIVE' }],
  findings: [{ rule: 'drop-table', severity: 'error', message: 'DROP TABLE loses data', why: 'irreversible', fix: 'rename first' }],
  inverse: undefined,
});

export function session(over: Partial<SessionInfo> = {}): SessionInfo {
  return {
    sessionId: 'sess-1', principal: { name: 'agent:billing-bot', roles: ['agent'] }, databaseUser: 'billing',
    effectiveRole: 'billing_rw', applicationName: 'billing-bot/1.2', clientAddress: '127.0.0.1:50123', database: 'appdb', source: 'wire',
    ...over,
  };
}

export function allowRead(sql = "SELECT * FROM users WHERE id = 1", over: Partial<DecisionInput> = {}): DecisionInput {
  return {
    session: session(), sql, facts: selectFacts(),
    rules: [{ id: 'reads-ok', matched: true, effect: 'allow', reason: 'agents may read' }],
    decision: { effect: 'allow', reasons: ['agents may read'] },
    ...over,
  };
}

export function allowUpdate(sql = 'UPDATE accounts SET balance = 0 WHERE id = 42', over: Partial<DecisionInput> = {}): DecisionInput {
  return {
    session: session(), sql, facts: updateFacts(),
    rules: [
      { id: 'writes-with-where', matched: true, effect: 'allow', reason: 'UPDATE has a WHERE clause' },
      { id: 'no-drop', matched: false, effect: 'deny', reason: 'not a DROP' },
    ],
    decision: { effect: 'allow', reasons: ['UPDATE has a WHERE clause'] },
    ...over,
  };
}
