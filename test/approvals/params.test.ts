import { afterAll, describe, expect, it } from 'vitest';
import {
  approvalAuditEvent,
  ApprovalService,
  changeDetailRows,
  formatChange,
  paramLines,
  paramsHash,
  PARAM_SHOW_BYTES,
  PARAMS_SHOW_TOTAL_BYTES,
  showParams,
  textHash,
  type BoundParameters,
} from '../../governance/approvals/index.js';
import { configSchema } from '../../governance/config/schema.js';
import { redisAvailable } from '../harness/db.js';
import { alice, memoryKind, redisKind, type StoreKind } from './helpers.js';

/**
 * Approvals of statements held with bound parameter values (extended protocol): the canonical hash the
 * approval is bound to, what approvers are shown, and consume() matching exactly those values.
 */
const b = (s: string) => Buffer.from(s, 'utf8');
const textParams = (...values: (string | null)[]): BoundParameters => ({ types: [], formats: values.map(() => 0), values: values.map((v) => (v === null ? null : b(v))) });
const SQL = 'DELETE FROM big WHERE id > $1';

describe('paramsHash (canonical encoding of text, types, formats, values)', () => {
  it('is stable for equal inputs and differs from the text hash', () => {
    expect(paramsHash(SQL, textParams('100'))).toBe(paramsHash(SQL, textParams('100')));
    expect(paramsHash(SQL, textParams('100'))).toMatch(/^[0-9a-f]{64}$/);
    expect(paramsHash(SQL, textParams('100'))).not.toBe(textHash(SQL));
  });

  it('NULL, the empty string and a missing value all differ', () => {
    const hashes = [paramsHash(SQL, textParams(null)), paramsHash(SQL, textParams('')), paramsHash(SQL, { types: [], formats: [], values: [] }), paramsHash(SQL, textParams('NULL'))];
    expect(new Set(hashes).size).toBe(4);
  });

  it('text and binary format of the same bytes differ; a NULL ignores its format code', () => {
    const bytes = Buffer.from([0, 0, 0, 100]);
    const asText = paramsHash(SQL, { types: [23], formats: [0], values: [bytes] });
    const asBinary = paramsHash(SQL, { types: [23], formats: [1], values: [bytes] });
    expect(asText).not.toBe(asBinary);
    expect(paramsHash(SQL, { types: [], formats: [0], values: [null] })).toBe(paramsHash(SQL, { types: [], formats: [1], values: [null] }));
  });

  it('declared types, the text, value order and value boundaries are all part of it', () => {
    const base = paramsHash(SQL, { types: [23], formats: [0], values: [b('100')] });
    expect(paramsHash(SQL, { types: [20], formats: [0], values: [b('100')] })).not.toBe(base);
    expect(paramsHash(SQL, { types: [], formats: [0], values: [b('100')] })).not.toBe(base);
    expect(paramsHash(`${SQL} `, { types: [23], formats: [0], values: [b('100')] })).not.toBe(base);
    expect(paramsHash(SQL, textParams('1', '2'))).not.toBe(paramsHash(SQL, textParams('2', '1')));
    // Length prefixes: ('ab', 'c') is not ('a', 'bc'), nor the single value 'abc'.
    expect(new Set([paramsHash(SQL, textParams('ab', 'c')), paramsHash(SQL, textParams('a', 'bc')), paramsHash(SQL, textParams('abc'))]).size).toBe(3);
  });

  it('hashes raw bytes: two invalid UTF-8 values that decode alike still differ', () => {
    const e9 = { types: [], formats: [0], values: [Buffer.from([0xe9])] };
    const e8 = { types: [], formats: [0], values: [Buffer.from([0xe8])] };
    expect(Buffer.from([0xe9]).toString('utf8')).toBe(Buffer.from([0xe8]).toString('utf8'));
    expect(paramsHash(SQL, e9)).not.toBe(paramsHash(SQL, e8));
  });
});

describe('showParams / paramLines (what approvers see)', () => {
  it('text values quoted as text, binary as hex, NULL as NULL, with the declared type', () => {
    const shown = showParams({ types: [23, 17], formats: [0, 1, 0, 0], values: [b('100'), Buffer.from([0xde, 0xad]), null, b("it's")] });
    expect(shown.count).toBe(4);
    expect(shown.shown).toEqual([
      { n: 1, type: 23, format: 'text', value: '100', bytes: 3 },
      { n: 2, type: 17, format: 'binary', value: '\\xdead', bytes: 2, hex: true },
      { n: 3, type: 0, format: null, value: null, bytes: 0 },
      { n: 4, type: 0, format: 'text', value: "it's", bytes: 4 },
    ]);
    expect(paramLines(shown)).toEqual(["$1 (text, type 23) = '100'", '$2 (binary, type 17) = \\xdead', '$3 = NULL', "$4 (text) = 'it''s'"]);
    expect(paramLines(showParams(textParams('')))).toEqual(["$1 (text) = ''"]);
  });

  it('caps each value and the total, saying so; invalid UTF-8 text is shown as hex', () => {
    const long = showParams(textParams('x'.repeat(PARAM_SHOW_BYTES + 500)));
    expect(long.shown[0]).toMatchObject({ bytes: PARAM_SHOW_BYTES + 500, truncated: true });
    expect(long.shown[0]!.value).toHaveLength(PARAM_SHOW_BYTES);
    expect(paramLines(long)[0]).toContain(`(${PARAM_SHOW_BYTES + 500} bytes, truncated)`);
    // A cut in the middle of a multi-byte character backs off to the last whole one.
    const multi = showParams(textParams(`a${'é'.repeat(PARAM_SHOW_BYTES)}`));
    expect(multi.shown[0]).toMatchObject({ format: 'text', truncated: true });
    expect(multi.shown[0]!.hex).toBeUndefined();
    expect(multi.shown[0]!.value).toBe(`a${'é'.repeat((PARAM_SHOW_BYTES - 2) / 2)}`);
    const many = showParams(textParams(...Array.from({ length: 40 }, () => 'y'.repeat(PARAM_SHOW_BYTES))));
    expect(many.shown.reduce((n, s) => n + (s.value?.length ?? 0), 0)).toBeLessThanOrEqual(PARAMS_SHOW_TOTAL_BYTES);
    expect(many.omitted).toBe(40 - PARAMS_SHOW_TOTAL_BYTES / PARAM_SHOW_BYTES);
    expect(paramLines(many).at(-1)).toContain('the approval covers all 40');
    expect(showParams({ types: [], formats: [0], values: [Buffer.from([0xff, 0x41])] }).shown[0]).toMatchObject({ format: 'text', value: '\\xff41', hex: true });
  });
});

const kinds: Array<[string, () => StoreKind, boolean]> = [
  ['memory', memoryKind, true],
  ['redis', () => redisKind('params'), redisAvailable()],
];

for (const [name, makeKind, available] of kinds) {
  describe.runIf(available)(`consume with bound parameters (${name})`, () => {
    const kind = makeKind();
    afterAll(() => kind.cleanup());
    const config = configSchema.parse({}).approvals;
    const requester = { name: `agent:params-${name}`, roles: ['agent'] };

    it('an approval for values X runs X once, never other values, no values, or the bare text', async () => {
      const svc = new ApprovalService(kind.open(), config);
      const X = textParams('100');
      const r = await svc.hold({ requester, database: 'app', sql: SQL, params: X, fingerprint: 'f', facts: {}, rules: [], mode: 'defer' });
      expect(r.paramsHash).toBe(paramsHash(SQL, X));
      expect(r.params?.shown).toEqual([{ n: 1, type: 0, format: 'text', value: '100', bytes: 3 }]);
      const stored = await svc.show(r.id);
      expect(stored.paramsHash).toBe(r.paramsHash);
      expect(stored.params).toEqual(r.params);
      await svc.approve(r.id, alice);
      expect(await svc.consume(requester, 'app', SQL, textParams('50'))).toBeUndefined();
      expect(await svc.consume(requester, 'app', SQL, textParams('100', '1'))).toBeUndefined();
      expect(await svc.consume(requester, 'app', SQL, { types: [], formats: [1], values: [b('100')] })).toBeUndefined();
      expect(await svc.consume(requester, 'app', SQL, { types: [23], formats: [0], values: [b('100')] })).toBeUndefined();
      expect(await svc.consume(requester, 'app', SQL)).toBeUndefined();
      expect(await svc.consume(requester, 'app', SQL, { types: [], formats: [], values: [] })).toBeUndefined();
      expect((await svc.show(r.id)).status).toBe('approved');
      const used = await svc.consume(requester, 'app', SQL, textParams('100'));
      expect(used?.id).toBe(r.id);
      expect(used?.status).toBe('executed');
      expect(await svc.consume(requester, 'app', SQL, textParams('100'))).toBeUndefined();
    });

    it('an approval of the bare text does not run it with bound values; zero values behave as none', async () => {
      const svc = new ApprovalService(kind.open(), config);
      const sql = `DELETE FROM big WHERE id > 5 -- ${name}`;
      const r = await svc.hold({ requester, database: 'app', sql, params: { types: [], formats: [], values: [] }, fingerprint: 'f', facts: {}, rules: [], mode: 'defer' });
      expect(r.paramsHash).toBeUndefined();
      expect(r.params).toBeUndefined();
      await svc.approve(r.id, alice);
      expect(await svc.consume(requester, 'app', sql, textParams('1'))).toBeUndefined();
      expect((await svc.consume(requester, 'app', sql))?.id).toBe(r.id);
    });

    it('the audit records of its events carry the values hash, and the values once', async () => {
      const svc = new ApprovalService(kind.open(), config);
      const r = await svc.hold({ requester, database: 'app', sql: SQL, params: textParams('7'), fingerprint: 'f', facts: {}, rules: [], mode: 'defer' });
      const created = approvalAuditEvent(r, r.events[0]!);
      expect(created.detail).toMatchObject({ params_sha256: r.paramsHash, params: { count: 1, shown: [{ n: 1, value: '7' }] } });
      const approved = await svc.approve(r.id, alice);
      const ev = approvalAuditEvent(approved, approved.events.at(-1)!).detail as Record<string, unknown>;
      expect(ev.params_sha256).toBe(r.paramsHash);
      expect(ev.params).toBeUndefined();
    });

    it('SHOW CHANGE and the CLI show the values next to the text', async () => {
      const svc = new ApprovalService(kind.open(), config);
      const r = await svc.hold({ requester, database: 'app', sql: SQL, params: { types: [23], formats: [0], values: [b('100')] }, fingerprint: 'f', facts: {}, rules: [], mode: 'defer' });
      const rows = changeDetailRows(r);
      const at = rows.findIndex(([k]) => k === 'sql');
      expect(rows[at + 1]).toEqual(['param', "$1 (text, type 23) = '100'"]);
      expect(rows[at + 2]![0]).toBe('params_sha256');
      expect(rows[at + 2]![1]).toContain(r.paramsHash);
      expect(formatChange(r)).toMatch(/param\s+\$1 \(text, type 23\) = '100'/);
    });
  });
}
