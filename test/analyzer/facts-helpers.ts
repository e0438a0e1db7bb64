/**
 * Table-driven fact tests: each case is SQL -> the facts that must come out. Compact string forms
 * keep the tables readable:
 *   relation use  "role:schema.name(col1,col2)"   (columns only when the analyzer reports them)
 *   lock          "schema.name:Mode[/RW][/SCAN]"  (Mode without the "Lock" suffix)
 * Unless a case says otherwise, destructive, opaque and privileged must be EMPTY: every case is also
 * a false-positive check.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer, type StatementFacts, type StatementKind } from '../../analyzer/index.js';

export interface FactCase {
  readonly sql: string;
  /** server_version_num (default 180000). */
  readonly v?: number;
  /** Which statement of a multi-statement text to check (default 0). */
  readonly at?: number;
  /** Expected number of statements. */
  readonly n?: number;
  readonly kind?: StatementKind;
  readonly tag?: string;
  readonly node?: string;
  /** Exact set of relation uses. */
  readonly rels?: readonly string[];
  /** Relation uses that must be among them. */
  readonly hasRels?: readonly string[];
  /** Exact set of locks. */
  readonly locks?: readonly string[];
  /** true: non-empty; string: some entry contains it. Default: must be empty. */
  readonly destructive?: boolean | string;
  readonly opaque?: boolean | string;
  readonly privileged?: boolean | string;
  readonly hidden?: boolean | string;
  readonly functions?: readonly string[];
  readonly types?: readonly string[];
  readonly schemas?: readonly string[];
  readonly roles?: readonly string[];
  readonly databases?: readonly string[];
  readonly setting?: { name: string; value?: string; local?: boolean };
  readonly tx?: string;
  readonly inverse?: string | null;
  readonly execute?: string;
  /** PREPARE: the inner statement's kind and tag. */
  readonly prepared?: { kind: StatementKind; tag: string; destructive?: boolean };
  /** Nested facts: "kind:TAG" each, in order. */
  readonly nested?: readonly string[];
}

export const relString = (f: StatementFacts): string[] =>
  f.relations.map((r) => `${r.role}:${r.relation.schema ? `${r.relation.schema}.` : ''}${r.relation.name}${r.columns ? `(${[...r.columns].sort().join(',')})` : ''}`).sort();

export const lockString = (f: StatementFacts): string[] =>
  f.locks.map((l) => `${l.relation.schema ? `${l.relation.schema}.` : ''}${l.relation.name}:${l.mode.slice(0, -4)}${l.rewrite ? '/RW' : ''}${l.scan ? '/SCAN' : ''}`).sort();

const normCols = (s: string): string => {
  const open = s.indexOf('(');
  if (open < 0) return s;
  return `${s.slice(0, open)}(${s.slice(open + 1, -1).split(',').sort().join(',')})`;
};

function checkList(label: string, list: readonly string[], want: boolean | string | undefined): void {
  if (want === undefined || want === false) expect(list, `${label} should be empty`).toEqual([]);
  else if (want === true) expect(list.length, `${label} should not be empty`).toBeGreaterThan(0);
  else expect(list.some((x) => x.includes(want)), `${label} ${JSON.stringify(list)} should mention "${want}"`).toBe(true);
}

export function statementOf(c: FactCase): StatementFacts {
  const a = analyze(c.sql, { serverVersion: c.v ?? 180000 });
  if (!a.ok) throw new Error(`parse failed: ${a.error.message}`);
  if (c.n !== undefined) expect(a.statements.length).toBe(c.n);
  const f = a.statements[c.at ?? 0];
  if (!f) throw new Error(`no statement ${c.at ?? 0}`);
  return f;
}

export function checkCase(c: FactCase): void {
  const f = statementOf(c);
  if (c.kind !== undefined) expect(f.kind).toBe(c.kind);
  if (c.tag !== undefined) expect(f.commandTag).toBe(c.tag);
  if (c.node !== undefined) expect(f.node).toBe(c.node);
  if (c.rels !== undefined) expect(relString(f)).toEqual([...c.rels].map(normCols).sort());
  if (c.hasRels !== undefined) expect(relString(f)).toEqual(expect.arrayContaining([...c.hasRels].map(normCols)));
  if (c.locks !== undefined) expect(lockString(f)).toEqual([...c.locks].sort());
  checkList('destructive', f.destructive, c.destructive);
  checkList('opaque', f.opaque, c.opaque);
  checkList('privileged', f.privileged, c.privileged);
  if (c.hidden !== undefined) checkList('hidden', f.hidden ?? [], c.hidden);
  if (c.functions !== undefined) expect(f.functions.map((x) => (x.schema ? `${x.schema}.${x.name}` : x.name)).sort()).toEqual([...c.functions].sort());
  if (c.types !== undefined) expect([...f.types].sort()).toEqual([...c.types].sort());
  if (c.schemas !== undefined) expect([...f.schemas].sort()).toEqual([...c.schemas].sort());
  if (c.roles !== undefined) expect([...f.roles].sort()).toEqual([...c.roles].sort());
  if (c.databases !== undefined) expect([...f.databases].sort()).toEqual([...c.databases].sort());
  if (c.setting !== undefined) {
    expect(f.setting).toBeDefined();
    for (const [k, v] of Object.entries(c.setting)) expect(f.setting?.[k as keyof typeof c.setting], `setting.${k}`).toBe(v);
  }
  if (c.tx !== undefined) expect(f.transaction).toBe(c.tx);
  if (c.inverse !== undefined) expect(f.inverse).toBe(c.inverse === null ? undefined : c.inverse);
  if (c.execute !== undefined) expect(f.execute?.name).toBe(c.execute);
  if (c.prepared !== undefined) {
    expect(f.prepare?.inner.kind).toBe(c.prepared.kind);
    expect(f.prepare?.inner.commandTag).toBe(c.prepared.tag);
    if (c.prepared.destructive !== undefined) expect(f.prepare!.inner.destructive.length > 0).toBe(c.prepared.destructive);
  }
  if (c.nested !== undefined) expect(f.nested.map((x) => `${x.kind}:${x.commandTag}`)).toEqual(c.nested);
}

/** Registers one vitest case per table row (the analyzer is loaded once per file). */
export function factTable(title: string, cases: readonly FactCase[]): void {
  describe(title, () => {
    beforeAll(async () => { await loadAnalyzer(); });
    for (const c of cases) {
      const name = `${c.sql.length > 90 ? `${c.sql.slice(0, 87)}...` : c.sql}${c.v ? ` [v${c.v / 10000}]` : ''}${c.at ? ` #${c.at}` : ''}`;
      it(name, () => checkCase(c));
    }
  });
}
