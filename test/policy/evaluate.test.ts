import { describe, expect, it } from 'vitest';
import { agent, decide, dba, developer, facts, policy, verdict } from './fixtures.js';

const select = facts();
const drop = facts({
  text: 'DROP TABLE t',
  node: 'DropStmt',
  kind: 'ddl',
  commandTag: 'DROP TABLE',
  relations: [{ relation: { name: 't' }, role: 'drop' }],
  destructive: ['DROP TABLE t deletes the table and its data'],
});
const createIndex = facts({
  text: 'CREATE INDEX i ON t (a)',
  node: 'IndexStmt',
  kind: 'ddl',
  commandTag: 'CREATE INDEX',
  relations: [{ relation: { name: 't' }, role: 'reference' }],
  locks: [{ relation: { name: 't' }, mode: 'ShareLock', rewrite: false, scan: true, reason: 'CREATE INDEX blocks writes' }],
  findings: [
    {
      rule: 'create-index-without-concurrently',
      severity: 'warning',
      message: 'CREATE INDEX without CONCURRENTLY blocks writes',
      why: 'SHARE lock for the whole build',
      fix: 'CREATE INDEX CONCURRENTLY i ON t (a)',
      location: { byte: 0, char: 0 },
    },
  ],
});

const three = policy({
  default_effect: { global: 'deny', roles: { dba: 'allow' } },
  rules: [
    { id: 'reads', description: 'agents read', match: { roles: ['agent'], kinds: ['read'] }, effect: 'allow' },
    { id: 'ddl-held', description: 'ddl held', match: { roles: ['agent'], kinds: ['ddl'] }, effect: 'hold', hold: { mode: 'wait', approvals: 1, approver_roles: ['dba'], timeout: '30m' } },
    { id: 'destructive-held-twice', description: 'two approvals', match: { destructive: true }, effect: 'hold', hold: { mode: 'defer', approvals: 2, approver_roles: ['release-manager'], timeout: '2h' } },
    { id: 'no-drop', description: 'no drops on Friday', match: { commands: ['DROP TABLE'], during: [{ timezone: 'UTC', days: ['fri'] }] }, effect: 'deny', message: 'No drops on Friday', hint: 'Wait until Monday.' },
  ],
});

describe('evaluate: effects', () => {
  it('every rule gets a verdict, builtin first, in policy order', () => {
    const d = decide(three, [select]);
    expect(d.verdicts.map((v) => v.id)).toEqual(['builtin-protect-pgairlock-schema', 'reads', 'ddl-held', 'destructive-held-twice', 'no-drop']);
    expect(d.verdicts.map((v) => v.matched)).toEqual([false, true, false, false, false]);
    expect(d.effect).toBe('allow');
    if (d.effect === 'allow') expect(d.decidedBy).toEqual([{ id: 'reads', source: 'policy' }]);
  });

  it('hold beats allow, and hold requirements combine', () => {
    const d = decide(three, [drop], { now: new Date('2026-11-25T10:00:00Z') }); // Wednesday
    expect(d.effect).toBe('hold');
    if (d.effect !== 'hold') return;
    expect(d.holdSpec.mode).toBe('defer'); // any defer wins
    expect(d.holdSpec.approvals).toBe(2);
    expect(d.holdSpec.approverRoles).toEqual(['dba', 'release-manager']);
    expect(d.holdSpec.timeoutMs).toBe(30 * 60_000);
    expect(d.holdSpec.requirements.map((r) => r.rule)).toEqual(['ddl-held', 'destructive-held-twice']);
    expect(d.error.sqlstate).toBe('42501');
    expect(d.error.message).toContain('rule "ddl-held"');
    expect(d.error.message).toContain('needs approval');
    expect(d.error.hint).toContain('approve');
  });

  it('deny beats hold, and the message, detail and hint come from the rule', () => {
    const d = decide(three, [drop], { now: new Date('2026-11-27T10:00:00Z') }); // Friday
    expect(d.effect).toBe('deny');
    if (d.effect !== 'deny') return;
    expect(d.rule).toEqual({ id: 'no-drop', source: 'policy' });
    expect(d.error).toMatchObject({ severity: 'ERROR', sqlstate: '42501', message: 'No drops on Friday (rule "no-drop")', hint: 'Wait until Monday.' });
    expect(d.error.detail).toContain('rule no-drop: now is within fri UTC; it is DROP TABLE');
    expect(d.error.position).toBeUndefined(); // a lone statement needs no caret
  });

  it('no rule matched: the default effect, per role', () => {
    const d = decide(three, [facts({ kind: 'utility', commandTag: 'VACUUM', node: 'VacuumStmt' })]);
    expect(d.effect).toBe('deny');
    if (d.effect !== 'deny') return;
    expect(d.rule).toEqual({ id: 'default-effect', source: 'default' });
    expect(d.error.message).toContain('no policy rule allows this statement for bot');
    expect(d.error.detail).toContain('default effect is deny');
    const asDba = decide(three, [facts({ kind: 'utility', commandTag: 'VACUUM' })], { principal: dba });
    expect(asDba.effect).toBe('allow');
    expect(asDba.reasons[0]).toContain('the default effect for role dba is allow');
  });

  it('the default among several roles is the strongest of the listed ones', () => {
    const p = policy({ default_effect: { global: 'allow', roles: { dba: 'allow', agent: 'deny' } }, rules: [] });
    expect(decide(p, [select], { principal: { name: 'x', roles: ['dba', 'agent'] } }).effect).toBe('deny');
    expect(decide(p, [select], { principal: { name: 'x', roles: ['dba', 'release-manager'] } }).effect).toBe('allow');
    expect(decide(p, [select], { principal: { name: 'x', roles: ['release-manager'] } }).effect).toBe('allow'); // global
  });

  it('the hint falls back to the findings\' fix (the CONCURRENTLY form) and the position to the finding', () => {
    const p = policy({ rules: [{ id: 'idx', description: 'no blocking index builds', match: { findings: { rules: ['create-index-without-concurrently'] } }, effect: 'deny' }] });
    const d = decide(p, [createIndex], { principal: developer });
    expect(d.effect).toBe('deny');
    if (d.effect !== 'deny') return;
    expect(d.error.hint).toBe('CREATE INDEX CONCURRENTLY i ON t (a)');
    expect(d.error.position).toBe(1);
    expect(d.error.message).toBe('pgairlock: permission denied by rule "idx": no blocking index builds');
  });

  it('a rule may set its own SQLSTATE', () => {
    const p = policy({ rules: [{ id: 'x', description: 'd', match: {}, effect: 'deny', sqlstate: '55000' }] });
    const d = decide(p, [select]);
    expect(d.effect === 'deny' && d.error.sqlstate).toBe('55000');
  });
});

describe('evaluate: multi-statement strings and nesting', () => {
  const second = { ...drop, index: 1, location: { byte: 10, char: 10 }, byteStart: 10 };
  it('one refused statement refuses the whole string, and the position points at it', () => {
    const p = policy({ rules: [{ id: 'r', description: 'read', match: { kinds: ['read'] }, effect: 'allow' }] });
    const d = decide(p, [select, second]);
    expect(d.effect).toBe('deny');
    expect(d.statements.map((s) => s.effect)).toEqual(['allow', 'deny']);
    if (d.effect !== 'deny') return;
    expect(d.rule.id).toBe('default-effect');
    expect(d.error.position).toBe(11);
    expect(d.error.detail).toContain('statement 2');
  });

  it('the verdict lists the statements a rule matched', () => {
    const p = policy({ default_effect: 'allow', rules: [{ id: 'd', description: 'destructive', match: { destructive: true }, effect: 'deny' }] });
    const d = decide(p, [select, second]);
    expect(verdict(d, 'd').statements).toEqual([1]);
    expect(verdict(d, 'd').reason).toContain('statement 2 (DROP TABLE)');
  });

  it('a DO block containing DROP TABLE matches a rule about destructive statements', () => {
    const doBlock = facts({ kind: 'utility', commandTag: 'DO', node: 'DoStmt', text: 'DO $$ BEGIN DROP TABLE t; END $$', nested: [drop] });
    const p = policy({ default_effect: 'allow', rules: [{ id: 'd', description: 'destructive', match: { kinds: ['ddl'], destructive: true }, effect: 'deny' }] });
    const d = decide(p, [doBlock]);
    expect(d.effect).toBe('deny');
    expect(verdict(d, 'd').reason).toContain('inside DO: ');
  });

  it('EXPLAIN ANALYZE target and PREPARE inner are judged', () => {
    const p = policy({ default_effect: 'allow', rules: [{ id: 'd', description: 'destructive', match: { destructive: true }, effect: 'deny' }] });
    const explain = facts({ kind: 'utility', commandTag: 'EXPLAIN', nested: [drop] });
    expect(decide(p, [explain]).effect).toBe('deny');
    const prep = facts({ kind: 'utility', commandTag: 'PREPARE', prepare: { name: 'p1', inner: drop } });
    expect(decide(p, [prep]).effect).toBe('deny');
  });

  it('EXECUTE is judged by the prepared statement it runs; an unseen one is opaque', () => {
    const p = policy({
      default_effect: 'allow',
      rules: [
        { id: 'd', description: 'destructive', match: { destructive: true }, effect: 'deny' },
        { id: 'o', description: 'opaque', match: { opaque: true }, effect: 'hold' },
      ],
    });
    const exec = facts({ kind: 'utility', commandTag: 'EXECUTE', execute: { name: 'p1' } });
    expect(decide(p, [exec], { session: { prepared: new Map([['p1', drop]]) } }).effect).toBe('deny');
    expect(decide(p, [exec], { session: { prepared: new Map([['p1', select]]) } }).effect).toBe('allow');
    const unseen = decide(p, [exec], { session: { prepared: new Map() } });
    expect(unseen.effect).toBe('hold');
    expect(verdict(unseen, 'o').reason).toContain('prepared statement pgairlock has not seen');
  });

  it('an empty string (comments only) is allowed: nothing runs', () => {
    const d = decide(policy({ rules: [] }), []);
    expect(d.effect).toBe('allow');
  });
});

describe('evaluate: unparseable SQL', () => {
  const bad = { parseError: { message: 'syntax error at or near "SELEC"', location: { byte: 7, char: 7 } } };
  const p = policy({
    rules: [
      { id: 'read', description: 'agents read', match: { roles: ['agent'], kinds: ['read'] }, effect: 'allow' },
      { id: 'priv', description: 'no privileged', match: { roles: ['agent'], privileged: true }, effect: 'deny' },
      { id: 'unparseable', description: 'no unparseable', match: { roles: ['agent'], unparseable: true }, effect: 'deny' },
      { id: 'dba', description: 'dba', match: { roles: ['dba'] }, effect: 'allow' },
    ],
  });
  it('is refused with the parser message, 42601 and its position, naming the definite rule', () => {
    const d = decide(p, bad);
    expect(d.effect).toBe('deny');
    if (d.effect !== 'deny') return;
    expect(d.rule.id).toBe('unparseable');
    expect(d.error.sqlstate).toBe('42601');
    expect(d.error.message).toContain('syntax error at or near "SELEC"');
    expect(d.error.position).toBe(8);
    expect(verdict(d, 'read').matched).toBe(false); // allow rules need certainty
    expect(verdict(d, 'priv').matched).toBe(true); // deny rules fail closed
    expect(verdict(d, 'priv').unknown[0]).toContain('could not be parsed');
  });
  it('is left to policy for a DBA (the builtin invariant cannot apply to text nobody can parse)', () => {
    expect(decide(p, bad, { principal: dba }).effect).toBe('allow');
  });
  it('the principal is carried in the decision', () => {
    expect(decide(p, bad, { principal: agent }).principal).toEqual(agent);
  });
});
