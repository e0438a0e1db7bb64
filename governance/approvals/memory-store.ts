import { EventEmitter } from 'node:events';
import type { ApprovalError } from './errors.js';
import { isOpen, version, type ChangeRequest } from './model.js';
import { BaseApprovalStore, type ListFilter, type StoreOptions, type Wake } from './store.js';

/**
 * In-process store: one proxy instance, nothing shared, lost on restart. Operations are synchronous
 * between load and compare-and-set, so they are atomic on Node's single thread. Requests are
 * deep-copied in and out so callers can never mutate stored state.
 */
export class MemoryApprovalStore extends BaseApprovalStore {
  readonly kind = 'memory' as const;
  private readonly requests = new Map<string, ChangeRequest>();
  private readonly wakeups = new EventEmitter();

  constructor(opts: StoreOptions = {}) {
    super(opts);
    // One listener per waiting statement; a busy proxy can have many.
    this.wakeups.setMaxListeners(0);
  }

  protected load(id: string): Promise<ChangeRequest | undefined> {
    const r = this.requests.get(id);
    return Promise.resolve(r ? structuredClone(r) : undefined);
  }

  protected insert(req: ChangeRequest): Promise<boolean> {
    this.prune();
    if (this.requests.has(req.id)) return Promise.resolve(false);
    this.requests.set(req.id, structuredClone(req));
    this.wakeups.emit(req.id);
    return Promise.resolve(true);
  }

  protected compareAndSet(before: ChangeRequest, after: ChangeRequest): Promise<boolean> {
    const cur = this.requests.get(before.id);
    if (!cur || version(cur) !== version(before)) return Promise.resolve(false);
    this.requests.set(after.id, structuredClone(after));
    this.wakeups.emit(after.id);
    return Promise.resolve(true);
  }

  protected loadMany(_filter: ListFilter, _limit: number): Promise<ChangeRequest[]> {
    this.prune();
    return Promise.resolve([...this.requests.values()].map((r) => structuredClone(r)));
  }

  protected dueIds(now: Date): Promise<string[]> {
    const t = now.getTime();
    return Promise.resolve([...this.requests.values()].filter((r) => isOpen(r.status) && Date.parse(r.expiresAt) <= t).map((r) => r.id));
  }

  protected approvedIds(principal: string, database: string, textHash: string): Promise<string[]> {
    return Promise.resolve(
      [...this.requests.values()]
        .filter((r) => r.status === 'approved' && r.requester.name === principal && r.database === database && r.textHash === textHash)
        .map((r) => r.id),
    );
  }

  protected subscribe(id: string, wake: Wake): () => void {
    this.wakeups.on(id, wake);
    return () => this.wakeups.off(id, wake);
  }

  protected wrap(_where: string, err: unknown): ApprovalError {
    // Nothing in memory does I/O; anything thrown here is a bug and should surface as such.
    throw err;
  }

  /** Drops decided requests older than the retention, as Redis key TTLs do. */
  private prune(): void {
    const cutoff = this.now().getTime() - this.retentionMs;
    for (const [id, r] of this.requests) if (!isOpen(r.status) && Date.parse(r.expiresAt) < cutoff) this.requests.delete(id);
  }
}
