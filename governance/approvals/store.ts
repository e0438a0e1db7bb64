import { ApprovalError, isApprovalError } from './errors.js';
import { newChangeId } from './ids.js';
import {
  createChangeRequest,
  resolutionOf,
  transition,
  type ChangeEvent,
  type ChangeRequest,
  type ChangeStatus,
  type NewChangeRequest,
  type PrincipalRef,
  type Resolution,
} from './model.js';
import { defaultPolicy, planApprove, planCancel, planConsume, planExpire, planReject, type ApprovalPolicy, type Plan } from './sod.js';

/** Called once per committed event, by the process that committed it (so each event is audited once). */
export type OnChangeEvent = (request: ChangeRequest, event: ChangeEvent) => void | Promise<void>;

export interface ListFilter {
  readonly status?: readonly ChangeStatus[];
  readonly requester?: string;
  readonly database?: string;
  /** Newest first; default 100, at most 1000. */
  readonly limit?: number;
}

export type CreateInput = Omit<NewChangeRequest, 'id' | 'createdAt' | 'expiresAt'> & {
  /** Lifetime of the request from now (pending and approved both end at expiresAt). */
  readonly ttlMs: number;
};

export interface ApprovalStore {
  /** Which implementation, for logs and the CLI ("memory" cannot be shared between processes). */
  readonly kind: 'memory' | 'redis';
  create(input: CreateInput): Promise<ChangeRequest>;
  get(id: string): Promise<ChangeRequest | undefined>;
  list(filter?: ListFilter): Promise<ChangeRequest[]>;
  approve(id: string, approver: PrincipalRef, comment?: string): Promise<ChangeRequest>;
  reject(id: string, approver: PrincipalRef, reason: string): Promise<ChangeRequest>;
  /** `by` undefined: the system cancels (the waiting client cancelled or went away). */
  cancel(id: string, reason: string, by?: PrincipalRef): Promise<ChangeRequest>;
  /** Moves every open request past its expiresAt to expired; returns those it moved. */
  expireDue(): Promise<ChangeRequest[]>;
  /**
   * Atomically turns the approved request of this principal, database and exact text into
   * executed and returns it; undefined when there is none (never approved, already used, expired,
   * other text/database/principal, other parameter values). At most one caller, across all replicas, gets
   * a given request. `paramsHash`: see ChangeRequest.paramsHash; undefined for a statement without parameters.
   */
  consumeApproved(principal: PrincipalRef, database: string, textHash: string, paramsHash?: string): Promise<ChangeRequest | undefined>;
  /**
   * Resolves with the request's final state as soon as it is decided (woken by pub/sub or an
   * in-process event, with a slow re-check as a safety net). When `timeoutMs` (or the request's
   * expiresAt) passes first, the request is expired; when `signal` aborts first, it is cancelled with
   * the signal's reason. Both are atomic, so the returned status is always the stored truth: an
   * approval that wins the race is returned as 'approved'.
   */
  waitForResolution(id: string, signal: AbortSignal, timeoutMs: number): Promise<Resolution>;
  /** Waits until the store can serve requests (Redis connected), or throws store_unavailable. */
  ready(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface StoreOptions {
  readonly policy?: ApprovalPolicy;
  readonly onEvent?: OnChangeEvent;
  /** Where a failing onEvent goes (the change itself stays committed). Default: stderr. */
  readonly onEventError?: (err: unknown, request: ChangeRequest, event: ChangeEvent) => void;
  /** Injectable clock for tests. */
  readonly now?: () => Date;
  /** Safety re-check of waiters in case a wake-up message was lost (Redis reconnect). Default 5000 ms. */
  readonly recheckIntervalMs?: number;
  /** How long decided requests stay readable after they expire. Default 7 days. */
  readonly retentionMs?: number;
}

const MAX_CAS_ATTEMPTS = 8;
export const DEFAULT_RETENTION_MS = 7 * 24 * 3600 * 1000;

/** Listener for "request <id> changed" wake-ups. */
export type Wake = () => void;

/**
 * Everything both stores share: the operations are pure plans (sod.ts) applied through one
 * compare-and-set primitive, so the memory and Redis stores cannot drift apart in behaviour.
 * A subclass provides storage (load / insert / compareAndSet / indexes) and wake-ups.
 */
export abstract class BaseApprovalStore implements ApprovalStore {
  abstract readonly kind: 'memory' | 'redis';
  protected readonly policy: ApprovalPolicy;
  protected readonly now: () => Date;
  protected readonly retentionMs: number;
  private readonly recheckIntervalMs: number;
  private readonly onEvent?: OnChangeEvent;
  private readonly onEventError: (err: unknown, request: ChangeRequest, event: ChangeEvent) => void;
  private readonly waiters = new Set<(err: Error) => void>();
  protected closed = false;

  constructor(opts: StoreOptions = {}) {
    this.policy = opts.policy ?? defaultPolicy;
    this.now = opts.now ?? (() => new Date());
    this.retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
    this.recheckIntervalMs = opts.recheckIntervalMs ?? 5000;
    this.onEvent = opts.onEvent;
    this.onEventError =
      opts.onEventError ??
      ((err, req, ev) => {
        console.error(`pgairlock approvals: onEvent failed for change ${req.id} (${ev.type}):`, err);
      });
  }

  // ---- storage primitives --------------------------------------------------------------------
  protected abstract load(id: string): Promise<ChangeRequest | undefined>;
  /** Stores a new request unless the id is taken; false when taken. Also publishes a wake-up. */
  protected abstract insert(req: ChangeRequest): Promise<boolean>;
  /** Replaces `before` by `after` only if the stored version is still version(before); publishes a wake-up. */
  protected abstract compareAndSet(before: ChangeRequest, after: ChangeRequest): Promise<boolean>;
  protected abstract loadMany(filter: ListFilter, limit: number): Promise<ChangeRequest[]>;
  /** Ids of open requests with expiresAt <= now (may include stale ids). */
  protected abstract dueIds(now: Date): Promise<string[]>;
  /** Ids of approved requests of this principal/database/text (may include stale ids). */
  protected abstract approvedIds(principal: string, database: string, textHash: string): Promise<string[]>;
  /** Subscribes to wake-ups of one id, plus "recheck everything" broadcasts; returns unsubscribe. */
  protected abstract subscribe(id: string, wake: Wake): () => void;
  /** Turns a storage failure into an ApprovalError (store_unavailable). */
  protected abstract wrap(where: string, err: unknown): ApprovalError;

  async ready(_timeoutMs?: number): Promise<void> {}

  close(): Promise<void> {
    this.closed = true;
    const err = new ApprovalError('store_unavailable', 'the approval store was closed while a statement was waiting for approval', 'the proxy is shutting down; send the statement again');
    for (const fail of [...this.waiters]) fail(err);
    return Promise.resolve();
  }

  /** Runs before every storage call (Redis: waits for the very first connection, never for a reconnect). */
  protected beforeIo(): Promise<void> {
    return Promise.resolve();
  }

  private async io<T>(where: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new ApprovalError('store_unavailable', 'the approval store is closed');
    try {
      await this.beforeIo();
      return await fn();
    } catch (err) {
      if (isApprovalError(err)) throw err;
      throw this.wrap(where, err);
    }
  }

  private async emit(req: ChangeRequest, event: ChangeEvent): Promise<void> {
    if (!this.onEvent) return;
    try {
      await this.onEvent(req, event);
    } catch (err) {
      this.onEventError(err, req, event);
    }
  }

  async create(input: CreateInput): Promise<ChangeRequest> {
    const createdAt = this.now();
    const expiresAt = new Date(createdAt.getTime() + input.ttlMs);
    // Bounded: 40 random bits make even one collision unlikely.
    for (let attempt = 0; attempt < 5; attempt++) {
      const { ttlMs: _ttl, ...rest } = input;
      const req = createChangeRequest({ ...rest, id: newChangeId(), createdAt, expiresAt });
      if (await this.io('create', () => this.insert(req))) {
        await this.emit(req, req.events[0]!);
        return req;
      }
    }
    throw new ApprovalError('conflict', 'could not allocate a unique change id', 'retry the statement');
  }

  async get(id: string): Promise<ChangeRequest | undefined> {
    return this.io('get', () => this.load(id));
  }

  async list(filter: ListFilter = {}): Promise<ChangeRequest[]> {
    const limit = Math.min(Math.max(1, filter.limit ?? 100), 1000);
    const rows = await this.io('list', () => this.loadMany(filter, limit));
    return rows
      .filter((r) => (!filter.status || filter.status.includes(r.status)) && (!filter.requester || r.requester.name === filter.requester) && (!filter.database || r.database === filter.database))
      .sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : a.id.localeCompare(b.id)))
      .slice(0, limit);
  }

  /**
   * Load, plan, compare-and-set; on a lost race reload and plan again (bounded). The plan's
   * checks always run against the version that gets written.
   */
  protected async mutate(id: string, where: string, plan: (req: ChangeRequest) => Plan): Promise<ChangeRequest> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const before = await this.io(where, () => this.load(id));
      if (!before) throw notFound(id);
      const p = plan(before);
      const after = transition(before, p.event);
      if (await this.io(where, () => this.compareAndSet(before, after))) {
        await this.emit(after, p.event);
        if (p.thenThrow) throw p.thenThrow;
        return after;
      }
    }
    throw new ApprovalError('conflict', `change ${id} is being changed concurrently; gave up after ${MAX_CAS_ATTEMPTS} attempts`, 'retry the command', id);
  }

  approve(id: string, approver: PrincipalRef, comment?: string): Promise<ChangeRequest> {
    return this.mutate(id, 'approve', (req) => planApprove(req, approver, this.now(), comment));
  }

  reject(id: string, approver: PrincipalRef, reason: string): Promise<ChangeRequest> {
    return this.mutate(id, 'reject', (req) => planReject(req, approver, this.now(), reason));
  }

  cancel(id: string, reason: string, by?: PrincipalRef): Promise<ChangeRequest> {
    return this.mutate(id, 'cancel', (req) => planCancel(req, this.now(), reason, by));
  }

  async expireDue(): Promise<ChangeRequest[]> {
    const now = this.now();
    const out: ChangeRequest[] = [];
    for (const id of await this.io('expireDue', () => this.dueIds(now))) {
      const r = await this.tryMutate(id, (req) => planExpire(req, this.now()));
      if (r) out.push(r);
    }
    return out;
  }

  /** Like mutate, but a plan of undefined (or a vanished request) means "nothing to do". */
  private async tryMutate(id: string, plan: (req: ChangeRequest) => Plan | undefined): Promise<ChangeRequest | undefined> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const before = await this.io('update', () => this.load(id));
      if (!before) return undefined;
      const p = plan(before);
      if (!p) return undefined;
      const after = transition(before, p.event);
      if (await this.io('update', () => this.compareAndSet(before, after))) {
        await this.emit(after, p.event);
        return after;
      }
    }
    throw new ApprovalError('conflict', `change ${id} is being changed concurrently; gave up after ${MAX_CAS_ATTEMPTS} attempts`, 'retry', id);
  }

  async consumeApproved(principal: PrincipalRef, database: string, textHash: string, paramsHash?: string): Promise<ChangeRequest | undefined> {
    const ids = await this.io('consumeApproved', () => this.approvedIds(principal.name, database, textHash));
    // Oldest first, so a principal with two approvals for the same text uses them in order.
    const candidates = (await Promise.all(ids.map((id) => this.io('consumeApproved', () => this.load(id))))).filter((r): r is ChangeRequest => r !== undefined);
    candidates.sort((a, b) => (a.createdAt < b.createdAt ? -1 : 1));
    for (const c of candidates) {
      const used = await this.tryMutate(c.id, (req) => planConsume(req, principal, database, textHash, this.now(), this.policy, paramsHash));
      if (used) return used;
    }
    return undefined;
  }

  async waitForResolution(id: string, signal: AbortSignal, timeoutMs: number): Promise<Resolution> {
    if (this.closed) throw new ApprovalError('store_unavailable', 'the approval store is closed');
    return new Promise<Resolution>((resolve, reject) => {
      let done = false;
      let busy: Promise<void> = Promise.resolve();
      const timers: NodeJS.Timeout[] = [];
      const finish = (r: Resolution | Error) => {
        if (done) return;
        done = true;
        unsubscribe();
        for (const t of timers) clearTimeout(t);
        clearInterval(recheck);
        signal.removeEventListener('abort', onAbort);
        this.waiters.delete(fail);
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      const fail = (err: Error) => finish(err);
      // Steps run one after another so a wake-up and a timeout never interleave their reads.
      const step = (fn: () => Promise<Resolution | undefined>) => {
        busy = busy.then(async () => {
          if (done) return;
          try {
            const r = await fn();
            if (r) finish(r);
          } catch (err) {
            finish(err instanceof Error ? err : new Error(String(err)));
          }
        });
      };
      const check = async (): Promise<Resolution | undefined> => {
        const req = await this.get(id);
        if (!req) throw notFound(id);
        return resolutionOf(req.status);
      };
      /** Applies an end (expire/cancel) unless the request was decided meanwhile; returns the truth. */
      const end = async (plan: (req: ChangeRequest) => Plan | undefined): Promise<Resolution> => {
        await this.tryMutate(id, plan);
        const req = await this.get(id);
        if (!req) throw notFound(id);
        return resolutionOf(req.status) ?? 'expired';
      };
      const wake = () => step(async () => {
        try {
          return await check();
        } catch (err) {
          // A failed wake-up re-check is not fatal: the next wake-up, re-check or timeout decides.
          if (isApprovalError(err) && err.code === 'store_unavailable') return undefined;
          throw err;
        }
      });
      const onTimeout = (reason: string | undefined) => step(() => end((req) => (req.status === 'pending' ? planExpire(req, this.now(), reason, true) : undefined)));
      const onAbort = () => {
        const why = typeof signal.reason === 'string' && signal.reason ? signal.reason : 'the waiting client cancelled the statement or disconnected';
        step(() => end((req) => (req.status === 'pending' ? planCancel(req, this.now(), why) : undefined)));
      };
      const unsubscribe = this.subscribe(id, wake);
      this.waiters.add(fail);
      const recheck = setInterval(wake, this.recheckIntervalMs);
      recheck.unref();
      if (signal.aborted) {
        onAbort();
        return;
      }
      signal.addEventListener('abort', onAbort, { once: true });
      // The wait timeout runs from now whatever happens; the request's own expiry may come sooner.
      timers.push(setTimeout(() => onTimeout(`no decision within the wait timeout of ${Math.round(timeoutMs / 1000)} s`), timeoutMs));
      // Subscribed first, then read: a decision landing in between is still seen. If the store is
      // unreachable right now, keep waiting: a reconnect, a wake-up or the re-check reads it again,
      // and the timeout still ends the wait (then failing closed if the store is still down).
      step(async () => {
        let req: ChangeRequest | undefined;
        try {
          req = await this.get(id);
        } catch (err) {
          if (isApprovalError(err) && err.code === 'store_unavailable') return undefined;
          throw err;
        }
        if (!req) throw notFound(id);
        const r = resolutionOf(req.status);
        if (r) return r;
        const untilExpiry = Date.parse(req.expiresAt) - this.now().getTime();
        if (untilExpiry < timeoutMs) timers.push(setTimeout(() => onTimeout(undefined), Math.max(0, untilExpiry)));
        return undefined;
      });
    });
  }
}

export function notFound(id: string): ApprovalError {
  return new ApprovalError('not_found', `no change request ${id}`, 'SHOW PENDING (console) or `pgairlock changes list` lists them; decided requests are kept for approvals.retention_seconds', id);
}
