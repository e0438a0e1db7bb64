import type { Config } from '../config/schema.js';
import type { HoldSpec } from '../policy/types.js';
import type { Principal } from '../principal.js';
import { ApprovalError } from './errors.js';
import { parseChangeId, textHash } from './ids.js';
import { hasParams, paramsHash, showParams, type BoundParameters } from './params.js';
import { principalRef, type ChangeRequest, type HoldMode, type HoldRule, type RequiredApprovals, type Requirement, type Resolution } from './model.js';
import type { ApprovalStore, ListFilter } from './store.js';

export type ApprovalsConfig = Config['approvals'];

/** The policy's hold requirements (HoldDecision.holdSpec.requirements) as change-request requirements. */
export function requirementsFromHoldSpec(spec: Pick<HoldSpec, 'requirements'>): Requirement[] {
  return spec.requirements.map((r) => ({ rule: r.rule, count: r.approvals, roles: [...r.approverRoles] }));
}

/** What the proxy (or MCP) knows when the policy says `hold`. */
export interface HoldInput {
  readonly requester: Principal;
  readonly database: string;
  /** The exact statement text; the approval is bound to its sha256. */
  readonly sql: string;
  /**
   * The Bind's values when the statement is held at its Execute (extended protocol): the approval is then
   * bound to exactly these values as well, and they are shown to approvers.
   */
  readonly params?: BoundParameters;
  readonly fingerprint: string;
  /** Analyzer facts summary (JSON-serialisable, e.g. StatementFacts or a list of them). */
  readonly facts: unknown;
  readonly rules: readonly HoldRule[];
  /** One requirement for the whole request. Default: approvals.default_required. */
  readonly required?: RequiredApprovals;
  /** Or one per hold rule (all must be met); see requirementsFromHoldSpec(). Wins over `required`. */
  readonly requirements?: readonly Requirement[];
  /** Lifetime of the request (e.g. the hold rule's timeout). Default: approvals.expire_after_seconds. */
  readonly ttlMs?: number;
  readonly mode: HoldMode;
  /** The audit decision record id of the hold (AuditLog.recordDecision receipt), to link the two. */
  readonly decisionId?: string;
}

/**
 * The one entry point for the wire console, the CLI and MCP. The separation-of-duties checks are
 * pure functions (sod.ts) that the store applies atomically; this layer adds id parsing (what
 * people type), configuration defaults and limits, and the hold -> wait -> run helpers the proxy needs.
 */
export class ApprovalService {
  constructor(
    readonly store: ApprovalStore,
    private readonly config: ApprovalsConfig,
  ) {}

  /** Opens a change request for a held statement. Throws invalid_request when the text is over max_sql_bytes. */
  async hold(input: HoldInput): Promise<ChangeRequest> {
    const bytes = Buffer.byteLength(input.sql, 'utf8');
    if (bytes > this.config.max_sql_bytes) {
      throw new ApprovalError('invalid_request', `this statement needs approval but is ${bytes} bytes, over approvals.max_sql_bytes (${this.config.max_sql_bytes})`, 'split it into smaller statements, or raise approvals.max_sql_bytes');
    }
    return this.store.create({
      requester: principalRef(input.requester),
      database: input.database,
      sql: input.sql,
      fingerprint: input.fingerprint,
      textHash: textHash(input.sql),
      ...(hasParams(input.params) ? { paramsHash: paramsHash(input.sql, input.params), params: showParams(input.params) } : {}),
      facts: input.facts,
      rules: input.rules,
      ...(input.requirements && input.requirements.length > 0 ? { requirements: input.requirements } : { required: input.required ?? this.config.default_required }),
      mode: input.mode,
      ...(input.decisionId ? { decisionId: input.decisionId } : {}),
      ttlMs: input.ttlMs ?? this.config.expire_after_seconds * 1000,
    });
  }

  async approve(id: string, approver: Principal, comment?: string): Promise<ChangeRequest> {
    return this.store.approve(parseChangeId(id), principalRef(approver), comment);
  }

  async reject(id: string, approver: Principal, reason: string): Promise<ChangeRequest> {
    return this.store.reject(parseChangeId(id), principalRef(approver), reason);
  }

  /** A principal cancels (its requester, or someone holding a required role). */
  async cancel(id: string, by: Principal, reason: string): Promise<ChangeRequest> {
    return this.store.cancel(parseChangeId(id), reason, principalRef(by));
  }

  async list(filter?: ListFilter): Promise<ChangeRequest[]> {
    return this.store.list(filter);
  }

  /** Open requests (pending and approved-not-yet-run), newest first: SHOW PENDING. */
  async pending(limit = 100): Promise<ChangeRequest[]> {
    return this.store.list({ status: ['pending', 'approved'], limit });
  }

  /** Throws not_found (with a hint) rather than returning undefined: every caller shows an error. */
  async show(id: string): Promise<ChangeRequest> {
    const canonical = parseChangeId(id);
    const req = await this.store.get(canonical);
    if (!req) throw new ApprovalError('not_found', `no change request ${canonical}`, 'SHOW PENDING (console) or `pgairlock changes list` lists them', canonical);
    return req;
  }

  /**
   * Before holding a statement: is there an approved request for exactly this principal, database
   * and text (and bound parameter values, when it has some)? If so it is marked executed (once, across
   * all replicas) and returned; forward the statement.
   */
  async consume(principal: Principal, database: string, sql: string, params?: BoundParameters): Promise<ChangeRequest | undefined> {
    return this.store.consumeApproved(principalRef(principal), database, textHash(sql), hasParams(params) ? paramsHash(sql, params) : undefined);
  }

  /** Wait mode: see ApprovalStore.waitForResolution. Default timeout approvals.wait_timeout_seconds. */
  async waitForResolution(id: string, signal: AbortSignal, timeoutMs = this.config.wait_timeout_seconds * 1000): Promise<Resolution> {
    return this.store.waitForResolution(id, signal, timeoutMs);
  }

  /**
   * Wait mode after approval: the waiting statement is about to run. Marks the request executed
   * (single use) and returns it, or undefined if it cannot be used (e.g. it expired in between).
   */
  async markExecuted(req: ChangeRequest, executor: Principal): Promise<ChangeRequest | undefined> {
    return this.store.consumeApproved(principalRef(executor), req.database, req.textHash, req.paramsHash);
  }

  /**
   * Sweeps expired requests every approvals.expiry_sweep_interval_ms (so `expired` events reach the
   * audit even when nobody looks). Returns a stop function. Sweep errors go to onError.
   */
  startExpirySweep(onError: (err: unknown) => void = () => undefined): () => void {
    let running = false;
    const t = setInterval(() => {
      if (running) return;
      running = true;
      this.store
        .expireDue()
        .catch(onError)
        .finally(() => {
          running = false;
        });
    }, this.config.expiry_sweep_interval_ms);
    t.unref();
    return () => clearInterval(t);
  }
}
