import type { Redis } from 'ioredis';

/**
 * The usage index: per table and per column, which principals and application_names read or wrote it, how
 * often, and when last. Fed from the proxy's hot path (recordUse: an array push, no I/O, no await), applied
 * in batches by a timer; read by policy ("refuse renaming a column read in the last 24 h by another
 * application") through recentUsers.
 * Counts are kept in time buckets (bucketMs); a count "since T" sums the buckets that overlap [T, now], so it
 * is exact to one bucket. lastUsed is exact.
 * Two stores with one contract: MemoryUsageIndex (one process; bounded by maxEntries with LRU eviction and
 * retention expiry) and RedisUsageIndex (shared by replicas; every key has a TTL, members capped per target).
 */

export type UseMode = 'read' | 'write';

export interface RelationUseRecord {
  readonly schema: string;
  readonly name: string;
  /** Columns the statement names for this relation (may be empty: then only the table is recorded). */
  readonly columns: readonly string[];
  readonly mode: UseMode;
}

export interface UseEvent {
  readonly principal: string;
  /** application_name of the session ('' when unset). */
  readonly application?: string;
  readonly database: string;
  readonly relations: readonly RelationUseRecord[];
  /** Epoch ms (default: now). */
  readonly at?: number;
}

export interface UsageQuery {
  readonly database: string;
  readonly schema: string;
  readonly table: string;
  /** A column of the table; without it, use of the table as a whole (any statement naming it). */
  readonly column?: string;
  /** Only reads or only writes (default both). */
  readonly mode?: UseMode;
}

export interface UsageExclusion {
  readonly principal?: string;
  readonly application?: string;
}

export interface RecentUser {
  readonly principal: string;
  readonly application: string;
  /** Epoch ms of the last use (of the requested mode, when one was given). */
  readonly lastUsed: number;
  /** Uses since the requested time (bucket-exact), of the requested mode or both. */
  readonly count: number;
  readonly reads: number;
  readonly writes: number;
}

export interface UsageIndex {
  /** Cheap and synchronous: buffers the event; a timer applies buffered events in batches. */
  recordUse(event: UseEvent): void;
  /**
   * Who used the table (or column) at or after `sinceMs` (epoch ms), most recent first.
   * `exclude` is a principal name, or a principal and/or application to leave out.
   * Buffered events are applied first, so a use recorded before the call is visible.
   */
  recentUsers(query: UsageQuery, sinceMs: number, exclude?: string | UsageExclusion): Promise<RecentUser[]>;
  /** Applies buffered events now. */
  flush(): Promise<void>;
  /** Flushes and stops the timer (does not close a Redis client it was given). */
  close(): Promise<void>;
  stats(): UsageStats;
}

export interface UsageStats {
  readonly buffered: number;
  /** Events dropped because the buffer was full (the store was too slow or down). */
  readonly dropped: number;
  /** Batches that failed to apply (Redis errors). */
  readonly failedFlushes: number;
}

export interface UsageOptions {
  /** Width of a count bucket (default 1 h). */
  readonly bucketMs?: number;
  /** How long uses are remembered (default 7 days). */
  readonly retentionMs?: number;
  /** Buffered events are applied this often (default 1000 ms). */
  readonly flushIntervalMs?: number;
  /** Buffer bound; events beyond it are dropped and counted (default 10,000). */
  readonly maxBuffer?: number;
  /** Flush early once this many events are buffered (default 500). */
  readonly batchSize?: number;
  readonly onError?: (err: unknown) => void;
  /** Clock (tests). */
  readonly now?: () => number;
}

export interface MemoryUsageOptions extends UsageOptions {
  /** Most (target, principal, application) entries kept; least recently used are evicted (default 100,000). */
  readonly maxEntries?: number;
}

export interface RedisUsageOptions extends UsageOptions {
  readonly redis: Redis;
  /** Prefix of every key (default 'pgairlock:usage:'). */
  readonly keyPrefix?: string;
  /** Most (principal, application, mode) members remembered per table or column (default 1000). */
  readonly maxUsersPerTarget?: number;
}

const DEFAULTS = { bucketMs: 3_600_000, retentionMs: 7 * 86_400_000, flushIntervalMs: 1000, maxBuffer: 10_000, batchSize: 500 };

/** One aggregated change: target x user x bucket. */
interface Increment {
  target: string;
  principal: string;
  application: string;
  bucket: number;
  reads: number;
  writes: number;
  lastRead: number;
  lastWrite: number;
}

/** Target identity: database, schema, table, column ('' = the table as a whole). */
export const targetId = (database: string, schema: string, table: string, column = ''): string =>
  [database, schema, table, column].map(encodeURIComponent).join(':');
const userId = (principal: string, application: string): string => `${encodeURIComponent(principal)}:${encodeURIComponent(application)}`;
function parseUser(id: string): { principal: string; application: string } {
  const [p = '', a = ''] = id.split(':');
  return { principal: decodeURIComponent(p), application: decodeURIComponent(a) };
}

function excluded(u: { principal: string; application: string }, exclude?: string | UsageExclusion): boolean {
  if (exclude === undefined) return false;
  if (typeof exclude === 'string') return u.principal === exclude;
  return (exclude.principal !== undefined && u.principal === exclude.principal) || (exclude.application !== undefined && u.application === exclude.application);
}

/** Buffering and batching shared by both stores. */
abstract class BufferedUsageIndex implements UsageIndex {
  protected readonly bucketMs: number;
  protected readonly retentionMs: number;
  protected readonly now: () => number;
  private buffer: UseEvent[] = [];
  private dropped = 0;
  private failedFlushes = 0;
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;
  private early = false;
  private readonly maxBuffer: number;
  private readonly batchSize: number;

  constructor(protected readonly options: UsageOptions) {
    this.bucketMs = options.bucketMs ?? DEFAULTS.bucketMs;
    this.retentionMs = options.retentionMs ?? DEFAULTS.retentionMs;
    this.maxBuffer = options.maxBuffer ?? DEFAULTS.maxBuffer;
    this.batchSize = options.batchSize ?? DEFAULTS.batchSize;
    this.now = options.now ?? Date.now;
    this.timer = setInterval(() => void this.flush().catch(() => undefined), options.flushIntervalMs ?? DEFAULTS.flushIntervalMs);
    this.timer.unref();
  }

  recordUse(event: UseEvent): void {
    if (this.buffer.length >= this.maxBuffer) {
      this.dropped += 1;
      return;
    }
    // Explicit literal: object spread is a slow path in V8, and this runs for every forwarded statement.
    this.buffer.push(
      event.at === undefined
        ? { principal: event.principal, application: event.application, database: event.database, relations: event.relations, at: this.now() }
        : event,
    );
    if (this.buffer.length >= this.batchSize && !this.early) {
      this.early = true;
      setImmediate(() => {
        this.early = false;
        this.flush().catch(() => undefined);
      });
    }
  }

  async flush(): Promise<void> {
    // One flush at a time: a second caller waits for the running one and then applies what arrived since.
    while (this.flushing) await this.flushing;
    if (this.buffer.length === 0) return;
    const events = this.buffer;
    this.buffer = [];
    this.flushing = this.applyInChunks(events).finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  /** batchSize events at a time, yielding to the event loop in between, so a big backlog never stalls the proxy. */
  private async applyInChunks(events: readonly UseEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += this.batchSize) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      const chunk = events.slice(i, i + this.batchSize);
      try {
        await this.apply(this.aggregate(chunk));
      } catch (err) {
        this.failedFlushes += 1;
        this.dropped += chunk.length;
        this.options.onError?.(err);
      }
    }
  }

  private aggregate(events: readonly UseEvent[]): Increment[] {
    // target -> (user and bucket) -> increment: no per-relation string building for the common case of
    // the same few statements over and over (records are usually shared, see recordStatementUse).
    const out = new Map<string, Map<string, Increment>>();
    const list: Increment[] = [];
    const add = (target: string, who: string, principal: string, application: string, bucket: number, at: number, mode: UseMode): void => {
      let byUser = out.get(target);
      if (!byUser) out.set(target, (byUser = new Map()));
      let inc = byUser.get(who);
      if (!inc) {
        byUser.set(who, (inc = { target, principal, application, bucket, reads: 0, writes: 0, lastRead: 0, lastWrite: 0 }));
        list.push(inc);
      }
      if (mode === 'read') { inc.reads += 1; if (at > inc.lastRead) inc.lastRead = at; }
      else { inc.writes += 1; if (at > inc.lastWrite) inc.lastWrite = at; }
    };
    for (const e of events) {
      const at = e.at ?? this.now();
      const app = e.application ?? '';
      const bucket = Math.floor(at / this.bucketMs) * this.bucketMs;
      const who = `${e.principal}\0${app}\0${bucket}`;
      for (const r of e.relations) {
        const ids = this.targetsOf(e.database, r);
        add(ids.table, who, e.principal, app, bucket, at, r.mode);
        for (const c of ids.columns) add(c, who, e.principal, app, bucket, at, r.mode);
      }
    }
    return list;
  }

  /** Target ids of a record, memoised per record object (records are immutable and often shared). */
  private readonly targetIds = new WeakMap<RelationUseRecord, { readonly database: string; readonly table: string; readonly columns: readonly string[] }>();

  private targetsOf(database: string, r: RelationUseRecord): { readonly table: string; readonly columns: readonly string[] } {
    const hit = this.targetIds.get(r);
    if (hit !== undefined && hit.database === database) return hit;
    const ids = { database, table: targetId(database, r.schema, r.name), columns: [...new Set(r.columns)].map((c) => targetId(database, r.schema, r.name, c)) };
    this.targetIds.set(r, ids);
    return ids;
  }

  protected abstract apply(batch: Increment[]): Promise<void>;
  protected abstract query(query: UsageQuery, sinceMs: number): Promise<RecentUser[]>;

  async recentUsers(query: UsageQuery, sinceMs: number, exclude?: string | UsageExclusion): Promise<RecentUser[]> {
    await this.flush();
    // Nothing older than the retention is remembered, whatever was asked.
    const users = await this.query(query, Math.max(sinceMs, this.now() - this.retentionMs));
    return users.filter((u) => !excluded(u, exclude)).sort((a, b) => b.lastUsed - a.lastUsed || a.principal.localeCompare(b.principal));
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  stats(): UsageStats {
    return { buffered: this.buffer.length, dropped: this.dropped, failedFlushes: this.failedFlushes };
  }
}

interface MemoryEntry {
  readonly target: string;
  readonly principal: string;
  readonly application: string;
  /** bucket start -> [reads, writes] */
  readonly buckets: Map<number, [number, number]>;
  lastRead: number;
  lastWrite: number;
}

export class MemoryUsageIndex extends BufferedUsageIndex {
  /** Insertion order is recency order (entries are re-inserted on update): the first is the LRU victim. */
  private readonly entries = new Map<string, MemoryEntry>();
  private readonly byTarget = new Map<string, Set<string>>();
  private readonly maxEntries: number;

  constructor(opts: MemoryUsageOptions = {}) {
    super(opts);
    this.maxEntries = Math.max(1, opts.maxEntries ?? 100_000);
  }

  get size(): number {
    return this.entries.size;
  }

  protected apply(batch: Increment[]): Promise<void> {
    const cutoff = this.now() - this.retentionMs;
    for (const inc of batch) {
      const id = `${inc.target}\0${userId(inc.principal, inc.application)}`;
      let e = this.entries.get(id);
      if (e) this.entries.delete(id);
      else {
        e = { target: inc.target, principal: inc.principal, application: inc.application, buckets: new Map(), lastRead: 0, lastWrite: 0 };
        let set = this.byTarget.get(inc.target);
        if (!set) this.byTarget.set(inc.target, (set = new Set()));
        set.add(id);
      }
      this.entries.set(id, e);
      const b = e.buckets.get(inc.bucket) ?? [0, 0];
      b[0] += inc.reads;
      b[1] += inc.writes;
      e.buckets.set(inc.bucket, b);
      e.lastRead = Math.max(e.lastRead, inc.lastRead);
      e.lastWrite = Math.max(e.lastWrite, inc.lastWrite);
      for (const start of e.buckets.keys()) if (start + this.bucketMs <= cutoff) e.buckets.delete(start);
    }
    // Bound: evict least recently updated entries beyond the cap, and expired ones from the old end.
    for (const [id, e] of this.entries) {
      const expired = Math.max(e.lastRead, e.lastWrite) < cutoff;
      if (this.entries.size <= this.maxEntries && !expired) break;
      this.remove(id, e);
    }
    return Promise.resolve();
  }

  private remove(id: string, e: MemoryEntry): void {
    this.entries.delete(id);
    const set = this.byTarget.get(e.target);
    set?.delete(id);
    if (set && set.size === 0) this.byTarget.delete(e.target);
  }

  protected query(q: UsageQuery, sinceMs: number): Promise<RecentUser[]> {
    const out: RecentUser[] = [];
    const firstBucket = Math.floor(sinceMs / this.bucketMs) * this.bucketMs;
    for (const id of this.byTarget.get(targetId(q.database, q.schema, q.table, q.column ?? '')) ?? []) {
      const e = this.entries.get(id);
      if (!e) continue;
      let reads = 0;
      let writes = 0;
      for (const [start, [r, w]] of e.buckets) if (start >= firstBucket) { reads += r; writes += w; }
      const last = q.mode === 'read' ? e.lastRead : q.mode === 'write' ? e.lastWrite : Math.max(e.lastRead, e.lastWrite);
      if (last < sinceMs || last === 0) continue;
      const count = q.mode === 'read' ? reads : q.mode === 'write' ? writes : reads + writes;
      out.push({ principal: e.principal, application: e.application, lastUsed: last, count, reads, writes });
    }
    return Promise.resolve(out);
  }
}

/**
 * Redis layout (every key under keyPrefix, every key with a TTL):
 * - `<prefix>b:<target>:<bucketStart>` hash: field `<user>:r` / `<user>:w` -> count; expires retention after its bucket.
 * - `<prefix>l:<target>` sorted set: member `<user>:r` / `<user>:w`, score = last use (epoch ms); trimmed to
 *   retention and to maxUsersPerTarget members (most recent kept); expires retention after its last write.
 * <target> = database:schema:table:column and <user> = principal:application, each part URI-encoded.
 */
export class RedisUsageIndex extends BufferedUsageIndex {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly maxUsers: number;

  constructor(opts: RedisUsageOptions) {
    super(opts);
    this.redis = opts.redis;
    this.prefix = opts.keyPrefix ?? 'pgairlock:usage:';
    this.maxUsers = Math.max(1, opts.maxUsersPerTarget ?? 1000);
  }

  protected async apply(batch: Increment[]): Promise<void> {
    const now = this.now();
    const cutoff = now - this.retentionMs;
    const p = this.redis.pipeline();
    const touchedTargets = new Set<string>();
    for (const inc of batch) {
      const user = userId(inc.principal, inc.application);
      const bkey = `${this.prefix}b:${inc.target}:${inc.bucket}`;
      const lkey = `${this.prefix}l:${inc.target}`;
      if (inc.reads) p.hincrby(bkey, `${user}:r`, inc.reads);
      if (inc.writes) p.hincrby(bkey, `${user}:w`, inc.writes);
      p.pexpireat(bkey, inc.bucket + this.bucketMs + this.retentionMs);
      if (inc.lastRead) p.zadd(lkey, 'GT', inc.lastRead, `${user}:r`);
      if (inc.lastWrite) p.zadd(lkey, 'GT', inc.lastWrite, `${user}:w`);
      touchedTargets.add(lkey);
    }
    for (const lkey of touchedTargets) {
      p.zremrangebyscore(lkey, '-inf', `(${cutoff}`);
      p.zremrangebyrank(lkey, 0, -(this.maxUsers + 1));
      p.pexpire(lkey, this.retentionMs);
    }
    const results = await p.exec();
    const failed = results?.find(([err]) => err);
    if (failed?.[0]) throw failed[0];
  }

  protected async query(q: UsageQuery, sinceMs: number): Promise<RecentUser[]> {
    const target = targetId(q.database, q.schema, q.table, q.column ?? '');
    const members = await this.redis.zrangebyscore(`${this.prefix}l:${target}`, sinceMs, '+inf', 'WITHSCORES');
    const users = new Map<string, { lastRead: number; lastWrite: number; reads: number; writes: number }>();
    for (let i = 0; i + 1 < members.length; i += 2) {
      const m = members[i] ?? '';
      const cut = m.lastIndexOf(':');
      const user = m.slice(0, cut);
      const u = users.get(user) ?? { lastRead: 0, lastWrite: 0, reads: 0, writes: 0 };
      if (m.slice(cut + 1) === 'r') u.lastRead = Number(members[i + 1]);
      else u.lastWrite = Number(members[i + 1]);
      users.set(user, u);
    }
    if (users.size === 0) return [];
    const now = this.now();
    const first = Math.max(Math.floor(sinceMs / this.bucketMs), Math.floor((now - this.retentionMs) / this.bucketMs) - 1) * this.bucketMs;
    const p = this.redis.pipeline();
    let n = 0;
    // Bounded: at most retention / bucket + 2 buckets are read.
    for (let b = first; b <= now && n < this.retentionMs / this.bucketMs + 2; b += this.bucketMs, n++) p.hgetall(`${this.prefix}b:${target}:${b}`);
    const res = (await p.exec()) ?? [];
    for (const [err, value] of res) {
      if (err) throw err;
      for (const [field, count] of Object.entries((value ?? {}) as Record<string, string>)) {
        const cut = field.lastIndexOf(':');
        const u = users.get(field.slice(0, cut));
        if (!u) continue;
        if (field.slice(cut + 1) === 'r') u.reads += Number(count);
        else u.writes += Number(count);
      }
    }
    const out: RecentUser[] = [];
    for (const [id, u] of users) {
      const last = q.mode === 'read' ? u.lastRead : q.mode === 'write' ? u.lastWrite : Math.max(u.lastRead, u.lastWrite);
      if (last < sinceMs || last === 0) continue;
      const count = q.mode === 'read' ? u.reads : q.mode === 'write' ? u.writes : u.reads + u.writes;
      out.push({ ...parseUser(id), lastUsed: last, count, reads: u.reads, writes: u.writes });
    }
    return out;
  }
}

/** Redis when a client is given, in process otherwise. */
export function createUsageIndex(opts: MemoryUsageOptions & { readonly redis?: Redis; readonly keyPrefix?: string; readonly maxUsersPerTarget?: number }): UsageIndex {
  return opts.redis ? new RedisUsageIndex({ ...opts, redis: opts.redis }) : new MemoryUsageIndex(opts);
}

/**
 * Turns analyzer relation uses into usage records (pure): read roles -> read, write/truncate -> write;
 * DDL roles are not usage. Unqualified names are recorded under `defaultSchema` (the caller resolves
 * them through the session's search_path with the snapshot; see resolveRelation).
 */
export function usesFromRelations(
  relations: readonly { readonly relation: { readonly schema?: string; readonly name: string }; readonly role: string; readonly columns?: readonly string[] }[],
  resolveSchema: (rel: { readonly schema?: string; readonly name: string }) => string | undefined,
): RelationUseRecord[] {
  const out: RelationUseRecord[] = [];
  for (const r of relations) {
    const mode: UseMode | undefined = r.role === 'read' ? 'read' : r.role === 'write' || r.role === 'truncate' ? 'write' : undefined;
    if (!mode) continue;
    const schema = r.relation.schema ?? resolveSchema(r.relation);
    if (!schema) continue;
    out.push({ schema, name: r.relation.name, columns: r.columns ?? [], mode });
  }
  return out;
}
