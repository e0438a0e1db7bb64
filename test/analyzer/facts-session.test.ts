/** Transaction and session statements, settings, script context, fingerprints, parse failures. */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer, newScriptContext } from '../../analyzer/index.js';
import { factTable } from './facts-helpers.js';

factTable('transaction control', [
  { sql: 'BEGIN', kind: 'tcl', tag: 'BEGIN', tx: 'begin' },
  { sql: 'BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY', tx: 'begin' },
  { sql: 'START TRANSACTION', tag: 'START TRANSACTION', tx: 'begin' },
  { sql: 'COMMIT', tag: 'COMMIT', tx: 'commit' },
  { sql: 'END', tag: 'COMMIT', tx: 'commit' },
  { sql: 'COMMIT AND CHAIN', tx: 'commit' },
  { sql: 'ROLLBACK', tag: 'ROLLBACK', tx: 'rollback' },
  { sql: 'ABORT', tx: 'rollback' },
  { sql: 'SAVEPOINT s1', tag: 'SAVEPOINT', tx: 'savepoint' },
  { sql: 'RELEASE SAVEPOINT s1', tag: 'RELEASE', tx: 'release' },
  { sql: 'ROLLBACK TO SAVEPOINT s1', tag: 'ROLLBACK', tx: 'rollback-to' },
  { sql: "PREPARE TRANSACTION 'x'", tag: 'PREPARE TRANSACTION', tx: 'prepare' },
  { sql: "COMMIT PREPARED 'x'", tag: 'COMMIT PREPARED', tx: 'commit-prepared' },
  { sql: "ROLLBACK PREPARED 'x'", tag: 'ROLLBACK PREPARED', tx: 'rollback-prepared' },
  { sql: 'SET CONSTRAINTS ALL DEFERRED', kind: 'tcl', tag: 'SET CONSTRAINTS' },
]);

factTable('session statements and settings', [
  { sql: "SET lock_timeout = '5s'", kind: 'session', tag: 'SET', setting: { name: 'lock_timeout', value: '5s', local: false } },
  { sql: 'SET LOCAL lock_timeout TO 5000', setting: { name: 'lock_timeout', value: '5000', local: true } },
  { sql: 'SET statement_timeout = 0', setting: { name: 'statement_timeout', value: '0' } },
  { sql: 'SET search_path TO app, "Public"', setting: { name: 'search_path', value: 'app, "Public"' } },
  { sql: 'SET search_path = DEFAULT', tag: 'SET', setting: { name: 'search_path', value: undefined } },
  { sql: "SET TIME ZONE 'UTC'", setting: { name: 'timezone', value: 'UTC' } },
  { sql: 'SET TRANSACTION ISOLATION LEVEL SERIALIZABLE', setting: { name: 'transaction' } },
  { sql: 'SET application_name = \'x\'', setting: { name: 'application_name', value: 'x' } },
  { sql: 'RESET lock_timeout', tag: 'RESET', setting: { name: 'lock_timeout', value: undefined } },
  { sql: 'RESET ALL', tag: 'RESET', setting: { name: 'all' } },
  { sql: 'SHOW search_path', kind: 'session', tag: 'SHOW' },
  { sql: 'DISCARD ALL', kind: 'session', tag: 'DISCARD ALL' },
  { sql: 'DEALLOCATE p', kind: 'session', tag: 'DEALLOCATE' },
  { sql: 'DEALLOCATE ALL', tag: 'DEALLOCATE ALL' },
  { sql: 'LISTEN ch', kind: 'session', tag: 'LISTEN' },
  { sql: 'UNLISTEN *', tag: 'UNLISTEN' },
  { sql: "NOTIFY ch, 'payload'", kind: 'session', tag: 'NOTIFY' },
  { sql: 'CLOSE c', kind: 'session', tag: 'CLOSE CURSOR' },
  { sql: 'CLOSE ALL', tag: 'CLOSE CURSOR ALL' },
]);

describe('script context, fingerprints, positions', () => {
  beforeAll(async () => { await loadAnalyzer(); });

  it('threads BEGIN/COMMIT, SET lock_timeout and created tables through a script', () => {
    const ctx = newScriptContext();
    const a = analyze("BEGIN; SET LOCAL lock_timeout = '2s'; CREATE TABLE n (a int); CREATE INDEX ON n (a); COMMIT;", { context: ctx });
    expect(a.ok).toBe(true);
    expect(ctx.inTransactionBlock).toBe(false);
    expect(ctx.lockTimeoutSet).toBe(false); // SET LOCAL ended with the transaction
    expect(ctx.createdRelations.has('n')).toBe(true);
  });

  it('keeps a session-level lock_timeout across statements and clears it on RESET', () => {
    const ctx = newScriptContext();
    analyze("SET lock_timeout = '1s'", { context: ctx });
    expect(ctx.lockTimeoutSet).toBe(true);
    analyze('BEGIN; COMMIT', { context: ctx });
    expect(ctx.lockTimeoutSet).toBe(true);
    analyze('SET lock_timeout = 0', { context: ctx });
    expect(ctx.lockTimeoutSet).toBe(false);
    analyze("SET lock_timeout = '3s'; RESET ALL", { context: ctx });
    expect(ctx.lockTimeoutSet).toBe(false);
  });

  it('tracks an open transaction block across calls (the proxy passes the session context)', () => {
    const ctx = newScriptContext();
    analyze('BEGIN', { context: ctx });
    expect(ctx.inTransactionBlock).toBe(true);
    analyze('ROLLBACK', { context: ctx });
    expect(ctx.inTransactionBlock).toBe(false);
  });

  it('forgets a created relation once it is dropped', () => {
    const ctx = newScriptContext();
    analyze('CREATE TABLE s.x (a int); DROP TABLE s.x', { context: ctx });
    expect(ctx.createdRelations.size).toBe(0);
  });

  it('gives fingerprints that ignore constants and normalized text with $n', () => {
    const a = analyze('SELECT * FROM t WHERE id = 1; SELECT * FROM t WHERE id = 42');
    if (!a.ok) throw new Error('parse');
    const [x, y] = a.statements;
    expect(x!.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(x!.fingerprint).toBe(y!.fingerprint);
    expect(x!.normalized).toBe('SELECT * FROM t WHERE id = $1');
    const b = analyze('SELECT * FROM u WHERE id = 1');
    if (!b.ok) throw new Error('parse');
    expect(b.statements[0]!.fingerprint).not.toBe(x!.fingerprint);
  });

  it('serialises fingerprint and normalized with JSON.stringify (they are computed on first read)', () => {
    const a = analyze("DELETE FROM t WHERE name = 'x'");
    if (!a.ok) throw new Error('parse');
    const json = JSON.parse(JSON.stringify(a.statements[0])) as { fingerprint: string; normalized: string };
    expect(json.fingerprint).toMatch(/^[0-9a-f]{16}$/);
    expect(json.normalized).toBe('DELETE FROM t WHERE name = $1');
  });

  it('reports parse errors with the parser message and a character and byte position', () => {
    const a = analyze('SELECT 1; SELEC 2');
    expect(a.ok).toBe(false);
    if (a.ok) return;
    expect(a.error.message).toContain('syntax error');
    expect(a.error.location).toEqual({ char: 10, byte: 10 });
  });

  it('converts the error position of text after multi-byte characters', () => {
    const sql = "SELECT 'héllo 🎉'; SELEC 2";
    const a = analyze(sql);
    if (a.ok) throw new Error('should fail');
    expect(sql.slice(a.error.location!.char, a.error.location!.char + 5)).toBe('SELEC');
    expect(Buffer.from(sql).subarray(a.error.location!.byte, a.error.location!.byte + 5).toString()).toBe('SELEC');
  });

  it('gives 0 statements for empty, blank and comment-only text', () => {
    for (const sql of ['', '   \n\t', '-- just a comment', '/* block /* nested */ */', ';', ';;']) {
      const a = analyze(sql);
      expect(a.ok, sql).toBe(true);
      if (a.ok) expect(a.statements.length, sql).toBe(0);
    }
  });

  it('gives nested statements their own findings, so wrapping a statement does not hide them', () => {
    const rules = (fs: readonly { rule: string }[]) => fs.map((f) => f.rule);
    const a = analyze('DO $$ BEGIN CREATE INDEX i ON t (a); DELETE FROM u; END $$');
    if (!a.ok) throw new Error('parse');
    const [idx, del] = a.statements[0]!.nested;
    expect(rules(idx!.findings)).toContain('create-index-without-concurrently');
    expect(rules(del!.findings)).toContain('delete-without-where');
    const p = analyze('PREPARE q AS DELETE FROM t');
    if (!p.ok) throw new Error('parse');
    expect(rules(p.statements[0]!.prepare!.inner.findings)).toContain('delete-without-where');
  });

  it('judges nested statements with the context before the outer statement', () => {
    const ctx = newScriptContext();
    const a = analyze("SET lock_timeout = '2s'; DO $$ BEGIN CREATE INDEX i ON t (a); END $$", { context: ctx });
    if (!a.ok) throw new Error('parse');
    const nested = a.statements[1]!.nested[0]!;
    expect(nested.findings.map((f) => f.rule)).not.toContain('missing-lock-timeout');
  });
});
