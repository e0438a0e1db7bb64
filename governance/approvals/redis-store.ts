import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { Redis } from 'ioredis';
import { ApprovalError, storeUnavailable } from './errors.js';
import { version, type ChangeRequest } from './model.js';
import { BaseApprovalStore, type ListFilter, type StoreOptions, type Wake } from './store.js';

/**
 * Redis store, shared by every pgairlock replica pointing at the same Redis and key prefix.
 *
 * Layout (P = keyPrefix):
 *   P cr:<id>        hash {v: version (= number of events), json: the ChangeRequest}; TTL expiresAt + retention
 *   P all            zset id -> createdAt ms (for list)
 *   P open           zset id -> expiresAt ms, pending and approved only (for list and expireDue)
 *   P ok:<sha256>    set of approved ids per (principal, database, textHash) (for consumeApproved)
 *   P events         pub/sub channel, message "<id> <status>" after every committed change
 *
 * Every write is one Lua script: compare the version, write, maintain the indexes, publish. The
 * decision itself (separation of duties) is made in TypeScript by the pure functions of sod.ts on the
 * version that the script then checks, so a concurrent change makes the write fail and the store
 * re-plans on the new version (optimistic concurrency; no WATCH, which would be unsafe on a shared
 * connection).
 */

const CAS_SCRIPT = `
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if v then return 0 end
elseif v ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'json', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[9])
local s = ARGV[4]
if s == 'pending' or s == 'approved' then
  redis.call('ZADD', KEYS[3], ARGV[6], ARGV[9])
else
  redis.call('ZREM', KEYS[3], ARGV[9])
end
if s == 'approved' then
  redis.call('SADD', KEYS[4], ARGV[9])
  redis.call('PEXPIRE', KEYS[4], ARGV[7])
else
  redis.call('SREM', KEYS[4], ARGV[9])
end
if ARGV[1] == '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[10])
end
redis.call('PUBLISH', ARGV[8], ARGV[9] .. ' ' .. s)
return 1
`;

/** Entries of the `all` index older than retention + this are trimmed on insert (their keys are long gone). */
const ALL_INDEX_SLACK_MS = 30 * 24 * 3600 * 1000;
/** list() looks at this many newest ids at most. */
const LIST_SCAN = 1000;

export interface RedisStoreOptions extends StoreOptions {
  /** redis://[user:password@]host:port[/db] or rediss:// */
  readonly url: string;
  /** Prefix of every key and of the channel; give each deployment (and each test file) its own. */
  readonly keyPrefix?: string;
  /** TCP connect timeout. Default 2000 ms. */
  readonly connectTimeoutMs?: number;
  /** A command without a reply within this fails (store_unavailable). Default 2000 ms. */
  readonly commandTimeoutMs?: number;
  /** Connection name shown by CLIENT LIST. */
  readonly connectionName?: string;
  /** Connection errors (for the proxy's logger). Default: ignored (operations report them). */
  readonly onConnectionError?: (err: Error) => void;
}

type Commands = Redis & {
  approvalCas(keys0: string, keys1: string, keys2: string, keys3: string, ...argv: string[]): Promise<number>;
};

/** Where a Redis URL points, without its password (for messages). */
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.hostname}:${u.port || '6379'}`;
  } catch {
    return 'Redis';
  }
}

export class RedisApprovalStore extends BaseApprovalStore {
  readonly kind = 'redis' as const;
  readonly keyPrefix: string;
  private readonly redis: Commands;
  private readonly sub: Redis;
  private readonly wakeups = new EventEmitter();
  private readonly channel: string;
  private readonly where: string;
  private readonly subscribed: Promise<unknown>;
  private readonly connectTimeoutMs: number;
  private everReady = false;

  constructor(opts: RedisStoreOptions) {
    super(opts);
    this.keyPrefix = opts.keyPrefix ?? 'pgairlock:';
    this.channel = `${this.keyPrefix}events`;
    this.where = describeUrl(opts.url);
    this.wakeups.setMaxListeners(0);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 2000;
    const common = {
      connectTimeout: this.connectTimeoutMs,
      // Reconnect for ever, backing off to one attempt every 2 s.
      retryStrategy: (times: number) => Math.min(times * 200, 2000),
      connectionName: opts.connectionName ?? 'pgairlock-approvals',
      disableClientInfo: true,
    };
    // Commands fail at once while disconnected (no offline queue, no resend): a held statement is
    // refused with a clear error instead of hanging.
    this.redis = new Redis(opts.url, {
      ...common,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.commandTimeoutMs ?? 2000,
      scripts: { approvalCas: { lua: CAS_SCRIPT, numberOfKeys: 4 } },
    }) as Commands;
    // The subscriber queues its SUBSCRIBE until connected and re-subscribes after every reconnect.
    this.sub = new Redis(opts.url, { ...common, connectionName: `${common.connectionName}-sub`, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
    const onError = opts.onConnectionError ?? (() => undefined);
    this.redis.on('error', onError);
    this.sub.on('error', onError);
    this.sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      const id = message.split(' ', 1)[0];
      if (id) this.wakeups.emit(id);
    });
    // Wake-ups published while we were disconnected are lost: re-check every waiter on (re)connect.
    this.sub.on('ready', () => this.wakeups.emit('*'));
    this.redis.on('ready', () => {
      this.everReady = true;
      this.wakeups.emit('*');
    });
    this.subscribed = this.sub.subscribe(this.channel).catch(() => undefined);
  }

  private key(id: string): string {
    return `${this.keyPrefix}cr:${id}`;
  }

  private okKey(principal: string, database: string, textHash: string): string {
    const h = createHash('sha256').update(`${principal}\0${database}\0${textHash}`, 'utf8').digest('hex');
    return `${this.keyPrefix}ok:${h}`;
  }

  /**
   * Right after construction the first connection is still being made: wait for it (bounded by the
   * connect timeout) instead of failing the first operations. After that, never wait: while Redis is
   * down every operation fails at once.
   */
  protected override async beforeIo(): Promise<void> {
    if (this.everReady || this.redis.status === 'ready') return;
    if (this.redis.status === 'wait' || this.redis.status === 'connecting' || this.redis.status === 'connect') {
      await this.ready(this.connectTimeoutMs).catch(() => undefined);
    }
  }

  override async ready(timeoutMs = 5000): Promise<void> {
    const wait = (client: Redis) =>
      client.status === 'ready'
        ? Promise.resolve()
        : new Promise<void>((resolve, reject) => {
            const t = setTimeout(() => {
              client.off('ready', ok);
              reject(new Error(`not connected after ${timeoutMs} ms (status ${client.status})`));
            }, timeoutMs);
            const ok = () => {
              clearTimeout(t);
              resolve();
            };
            client.once('ready', ok);
          });
    try {
      await Promise.all([wait(this.redis), wait(this.sub)]);
      await this.subscribed;
    } catch (err) {
      throw storeUnavailable(this.where, err);
    }
  }

  override async close(): Promise<void> {
    await super.close();
    this.redis.disconnect();
    this.sub.disconnect();
  }

  protected wrap(where: string, err: unknown): ApprovalError {
    return storeUnavailable(`${this.where}, ${where}`, err);
  }

  protected async load(id: string): Promise<ChangeRequest | undefined> {
    const json = await this.redis.hget(this.key(id), 'json');
    return json ? (JSON.parse(json) as ChangeRequest) : undefined;
  }

  private async write(expected: string, req: ChangeRequest): Promise<boolean> {
    const now = this.now().getTime();
    const expiresMs = Date.parse(req.expiresAt);
    const ttl = Math.max(1000, expiresMs + this.retentionMs - now);
    const ok = await this.redis.approvalCas(
      this.key(req.id),
      `${this.keyPrefix}all`,
      `${this.keyPrefix}open`,
      this.okKey(req.requester.name, req.database, req.textHash),
      expected,
      String(version(req)),
      JSON.stringify(req),
      req.status,
      String(Date.parse(req.createdAt)),
      String(expiresMs),
      String(ttl),
      this.channel,
      req.id,
      String(now - this.retentionMs - ALL_INDEX_SLACK_MS),
    );
    if (ok === 1) {
      // Our own waiters need not wait for the pub/sub round trip.
      this.wakeups.emit(req.id);
      return true;
    }
    return false;
  }

  protected insert(req: ChangeRequest): Promise<boolean> {
    return this.write('', req);
  }

  protected compareAndSet(before: ChangeRequest, after: ChangeRequest): Promise<boolean> {
    return this.write(String(version(before)), after);
  }

  private async loadIds(ids: string[], index: string): Promise<ChangeRequest[]> {
    if (ids.length === 0) return [];
    const pipe = this.redis.pipeline();
    for (const id of ids) pipe.hget(this.key(id), 'json');
    const replies = (await pipe.exec()) ?? [];
    const out: ChangeRequest[] = [];
    const gone: string[] = [];
    replies.forEach(([err, json], i) => {
      if (err) throw err;
      if (typeof json === 'string') out.push(JSON.parse(json) as ChangeRequest);
      else gone.push(ids[i]!);
    });
    // Keys age out by TTL; drop their ids from the index as we meet them.
    if (gone.length) await this.redis.zrem(index, ...gone);
    return out;
  }

  protected async loadMany(filter: ListFilter, _limit: number): Promise<ChangeRequest[]> {
    const openOnly = filter.status !== undefined && filter.status.length > 0 && filter.status.every((s) => s === 'pending' || s === 'approved');
    const index = `${this.keyPrefix}${openOnly ? 'open' : 'all'}`;
    const ids = await this.redis.zrevrange(index, 0, LIST_SCAN - 1);
    return this.loadIds(ids, index);
  }

  protected async dueIds(now: Date): Promise<string[]> {
    return this.redis.zrangebyscore(`${this.keyPrefix}open`, '-inf', String(now.getTime()), 'LIMIT', 0, 1000);
  }

  protected async approvedIds(principal: string, database: string, textHash: string): Promise<string[]> {
    return this.redis.smembers(this.okKey(principal, database, textHash));
  }

  protected subscribe(id: string, wake: Wake): () => void {
    this.wakeups.on(id, wake);
    this.wakeups.on('*', wake);
    return () => {
      this.wakeups.off(id, wake);
      this.wakeups.off('*', wake);
    };
  }

  /** Deletes every key under this store's prefix (tests only; SCAN, bounded). */
  async dropAllForTests(): Promise<void> {
    let cursor = '0';
    for (let i = 0; i < 10_000; i++) {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${this.keyPrefix}*`, 'COUNT', 500);
      if (keys.length) await this.redis.del(...keys);
      cursor = next;
      if (cursor === '0') return;
    }
  }
}
