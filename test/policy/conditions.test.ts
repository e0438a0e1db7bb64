import { describe, expect, it } from 'vitest';
import { stateFromRecord } from '../../governance/policy/state.js';
import { agent, decide, denyWhen, developer, facts, policy, verdict } from './fixtures.js';

const select = facts();
const dropTable = facts({
  text: 'DROP TABLE public.orders',
  node: 'DropStmt',
  kind: 'ddl',
  commandTag: 'DROP TABLE',
  relations: [{ relation: { schema: 'public', name: 'orders' }, role: 'drop' }],
  locks: [{ relation: { schema: 'public', name: 'orders' }, mode: 'AccessExclusiveLock', rewrite: false, scan: false, reason: 'DROP TABLE' }],
  destructive: ['DROP TABLE public.orders deletes the table and its data'],
  findings: [{ rule: 'drop-table', severity: 'error', message: 'drops a table', why: 'data loss', fix: 'rename it first' }],
});
const update = facts({
  text: 'UPDATE orders SET ssn = null WHERE id = 1',
  node: 'UpdateStmt',
  kind: 'write',
  commandTag: 'UPDATE',
  relations: [{ relation: { name: 'orders' }, role: 'write', columns: ['ssn'] }],
  locks: [{ relation: { name: 'orders' }, mode: 'RowExclusiveLock', rewrite: false, scan: false, reason: 'UPDATE' }],
});
const alterType = facts({
  text: 'ALTER TABLE t ALTER COLUMN a TYPE bigint',
  node: 'AlterTableStmt',
  kind: 'ddl',
  commandTag: 'ALTER TABLE',
  relations: [{ relation: { name: 't' }, role: 'alter', columns: ['a'] }],
  locks: [{ relation: { name: 't' }, mode: 'AccessExclusiveLock', rewrite: true, scan: true, reason: 'ALTER COLUMN TYPE rewrites the table' }],
  findings: [{ rule: 'change-column-type', severity: 'warning', message: 'type change', why: 'rewrite', fix: 'add a new column' }],
});
const copyProgram = facts({ kind: 'utility', commandTag: 'COPY', node: 'CopyStmt', privileged: ['COPY ... PROGRAM runs a shell command on the server'] });
const doBlock = facts({ kind: 'utility', commandTag: 'DO', node: 'DoStmt', opaque: ['DO block runs dynamic SQL'] });

/** [condition, matching facts, non-matching facts] */
const cases: [string, Record<string, unknown>, typeof select, typeof select][] = [
  ['kinds', { kinds: ['ddl'] }, dropTable, select],
  ['commands', { commands: ['drop table'] }, dropTable, update],
  ['findings.rules', { findings: { rules: ['drop-*'] } }, dropTable, alterType],
  ['findings.min_severity', { findings: { min_severity: 'error' } }, dropTable, alterType],
  ['destructive: true', { destructive: true }, dropTable, update],
  ['destructive: false', { destructive: false }, update, dropTable],
  ['opaque: true', { opaque: true }, doBlock, select],
  ['opaque: false', { opaque: false }, select, doBlock],
  ['privileged: true', { privileged: true }, copyProgram, select],
  ['privileged: false', { privileged: false }, select, copyProgram],
  ['lock_at_least', { lock_at_least: 'ShareLock' }, dropTable, update],
  ['lock_at_least (equal rank)', { lock_at_least: 'RowExclusiveLock' }, update, select],
  ['rewrite: true', { rewrite: true }, alterType, dropTable],
  ['rewrite: false', { rewrite: false }, dropTable, alterType],
  ['objects.relations (qualified)', { objects: { relations: ['public.ord*'] } }, dropTable, alterType],
  ['objects.relations (table only)', { objects: { relations: ['t'] } }, alterType, dropTable],
  ['objects.columns', { objects: { columns: ['ssn'] } }, update, alterType],
  ['objects.access', { objects: { access: ['drop', 'truncate'] } }, dropTable, update],
  ['objects.relations + access', { objects: { relations: ['*.orders'], access: ['write'] } }, update, dropTable],
  ['unparseable: false', { unparseable: false }, select, select /* replaced below */],
];

describe('statement conditions, positive and negative', () => {
  for (const [name, match, hit, miss] of cases) {
    if (name === 'unparseable: false') continue;
    it(name, () => {
      const p = denyWhen(match);
      const yes = decide(p, [hit]);
      expect(yes.effect).toBe('deny');
      expect(verdict(yes, 'r').matched).toBe(true);
      const no = decide(p, [miss]);
      expect(no.effect).toBe('allow');
      expect(verdict(no, 'r').matched).toBe(false);
      expect(verdict(no, 'r').reason.length).toBeGreaterThan(5);
    });
  }

  it('unparseable: true and false', () => {
    const parseError = { parseError: { message: 'syntax error at or near "SELEC"', location: { byte: 0, char: 0 } } };
    const t = denyWhen({ unparseable: true });
    expect(decide(t, parseError).effect).toBe('deny');
    expect(decide(t, [select]).effect).toBe('allow');
    const f = policy({ default_effect: 'deny', rules: [{ id: 'r', description: 'x', match: { unparseable: false }, effect: 'allow' }] });
    expect(decide(f, [select]).effect).toBe('allow');
    expect(decide(f, parseError).effect).toBe('deny');
  });

  it('reasons are words a user understands', () => {
    const d = decide(denyWhen({ kinds: ['ddl'] }), [select]);
    expect(verdict(d, 'r').reason).toBe('it is a read statement (SELECT), not ddl');
    const d2 = decide(denyWhen({ lock_at_least: 'ShareLock' }), [dropTable]);
    expect(verdict(d2, 'r').reason).toContain('AccessExclusiveLock on public.orders');
  });
});

describe('context conditions', () => {
  it('roles (any of)', () => {
    const p = denyWhen({ roles: ['developer', 'agent'] });
    expect(decide(p, [select], { principal: agent }).effect).toBe('deny');
    expect(decide(p, [select], { principal: { name: 'x', roles: ['dba'] } }).effect).toBe('allow');
    expect(verdict(decide(p, [select], { principal: { name: 'x', roles: ['dba'] } }), 'r').reason).toContain('none of developer, agent');
  });
  it('principals (glob)', () => {
    const p = denyWhen({ principals: ['agent:*'] });
    expect(decide(p, [select], { principal: { name: 'agent:billing', roles: [] } }).effect).toBe('deny');
    expect(decide(p, [select], { principal: { name: 'alice', roles: [] } }).effect).toBe('allow');
  });
  it('databases (glob)', () => {
    const p = denyWhen({ databases: ['prod_?'] });
    expect(decide(p, [select], { database: 'prod_1' }).effect).toBe('deny');
    expect(decide(p, [select], { database: 'prod_12' }).effect).toBe('allow');
  });
  it('environments', () => {
    const p = denyWhen({ environments: ['production'] });
    expect(decide(p, [select], { environment: 'production' }).effect).toBe('deny');
    expect(decide(p, [select], { environment: 'staging' }).effect).toBe('allow');
  });
  it('during and outside windows', () => {
    const during = denyWhen({ during: [{ timezone: 'UTC', days: ['wed'], from: '09:00', to: '11:00' }] });
    expect(decide(during, [select], { now: new Date('2026-11-25T10:00:00Z') }).effect).toBe('deny'); // a Wednesday
    expect(decide(during, [select], { now: new Date('2026-11-25T11:00:00Z') }).effect).toBe('allow'); // `to` is exclusive
    const outside = denyWhen({ outside: [{ timezone: 'UTC', days: ['mon', 'tue', 'wed', 'thu', 'fri'], from: '09:00', to: '17:00' }] });
    expect(decide(outside, [select], { now: new Date('2026-11-25T10:00:00Z') }).effect).toBe('allow');
    expect(decide(outside, [select], { now: new Date('2026-11-28T10:00:00Z') }).effect).toBe('deny'); // Saturday
  });
});

describe('unqualified names and the search_path', () => {
  const p = denyWhen({ objects: { relations: ['billing.*'] } });
  const allowP = policy({ default_effect: 'deny', rules: [{ id: 'a', description: 'x', match: { objects: { relations: ['app.*'] } }, effect: 'allow' }] });
  it('resolves an unqualified name against the session search_path', () => {
    expect(decide(p, [update], { session: { searchPath: ['billing'] } }).effect).toBe('deny');
    expect(decide(p, [update], { session: { searchPath: ['app'] } }).effect).toBe('allow');
  });
  it('a name that may resolve to several schemas is unknown: deny rules match, allow rules do not', () => {
    const d = decide(p, [update], { session: { searchPath: ['app', 'billing'] } });
    expect(d.effect).toBe('deny');
    expect(verdict(d, 'r').unknown[0]).toContain('may resolve to schemas app, billing');
    expect(decide(allowP, [update], { session: { searchPath: ['app', 'billing'] } }).effect).toBe('deny');
    expect(decide(allowP, [update], { session: { searchPath: ['app'] } }).effect).toBe('allow');
  });
});

describe('real-state conditions (issue 7 extension point)', () => {
  const big = { rows: 5_000_000, bytes: 2e9, dependents: ['view public.v_orders'], recentUsers: [{ principal: 'svc', application: 'billing', lastUsed: new Date('2026-11-25T09:30:00Z') }] };
  const small = { rows: 10, bytes: 8192, dependents: [], recentUsers: [{ principal: 'bot', lastUsed: new Date('2026-11-25T09:59:00Z') }] };
  const stateBig = stateFromRecord({ 'public.orders': big });
  const stateSmall = stateFromRecord({ 'public.orders': small });
  const stmt = dropTable;
  const conds: [string, Record<string, unknown>][] = [
    ['min_rows', { min_rows: 100_000 }],
    ['min_bytes', { min_bytes: 1e9 }],
    ['has_dependents', { has_dependents: true }],
    ['used_by_others_within', { used_by_others_within: '1h' }],
  ];
  for (const [name, state] of conds) {
    it(`${name}: met, not met, unknown without state`, () => {
      const p = denyWhen({ state });
      expect(decide(p, [stmt], { state: stateBig }).effect).toBe('deny');
      const no = decide(p, [stmt], { state: stateSmall });
      expect(no.effect).toBe('allow');
      const unknown = decide(p, [stmt]);
      expect(unknown.effect).toBe('deny'); // fail closed
      expect(verdict(unknown, 'r').unknown.join()).toContain('no live state');
      expect(verdict(unknown, 'r').reason).toContain('treated as met because the rule denies');
    });
  }
  it('used_by_others_within ignores the principal itself and old uses', () => {
    const p = denyWhen({ state: { used_by_others_within: '10m' } });
    expect(decide(p, [stmt], { state: stateBig }).effect).toBe('allow'); // svc used it 30 min ago
    expect(decide(p, [stmt], { state: stateSmall, principal: agent }).effect).toBe('allow'); // only bot itself
  });
  it('has_dependents: false', () => {
    const p = denyWhen({ state: { has_dependents: false } });
    expect(decide(p, [stmt], { state: stateSmall }).effect).toBe('deny');
    expect(decide(p, [stmt], { state: stateBig }).effect).toBe('allow');
  });
  it('drift', () => {
    const p = denyWhen({ state: { drift: true } });
    expect(decide(p, [stmt], { state: stateFromRecord({}, { drift: true }) }).effect).toBe('deny');
    expect(decide(p, [stmt], { state: stateFromRecord({}, { drift: false }) }).effect).toBe('allow');
    expect(decide(p, [stmt], { state: stateFromRecord({}) }).effect).toBe('deny'); // unknown, fail closed
  });
  it('an allow rule with an unknown state condition does not match', () => {
    const p = policy({ default_effect: 'deny', rules: [{ id: 'a', description: 'x', match: { state: { min_rows: 0 } }, effect: 'allow' }] });
    const d = decide(p, [stmt]);
    expect(d.effect).toBe('deny');
    expect(verdict(d, 'a').reason).toContain('an allow rule needs certainty');
  });
  it('a relation missing from the snapshot is unknown', () => {
    const p = denyWhen({ state: { min_rows: 1 } });
    const d = decide(p, [stmt], { state: stateFromRecord({}) });
    expect(d.effect).toBe('deny');
    expect(verdict(d, 'r').unknown.join()).toContain('not in the catalog snapshot');
  });
  it('holds with an unknown condition also fail closed', () => {
    const p = policy({ default_effect: 'allow', rules: [{ id: 'h', description: 'x', match: { state: { min_rows: 100 } }, effect: 'hold' }] });
    expect(decide(p, [stmt], { principal: developer }).effect).toBe('hold');
  });
});

describe('state.min_estimated_rows', () => {
  const del = facts({ kind: 'write', commandTag: 'DELETE', relations: [{ relation: { name: 'orders' }, role: 'write' }] });
  const p = denyWhen({ state: { min_estimated_rows: 1000 } });
  it('met, not met, unknown', () => {
    expect(decide(p, [del], { state: stateFromRecord({}, { estimatedRows: 5000 }) }).effect).toBe('deny');
    expect(verdict(decide(p, [del], { state: stateFromRecord({}, { estimatedRows: 5000 }) }), 'r').reason).toContain('the planner estimates 5000 rows');
    expect(decide(p, [del], { state: stateFromRecord({}, { estimatedRows: 10 }) }).effect).toBe('allow');
    const u = decide(p, [del], { state: stateFromRecord({}) });
    expect(u.effect).toBe('deny');
    expect(verdict(u, 'r').unknown[0]).toContain('no planner estimate');
  });
});

describe('state.used_by_others_within: columns and applications', () => {
  const rename = facts({
    kind: 'ddl',
    commandTag: 'ALTER TABLE',
    relations: [{ relation: { schema: 'public', name: 'customers' }, role: 'alter', columns: ['email'] }],
  });
  const at = (min: number) => new Date(new Date('2026-11-25T10:00:00Z').getTime() - min * 60_000);
  const state = (users: { principal: string; application?: string; column?: string; lastUsed: Date }[]) =>
    stateFromRecord({ 'public.customers': { rows: 10, bytes: 8192, dependents: [], recentUsers: users } });
  const p = denyWhen({ state: { used_by_others_within: '24h' } });
  it('a use of the renamed column by another application counts; of another column it does not', () => {
    const d = decide(p, [rename], { state: state([{ principal: 'crm', application: 'crm-web', column: 'email', lastUsed: at(60) }]) });
    expect(d.effect).toBe('deny');
    expect(verdict(d, 'r').reason).toContain('column email was used by crm (crm-web)');
    expect(decide(p, [rename], { state: state([{ principal: 'crm', column: 'phone', lastUsed: at(60) }]) }).effect).toBe('allow');
    expect(decide(p, [rename], { state: state([{ principal: 'crm', lastUsed: at(60) }]) }).effect).toBe('deny'); // table-level use
  });
  it('the same principal from another application counts as another user', () => {
    const users = [{ principal: 'bot', application: 'nightly-report', column: 'email', lastUsed: at(5) }];
    expect(decide(p, [rename], { state: state(users), session: { applicationName: 'claude' } }).effect).toBe('deny');
    expect(decide(p, [rename], { state: state(users), session: { applicationName: 'nightly-report' } }).effect).toBe('allow');
    expect(decide(p, [rename], { state: state(users) }).effect).toBe('allow'); // application unknown: same principal
  });
});
