/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's JSON AST is walked dynamically (see collector.ts) */
/**
 * What every statement handler shares: the result and environment types, and small readers of
 * options, settings and names.
 */
import type { Collector } from './collector.js';
import { constText, qualifiedName, stringList } from './names.js';
import type { RelationName, SettingChange, StatementFacts, StatementKind, TransactionEffect } from './types.js';

/** What a statement handler decides besides what it records in the Collector. */
export interface StatementResult {
  kind: StatementKind;
  tag: string;
  setting?: SettingChange;
  transaction?: TransactionEffect;
  prepare?: { name: string; inner: StatementFacts };
  execute?: { name: string };
  inverse?: string;
}

/** Environment of one statement analysis: how to analyse nested SQL text and nodes. */
export interface StatementEnv {
  /** The statement's own text (for PL/pgSQL bodies, which libpg_query re-parses from text). */
  readonly text: string;
  /** Facts of an inner statement node that shares this statement's text (PREPARE, EXPLAIN, rule actions). */
  innerFacts(node: Record<string, unknown>): StatementFacts;
  /** Facts of every statement in a separate SQL text (function bodies). */
  textFacts(sql: string): { ok: true; statements: readonly StatementFacts[] } | { ok: false; message: string };
}

export type Handler = (c: Collector, n: any, env: StatementEnv) => StatementResult;

export const r = (kind: StatementKind, tag: string, extra?: Partial<StatementResult>): StatementResult => ({ kind, tag, ...extra });

// ---- helpers for DDL ---------------------------------------------------------------------------------

/** Walks definitions that are stored, not run (view queries, defaults of a new table, function bodies). */
export function stored(c: Collector, fn: () => void): void {
  const [ex, role, lock] = [c.executing, c.readRole, c.readLock];
  c.executing = false;
  c.readRole = 'reference';
  fn();
  c.executing = ex;
  c.readRole = role;
  c.readLock = lock;
}

export function optionValue(options: any, name: string): any {
  for (const o of (options ?? []) as any[]) if (o?.DefElem?.defname === name) return o.DefElem.arg ?? true;
  return undefined;
}
export function hasOption(options: any, name: string): boolean {
  const v = optionValue(options, name);
  if (v === undefined) return false;
  if (v === true) return true;
  if (v.Boolean) return v.Boolean.boolval === true;
  const t = constText(v)?.toLowerCase();
  return t === undefined || !['false', 'off', '0', 'no'].includes(t);
}

export function dropCascade(c: Collector, n: any, what: string): void {
  if (n.behavior === 'DROP_CASCADE') c.addDestructive(`${what} ... CASCADE also drops every object that depends on it`);
}

/** Settings whose value is a list of names, each quoted by the server when needed (GUC_LIST_QUOTE). */
const LIST_QUOTE_SETTINGS = new Set(['search_path', 'temp_tablespaces']);

export function setting(n: any): SettingChange | undefined {
  if (!n) return undefined;
  const local = n.is_local === true;
  switch (n.kind) {
    case 'VAR_SET_VALUE': {
      const name = String(n.name ?? '').toLowerCase();
      // The server quotes each element of a list-of-names setting (flatten_set_variable_args, GUC_LIST_QUOTE):
      // `SET search_path = "My Schema", 'a,b'` is two schemas, `"My Schema", "a,b"`; keep that form.
      const quote = LIST_QUOTE_SETTINGS.has(name);
      const vals = ((n.args ?? []) as any[]).map((a) => {
        const t = constText(a) ?? '';
        return quote && !/^[a-z_][a-z0-9_]*$/.test(t) ? `"${t.replaceAll('"', '""')}"` : t;
      }).join(', ');
      return { name, value: vals, local };
    }
    case 'VAR_SET_CURRENT':
      return { name: String(n.name ?? '').toLowerCase(), value: 'FROM CURRENT', local };
    case 'VAR_SET_MULTI': {
      const vals = ((n.args ?? []) as any[]).map((a) => {
        const d = a?.DefElem;
        return d ? `${d.defname} ${constText(d.arg) ?? ''}`.trim() : '';
      }).join(', ');
      return { name: String(n.name ?? '').toLowerCase(), value: vals, local };
    }
    case 'VAR_SET_DEFAULT':
    case 'VAR_RESET':
      return { name: String(n.name ?? '').toLowerCase(), local };
    case 'VAR_RESET_ALL':
      return { name: 'all', local };
    default:
      return undefined;
  }
}

export function judgeSetting(c: Collector, s: SettingChange | undefined, reset: boolean): void {
  if (!s) return;
  if (s.name === 'role' && !reset && s.value !== 'none') c.addPrivileged(`SET ROLE ${s.value ?? ''} acts as another role`);
  if (s.name === 'session_authorization' && !reset) c.addPrivileged(`SET SESSION AUTHORIZATION ${s.value ?? ''} becomes another user`);
}

export function dropObjectName(obj: any): RelationName | undefined {
  return qualifiedName(stringList(obj?.List?.items));
}
