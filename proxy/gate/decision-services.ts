import { requirementsFromHoldSpec, type ApprovalService, type ChangeRequest } from '../../governance/approvals/index.js';
import type { AuditLog } from '../../governance/audit/log.js';
import { isChange, summarizeFacts } from '../../governance/audit/build.js';
import { auditDecisionFromPolicy } from '../../governance/audit/from-policy.js';
import type { ApprovalRef, DecisionReceipt, DecisionSummary, RuleVerdict, SessionInfo as AuditSession } from '../../governance/audit/types.js';
import type { Decision, HoldDecision } from '../../governance/policy/types.js';
import type { StatementFacts } from '../../analyzer/types.js';
import { SqlState, type PgErrorFields } from '../errors.js';
import type { GateVerdict } from '../session.js';
import { wireErrorToPg, type GateContext, type GatedStatement, type GateServices, type StatementOutcomeEvent } from './governed-gate.js';
import { WalPositionSampler } from './wal-position-sampler.js';

/** What the decision path can reach; each part optional (no audit configured, no approvals...). */
export interface DecisionDeps {
  readonly audit?: AuditLog;
  readonly approvals?: ApprovalService;
  /** pg_current_wal_lsn() of the upstream server (a separate service connection). */
  readonly walLsn?: () => Promise<string | null>;
  /**
   * audit.wal_lsn_max_age_ms: a position whose read completed at most this long ago is reused for a change
   * about to be forwarded (WalPositionSampler). Default 0: a read per transaction or write-ahead change.
   */
  readonly walLsnMaxAgeMs?: number;
  /** How a client is told to approve a change (shown in notices and errors). */
  readonly approveHint: (changeId: string) => string;
  readonly onDdlForwarded?: (ctx: GateContext, stmt: GatedStatement) => void;
  readonly recordUse?: (ctx: GateContext, statements: readonly StatementFacts[]) => void;
  readonly prepareState?: GateServices['prepareState'];
  /** The schema version of the database's current catalog snapshot (governance/state), for DDL records. */
  readonly catalogVersion?: (database: string) => string | null;
  /** The schema version after DDL this session just reported done (CatalogState.versionAfterDdl). */
  readonly catalogVersionAfterDdl?: (database: string) => Promise<string | null>;
}

const FORWARD: GateVerdict = { action: 'forward' };

/** Audit state of one transaction of one session (see DecisionServices.allow). */
interface TxAudit {
  readonly epoch: number;
  /** Settle when the records of changes forwarded before being durable are committed. */
  pending: Promise<unknown>[];
  /** The WAL position read for the transaction's first such change. */
  lsn?: Promise<string | null>;
}

/**
 * The decision path after the policy: audit (write-ahead for changes), approvals (hold, defer,
 * wait, single use), and outcomes. Fail closed: if a change cannot be audited, or the approval
 * store cannot be read for a held statement, the statement is refused with a clear error.
 */
export class DecisionServices implements GateServices {
  /** Audit receipts of forwarded statements, per statement of the string, for their outcomes. */
  /** Outcomes of DDL waiting for the catalog version after it (onDdlDone), per session. */
  private readonly ddlOutcomes = new WeakMap<GateContext, { readonly promise: Promise<string | null>; readonly resolve: (catalogVersionAfter: string | null) => void }>();
  private readonly receipts = new WeakMap<GatedStatement, Promise<DecisionReceipt | undefined>[]>();
  private readonly transactions = new WeakMap<GateContext, TxAudit>();
  /**
   * pg_current_wal_lsn() for a change about to be forwarded: a sample at most walLsnMaxAgeMs old, read
   * before the caller asked, or the read in flight (shared): either precedes the change's commit record.
   */
  private readonly walSampler?: WalPositionSampler;

  readonly prepareState?: GateServices['prepareState'];

  constructor(private readonly deps: DecisionDeps) {
    this.prepareState = deps.prepareState;
    if (deps.walLsn) this.walSampler = new WalPositionSampler(deps.walLsn, deps.walLsnMaxAgeMs ?? 0);
  }

  onStale(ctx: GateContext, sql: string, detail: string): void {
    ctx.log.warn({ detail }, 'refused: expected schema is stale');
    this.deps.audit?.recordDrift({
      database: ctx.info.database,
      object: '(expected schema)',
      detail: `refused for ${ctx.principal.name}: ${sql.slice(0, 200)}\n${detail}`,
      sessionId: ctx.info.sessionId,
      principal: ctx.principal,
    });
  }

  onDecision(ctx: GateContext, stmt: GatedStatement, execution = false): GateVerdict | Promise<GateVerdict> | undefined {
    const d = stmt.decision;
    if (d.effect === 'allow') return this.allow(ctx, stmt, d, undefined, execution);
    if (d.effect === 'deny') {
      void this.audit(ctx, stmt, summary(d), false);
      return { action: 'refuse', error: wireErrorToPg(d.error) };
    }
    return this.hold(ctx, stmt, d);
  }

  /**
   * Allowed: the record is written, then the statement forwarded. A change is written ahead (forwarded
   * once its record is committed), except DML that runs right now inside an explicit transaction block
   * (docs/audit.md, "Guarantees"): it is forwarded at once and its record joins the transaction's pending
   * ones, which every later statement that could make the transaction's effects durable or visible
   * outside it (COMMIT, PREPARE TRANSACTION, anything but plain reads and such DML) waits for.
   */
  private allow(ctx: GateContext, stmt: GatedStatement, d: Decision, approval?: ChangeRequest, execution = true): GateVerdict | Promise<GateVerdict> | undefined {
    const audit = this.deps.audit;
    if (!audit) {
      this.afterForward(ctx, stmt);
      return undefined;
    }
    if (execution && !approval && !audit.config.strict_write_ahead && ctx.inTransactionBlock() && isDeferrable(stmt)) {
      const tx = this.transaction(ctx);
      const receipts = this.audit(ctx, stmt, summary(d), true, undefined, tx);
      this.receipts.set(stmt, receipts);
      for (const r of receipts) {
        const durable = r.then((x) => x?.durable);
        durable.catch(() => undefined); // awaited (and reported) at the barrier; the transaction may end first
        tx.pending.push(durable);
      }
      if (tx.pending.length >= 256) {
        // A long transaction: keep one promise for all of them (it rejects as soon as one does).
        const all = Promise.all(tx.pending);
        all.catch(() => undefined);
        tx.pending = [all];
      }
      this.afterForward(ctx, stmt);
      return undefined;
    }
    const tx = this.mustWait(ctx, stmt);
    if (tx) {
      return this.barrier(ctx, tx, stmt, () => this.allowWriteAhead(ctx, stmt, d, approval, execution) ?? FORWARD);
    }
    return this.allowWriteAhead(ctx, stmt, d, approval, execution);
  }

  /** Before the first Execute of a statement decided at its Parse: the same barrier as in allow(). */
  onFirstExecute(ctx: GateContext, stmt: GatedStatement): GateVerdict | Promise<GateVerdict> | undefined {
    if (!this.deps.audit) return undefined;
    const tx = this.mustWait(ctx, stmt);
    return tx ? this.barrier(ctx, tx, stmt, () => FORWARD) : undefined;
  }

  /**
   * The session's current transaction, when it has records still pending and `stmt` must wait for them.
   * Looked up, not created: most statements run outside any transaction with deferred records.
   */
  private mustWait(ctx: GateContext, stmt: GatedStatement): TxAudit | undefined {
    const tx = this.transactions.get(ctx);
    return tx && tx.epoch === ctx.transactionEpoch() && tx.pending.length > 0 && isBarrier(stmt) ? tx : undefined;
  }

  /** Waits for the transaction's pending records, then goes on; refuses `stmt` if one of them failed. */
  private barrier(ctx: GateContext, tx: TxAudit, stmt: GatedStatement, then: () => GateVerdict | Promise<GateVerdict>): Promise<GateVerdict> {
    const pending = tx.pending;
    return Promise.all(pending).then(
      () => {
        if (tx.pending === pending) tx.pending = [];
        return then();
      },
      (err: unknown) => {
        ctx.log.warn({ err }, 'audit: refused a statement because earlier changes of its transaction could not be audited');
        return { action: 'refuse' as const, error: transactionUnaudited(err, stmt) };
      },
    );
  }

  private transaction(ctx: GateContext): TxAudit {
    const epoch = ctx.transactionEpoch();
    let tx = this.transactions.get(ctx);
    if (!tx || tx.epoch !== epoch) {
      // The previous transaction ended (committed after its barrier, or rolled back): its records no longer gate anything.
      tx = { epoch, pending: [] };
      this.transactions.set(ctx, tx);
    }
    return tx;
  }

  private allowWriteAhead(ctx: GateContext, stmt: GatedStatement, d: Decision, approval?: ChangeRequest, execution = false): GateVerdict | Promise<GateVerdict> | undefined {
    const audit = this.deps.audit!;
    if (execution && stmt.via === 'parse' && !approval && stmt.analysis.ok && audit.config.on_store_failure_for_reads !== 'refuse'
      && !stmt.analysis.statements.some((f) => isChange(f))) {
      // A re-execution of a prepared statement that changes nothing (transaction control, SET, a read the
      // gate could not class as plain): its Parse's decision record covers it, as for prepared reads.
      this.receipts.set(stmt, []);
      this.afterForward(ctx, stmt);
      return undefined;
    }
    const receipts = this.audit(ctx, stmt, summary(d, approval), true, approval);
    this.receipts.set(stmt, receipts);
    // Only records that recordDecision commits before resolving are worth waiting for: BEGIN, SET and the
    // like go on synchronously (unless reads must be committed too).
    const anyChange = receipts.some((_, i) => isChangeIndex(stmt, i));
    const mustCommit = anyChange || this.deps.audit!.config.on_store_failure_for_reads === 'refuse';
    if (!mustCommit) {
      this.afterForward(ctx, stmt);
      return undefined;
    }
    // Write-ahead: the change is forwarded only once its decision record is committed.
    return Promise.all(receipts).then(
      () => {
        this.afterForward(ctx, stmt);
        return FORWARD;
      },
      (err: unknown) => ({ action: 'refuse' as const, error: auditUnavailable(err, anyChange) }),
    );
  }

  private afterForward(ctx: GateContext, stmt: GatedStatement): void {
    if (!stmt.analysis.ok) return;
    this.deps.recordUse?.(ctx, stmt.analysis.statements);
    if (stmt.analysis.statements.some((f) => f.kind === 'ddl')) this.deps.onDdlForwarded?.(ctx, stmt);
  }

  private async hold(ctx: GateContext, stmt: GatedStatement, d: HoldDecision): Promise<GateVerdict> {
    const approvals = this.deps.approvals;
    if (!approvals) {
      void this.audit(ctx, stmt, summary(d), false);
      return { action: 'refuse', error: wireErrorToPg(d.error) };
    }
    const principal = ctx.principal;
    const database = ctx.info.database;
    try {
      // An approved request for exactly this principal, database and text (and Bind values, if any) runs once.
      const approved = await approvals.consume(principal, database, stmt.sql, stmt.params);
      if (approved) {
        ctx.log.info({ change: approved.id }, 'running approved change');
        const v = await this.allow(ctx, stmt, d, approved);
        return v ?? FORWARD;
      }
      const facts = stmt.analysis.ok ? stmt.analysis.statements.map((f) => summarizeFacts(f)) : [];
      const req = await approvals.hold({
        requester: principal,
        database,
        sql: stmt.sql,
        ...(stmt.params ? { params: stmt.params } : {}),
        fingerprint: stmt.analysis.ok ? (stmt.analysis.statements[0]?.fingerprint ?? '') : '',
        facts: JSON.parse(JSON.stringify(facts)),
        rules: d.verdicts.filter((v) => v.matched && v.effect === 'hold').map((v) => ({ rule: v.id, reason: v.reason })),
        requirements: requirementsFromHoldSpec(d.holdSpec),
        ttlMs: d.holdSpec.timeoutMs,
        mode: ctx.frontDoor === 'mcp' ? 'defer' : d.holdSpec.mode,
      });
      void this.audit(ctx, stmt, { ...summary(d), mode: d.holdSpec.mode, change_id: req.id }, false);
      if (d.holdSpec.mode === 'defer' || ctx.frontDoor === 'mcp') {
        return { action: 'refuse', error: this.heldError(d, req, 'deferred') };
      }
      ctx.notify({
        severity: 'NOTICE',
        code: '01000',
        message: `pgairlock: this statement is held for approval as change ${req.id}; waiting up to ${Math.round(d.holdSpec.timeoutMs / 1000)} s`,
        detail: d.reasons.join('\n'),
        hint: this.deps.approveHint(req.id),
      });
      const resolution = await approvals.waitForResolution(req.id, ctx.waitSignal(), d.holdSpec.timeoutMs);
      if (resolution !== 'approved') {
        const final = await approvals.show(req.id).catch(() => req);
        return { action: 'refuse', error: this.resolvedError(req.id, resolution, final) };
      }
      const used = await approvals.consume(principal, database, stmt.sql, stmt.params);
      if (!used) {
        return { action: 'refuse', error: { code: SqlState.InsufficientPrivilege, message: `change ${req.id} was approved but can no longer be used (expired or already executed)`, hint: 'Send the statement again to open a new change request.' } };
      }
      const v = await this.allow(ctx, stmt, d, used);
      return v ?? FORWARD;
    } catch (err) {
      return { action: 'refuse', error: approvalsUnavailable(err) };
    }
  }

  private heldError(d: HoldDecision, req: ChangeRequest, how: 'deferred'): PgErrorFields {
    return {
      code: SqlState.InsufficientPrivilege,
      message: `${d.error.message} [held for approval as change ${req.id}]`,
      detail: `${d.error.detail}\nchange ${req.id} (${how}): needs ${req.required.count} approval(s) from ${req.required.roles.join(' or ')}; expires ${req.expiresAt}`,
      hint: `${this.deps.approveHint(req.id)} Then send exactly the same statement again${req.params ? ' with the same parameter values' : ''}: it runs once.`,
      position: d.error.position,
    };
  }

  private resolvedError(id: string, resolution: string, req: ChangeRequest): PgErrorFields {
    if (resolution === 'cancelled') {
      return { code: SqlState.QueryCanceled, message: `canceling statement: change ${id} was cancelled while waiting for approval` };
    }
    const last = req.events[req.events.length - 1] as { type?: string; reason?: string; by?: { name: string } } | undefined;
    const why = resolution === 'rejected' && last?.reason ? `: ${last.reason}` : '';
    const who = resolution === 'rejected' && last?.by ? ` by ${last.by.name}` : '';
    return {
      code: SqlState.InsufficientPrivilege,
      message: `change ${id} was ${resolution === 'expired' ? 'not approved in time (expired)' : `${resolution}${who}${why}`}`,
      hint: resolution === 'expired' ? 'Send the statement again to open a new change request, and ask an approver in time.' : undefined,
    };
  }

  /**
   * One decision record per statement of the string (the audit splits multi-statement strings). With `tx`,
   * the records are written in the background (durability 'before-commit') and the WAL position is taken
   * once per transaction, before its first such change is forwarded.
   */
  private audit(ctx: GateContext, stmt: GatedStatement, decision: DecisionSummary, forwarded: boolean, approval?: ChangeRequest, tx?: TxAudit): Promise<DecisionReceipt | undefined>[] {
    const audit = this.deps.audit;
    if (!audit) return [];
    const session = auditSession(ctx);
    const { rules } = auditDecision(stmt.decision);
    const approvals = approval ? approvalRefs(approval) : undefined;
    const sampler = this.walSampler;
    let walLsn: (() => Promise<string | null>) | undefined;
    if (forwarded && sampler) walLsn = tx ? () => (tx.lsn ??= sampler.position()) : sampler.position;
    const opts = tx ? { durability: 'before-commit' as const } : {};
    const facts: (StatementFacts | null)[] = stmt.analysis.ok ? [...stmt.analysis.statements] : [null];
    return facts.map((f, i) => {
      // Real-state facts the policy used for this statement (governance/state): kept in its record.
      const impact = stmt.impact?.[i];
      const input = { session, sql: f?.text ?? stmt.sql, facts: f, rules, decision, approvals, walLsn };
      const before = impact?.schema_hash ?? (f?.kind === 'ddl' ? this.deps.catalogVersion?.(ctx.info.database) : undefined);
      const p = audit.recordDecision(impact ? { ...input, impact, catalogVersionBefore: before } : before ? { ...input, catalogVersionBefore: before } : input, opts);
      if (forwarded) return p;
      // Refused statements run nothing: their records never hold the client up.
      p.catch((err: unknown) => ctx.log.warn({ err }, 'audit: could not record a refusal'));
      return Promise.resolve(undefined);
    });
  }

  onOutcome(ctx: GateContext, o: StatementOutcomeEvent): void {
    const audit = this.deps.audit;
    const receipts = this.receipts.get(o.stmt);
    // Re-executions covered by their Parse's record have none (allowWriteAhead): nothing to record.
    if (!audit || !receipts || receipts.length === 0) return;
    const session = auditSession(ctx);
    const write = (receipt: DecisionReceipt, i: number, catalogVersionAfter?: string | null) => {
      // Statements of a string answer in order; the first error ends the string.
      const tag = o.commandTags[i];
      const failed = tag === undefined && o.error;
      const after = catalogVersionAfter === undefined ? {} : { catalogVersionAfter };
      audit.recordOutcome(
        receipt,
        failed
          ? { status: 'error', sqlstate: o.error.sqlstate, message: o.error.message, durationMs: o.durationMs, ...after }
          : { status: tag === undefined ? 'error' : 'ok', commandTag: tag ?? null, rows: rowsOf(tag), durationMs: o.durationMs, sqlstate: tag === undefined ? 'XX000' : null, message: tag === undefined ? 'not executed: an earlier statement of the string failed' : null, ...after },
        session,
      );
    };
    // DDL: the outcome carries the catalog version after it, known once its transaction has ended and the
    // catalog was read again (onDdlDone); until then it waits here.
    const facts = o.stmt.analysis.ok ? o.stmt.analysis.statements : [];
    const waitsForCatalog = this.deps.catalogVersionAfterDdl !== undefined && facts.some((f) => f.kind === 'ddl');
    let versionAfter: Promise<string | null> | undefined;
    if (waitsForCatalog) {
      let slot = this.ddlOutcomes.get(ctx);
      if (!slot) {
        let resolve!: (v: string | null) => void;
        const promise = new Promise<string | null>((r) => (resolve = r));
        this.ddlOutcomes.set(ctx, (slot = { promise, resolve }));
      }
      versionAfter = slot.promise;
    }
    const record = (receipt: DecisionReceipt, i: number) => {
      if (!versionAfter || facts[i]?.kind !== 'ddl') return write(receipt, i);
      void versionAfter.then((version) => write(receipt, i, version));
    };
    receipts.forEach((p, i) => {
      p.then(
        (receipt) => {
          if (!receipt) return;
          // A deferred decision's outcome follows its record (none if the record failed: the transaction did not commit).
          if (receipt.durable) receipt.durable.then(() => record(receipt, i), () => undefined);
          else record(receipt, i);
        },
        () => undefined,
      );
    });
  }

  onDdlDone(ctx: GateContext): void {
    const slot = this.ddlOutcomes.get(ctx);
    if (!slot || !this.deps.catalogVersionAfterDdl) return;
    this.ddlOutcomes.delete(ctx);
    this.deps.catalogVersionAfterDdl(ctx.info.database).then(slot.resolve, () => slot.resolve(null));
  }

  onSessionEnd(ctx: GateContext): void {
    // DDL whose transaction never ended in this session (it was rolled back with the connection): no version after.
    this.ddlOutcomes.get(ctx)?.resolve(null);
    this.ddlOutcomes.delete(ctx);
    this.deps.audit?.recordSessionEnd(auditSession(ctx), { reason: 'closed' });
  }
}

const DML = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt']);

/**
 * DML whose every effect the transaction's ROLLBACK undoes, as far as the text shows: no function calls
 * (nextval, dblink, any user function), nothing opaque, privileged, nested or hidden (DML inside WITH).
 * Triggers are not visible in the text (docs/audit.md: set audit.strict_write_ahead if they have
 * non-transactional side effects).
 */
function isDeferrable(stmt: GatedStatement): boolean {
  if (!stmt.analysis.ok || stmt.analysis.statements.length === 0) return false;
  return stmt.analysis.statements.every((f) => isUndoableDml(f) && !f.execute && !f.prepare);
}

/** One statement of isDeferrable: plain DML, nothing called, opaque, privileged, nested or hidden. */
function isUndoableDml(f: StatementFacts): boolean {
  return f.kind === 'write' && DML.has(f.node) && f.functions.length === 0 && f.opaque.length === 0 && f.privileged.length === 0
    && f.nested.length === 0 && !f.hidden?.length;
}

const HARMLESS_TCL = new Set(['begin', 'savepoint', 'release', 'rollback', 'rollback-to']);

/**
 * Statements that must wait for the transaction's pending records: anything that could make its effects
 * durable or visible outside it (COMMIT, PREPARE TRANSACTION, COPY TO, function calls...), i.e. all but
 * plain reads, deferrable DML, session settings and transaction control that cannot commit.
 */
function isBarrier(stmt: GatedStatement): boolean {
  if (!stmt.analysis.ok) return true;
  return stmt.analysis.statements.some((f) => {
    if (f.kind === 'read' && f.nested.length === 0 && f.opaque.length === 0 && f.privileged.length === 0) return false;
    if (f.kind === 'session' && f.privileged.length === 0 && f.opaque.length === 0) return false;
    if (f.kind === 'tcl' && f.transaction !== undefined && HARMLESS_TCL.has(f.transaction)) return false;
    return !isUndoableDml(f);
  });
}

/** The audit's own classification (isChange): only such records are committed before recordDecision resolves. */
function isChangeIndex(stmt: GatedStatement, i: number): boolean {
  if (!stmt.analysis.ok) return true;
  const f = stmt.analysis.statements[i];
  return !f || isChange(f);
}

// One object per session while its fields stay the same: the audit writer serialises a session's fields once
// per object (governance/audit/build.ts), not once per record.
const sessions = new WeakMap<GateContext, AuditSession>();

export function auditSession(ctx: GateContext): AuditSession {
  const last = sessions.get(ctx);
  const effectiveRole = ctx.state.effectiveRole ?? null;
  const applicationName = ctx.info.applicationName || null;
  if (last && last.principal === ctx.principal && last.effectiveRole === effectiveRole && last.applicationName === applicationName
    && last.sessionId === ctx.info.sessionId && last.databaseUser === ctx.info.user && last.database === ctx.info.database
    && last.clientAddress === ctx.info.clientAddress && last.source === ctx.frontDoor) return last;
  const s: AuditSession = {
    sessionId: ctx.info.sessionId,
    principal: ctx.principal,
    databaseUser: ctx.info.user,
    effectiveRole,
    applicationName,
    clientAddress: ctx.info.clientAddress,
    database: ctx.info.database,
    source: ctx.frontDoor,
  };
  sessions.set(ctx, s);
  return s;
}

// One mapping per policy decision: every execution of a prepared statement shares it (and the audit
// writer serialises the shared rules array once).
const mapped = new WeakMap<Decision, { rules: RuleVerdict[]; decision: DecisionSummary }>();

function auditDecision(d: Decision): { rules: RuleVerdict[]; decision: DecisionSummary } {
  let m = mapped.get(d);
  if (!m) {
    m = auditDecisionFromPolicy(d);
    mapped.set(d, m);
  }
  return m;
}

function summary(d: Decision, approval?: ChangeRequest): DecisionSummary {
  const { decision } = auditDecision(d);
  if (!approval) return decision;
  return { effect: 'allow', reasons: [...d.reasons, `approved as change ${approval.id}`], message: null, change_id: approval.id };
}

function approvalRefs(req: ChangeRequest): ApprovalRef[] {
  const out: ApprovalRef[] = [];
  for (const e of req.events as readonly { type: string; by?: { name: string; roles?: readonly string[] }; at?: string; comment?: string }[]) {
    if (e.type === 'approved' && e.by) out.push({ approver: e.by.name, roles: e.by.roles, at: e.at ?? '', comment: e.comment ?? null, change_id: req.id });
  }
  return out;
}

/** "INSERT 0 5" -> 5, "UPDATE 3" -> 3, "SELECT 10" -> 10. */
function rowsOf(tag: string | undefined): number | null {
  if (!tag) return null;
  const last = tag.slice(tag.lastIndexOf(' ') + 1);
  const n = Number(last);
  return Number.isInteger(n) && last !== '' ? n : null;
}

function auditUnavailable(err: unknown, isChange: boolean): PgErrorFields {
  const e = err as { sqlstate?: string; message?: string };
  return {
    code: e.sqlstate ?? '58000',
    message: `pgairlock refused this ${isChange ? 'change' : 'statement'} because it cannot be audited: ${e.message ?? String(err)}`,
    hint: isChange
      ? 'Changes need their audit record committed first (write-ahead). Check the control database (audit.database_url); reads keep working.'
      : 'audit.on_store_failure_for_reads is refuse: reads need their audit record committed too. Check the control database (audit.database_url).',
  };
}

/** A statement that would end (or leak out of) a transaction whose earlier changes have no committed record. */
function transactionUnaudited(err: unknown, stmt: GatedStatement): PgErrorFields {
  const e = err as { message?: string };
  const commit = stmt.analysis.ok && stmt.analysis.statements.some((f) => f.transaction === 'commit' || f.transaction === 'prepare');
  return {
    code: '58000',
    message: `pgairlock refused ${commit ? 'to commit this transaction' : 'this statement'}: the audit records of changes made earlier in the transaction could not be written (${e.message ?? String(err)})`,
    detail: 'Nothing of this transaction was committed: it is now aborted, and the server rolls it back.',
    hint: 'Send ROLLBACK, then retry the transaction once the control database (audit.database_url) is reachable again.',
  };
}

function approvalsUnavailable(err: unknown): PgErrorFields {
  const e = err as { sqlstate?: string; message?: string; hint?: string };
  return {
    code: e.sqlstate ?? '58000',
    message: `pgairlock refused this statement: it needs an approval and ${e.message ?? String(err)}`,
    hint: e.hint ?? 'Check the approval store (REDIS_URL).',
  };
}
