import type { Logger } from 'pino';
import { analyzeCached, analyzeQueryCached, factsShape } from '../../analyzer/index.js';
import type { Analysis, StatementFacts } from '../../analyzer/types.js';
import { evaluate } from '../../governance/policy/evaluate.js';
import type { CompiledPolicy } from '../../governance/policy/compile.js';
import type { Decision, StatementsInput, StateFacts, WireError } from '../../governance/policy/types.js';
import type { Principal } from '../../governance/principal.js';
import { needsState } from '../../governance/state/policy-state.js';
import type { BoundParams } from '../../governance/state/policy-state.js';
import type { BoundValue, RowEstimate } from '../../governance/state/explain.js';
import type { ImpactSummary } from '../../governance/audit/types.js';
import type { BoundParameters } from '../../governance/approvals/params.js';
import type { PgErrorFields } from '../errors.js';
import type { GateVerdict, SessionGate, SessionInfo } from '../session.js';
import { noticeResponse } from '../wire/encode.js';
import { readCString } from '../wire/framer.js';
import { Backend, Frontend, TxStatus } from '../wire/protocol.js';
import { SessionState } from './session-state.js';

/** One statement string on its way through the gate, with everything later stages need. */
export interface GatedStatement {
  readonly sql: string;
  readonly analysis: Analysis;
  readonly decision: Decision;
  /** 'Q' simple query, 'P' extended Parse, 'F' FunctionCall. */
  readonly via: 'query' | 'parse' | 'function-call';
  /** Statement name for Parse ('' unnamed). */
  readonly statementName?: string;
  /** Real-state facts the policy used, per top-level statement (for the audit record); absent when it used none. */
  readonly impact?: readonly (ImpactSummary | undefined)[];
  /** An execution decided with its Bind's values (see decideExecution): those values, as sent (a hold binds them). */
  readonly params?: BoundParameters;
}

/**
 * What the gate asks of the rest of governance, per decided statement. Each returns a verdict
 * synchronously where it can (the hot path for reads) or a promise (write-ahead audit of a
 * change, waiting for an approval).
 */
export interface GateServices {
  /**
   * Decision made; returns the final verdict (may upgrade a hold to allow when an approval exists).
   * `execution`: the statement runs as soon as it is forwarded (a Query, or an Execute of a prepared
   * statement); false (or absent) for a Parse, which only prepares it.
   */
  onDecision?(ctx: GateContext, stmt: GatedStatement, execution?: boolean): GateVerdict | Promise<GateVerdict> | undefined;
  /** The first Execute of a statement decided at its Parse is about to be forwarded (e.g. a COMMIT prepared earlier). */
  onFirstExecute?(ctx: GateContext, stmt: GatedStatement): GateVerdict | Promise<GateVerdict> | undefined;
  /** A statement's outcome is known (CommandComplete / ErrorResponse ... ReadyForQuery). */
  onOutcome?(ctx: GateContext, outcome: StatementOutcomeEvent): void;
  /** Live facts for the policy (catalog snapshot, usage, expected schema); undefined: none needed. */
  prepareState?(ctx: GateContext, statements: readonly StatementFacts[]): PreparedState | Promise<PreparedState> | undefined;
  /** A statement was refused because the session's expected schema is stale. */
  onStale?(ctx: GateContext, sql: string, detail: string): void;
  onSessionEnd?(ctx: GateContext): void;
  /** DDL this session forwarded has taken effect (autocommit) or its transaction ended (after onOutcome of it). */
  onDdlDone?(ctx: GateContext): void;
}

export interface PreparedState {
  readonly state?: StateFacts;
  readonly stale?: { readonly detail: string; readonly liveSchemaHash: string };
  /** EXPLAIN for one DML statement (see governance/state/policy-state.ts); asked only when a rule needs it. */
  readonly estimateRows?: (statement: StatementFacts, params?: BoundParams) => Promise<RowEstimate>;
  /** The impact facts of one statement, for its audit record; asked only when the policy consulted the state. */
  readonly impactOf?: (statement: StatementFacts, estimatedRows?: number) => ImpactSummary;
}

export interface StatementOutcomeEvent {
  readonly stmt: GatedStatement;
  readonly commandTags: readonly string[];
  readonly error?: { readonly sqlstate: string; readonly message: string };
  readonly durationMs: number;
}

export interface GateContext {
  readonly info: SessionInfo;
  readonly principal: Principal;
  readonly state: SessionState;
  readonly log: Logger;
  readonly serverVersion: () => number;
  readonly txStatus: () => number;
  /**
   * True only when the session is known to be inside an explicit transaction block ('T') at this point of
   * the stream: the last ReadyForQuery said so and every statement sent since has been answered (so no
   * COMMIT or ROLLBACK can be in flight). False in pipelines, where the status is not known.
   */
  readonly inTransactionBlock: () => boolean;
  /** Counts transactions: grows each time the server reports the session idle (outside any block). */
  readonly transactionEpoch: () => number;
  /** Sends a NoticeResponse to the client now (e.g. "held for approval as change X"). */
  notify(notice: PgErrorFields): void;
  /** A signal for one wait; aborted when the client cancels (CancelRequest) or disconnects. */
  waitSignal(): AbortSignal;
  /** Which front door: the wire proxy, or MCP (which never blocks on a hold: wait becomes defer). */
  readonly frontDoor: 'wire' | 'mcp';
}

/** The parts of the wire session the gate uses. */
export interface GatedSession {
  readonly serverVersionNum: number;
  readonly txStatus: number;
  sendToClient(...messages: Buffer[]): void;
}

export interface GateDeps {
  /** Longer statement strings are refused before parsing (default: no limit). */
  readonly maxStatementBytes?: number;
  readonly policy: () => CompiledPolicy;
  readonly environment: string;
  readonly services?: GateServices;
  /**
   * DDL this session sent has taken effect (or was rolled back): the server has reported the session idle,
   * outside any transaction block, since the DDL was forwarded. The catalog refreshes then (not at forward
   * time, when a long DDL or an open transaction would hide the change from the refresh).
   */
  readonly onDdlDone?: (ctx: GateContext) => void;
}

export function wireErrorToPg(e: WireError): PgErrorFields {
  return { code: e.sqlstate, message: e.message, detail: e.detail || undefined, hint: e.hint, position: e.position };
}


/** FunctionCall carries no SQL: it is judged as an opaque statement (agents are refused by default). */
const FUNCTION_CALL_FACTS = (text: string): StatementFacts => ({
  index: 0,
  byteStart: 0,
  byteEnd: 0,
  text,
  location: { byte: 0, char: 0 },
  node: 'FunctionCall',
  kind: 'utility',
  commandTag: 'FUNCTION CALL',
  relations: [],
  functions: [],
  types: [],
  schemas: [],
  databases: [],
  roles: [],
  locks: [],
  destructive: [],
  opaque: ['the legacy FunctionCall protocol message calls a function by OID, bypassing SQL'],
  privileged: ['the legacy FunctionCall protocol message (fast-path function call) bypasses SQL analysis'],
  nested: [],
  findings: [],
  fingerprint: '',
  normalized: text,
});

/**
 * The policy gate of one governed session: analyses every statement (simple Query, Parse,
 * FunctionCall), evaluates the policy, and forwards or refuses. Bind/Execute/Describe/Sync of
 * statements decided at Parse pass through: the server itself refuses to execute a statement whose
 * Parse failed, and the refused Parse is replaced by a failing stand-in (Session.refuse).
 */
export class GovernedGate implements SessionGate {
  readonly ctx: GateContext;
  private readonly abortWait: () => void;
  /** Prepared statements (protocol level) by name, and the portals bound from them. */
  private readonly statements = new Map<string, PreparedEntry>();
  private readonly portals = new Map<string, PreparedEntry>();
  /** Bind values of portals whose statement is decided per execution (the planner's estimate, or a hold, needs them). */
  private readonly portalParams = new Map<string, BindValues>();
  /** DDL was forwarded and the server has not reported the session idle since (see GateDeps.onDdlDone). */
  private ddlPending = false;
  /** Executions are governed one by one only when there is a decision path to record them. */
  private readonly tracksExecutions: boolean;
  /** Statements forwarded and not yet answered, oldest first (outcomes are matched in order). */
  private readonly inFlight: { stmt: GatedStatement; started: number; tags: string[]; error?: { sqlstate: string; message: string } }[] = [];
  /** The last decision per statement shape, with what it was decided under (see evaluate()). */
  private readonly decisions = new WeakMap<object, { policy: CompiledPolicy; searchPath: readonly string[] | undefined; user: string; decision: Decision }>();
  /**
   * Transaction status tracking for GateContext.inTransactionBlock: sync points (Query, Sync, FunctionCall)
   * sent and ReadyForQuery received, the ReadyForQuery that answers the latest execution, the last status.
   */
  private syncsSent = 0;
  private readysSeen = 0;
  private answeredBy = 0;
  private lastStatus: number = TxStatus.Idle;
  private epoch = 0;
  private knownInBlock = false;

  constructor(
    info: SessionInfo,
    principal: Principal,
    log: Logger,
    session: GatedSession,
    private readonly deps: GateDeps,
    frontDoor: 'wire' | 'mcp' = 'wire',
  ) {
    this.tracksExecutions = deps.services?.onDecision !== undefined;
    let waiting: AbortController | undefined;
    this.abortWait = () => waiting?.abort();
    this.ctx = {
      info,
      principal,
      state: new SessionState(info.params),
      log: log.child({ principal: principal.name }),
      serverVersion: () => session.serverVersionNum || 180000,
      txStatus: () => session.txStatus,
      inTransactionBlock: () => this.knownInBlock,
      transactionEpoch: () => this.epoch,
      notify: (n) => session.sendToClient(noticeResponse(n)),
      waitSignal: () => {
        waiting = new AbortController();
        return waiting.signal;
      },
      frontDoor,
    };
  }

  onClientMessage(type: number, buf: Buffer, start: number, end: number): GateVerdict | Promise<GateVerdict> | undefined {
    this.knownInBlock = this.lastStatus === TxStatus.InBlock && this.readysSeen === this.syncsSent && this.readysSeen >= this.answeredBy;
    if (type === Frontend.Query || type === Frontend.FunctionCall) this.answeredBy = ++this.syncsSent;
    else if (type === Frontend.Sync) this.syncsSent++;
    else if (type === Frontend.Execute) this.answeredBy = this.syncsSent + 1;
    switch (type) {
      case Frontend.Query: {
        const sql = buf.toString('utf8', start + 5, end - 1);
        return this.decide(sql, 'query');
      }
      case Frontend.Parse: {
        const [name, next] = readCString(buf, start + 5, end);
        const [sql, after] = readCString(buf, next, end);
        return this.decide(sql, 'parse', name, readParamTypes(buf, after, end));
      }
      case Frontend.FunctionCall:
        return this.decideFunctionCall(buf.readInt32BE(start + 5));
      case Frontend.Bind: {
        if (!this.tracksExecutions) return undefined;
        const [portal, next] = readCString(buf, start + 5, end);
        const [statement, after] = readCString(buf, next, end);
        const entry = this.statements.get(statement);
        if (entry) this.portals.set(portal, entry);
        else this.portals.delete(portal);
        // Only executions decided with their Bind values keep them (copied: the buffer is reused).
        if (entry?.deferred) this.portalParams.set(portal, readBindValues(buf, after, end, entry.deferred.paramTypes));
        else this.portalParams.delete(portal);
        return undefined;
      }
      case Frontend.Execute: {
        if (!this.tracksExecutions) return undefined;
        const [portal] = readCString(buf, start + 5, end);
        return this.onExecute(portal);
      }
      case Frontend.Close: {
        const [name] = readCString(buf, start + 6, end);
        if (buf[start + 5] === 0x53 /* S */) this.statements.delete(name);
        else {
          this.portals.delete(name);
          this.portalParams.delete(name);
        }
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /**
   * Each execution of a prepared statement is its own governed statement: it was decided at Parse,
   * but it changes data again each time, so it gets its own (write-ahead) audit record, and a held
   * statement needs a fresh approval per run (an approval runs at most once). The first Execute
   * after its Parse is covered by the Parse's record.
   */
  private onExecute(portal: string): GateVerdict | Promise<GateVerdict> | undefined {
    const entry = this.portals.get(portal);
    if (!entry) return undefined;
    if (!entry.readOnly && this.deps.onDdlDone && changesSchema(entry.stmt)) this.ddlPending = true;
    if (entry.deferred) {
      entry.fresh = false;
      return this.decideExecution(entry, this.portalParams.get(portal));
    }
    let verdict: GateVerdict | Promise<GateVerdict> | undefined;
    if (entry.fresh) {
      entry.fresh = false;
      verdict = entry.readOnly ? undefined : this.deps.services?.onFirstExecute?.(this.ctx, entry.stmt);
    } else {
      // Re-running a read changes nothing: its Parse's decision record covers every execution (the
      // hot path of prepared workloads). Changes are governed and recorded per execution.
      if (entry.readOnly) return undefined;
      verdict = this.deps.services!.onDecision!(this.ctx, entry.stmt, true);
    }
    if (verdict instanceof Promise) return verdict.then((v) => this.trackExecution(entry.stmt, v) ?? FORWARD);
    return this.trackExecution(entry.stmt, verdict);
  }

  /** An execution that goes ahead: its outcome is matched to its own CommandComplete (completeHead). */
  private trackExecution(stmt: GatedStatement, verdict: GateVerdict | undefined): GateVerdict | undefined {
    if (verdict === undefined || verdict.action === 'forward') this.inFlight.push({ stmt, started: performance.now(), tags: [] });
    return verdict;
  }

  /**
   * Decides one statement string: analysis, policy, then the services (audit, approvals).
   * Public so other front doors (MCP) take exactly the wire's decision path.
   */
  decide(sql: string, via: 'query' | 'parse', statementName?: string, paramTypes: readonly number[] = NO_TYPES): GateVerdict | Promise<GateVerdict> | undefined {
    const ctx = this.ctx;
    const max = this.deps.maxStatementBytes;
    if (max !== undefined && sql.length > max / 3 && Buffer.byteLength(sql) > max) {
      return {
        action: 'refuse',
        error: {
          code: '54000',
          message: `pgairlock: statement of ${Buffer.byteLength(sql)} bytes is longer than analyzer.max_statement_bytes (${max})`,
          hint: 'Split it into smaller statements, or raise analyzer.max_statement_bytes in pgairlock.yaml.',
        },
      };
    }
    const inBlock = ctx.txStatus() !== TxStatus.Idle;
    const options = { serverVersion: ctx.serverVersion(), context: ctx.state.scriptContext(inBlock) };
    // Simple-protocol strings carry their values inline: reuse the facts of an earlier text of the same
    // shape, but never for statements whose decision takes live state (which may depend on the values).
    const analysis = via === 'query' && ctx.state.expectSchema === undefined ? analyzeQueryCached(sql, options, reusable) : analyzeCached(sql, options);
    const statements: StatementsInput = analysis.ok ? analysis.statements : { parseError: analysis.error };
    const prepared = analysis.ok ? this.deps.services?.prepareState?.(ctx, analysis.statements) : undefined;
    const go = (p: PreparedState | undefined): GateVerdict | Promise<GateVerdict> | undefined => {
      if (p?.stale) return this.staleRefusal(sql, p.stale);
      const probe = p?.state ? stateProbe(p.state) : undefined;
      const decision = this.evaluate(statements, probe?.state ?? p?.state);
      if (via === 'parse' && this.tracksExecutions && analysis.ok && decision.effect === 'hold' && mayHaveParams(sql, paramTypes)) {
        // An approval binds the values that run (docs/approvals.md, "What an approval covers"), and a Parse has
        // none yet: it runs nothing, so it goes on, and each execution is decided (and held) at its Execute.
        return this.settle({ sql, analysis, decision, via, statementName }, undefined, { paramTypes });
      }
      if (!probe || !analysis.ok) return this.finish({ sql, analysis, decision, via, statementName });
      if (probe.asked.length === 0 || !p!.estimateRows) return this.finish({ sql, analysis, decision, via, statementName, ...impactFor(p!, probe, analysis.statements) });
      if (via === 'parse' && this.tracksExecutions) {
        // A rule needs the planner's estimate, which depends on the Bind values: nothing runs at Parse, so
        // each execution is decided (and audited) at its Execute, with its own parameters.
        return this.settle({ sql, analysis, decision, via, statementName }, undefined, { paramTypes });
      }
      return this.withEstimates(analysis.statements, p!, probe.asked, undefined).then((est) => {
        const judged = est.judge((st) => this.evaluate(statements, st));
        return this.finish({ sql, analysis, decision: judged, via, statementName, ...impactFor(p!, probe, analysis.statements, est.byIndex) }) ?? FORWARD;
      });
    };
    if (prepared instanceof Promise) {
      return prepared.then(
        (p) => go(p),
        (err: unknown) => {
          // State unknown: the policy's state conditions fail closed for deny and hold rules.
          ctx.log.warn({ err }, 'real state unavailable for this statement');
          return go(undefined);
        },
      ).then((v) => v ?? FORWARD);
    }
    return go(prepared);
  }

  private staleRefusal(sql: string, stale: NonNullable<PreparedState['stale']>): GateVerdict {
    this.deps.services?.onStale?.(this.ctx, sql, stale.detail);
    return {
      action: 'refuse',
      error: {
        code: '42501',
        message: 'pgairlock: the live schema differs from the one this session expects (pgairlock.expect_schema) for the objects this statement touches',
        detail: stale.detail,
        hint: `Review the changes, then declare the live version: SET pgairlock.expect_schema = '${stale.liveSchemaHash}';`,
      },
    };
  }

  /**
   * Runs EXPLAIN for the statements a rule asked about (top-level DML only: a nested statement cannot be
   * planned alone), in parallel. Failures are kept as the reason the estimate is unknown (fail closed).
   */
  private async withEstimates(statements: readonly StatementFacts[], p: PreparedState, asked: readonly StatementFacts[], params: BoundParams | undefined): Promise<Estimates> {
    const known = new Map<StatementFacts, number>();
    const failed = new Map<StatementFacts, string>();
    await Promise.all(
      asked.map(async (f) => {
        if (f.kind !== 'write' || !statements.includes(f)) {
          failed.set(f, `the planner's estimate is taken for top-level INSERT, UPDATE, DELETE and MERGE statements only, not for this ${f.commandTag}`);
          return;
        }
        try {
          known.set(f, (await p.estimateRows!(f, params)).rows);
        } catch (err) {
          const e = err as { code?: string; message?: string };
          this.ctx.log.warn({ err: e.message, sqlstate: e.code }, 'row estimate (EXPLAIN) failed');
          failed.set(f, `EXPLAIN failed on pgairlock's service connection${e.code ? ` (SQLSTATE ${e.code})` : ''}: ${e.message ?? String(err)}`);
        }
      }),
    );
    const byIndex = new Map<number, number>();
    statements.forEach((f, i) => {
      const n = known.get(f);
      if (n !== undefined) byIndex.set(i, n);
    });
    const base = p.state!;
    const state: StateFacts = {
      relation: (name) => base.relation(name),
      ...(base.drift !== undefined ? { drift: base.drift } : {}),
      estimatedRows: (f) => known.get(f),
      estimateError: (f) => failed.get(f),
    };
    return {
      byIndex,
      judge: (evaluate) => {
        const d = evaluate(state);
        if (d.effect === 'allow' || failed.size === 0) return d;
        const hint = 'The row estimate is EXPLAIN (without ANALYZE) run as pgairlock\'s service user with the session\'s search_path: check the statement, or that this user may plan it.';
        return { ...d, error: { ...d.error, hint: d.error.hint ? `${d.error.hint} ${hint}` : hint } };
      },
    };
  }

  /**
   * One execution of a prepared statement whose policy needs the planner's estimate: judged now with this
   * Bind's values and the current state, then audited and approved like any statement (per execution).
   */
  private async decideExecution(entry: PreparedEntry, bind: BindValues | undefined): Promise<GateVerdict> {
    const params = bind?.params;
    const ctx = this.ctx;
    const { sql, analysis } = entry.stmt;
    if (!analysis.ok) return FORWARD;
    const statements = analysis.statements;
    let p: PreparedState | undefined;
    try {
      p = await this.deps.services?.prepareState?.(ctx, statements);
    } catch (err) {
      ctx.log.warn({ err }, 'real state unavailable for this statement');
    }
    if (p?.stale) return this.staleRefusal(sql, p.stale);
    let estimates: ReadonlyMap<number, number> | undefined;
    const probe = p?.state ? stateProbe(p.state) : undefined;
    let decision = this.evaluate(statements, probe?.state ?? p?.state);
    if (probe && probe.asked.length > 0 && p!.estimateRows) {
      const est = await this.withEstimates(statements, p!, probe.asked, params ?? { values: [], types: entry.deferred?.paramTypes ?? NO_TYPES });
      decision = est.judge((st) => this.evaluate(statements, st));
      estimates = est.byIndex;
    }
    const stmt: GatedStatement = { ...entry.stmt, decision, ...(probe ? impactFor(p!, probe, statements, estimates) : {}), ...(bind ? { params: bind.bound } : {}) };
    const services = this.deps.services!;
    const verdict = await (services.onDecision ? services.onDecision(ctx, stmt, true) : defaultVerdict(decision));
    return this.trackExecution(stmt, verdict) ?? FORWARD;
  }

  private decideFunctionCall(oid: number): GateVerdict | Promise<GateVerdict> | undefined {
    const text = `/* FunctionCall message: function oid ${oid} */`;
    const facts = FUNCTION_CALL_FACTS(text);
    const decision = this.evaluate([facts], undefined);
    const analysis: Analysis = { ok: true, sql: text, statements: [facts] };
    return this.finish({ sql: text, analysis, decision, via: 'function-call' });
  }

  private evaluate(statements: StatementsInput, state: StateFacts | undefined): Decision {
    const ctx = this.ctx;
    const policy = this.deps.policy();
    const searchPath = ctx.state.searchPath;
    const user = ctx.state.effectiveRole ?? ctx.info.user;
    // evaluate() is pure: a lone statement judged without live state gets the decision of the last
    // statement of its shape (same facts but for text and positions, see factsShape) in this session,
    // as long as nothing else it reads changed: the policy, search_path and user; never for rules on
    // the clock, nor for PREPARE/EXECUTE or nested statements (they read the session's prepared ones).
    const only = state === undefined && !('parseError' in statements) && statements.length === 1 ? statements[0]! : undefined;
    const shape =
      only !== undefined && only.nested.length === 0 && only.execute === undefined && only.prepare === undefined && !clockDependent(policy)
        ? factsShape(only)
        : undefined;
    if (shape !== undefined) {
      const m = this.decisions.get(shape);
      if (m !== undefined && m.policy === policy && m.searchPath === searchPath && m.user === user) return m.decision;
    }
    const decision = evaluate(
      {
        statements,
        principal: ctx.principal,
        database: ctx.info.database,
        environment: this.deps.environment,
        now: new Date(),
        session: { searchPath, user, prepared: ctx.state.prepared },
        state,
      },
      policy,
    );
    if (shape !== undefined) this.decisions.set(shape, { policy, searchPath, user, decision });
    return decision;
  }

  private finish(stmt: GatedStatement): GateVerdict | Promise<GateVerdict> | undefined {
    const services = this.deps.services;
    const verdict = services?.onDecision ? services.onDecision(this.ctx, stmt, stmt.via !== 'parse') : defaultVerdict(stmt.decision);
    if (verdict instanceof Promise) return verdict.then((v) => this.settle(stmt, v) ?? FORWARD);
    return this.settle(stmt, verdict);
  }

  private settle(stmt: GatedStatement, verdict: GateVerdict | undefined, deferred?: PreparedEntry['deferred']): GateVerdict | undefined {
    if (verdict === undefined || verdict.action === 'forward') {
      if (stmt.analysis.ok) this.ctx.state.apply(stmt.analysis.statements);
      if (this.deps.onDdlDone && changesSchema(stmt)) this.ddlPending = true;
      if (stmt.via === 'parse') {
        if (this.tracksExecutions) this.statements.set(stmt.statementName ?? '', { stmt, fresh: true, readOnly: isReadOnly(stmt), ...(deferred ? { deferred } : {}) });
      } else if (this.deps.services?.onOutcome) {
        this.inFlight.push({ stmt, started: performance.now(), tags: [] });
      }
    }
    return verdict;
  }

  onServerMessage(type: number, buf: Buffer, start: number, end: number): void {
    if (type === Backend.ReadyForQuery) {
      this.readysSeen++;
      this.lastStatus = buf[start + 5]!;
      if (this.lastStatus === TxStatus.Idle) this.epoch++;
    }
    this.followServerMessage(type, buf, start, end);
    // After the outcomes of this ReadyForQuery: the DDL's outcome waits for the catalog version after it.
    if (this.ddlPending && type === Backend.ReadyForQuery && buf[start + 5] === TxStatus.Idle) this.ddlDone();
  }

  private ddlDone(): void {
    this.ddlPending = false;
    this.deps.onDdlDone?.(this.ctx);
    this.deps.services?.onDdlDone?.(this.ctx);
  }

  private followServerMessage(type: number, buf: Buffer, start: number, end: number): void {
    const head = this.inFlight[0];
    if (!head) return;
    if (type === Backend.CommandComplete) {
      head.tags.push(buf.toString('utf8', start + 5, end - 1));
      if (head.stmt.via === 'parse') this.completeHead();
    } else if (type === Backend.ErrorResponse) {
      head.error = readError(buf, start, end);
      if (head.stmt.via === 'parse') this.completeHead();
    } else if (type === Backend.EmptyQueryResponse || type === Backend.PortalSuspended) {
      if (head.stmt.via === 'parse') this.completeHead();
    } else if (type === Backend.ReadyForQuery) {
      this.completeOutcomes();
    }
  }

  /** An Execute is answered by its own CommandComplete (or error, or suspension). */
  private completeHead(): void {
    const f = this.inFlight.shift()!;
    this.deps.services?.onOutcome?.(this.ctx, { stmt: f.stmt, commandTags: f.tags, error: f.error, durationMs: performance.now() - f.started });
  }

  /**
   * Everything forwarded so far has been answered: a simple Query ends at its ReadyForQuery, an
   * extended statement at the Sync's. Front doors without a wire (MCP) call it with the result.
   */
  completeOutcomes(result?: { commandTags: readonly string[]; error?: { sqlstate: string; message: string } }): void {
    const done = this.inFlight.splice(0, this.inFlight.length);
    const now = performance.now();
    for (const f of done) {
      const tags = result ? [...result.commandTags] : f.tags;
      const error = result ? result.error : f.error;
      this.deps.services?.onOutcome?.(this.ctx, { stmt: f.stmt, commandTags: tags, error, durationMs: now - f.started });
    }
    // Front doors without a wire run each string on its own autocommit connection: done means visible.
    if (result && this.ddlPending) this.ddlDone();
  }

  /** A valid CancelRequest for this session: a statement waiting for approval stops waiting. */
  onCancel(): void {
    this.abortWait();
  }

  onClose(): void {
    this.abortWait();
    this.deps.services?.onSessionEnd?.(this.ctx);
  }
}

const FORWARD: GateVerdict = { action: 'forward' };

/** Facts a literal template may serve: those the policy judges without live state. */
const reusable = (f: StatementFacts): boolean => !needsState([f]);

const clocked = new WeakMap<CompiledPolicy, boolean>();
/** True when some rule's verdict depends on the time (during/outside windows). */
function clockDependent(policy: CompiledPolicy): boolean {
  let c = clocked.get(policy);
  if (c === undefined) clocked.set(policy, (c = policy.rules.some((r) => r.timeDependent)));
  return c;
}

interface PreparedEntry {
  readonly stmt: GatedStatement;
  /** Not executed yet since its Parse (whose decision record covers the first run). */
  fresh: boolean;
  readonly readOnly: boolean;
  /** Decided at each Execute with its Bind values (a rule needs the planner's estimate, or a hold binds them); Parse's types. */
  readonly deferred?: { readonly paramTypes: readonly number[] };
}

const NO_TYPES: readonly number[] = Object.freeze([]);

interface Estimates {
  /** Estimates by top-level statement index (for the audit record). */
  readonly byIndex: ReadonlyMap<number, number>;
  /** Evaluates with the estimates known; a refusal caused by a failed EXPLAIN gets a hint saying so. */
  judge(evaluate: (state: StateFacts) => Decision): Decision;
}

interface StateProbe {
  readonly state: StateFacts;
  /** Statements a rule asked the planner's estimate of (answered: unknown, until estimated). */
  readonly asked: StatementFacts[];
  /** Some condition read the live state (the decision depends on it: its audit record keeps the impact). */
  used: boolean;
}

/** The state as is, noting whether the policy read it and which row estimates it asked for. */
function stateProbe(base: StateFacts): StateProbe {
  const probe: StateProbe = {
    asked: [],
    used: false,
    state: {
      relation: (name) => {
        probe.used = true;
        return base.relation(name);
      },
      estimatedRows: (f) => {
        probe.used = true;
        if (!probe.asked.includes(f)) probe.asked.push(f);
        return undefined;
      },
    },
  };
  if (base.drift !== undefined) {
    const drift = base.drift;
    Object.defineProperty(probe.state, 'drift', {
      enumerable: true,
      get: () => {
        probe.used = true;
        return drift;
      },
    });
  }
  return probe;
}

/** The audit's impact facts per statement, when the decision read the live state. */
function impactFor(p: PreparedState, probe: StateProbe, statements: readonly StatementFacts[], estimates?: ReadonlyMap<number, number>): { impact?: readonly (ImpactSummary | undefined)[] } {
  if (!probe.used || !p.impactOf) return {};
  return { impact: statements.map((f, i) => p.impactOf!(f, estimates?.get(i))) };
}

/**
 * A Parse whose executions may carry values: declared parameter types, or `$n` in the text. A `$1` inside a
 * literal only means the statement is decided at its Execute, where a Bind without values binds the text alone.
 */
function mayHaveParams(sql: string, paramTypes: readonly number[]): boolean {
  return paramTypes.length > 0 || /\$[0-9]/.test(sql);
}

/** Parse's parameter type OIDs (int16 count, then int32 each; 0 = unspecified). */
function readParamTypes(buf: Buffer, off: number, end: number): readonly number[] {
  if (off + 2 > end) return NO_TYPES;
  const n = buf.readInt16BE(off);
  if (n <= 0) return NO_TYPES;
  const out: number[] = [];
  for (let i = 0, p = off + 2; i < n && p + 4 <= end; i++, p += 4) out.push(buf.readUInt32BE(p));
  return out;
}

/** One Bind's values: for the planner's estimate, and as sent (raw bytes, per-value formats) for an approval. */
interface BindValues {
  readonly params: BoundParams;
  readonly bound: BoundParameters;
}

/**
 * Bind's parameter values (after the portal and statement names): for EXPLAIN text as strings, binary as
 * Buffers, NULL as null; and each value's raw bytes and format (an approval binds the bytes, not a decoding).
 */
function readBindValues(buf: Buffer, off: number, end: number, types: readonly number[]): BindValues {
  const nFormats = buf.readInt16BE(off);
  const codes: number[] = [];
  let p = off + 2;
  for (let i = 0; i < nFormats; i++, p += 2) codes.push(buf.readInt16BE(p));
  const n = buf.readInt16BE(p);
  p += 2;
  const out: BoundValue[] = [];
  const raw: (Buffer | null)[] = [];
  const formats: number[] = [];
  for (let i = 0; i < n && p + 4 <= end; i++) {
    const len = buf.readInt32BE(p);
    p += 4;
    const format = nFormats === 0 ? 0 : (nFormats === 1 ? codes[0]! : (codes[i] ?? 0));
    formats.push(format);
    if (len < 0) {
      out.push(null);
      raw.push(null);
      continue;
    }
    const bytes = Buffer.from(buf.subarray(p, p + len));
    raw.push(bytes);
    out.push(format === 1 ? bytes : bytes.toString('utf8'));
    p += len;
  }
  return { params: { values: out, types }, bound: { values: raw, formats, types } };
}

/** DDL, at top level or nested (a DO block, a function body run by the statement). */
function changesSchema(stmt: GatedStatement): boolean {
  if (!stmt.analysis.ok) return false;
  const walk = (fs: readonly StatementFacts[], depth: number): boolean => depth < 8 && fs.some((f) => f.kind === 'ddl' || walk(f.nested, depth + 1));
  return walk(stmt.analysis.statements, 0);
}

/** Plain reads: nothing nested, nothing opaque, nothing privileged. */
function isReadOnly(stmt: GatedStatement): boolean {
  return stmt.analysis.ok && stmt.analysis.statements.every((f) => f.kind === 'read' && f.nested.length === 0 && f.opaque.length === 0 && f.privileged.length === 0);
}

/** Without approvals wired in, a hold is refused with a message saying it needs approval. */
export function defaultVerdict(d: Decision): GateVerdict | undefined {
  if (d.effect === 'allow') return undefined;
  return { action: 'refuse', error: wireErrorToPg(d.error) };
}

function readError(buf: Buffer, start: number, end: number): { sqlstate: string; message: string } {
  let sqlstate = '';
  let message = '';
  let off = start + 5;
  while (off < end && buf[off] !== 0) {
    const field = buf[off]!;
    const [value, next] = readCString(buf, off + 1, end);
    if (field === 0x43) sqlstate = value;
    else if (field === 0x4d) message = value;
    off = next;
  }
  return { sqlstate, message };
}
