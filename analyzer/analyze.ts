/**
 * analyze(sql, opts): SQL text -> one StatementFacts per statement. Pure and synchronous (after
 * loadAnalyzer()). One parse, one walk of each statement's AST; fingerprint and normalized text are
 * computed on first access (each costs about half a parse, and the hot path does not always need them).
 */
import { advanceContext, cloneScriptContext, newScriptContext } from './context.js';
import { Collector } from './collector.js';
import { fingerprint, isAscii, normalize, OffsetMap, parseSql, skipSpaceAndComments, type RawStatement } from './parser.js';
import { runRules } from './rules/index.js';
import { analyzeStatementNode, type StatementEnv, type StatementResult } from './statements.js';
import type { Analysis, AnalyzeOptions, Finding, ScriptContext, SourceLocation, StatementFacts } from './types.js';

export const DEFAULT_SERVER_VERSION = 180000;
/** Nesting limit for statements inside statements (DO -> EXECUTE'd text is opaque anyway). */
const MAX_NESTING = 6;
const EMPTY: readonly never[] = Object.freeze([]);

export function analyze(sql: string, opts: AnalyzeOptions = {}): Analysis {
  const version = opts.serverVersion ?? DEFAULT_SERVER_VERSION;
  return analyzeText(sql, version, opts.context ?? newScriptContext(), 0);
}

/**
 * Findings for one top-level statement: the migration-safety rules (analyzer/rules/) over its AST with
 * the script context as it was BEFORE the statement.
 */
function findingsFor(stmt: Record<string, unknown>, sql: string, byteStart: number, byteEnd: number, serverVersion: number, context: ScriptContext): readonly Finding[] {
  const f = runRules({ stmt, sql, byteStart, byteEnd, serverVersion, context });
  return f.length === 0 ? EMPTY : f;
}

/**
 * The analysis proper. `context` is read before and advanced after each statement; without one, no
 * findings are computed (benchmarks use that to time the walk alone).
 */
export function analyzeText(sql: string, version: number, context: ScriptContext | undefined, depth: number): Analysis {
  const parsed = parseSql(sql);
  if (!parsed.ok) return { ok: false, sql, error: parsed.error };
  return analyzeParsed(sql, parsed.stmts, version, context, depth);
}

/** analyzeText() after the parse (callers that also look at the raw tree parse once). */
export function analyzeParsed(sql: string, stmts: readonly RawStatement[], version: number, context: ScriptContext | undefined, depth: number): Analysis {
  if (stmts.length === 0) return { ok: true, sql, statements: EMPTY };
  const ascii = isAscii(sql);
  const offsets = new OffsetMap(sql, ascii);
  const total = offsets.byteLength;
  const out: StatementFacts[] = new Array<StatementFacts>(stmts.length);
  for (let i = 0; i < stmts.length; i++) {
    const raw = stmts[i]!;
    const byteStart = raw.stmt_location ?? 0;
    const byteEnd = raw.stmt_len ? byteStart + raw.stmt_len : total;
    const charStart = offsets.toChar(byteStart);
    const charEnd = offsets.toChar(byteEnd);
    const text = sql.slice(charStart, charEnd);
    const firstChar = skipSpaceAndComments(sql, charStart, charEnd);
    const location: SourceLocation = {
      char: firstChar,
      byte: ascii ? byteStart + (firstChar - charStart) : byteStart + Buffer.byteLength(sql.slice(charStart, firstChar), 'utf8'),
    };
    const findings = context ? findingsFor(raw.stmt, sql, byteStart, byteEnd, version, context) : EMPTY;
    const facts = statementFacts(raw, sql, i, byteStart, byteEnd, text, location, version, depth, findings, context);
    out[i] = facts;
    if (context) advanceContext(context, facts);
  }
  return { ok: true, sql, statements: out };
}

function statementFacts(
  raw: RawStatement, sql: string, index: number, byteStart: number, byteEnd: number, text: string, location: SourceLocation,
  version: number, depth: number, findings: readonly Finding[], context: ScriptContext | undefined,
): StatementFacts {
  let type = '';
  for (const k in raw.stmt) { type = k; break; }
  return factsOfNode(type, raw.stmt[type], { sql, index, byteStart, byteEnd, text, location, context }, version, depth, findings);
}

/**
 * Where a statement sits: `sql` is the text its AST's byte offsets point into; `context` the script
 * context before it (nested statements are judged from a copy of it).
 */
interface Placement {
  sql: string; index: number; byteStart: number; byteEnd: number; text: string; location: SourceLocation;
  context: ScriptContext | undefined;
}

function factsOfNode(type: string, node: unknown, at: Placement, version: number, depth: number, findings: readonly Finding[]): StatementFacts {
  const c = new Collector(version, depth);
  const env = new Env(at, version, depth);
  let res: StatementResult;
  try {
    res = analyzeStatementNode(c, type, node, env);
  } catch (err) {
    // A shape the analyzer did not expect must not make a statement look harmless.
    c.addOpaque(`analyzer could not understand this ${type}: ${err instanceof Error ? err.message : String(err)}`);
    res = { kind: 'utility', tag: type.replace('Stmt', '').toUpperCase() };
  }
  return build(c, type, res, at, findings);
}

/** How a statement handler analyses what is inside it (a class: no closures per statement). */
class Env implements StatementEnv {
  constructor(private readonly at: Placement, private readonly version: number, private readonly depth: number) {}
  get text(): string { return this.at.text; }
  private contextCopy(): ScriptContext {
    return this.at.context ? cloneScriptContext(this.at.context) : newScriptContext();
  }
  innerFacts(wrapper: Record<string, unknown>): StatementFacts {
    let t = '';
    for (const k in wrapper) { t = k; break; }
    if (this.depth + 1 > MAX_NESTING) return tooDeep(t, this.at, this.version);
    // Nested statements get findings too (from a copy of the context before the outer statement), so wrapping a
    // statement (PREPARE, a rule action, EXPLAIN ANALYZE) does not hide what the rules would say of it.
    const at = this.at;
    const findings = findingsFor(wrapper, at.sql, at.byteStart, at.byteEnd, this.version, this.contextCopy());
    return factsOfNode(t, wrapper[t], at, this.version, this.depth + 1, findings);
  }
  textFacts(inner: string): { ok: true; statements: readonly StatementFacts[] } | { ok: false; message: string } {
    if (this.depth + 1 > MAX_NESTING) return { ok: false, message: 'statements nested too deeply to analyse' };
    // Bodies (DO, functions) are texts of their own: findings positioned in `inner`.
    const a = analyzeText(inner, this.version, this.contextCopy(), this.depth + 1);
    return a.ok ? { ok: true, statements: a.statements } : { ok: false, message: a.error.message };
  }
}

function tooDeep(type: string, at: Placement, version: number): StatementFacts {
  const c = new Collector(version, MAX_NESTING + 1);
  c.addOpaque('statements nested too deeply to analyse');
  return build(c, type, { kind: 'utility', tag: type.replace('Stmt', '').toUpperCase() }, at, EMPTY);
}

function build(c: Collector, type: string, res: StatementResult, at: Placement, findings: readonly Finding[]): StatementFacts {
  return new Facts(c, type, res, at, findings);
}

/**
 * StatementFacts as a class: one hidden class for every statement, and fingerprint/normalized as
 * prototype getters computed on first read (each costs about half a parse; many callers never read
 * them). toJSON() includes them, so JSON.stringify (audit records) sees every field; note that object
 * spread ({ ...facts }) copies own fields only and so drops these two.
 */
class Facts implements StatementFacts {
  readonly index: number;
  readonly byteStart: number;
  readonly byteEnd: number;
  readonly text: string;
  readonly location: SourceLocation;
  readonly node: string;
  readonly kind: StatementFacts['kind'];
  readonly commandTag: string;
  readonly relations: StatementFacts['relations'];
  readonly functions: StatementFacts['functions'];
  readonly types: readonly string[];
  readonly schemas: readonly string[];
  readonly databases: readonly string[];
  readonly roles: readonly string[];
  readonly locks: StatementFacts['locks'];
  readonly destructive: readonly string[];
  readonly opaque: readonly string[];
  readonly privileged: readonly string[];
  readonly setting: StatementFacts['setting'];
  readonly transaction: StatementFacts['transaction'];
  readonly prepare: StatementFacts['prepare'];
  readonly execute: StatementFacts['execute'];
  readonly nested: readonly StatementFacts[];
  readonly findings: readonly Finding[];
  readonly inverse: string | undefined;
  readonly hidden: readonly string[] | undefined;
  private fp: string | undefined;
  private norm: string | undefined;

  constructor(c: Collector | Facts, type: string, res: StatementResult, at: Placement, findings: readonly Finding[]) {
    if (c instanceof Facts) {
      // A copy of `c` placed in another text (see rebindFacts); one constructor keeps one hidden class.
      this.index = at.index;
      this.byteStart = at.byteStart;
      this.byteEnd = at.byteEnd;
      this.text = at.text;
      this.location = at.location;
      this.node = c.node;
      this.kind = c.kind;
      this.commandTag = c.commandTag;
      this.relations = c.relations;
      this.functions = c.functions;
      this.types = c.types;
      this.schemas = c.schemas;
      this.databases = c.databases;
      this.roles = c.roles;
      this.locks = c.locks;
      this.destructive = c.destructive;
      this.opaque = c.opaque;
      this.privileged = c.privileged;
      this.setting = c.setting;
      this.transaction = c.transaction;
      this.prepare = c.prepare;
      this.execute = c.execute;
      this.nested = c.nested;
      this.findings = c.findings;
      this.inverse = c.inverse;
      this.hidden = c.hidden;
      // The fingerprint ignores constants and positions: equal for every text the caller rebinds to.
      this.fp = c.fp;
      this.norm = undefined;
      return;
    }
    this.index = at.index;
    this.byteStart = at.byteStart;
    this.byteEnd = at.byteEnd;
    this.text = at.text;
    this.location = at.location;
    this.node = type;
    this.kind = res.kind;
    this.commandTag = res.tag;
    this.relations = c.relations();
    this.functions = c.functions();
    this.types = c.types();
    this.schemas = c.schemas();
    this.databases = c.databases();
    this.roles = c.roles();
    this.locks = c.locks();
    this.destructive = c.list(c.destructive);
    this.opaque = c.list(c.opaque);
    this.privileged = c.list(c.privileged);
    this.setting = res.setting;
    this.transaction = res.transaction;
    this.prepare = res.prepare;
    this.execute = res.execute;
    this.nested = c.nested ?? EMPTY;
    this.findings = findings;
    this.inverse = res.inverse;
    this.hidden = c.hidden;
    this.fp = undefined;
    this.norm = undefined;
  }

  get fingerprint(): string { return (this.fp ??= safely(fingerprint, this.text)); }
  get normalized(): string { return (this.norm ??= safely(normalize, this.text)); }

  toJSON(): Record<string, unknown> {
    return {
      index: this.index, byteStart: this.byteStart, byteEnd: this.byteEnd, text: this.text, location: this.location,
      node: this.node, kind: this.kind, commandTag: this.commandTag, relations: this.relations, functions: this.functions,
      types: this.types, schemas: this.schemas, databases: this.databases, roles: this.roles, locks: this.locks,
      destructive: this.destructive, opaque: this.opaque, privileged: this.privileged, setting: this.setting,
      transaction: this.transaction, prepare: this.prepare, execute: this.execute, nested: this.nested,
      findings: this.findings, fingerprint: this.fingerprint, normalized: this.normalized, inverse: this.inverse,
      hidden: this.hidden,
    };
  }
}

/**
 * The facts of `template` for another text that differs from the template's only in the values of
 * literals the analyzer does not read (analyzer/literals.ts proves that before the cache stores a
 * template): same facts, the new text and positions. Single-statement texts only.
 */
export function rebindFacts(template: StatementFacts, text: string, byteEnd: number, location: SourceLocation): StatementFacts {
  if (!(template instanceof Facts)) throw new Error('rebindFacts: not analyzer facts');
  const at: Placement = { sql: text, index: template.index, byteStart: template.byteStart, byteEnd, text, location, context: undefined };
  const f = new Facts(template, template.node, REBIND, at, template.findings);
  SHAPES.set(f, factsShape(template));
  return f;
}

/** Rebound facts -> the facts they were rebound from (outside the class: toEqual and spread see no new field). */
const SHAPES = new WeakMap<StatementFacts, object>();

/**
 * An identity shared by facts that are equal except for their text and positions: the facts themselves,
 * or for facts rebound from a literal template, the template's. Callers memoise per-statement work on it.
 */
export function factsShape(f: StatementFacts): object {
  return SHAPES.get(f) ?? f;
}

const REBIND: StatementResult = { kind: 'read', tag: '' };

function safely(fn: (s: string) => string, text: string): string {
  try { return fn(text); } catch { return ''; }
}
