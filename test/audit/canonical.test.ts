import { describe, expect, it } from 'vitest';
import { canonicalJson, GENESIS_HASH, recordHash, sanitize } from '../../governance/audit/canonical.js';
import { ChainVerifier } from '../../governance/audit/chain.js';
import { explain } from '../../governance/audit/why.js';
import type { AuditEntry } from '../../governance/audit/types.js';

describe('canonical serialisation', () => {
  it('sorts keys, drops undefined, no whitespace, JSON string escapes', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x"\n\u0001é'], c: undefined, A: { z: 0.5, y: -0 } }))
      .toBe('{"A":{"y":0,"z":0.5},"a":[true,null,"x\\"\\n\\u0001é"],"b":1}');
    expect(canonicalJson(1e21)).toBe('1e+21');
    expect(() => canonicalJson(Number.NaN)).toThrow(/non-finite/);
  });

  it('sanitize makes strings jsonb-safe (NUL, lone surrogates) and keeps pairs', () => {
    expect(sanitize({ s: 'a\u0000b\ud800c😀', n: Number.POSITIVE_INFINITY, u: undefined })).toEqual({ s: 'a\uFFFDb\uFFFDc😀', n: null });
  });

  it('hash of the documented test vector is stable (docs/audit.md)', () => {
    const h = recordHash({
      id: '00000000-0000-4000-8000-000000000001', instance: 'proxy-1', seq: 1, time: '2026-01-01T00:00:00.000Z',
      kind: 'session_start', prev_hash: GENESIS_HASH, body: { principal: 'alice', roles: ['dba'] },
    });
    // Also computed independently: printf '%s' '<canonical text from docs/audit.md>' | sha256sum
    expect(h).toBe('b589e8b0b7ebcd6846075abc5952724c2e8057e9f4c4b84441fbd59e38e9e757');
  });
});

function chain(n: number, instance = 'i1'): AuditEntry[] {
  const out: AuditEntry[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 1; seq <= n; seq++) {
    const e = { id: `id-${seq}`, instance, seq, time: `2026-01-01T00:00:0${seq % 10}.000Z`, kind: 'drift' as const, prev_hash: prev, body: { n: seq } };
    const hash = recordHash(e);
    out.push({ ...e, hash });
    prev = hash;
  }
  return out;
}

describe('ChainVerifier', () => {
  it('accepts a whole chain and reports its head', () => {
    const v = new ChainVerifier('i1');
    const c = chain(5);
    for (const e of c) expect(v.push(e)).toBeUndefined();
    expect(v.result()).toEqual({ records: 5, head: { seq: 5, hash: c[4]!.hash } });
  });

  it('altered body -> altered at that id', () => {
    const c = chain(5);
    c[2] = { ...c[2]!, body: { n: 99 } };
    const v = new ChainVerifier('i1');
    let brk;
    for (const e of c) brk ??= v.push(e);
    expect(brk).toMatchObject({ kind: 'altered', id: 'id-3', seq: 3 });
  });

  it('deleted record -> missing, pointing at the record after the gap', () => {
    const c = chain(5);
    c.splice(1, 2);
    const v = new ChainVerifier('i1');
    let brk;
    for (const e of c) brk ??= v.push(e);
    expect(brk).toMatchObject({ kind: 'missing', id: 'id-4', seq: 4, missingFromSeq: 2 });
  });

  it('a re-hashed replacement breaks the next link', () => {
    const c = chain(4);
    const forged = { ...c[1]!, body: { n: 'forged' } };
    c[1] = { ...forged, hash: recordHash(forged) };
    const v = new ChainVerifier('i1');
    let brk;
    for (const e of c) brk ??= v.push(e);
    expect(brk).toMatchObject({ kind: 'broken-link', id: 'id-3', seq: 3 });
  });
});

describe('why', () => {
  it('explains a decision with rules, approvals and outcome', () => {
    const d: AuditEntry = {
      id: 'd1', instance: 'i', seq: 1, time: '2026-01-01T00:00:00.000Z', kind: 'decision', prev_hash: GENESIS_HASH, hash: 'h',
      body: {
        principal: 'alice', roles: ['dba'], database_user: 'alice', database: 'app', session_id: 's', sql: 'DROP TABLE t', sql_redacted: false,
        facts: { kind: 'ddl', command_tag: 'DROP TABLE', node: 'DropStmt', findings: [{ rule: 'drop-table', severity: 'error', message: 'loses data' }], locks: [] },
        objects: ['t'], rules: [{ id: 'r1', matched: true, effect: 'hold', reason: 'drops need approval' }, { id: 'r2', matched: false, effect: null, reason: 'n/a' }],
        decision: { effect: 'allow', reasons: ['approved by bob'], message: null }, approvals: [{ approver: 'bob', at: '2026-01-01T00:00:00Z', comment: 'ok after backup' }],
        wal_lsn: '0/16B3748', inverse: null,
      },
    };
    const o: AuditEntry = { ...d, id: 'o1', seq: 2, kind: 'outcome', body: { decision_id: 'd1', outcome: { status: 'ok', command_tag: 'DROP TABLE', rows: null, duration_ms: 3.25 } } };
    const text = explain(d, [o]);
    expect(text).toContain('Verdict:  ALLOWED');
    expect(text).toContain('[matched]     r1 -> hold: drops need approval');
    expect(text).toContain('[not matched] r2: n/a');
    expect(text).toContain('bob at 2026-01-01T00:00:00Z: "ok after backup"');
    expect(text).toContain('Outcome:  succeeded at 2026-01-01T00:00:00.000Z: DROP TABLE, 3.3 ms');
    expect(text).toContain('0/16B3748');
    expect(text).toContain('error drop-table: loses data');
  });
});
