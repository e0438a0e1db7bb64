/* eslint-disable @typescript-eslint/no-explicit-any -- libpg_query's JSON AST is walked dynamically (see collector.ts) */
/**
 * Code that runs inside the server: CREATE/ALTER FUNCTION and PROCEDURE, DO, CALL, triggers, event
 * triggers and rules. Bodies are analysed into nested facts (plpgsql.ts); what runs now (DO) is folded
 * into the statement, what fires later without being visible (rules) propagates its warnings.
 */
import { UNTRUSTED_LANGUAGES } from './functions.js';
import { constText, objectWord, qualifiedName, quoteIdent, quoteRelation, rangeVarName, stringList, typeNameText } from './names.js';
import { analyzePlpgsqlBody, analyzeSqlBody } from './plpgsql.js';
import { hasOption, optionValue, r, stored, type Handler } from './statement-kit.js';
import type { StatementKind } from './types.js';

export const ROUTINE_STATEMENTS: Record<string, Handler> = {
  CreateFunctionStmt: (c, n, env) => {
    const parts = stringList(n.funcname);
    const fn = qualifiedName(parts);
    const what = n.is_procedure ? 'PROCEDURE' : 'FUNCTION';
    const lang = String(constText(optionValue(n.options, 'language')) ?? 'sql').toLowerCase();
    if (hasOption(n.options, 'security')) c.addPrivileged(`SECURITY DEFINER ${what.toLowerCase()} ${parts.join('.')} runs with its owner's rights`);
    if (UNTRUSTED_LANGUAGES.has(lang)) c.addPrivileged(`${what.toLowerCase()} in untrusted language ${lang} runs outside the database sandbox`);
    stored(c, () => {
      for (const p of (n.parameters ?? []) as any[]) c.walk(p, undefined);
      c.walk(n.returnType, undefined);
    });
    const as = optionValue(n.options, 'as');
    const bodyItems = as?.List?.items as any[] | undefined;
    if (n.sql_body) {
      analyzeSqlBody(c, n.sql_body, env);
    } else if (lang === 'plpgsql') {
      analyzePlpgsqlBody(c, env.text, false, env);
    } else if (lang === 'sql' && bodyItems?.[0]?.String) {
      const res = env.textFacts(String(bodyItems[0].String.sval));
      if (res.ok) for (const f of res.statements) c.addNested(f);
      else c.addOpaque(`SQL function body does not parse: ${res.message}`);
    } else if (lang !== 'internal' && lang !== 'c') {
      c.addOpaque(`${what.toLowerCase()} body in language ${lang} cannot be analysed`);
    } else {
      c.addOpaque(`${what.toLowerCase()} implemented in ${lang} code`);
    }
    // Whatever the body does happens when it is called (and is judged then); what makes the CREATE itself
    // opaque is a body whose statements cannot be known from the text.
    for (const f of c.nested ?? []) for (const o of f.opaque) if (o.startsWith('dynamic SQL')) c.addOpaque(`${what.toLowerCase()} body: ${o}`);
    if (fn) c.fn(fn.schema, fn.name);
    const argTypes: string[] = [];
    for (const p of (n.parameters ?? []) as any[]) {
      const fp = p?.FunctionParameter;
      if (fp && fp.mode !== 'FUNC_PARAM_OUT' && fp.mode !== 'FUNC_PARAM_TABLE') argTypes.push(typeNameText(fp.argType) ?? '');
    }
    const inverse = fn && !n.replace ? `DROP ${what} ${parts.map(quoteIdent).join('.')}(${argTypes.join(', ')})` : undefined;
    return r('ddl', `CREATE ${what}`, inverse ? { inverse } : {});
  },
  AlterFunctionStmt: (c, n) => {
    const fn = qualifiedName(stringList(n.func?.objname));
    if (fn) c.fn(fn.schema, fn.name);
    if (hasOption(n.actions, 'security')) c.addPrivileged('ALTER FUNCTION ... SECURITY DEFINER: runs with its owner\'s rights');
    return r('ddl', `ALTER ${objectWord(n.objtype)}`);
  },
  DoStmt: (c, n, env) => {
    const lang = String(constText(optionValue(n.args, 'language')) ?? 'plpgsql').toLowerCase();
    const body = constText(optionValue(n.args, 'as'));
    if (lang !== 'plpgsql' || body === undefined) {
      c.addOpaque(`DO block in language ${lang} cannot be analysed`);
      if (UNTRUSTED_LANGUAGES.has(lang)) c.addPrivileged(`DO block in untrusted language ${lang}`);
      return r('write', 'DO');
    }
    analyzePlpgsqlBody(c, doAsFunction(body), true, env);
    let kind: StatementKind = 'write';
    for (const f of c.nested ?? []) if (f.kind === 'ddl' || f.kind === 'dcl') kind = f.kind;
    return r(kind, 'DO');
  },
  CallStmt: (c, n) => {
    const call = n.funccall;
    const parts = stringList(call?.funcname);
    const fn = qualifiedName(parts);
    if (fn) {
      c.fn(fn.schema, fn.name);
      c.addOpaque(`CALL ${parts.join('.')}(): a procedure's effect cannot be known from the text`);
    }
    c.walk(call?.args, undefined);
    c.writes = true;
    return r('write', 'CALL');
  },
  CreateTrigStmt: (c, n) => {
    const table = rangeVarName(n.relation);
    if (table) c.relation(table, 'alter', 'ShareRowExclusiveLock', 'CREATE TRIGGER takes SHARE ROW EXCLUSIVE');
    const parts = stringList(n.funcname);
    const fn = qualifiedName(parts);
    if (fn) {
      c.fn(fn.schema, fn.name);
      const safe = (fn.schema === undefined || fn.schema === 'pg_catalog') && (fn.name === 'suppress_redundant_updates_trigger' || fn.name.startsWith('tsvector_update_trigger'));
      if (!safe) c.addOpaque(`trigger runs ${parts.join('.')}() on future changes of ${table ? quoteRelation(table) : 'the table'}: its effect cannot be known from the text`);
    }
    if (table) c.addHidden(`CREATE TRIGGER: future changes of ${quoteRelation(table)} also run ${parts.join('.')}()`);
    stored(c, () => c.walk(n.whenClause, undefined));
    const tag = n.isconstraint ? 'CREATE TRIGGER' : 'CREATE TRIGGER';
    return r('ddl', tag, table && n.trigname && !n.replace ? { inverse: `DROP TRIGGER ${quoteIdent(n.trigname)} ON ${quoteRelation(table)}` } : {});
  },
  CreateEventTrigStmt: (c, n) => {
    const parts = stringList(n.funcname);
    const fn = qualifiedName(parts);
    if (fn) c.fn(fn.schema, fn.name);
    c.addPrivileged('CREATE EVENT TRIGGER runs a function on every DDL command (superuser only)');
    c.addOpaque(`event trigger runs ${parts.join('.')}()`);
    return r('ddl', 'CREATE EVENT TRIGGER');
  },
  RuleStmt: (c, n, env) => {
    const table = rangeVarName(n.relation);
    if (table) c.relation(table, 'alter', 'AccessExclusiveLock', 'CREATE RULE takes ACCESS EXCLUSIVE');
    const event = String(n.event ?? '').replace('CMD_', '');
    for (const a of (n.actions ?? []) as any[]) {
      const f = env.innerFacts(a);
      c.addNested(f);
      const prefix = `rule action (${n.instead ? 'INSTEAD of' : 'also on'} ${event}): `;
      for (const x of f.destructive) c.addDestructive(prefix + x);
      for (const x of f.privileged) c.addPrivileged(prefix + x);
      for (const x of f.opaque) c.addOpaque(prefix + x);
    }
    if (table) c.addHidden(`CREATE RULE ${n.rulename}: every future ${event} on ${quoteRelation(table)} ${n.instead ? 'is replaced by' : 'also runs'} ${(n.actions ?? []).length === 0 ? 'nothing' : 'the rule actions'}`);
    stored(c, () => c.walk(n.whereClause, undefined));
    return r('ddl', 'CREATE RULE', table && !n.replace ? { inverse: `DROP RULE ${quoteIdent(n.rulename)} ON ${quoteRelation(table)}` } : {});
  },
};

/** Wraps a DO body as a function so the PL/pgSQL parser (which parses CREATE FUNCTION) accepts it. */
function doAsFunction(body: string): string {
  let tag = '$pgairlock_do$';
  for (let i = 0; body.includes(tag) && i < 100; i++) tag = `$pgairlock_do${i}$`;
  return `CREATE FUNCTION pgairlock_do() RETURNS void LANGUAGE plpgsql AS ${tag}${body}${tag}`;
}
