import { describe, expect, it } from 'vitest';
import { parseSearchPath } from '../../governance/policy/units.js';
import { dba, decide, facts, policy, verdict } from './fixtures.js';

// A policy that allows everything: the invariant must still refuse.
const allowAll = policy({ default_effect: 'allow', rules: [{ id: 'all', description: 'anything', match: {}, effect: 'allow' }] });
const ID = 'builtin-protect-pgairlock-schema';

function refused(d: ReturnType<typeof decide>): void {
  expect(d.effect).toBe('deny');
  if (d.effect !== 'deny') return;
  expect(d.rule).toEqual({ id: ID, source: 'builtin' });
  expect(d.error.sqlstate).toBe('42501');
  expect(d.error.message).toContain('"pgairlock"');
}

describe('builtin-protect-pgairlock-schema', () => {
  it('refuses reading pgairlock.* even for a DBA under an allow-all policy', () => {
    refused(decide(allowAll, [facts({ relations: [{ relation: { schema: 'pgairlock', name: 'audit_log' }, role: 'read' }] })], { principal: dba }));
  });
  it('refuses writes, DDL, functions, types and the schema itself', () => {
    refused(decide(allowAll, [facts({ kind: 'write', relations: [{ relation: { schema: 'pgairlock', name: 'changes' }, role: 'write' }] })]));
    refused(decide(allowAll, [facts({ kind: 'ddl', schemas: ['pgairlock'] })]));
    refused(decide(allowAll, [facts({ functions: [{ schema: 'pgairlock', name: 'f' }] })]));
    refused(decide(allowAll, [facts({ types: ['pgairlock.status'] })]));
    refused(decide(allowAll, [facts({ locks: [{ relation: { schema: 'pgairlock', name: 'x' }, mode: 'AccessExclusiveLock', rewrite: false, scan: false, reason: 'LOCK' }] })]));
  });
  it('resolves unqualified names against the session search_path', () => {
    const q = facts({ relations: [{ relation: { name: 'audit_log' }, role: 'read' }] });
    refused(decide(allowAll, [q], { session: { searchPath: ['public', 'pgairlock'] } }));
    refused(decide(allowAll, [q], { session: { searchPath: ['$user'], user: 'pgairlock' } }));
    expect(decide(allowAll, [q], { session: { searchPath: ['$user', 'public'], user: 'alice' } }).effect).toBe('allow');
    expect(decide(allowAll, [q]).effect).toBe('allow');
  });
  it('refuses putting pgairlock on the search_path', () => {
    refused(decide(allowAll, [facts({ kind: 'session', commandTag: 'SET', setting: { name: 'search_path', value: 'public, "pgairlock"', local: false } })]));
    expect(decide(allowAll, [facts({ kind: 'session', commandTag: 'SET', setting: { name: 'search_path', value: 'public', local: false } })]).effect).toBe('allow');
  });
  it('sees through nesting (a DO block reading the audit table)', () => {
    const inner = facts({ relations: [{ relation: { schema: 'pgairlock', name: 'audit_log' }, role: 'write' }] });
    const d = decide(allowAll, [facts({ kind: 'utility', commandTag: 'DO', nested: [inner] })]);
    refused(d);
    expect(verdict(d, ID).reason).toContain('inside DO');
  });
  it('is in every decision\'s verdicts, unmatched when nothing touches the schema', () => {
    const d = decide(allowAll, [facts()]);
    expect(verdict(d, ID)).toMatchObject({ matched: false, source: 'builtin', effect: 'deny' });
  });
  it('parses search_path values the way the server writes them', () => {
    expect(parseSearchPath('"$user", public')).toEqual(['$user', 'public']);
    expect(parseSearchPath('PgAirlock,"My ""S"""')).toEqual(['pgairlock', 'My "S"']);
    expect(parseSearchPath('')).toEqual([]);
  });
});

describe('builtin invariant with the real analyzer', () => {
  it('refuses set_config of search_path (any value) and of a setting named at run time, for a DBA too', async () => {
    const { analyze, loadAnalyzer } = await import('../../analyzer/index.js');
    const { statementsOf } = await import('../../governance/policy/analysis.js');
    await loadAnalyzer();
    const run = (sql: string) => decide(allowAll, statementsOf(analyze(sql)), { principal: dba });
    refused(run("SELECT set_config('search_path', 'pgairlock', false)"));
    refused(run("SELECT set_config('search_path', 'public', true)"));
    refused(run('SELECT set_config($1, $2, false)'));
    expect(run("SELECT set_config('app.user_id', '42', true)").effect).toBe('allow');
    refused(run('SET search_path = PgAirlock, public'));
    refused(run('ALTER TABLE t SET SCHEMA pgairlock'));
    refused(run('CREATE VIEW v AS SELECT * FROM pgairlock.audit'));
    refused(run('SELECT 1::pgairlock.t'));
    expect(run('SET search_path = app, public').effect).toBe('allow');
  });
});
