/**
 * StatementFacts is written out three times (the interface in analyzer/types.ts, the Facts class with its
 * rebinding constructor, and Facts.toJSON): a field added to one and not the others would silently vanish
 * from audit records (toJSON) or from literal-cache hits (rebindFacts). These tests fail when they drift.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer } from '../../analyzer/index.js';
import { rebindFacts } from '../../analyzer/analyze.js';
import type { StatementFacts } from '../../analyzer/types.js';

const one = (sql: string): StatementFacts => {
  const r = analyze(sql);
  if (!r.ok) throw new Error(r.error.message);
  return r.statements[0]!;
};

// Fields computed on first read (prototype getters), so not own properties.
const LAZY = ['fingerprint', 'normalized'];
// Per-text placement: what rebinding changes.
const PLACEMENT = ['index', 'byteStart', 'byteEnd', 'text', 'location'];

describe('StatementFacts shape', () => {
  beforeAll(async () => { await loadAnalyzer(); });

  it('toJSON carries every public field of the class, and the lazy ones', () => {
    const f = one('UPDATE accounts SET balance = balance - 1 WHERE id = 42');
    const own = Object.keys(f).filter((k) => k !== 'fp' && k !== 'norm');
    const json = Object.keys((f as unknown as { toJSON(): Record<string, unknown> }).toJSON());
    expect(new Set(json)).toEqual(new Set([...own, ...LAZY]));
    // And JSON.stringify (what the audit stores) round-trips them with their values.
    const parsed = JSON.parse(JSON.stringify(f)) as Record<string, unknown>;
    for (const k of [...own, ...LAZY]) expect(parsed[k], k).toEqual(JSON.parse(JSON.stringify((f as unknown as Record<string, unknown>)[k] ?? null)) ?? undefined);
  });

  it('a rebound copy has exactly the same fields, equal to the template\'s except the placement', () => {
    const template = one("SELECT * FROM accounts WHERE owner = 'a'");
    const text = "SELECT * FROM accounts WHERE owner = 'bbbb'";
    const copy = rebindFacts(template, text, Buffer.byteLength(text), { char: 0, byte: 0 });
    expect(Object.keys(copy)).toEqual(Object.keys(template));
    for (const k of Object.keys(template)) {
      if (PLACEMENT.includes(k) || k === 'norm') continue;
      expect((copy as unknown as Record<string, unknown>)[k], k).toEqual((template as unknown as Record<string, unknown>)[k]);
    }
    expect(copy.text).toBe(text);
    expect(copy.fingerprint).toBe(template.fingerprint);
  });
});
