/**
 * AuditLog: the writer the proxy (and MCP) call for every governed statement and event.
 *
 * - One hash chain per instance. Appends are serialised in this process (one queue, one writer connection,
 *   one multi-row INSERT per batch); the database enforces UNIQUE (instance, seq); a session-level advisory
 *   lock keeps a second live process from writing the same chain.
 * - Changes are write-ahead: recordDecision resolves only once the record is committed, and rejects with
 *   AuditUnavailableError (SQLSTATE 58000) within connect_timeout_ms + write_timeout_ms when it cannot be.
 * - Reads are group-committed (and optionally aggregated per fingerprint per interval); whether a read waits
 *   for its record depends on on_store_failure_for_reads.
 */
import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { loadModule } from 'libpg-query';
import pg from 'pg';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { configSchema } from '../config/schema.js';
import { aggregateKey, decisionText, fingerprintOf, isChange, objectsOf, outcomeText, redactSql, sessionFields, type DecisionText } from './build.js';
import { recordHashWithBody, sanitize, sha256Hex, storableJson } from './canonical.js';
import type { AuditConfig } from './control.js';
import { AuditInstanceInUseError, AuditUnavailableError } from './errors.js';
import { auditMetrics, type AuditMetrics } from './metrics.js';
import { currentVersion, LATEST_VERSION, migrate } from './migrations.js';
import type {
  ApprovalBody, ApprovalEventInput, DecisionInput, Durability, DecisionReceipt, DriftBody, DriftEventInput, Json, OutcomeBody,
  OutcomeInput, ReadAggregateBody, RecordKind, SessionEndBody, SessionInfo,
} from './types.js';

/** Advisory lock class for "this process writes chain X" (second key: hashtext(instance)); ASCII "pgai". */
export const INSTANCE_LOCK_CLASS = 0x70676169;

export interface AuditLogOptions {
  /** Control database URL (see controlDatabaseUrl()). */
  readonly databaseUrl: string;
  /** This proxy instance's chain name; must be unique among live processes. */
  readonly instance: string;
  /** The `audit` config section (parsed); partial input is completed with the defaults. */
  readonly config?: Partial<AuditConfig>;
  readonly logger?: Logger;
  readonly registry?: Registry;
}

export interface OrphanRecovery {
  readonly decisionId: string;
  readonly instance: string;
  readonly seq: number;
  readonly objectsExist: Record<string, boolean | null>;
}

export interface RecoverOptions {
  /** Tells whether an object named in a decision exists now (null: unknown). Called with a bounded timeout. */
  readonly objectExists?: (database: string, object: string) => Promise<boolean | null>;
  /** At most this many orphans per call (default 10,000). */
  readonly limit?: number;
}

type ItemClass = 'change' | 'read' | 'event';

interface Item {
  readonly id: string;
  readonly time: string;
  readonly kind: RecordKind;
  /** Any record but a decision: its body, serialised when the record is queued. */
  readonly body?: Json;
  /** A decision: its canonical text around the rules (inline rules or rules_ref chosen when queued). */
  readonly decision?: DecisionText;
  /** canonicalJson(body): hashed and inserted as is (computed once, when the record is queued). */
  bodyJson?: string;
  /** A decision that carries its rules inline: once committed, later decisions with the same rules refer to it. */
  rulesJson?: string;
  readonly cls: ItemClass;
  /** Present when the caller awaits the commit: failure rejects it instead of counting a gap. */
  readonly waiter?: Waiter;
  /**
   * A write-ahead decision whose statement is forwarded only once this record commits: if its waiter is
   * refused while the record may still commit, the statement was refused, and settleUnsure() says so.
   */
  readonly gates?: { readonly sessionId: string; readonly principal: string };
}

interface Head { seq: number; hash: string }

/** A caller awaiting a record's commit; settled once (later calls do nothing). */
interface Waiter {
  /** performance.now() after which the watchdog rejects it (the record is dropped if still queued). */
  readonly deadline: number;
  settled: boolean;
  resolve(): void;
  reject(e: Error): void;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Bucket {
  id: string;
  body: Mutable<Omit<ReadAggregateBody, 'outcomes' | 'session_ids' | 'application_names'>> & {
    session_ids: string[]; application_names: string[];
    outcomes: { ok: number; error: number; rows: number; duration_ms_total: number; duration_ms_max: number; sqlstates: Record<string, number> };
  };
  sessions: Set<string>;
}

/** How often waiters are checked against their deadline (append); a refusal may come this much late. */
const WATCHDOG_MS = 50;
/** Refused write-ahead decisions remembered for settleUnsure (beyond it, restart recovery marks them unknown). */
const MAX_UNSURE = 10_000;
/** Distinct rule evaluations remembered for rules_ref (each a few KB); beyond it the map starts over. */
const MAX_RULE_SETS = 2_000;

// One JSON array parameter: cheaper for both sides than eight parallel arrays (no array-literal escaping).
const INSERT_SQL = `INSERT INTO pgairlock.audit_log (id, instance, seq, time, kind, prev_hash, hash, body)
  SELECT (r->>'id')::uuid, r->>'instance', (r->>'seq')::bigint, (r->>'time')::timestamptz, r->>'kind', r->>'prev_hash', r->>'hash', r->'body'
    FROM jsonb_array_elements($1::jsonb) AS r`;

/**
 * A record id: a UUID version 7 (RFC 9562: 48-bit Unix milliseconds, then random bits), so ids, and the
 * decision_id of outcomes, grow with time and the unique index on id is appended to at its right edge instead
 * of at a random page for every row (a large log no longer needs a buffer read and a full-page image per insert).
 */
export function recordId(now = Date.now()): string {
  if (now !== idPrefixMs) {
    const t = now.toString(16).padStart(12, '0');
    idPrefix = `${t.slice(0, 8)}-${t.slice(8, 12)}-7`;
    idPrefixMs = now;
  }
  // 74 random bits as 19 hex digits (11 pool bytes) around the variant nibble (8, 9, a or b): xxx-Nxxx-xxxxxxxxxxxx.
  if (idPoolAt + 11 > ID_POOL_BYTES) { randomFillSync(idPool); idPoolAt = 0; }
  const b = idPool;
  const i = idPoolAt;
  idPoolAt += 11;
  return idPrefix + HEX[b[i]!]!.slice(1) + HEX[b[i + 1]!] + '-' + VARIANT[b[i + 2]! & 3] + HEX[b[i + 3]!]!.slice(1) + HEX[b[i + 4]!]
    + '-' + HEX[b[i + 5]!] + HEX[b[i + 6]!] + HEX[b[i + 7]!] + HEX[b[i + 8]!] + HEX[b[i + 9]!] + HEX[b[i + 10]!];
}

// recordId's state: random bytes drawn 4 KiB at a time (one getrandom per ~400 ids), and the time prefix,
// which only changes once per millisecond.
const ID_POOL_BYTES = 4096;
const idPool = Buffer.allocUnsafe(ID_POOL_BYTES);
let idPoolAt = ID_POOL_BYTES;
let idPrefixMs = -1;
let idPrefix = '';
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const VARIANT = ['8', '9', 'a', 'b'];

export function auditConfig(partial: Partial<AuditConfig> = {}): AuditConfig {
  return configSchema.shape.audit.parse(partial);
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => { t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); });
  return Promise.race([p, timeout]).finally(() => clearTimeout(t));
}

export class AuditLog {
  readonly instance: string;
  readonly config: AuditConfig;
  private readonly writePool: pg.Pool;
  private readonly readPool: pg.Pool;
  private readonly metrics: AuditMetrics;
  private readonly logger: Logger | undefined;
  private lockClient: pg.Client | undefined;
  private lockRetry: NodeJS.Timeout | undefined;
  private head: Head | undefined;
  /** Head when this process opened the chain: its own records up to here may be orphans of a previous run. */
  private openHeadSeq = 0;
  private queue: Item[] = [];
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** The batch being written (its waiters can still time out). */
  private inFlight: readonly Item[] = [];
  /** Write-ahead decisions refused while their batch may still commit (settleUnsure). */
  private unsure: Item[] = [];
  private settling = false;
  /** Unsettled waiters; the watchdog runs while there are any. */
  private waiters = 0;
  private watchdog: NodeJS.Timeout | undefined;
  /** JSON of this.instance, for every row. */
  private readonly instanceJson: string;
  private healthy = true;
  private lastError: string | undefined;
  private probe: NodeJS.Timeout | undefined;
  private buckets = new Map<string, Bucket>();
  private previousBuckets = new Map<string, Bucket>();
  private aggTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Canonical rules text -> the committed decision of this chain that carries it inline (docs/audit.md, rules_ref). */
  private ruleSets = new Map<string, { decision_id: string; sha256: string; member: string }>();

  private constructor(opts: AuditLogOptions, private readonly url: string) {
    this.instance = opts.instance;
    this.instanceJson = JSON.stringify(opts.instance);
    this.config = auditConfig(opts.config);
    this.logger = opts.logger;
    this.metrics = auditMetrics(opts.registry);
    const base: pg.PoolConfig = {
      connectionString: url,
      connectionTimeoutMillis: this.config.connect_timeout_ms,
      query_timeout: this.config.write_timeout_ms,
      application_name: `pgairlock-audit:${opts.instance}`.slice(0, 63),
      // Durability of write-ahead records must not depend on the server's default.
      options: `-c synchronous_commit=on -c statement_timeout=${this.config.write_timeout_ms}`,
    };
    this.writePool = new pg.Pool({ ...base, max: 1 });
    this.readPool = new pg.Pool({ ...base, max: 2, query_timeout: 60_000, options: '-c statement_timeout=60000' });
    // An idle connection killed by a server restart must not crash the process.
    for (const p of [this.writePool, this.readPool]) p.on('error', (err) => this.noteFailure(err));
  }

  /** Loads the SQL parser, migrates (or checks) the schema, takes the instance lock and loads the chain head. */
  static async open(opts: AuditLogOptions): Promise<AuditLog> {
    await loadModule();
    const log = new AuditLog(opts, opts.databaseUrl);
    try {
      const c = await log.readPool.connect();
      try {
        if (log.config.migrate) {
          await migrate(c);
        } else {
          const v = await currentVersion(c);
          if (v < LATEST_VERSION) {
            throw new Error(`audit schema is at version ${v}, this pgairlock needs ${LATEST_VERSION}: run \`pgairlock audit migrate\` as the schema owner, or set audit.migrate: true`);
          }
        }
      } finally { c.release(); }
      await log.acquireInstanceLock(true);
      log.head = await log.loadHead();
      log.openHeadSeq = log.head.seq;
      if (log.config.reads.aggregate) {
        log.aggTimer = setInterval(() => log.flushAggregates(), log.config.reads.aggregate_interval_ms);
        log.aggTimer.unref();
      }
      return log;
    } catch (err) {
      await log.shutdownConnections();
      throw err;
    }
  }

  // ---------------------------------------------------------------- public API

  /**
   * Records one policy decision. For a change (isChange(facts), or input.change) the record is committed
   * before this resolves, after asking input.walLsn() for the upstream WAL position when the statement is
   * allowed; it rejects with AuditUnavailableError (SQLSTATE 58000) if the store cannot be written, and the
   * caller must then refuse the statement. Reads resolve at once under `serve` (a failed write is counted in
   * pgairlock_audit_records_lost_total and logged) and after the commit under `refuse`.
   */
  async recordDecision(input: DecisionInput, opts: { durability?: Durability } = {}): Promise<DecisionReceipt> {
    const change = input.change ?? isChange(input.facts);
    const time = new Date().toISOString();
    if (change && opts.durability === 'before-commit') {
      const id = recordId();
      const durable = (async () => {
        try {
          const walLsn = await this.walPosition(input);
          await this.append(id, time, 'decision', { decision: decisionText(input, { redact: this.config.redact_literals, writeAhead: true, walLsn }) }, 'change');
        } catch (err) {
          this.metrics.refused.inc({ class: 'change' });
          throw err instanceof AuditUnavailableError ? err : new AuditUnavailableError('change', err);
        }
      })();
      durable.catch(() => undefined); // handled by whoever awaits it; never an unhandled rejection
      return { id, committed: false, change: true, durable, sessionId: input.session.sessionId, principal: input.session.principal.name };
    }
    if (change) {
      const walLsn = await this.walPosition(input);
      const id = recordId();
      try {
        const decision = decisionText(input, { redact: this.config.redact_literals, writeAhead: true, walLsn });
        await this.append(id, time, 'decision', { decision }, 'change', { sessionId: input.session.sessionId, principal: input.session.principal.name });
      } catch (err) {
        this.metrics.refused.inc({ class: 'change' });
        // Whatever went wrong, the caller must see a refusal it can send (fail closed).
        throw err instanceof AuditUnavailableError ? err : new AuditUnavailableError('change', err);
      }
      return { id, committed: true, change: true, sessionId: input.session.sessionId, principal: input.session.principal.name };
    }

    const refuse = this.config.on_store_failure_for_reads === 'refuse';
    if (this.config.reads.aggregate && input.decision.effect === 'allow') {
      if (refuse && !this.healthy) {
        this.metrics.refused.inc({ class: 'read' });
        throw new AuditUnavailableError('read', new Error(this.lastError ?? 'audit store unavailable'));
      }
      return this.aggregate(input, time);
    }
    const id = recordId();
    let decision: DecisionText;
    try {
      decision = decisionText(input, { redact: this.config.redact_literals, writeAhead: false, walLsn: null });
    } catch (err) {
      if (refuse) { this.metrics.refused.inc({ class: 'read' }); throw new AuditUnavailableError('read', err); }
      this.logger?.error({ err }, 'audit: could not build a read\'s decision record');
      this.lost('decision', 'build_error', 1);
      return { id, committed: false, change: false, sessionId: input.session.sessionId, principal: input.session.principal.name };
    }
    if (refuse) {
      try {
        await this.append(id, time, 'decision', { decision }, 'read');
      } catch (err) {
        this.metrics.refused.inc({ class: 'read' });
        throw err instanceof AuditUnavailableError ? err : new AuditUnavailableError('read', err);
      }
      return { id, committed: true, change: false, sessionId: input.session.sessionId, principal: input.session.principal.name };
    }
    this.enqueue({ id, time, kind: 'decision', decision, cls: 'read' });
    return { id, committed: false, change: false, sessionId: input.session.sessionId, principal: input.session.principal.name };
  }

  /** The upstream WAL position before an allowed change (null when not asked, not known or too slow). */
  private async walPosition(input: DecisionInput): Promise<string | null> {
    if (input.decision.effect !== 'allow' || !input.walLsn) return null;
    try {
      return await withTimeout(input.walLsn(), this.config.write_timeout_ms, 'pg_current_wal_lsn()');
    } catch (err) {
      this.logger?.warn({ err }, 'audit: could not read the upstream WAL position; recording wal_lsn null');
      return null;
    }
  }

  /** Records how a forwarded statement ended, linked to its decision. Never blocks the caller; group-committed. */
  recordOutcome(receipt: DecisionReceipt, outcome: OutcomeInput, session?: SessionInfo): void {
    if (receipt.aggregateKey !== undefined) {
      this.foldOutcome(receipt.aggregateKey, outcome);
      return;
    }
    // Written straight to canonical text (the OutcomeBody of docs/audit.md): outcomes are one per statement.
    const bodyJson = outcomeText(receipt.id, session?.sessionId ?? receipt.sessionId ?? '', session?.principal.name ?? receipt.principal ?? '', outcome);
    this.enqueue({ id: recordId(), time: new Date().toISOString(), kind: 'outcome', bodyJson, cls: 'read' });
  }

  recordSessionStart(session: SessionInfo): void {
    this.enqueue({ id: recordId(), time: new Date().toISOString(), kind: 'session_start', body: sanitize(sessionFields(session)), cls: 'read' });
  }

  recordSessionEnd(session: SessionInfo, info: { reason: string; durationMs?: number | null; statements?: number | null }): void {
    const body: SessionEndBody = { ...sessionFields(session), reason: info.reason, duration_ms: info.durationMs ?? null, statements: info.statements ?? null };
    this.enqueue({ id: recordId(), time: new Date().toISOString(), kind: 'session_end', body: sanitize(body), cls: 'read' });
  }

  /** Approval events are committed before this resolves (rejects with AuditUnavailableError otherwise). */
  async recordApprovalEvent(ev: ApprovalEventInput): Promise<string> {
    const body: ApprovalBody = {
      event: ev.event, change_id: ev.changeId, principal: ev.actor.name, roles: [...ev.actor.roles], comment: ev.comment ?? null,
      decision_id: ev.decisionId ?? null, fingerprint: ev.fingerprint ?? null, sql_hash: ev.sqlHash ?? null,
      database: ev.database ?? null, detail: ev.detail ?? null,
    };
    const id = recordId();
    await this.append(id, new Date().toISOString(), 'approval', { body }, 'event');
    return id;
  }

  recordDrift(ev: DriftEventInput): string {
    const body: DriftBody = {
      database: ev.database, object: ev.object, expected_version: ev.expectedVersion ?? null, actual_version: ev.actualVersion ?? null,
      detail: ev.detail, session_id: ev.sessionId ?? null, principal: ev.principal?.name ?? null,
    };
    const id = recordId();
    this.enqueue({ id, time: new Date().toISOString(), kind: 'drift', body: sanitize(body), cls: 'read' });
    return id;
  }

  /**
   * After a crash: finds allowed, written-ahead decisions that have no outcome and records outcome 'unknown'
   * for each, noting whether the objects they name exist now. Only chains whose writer is gone are touched:
   * this process's own chain up to where it was opened, and other instances whose advisory lock is free.
   */
  async recoverOrphans(opts: RecoverOptions = {}): Promise<{ recovered: OrphanRecovery[]; skippedLiveInstances: string[] }> {
    const limit = opts.limit ?? 10_000;
    const c = await this.readPool.connect();
    const recovered: OrphanRecovery[] = [];
    const skipped: string[] = [];
    try {
      const found = await c.query<{ id: string; instance: string; seq: string; body: { database?: string; objects?: string[] } }>(
        `SELECT d.id, d.instance, d.seq, d.body FROM pgairlock.audit_log d
          WHERE d.kind = 'decision' AND d.body->>'write_ahead' = 'true' AND d.body->'decision'->>'effect' = 'allow'
            AND NOT EXISTS (SELECT 1 FROM pgairlock.audit_log o WHERE o.kind = 'outcome' AND o.body->>'decision_id' = d.id::text)
          ORDER BY d.instance, d.seq LIMIT $1`, [limit]);
      const byInstance = new Map<string, typeof found.rows>();
      for (const r of found.rows) byInstance.set(r.instance, [...(byInstance.get(r.instance) ?? []), r]);
      for (const [instance, rows] of byInstance) {
        const own = instance === this.instance;
        if (!own) {
          const got = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [INSTANCE_LOCK_CLASS, instance]);
          if (!got.rows[0]?.ok) { skipped.push(instance); continue; }
        }
        try {
          for (const r of rows) {
            if (own && Number(r.seq) > this.openHeadSeq) continue; // in flight in this very process
            const objectsExist: Record<string, boolean | null> = {};
            for (const o of r.body.objects ?? []) {
              objectsExist[o] = opts.objectExists && r.body.database
                ? await withTimeout(opts.objectExists(r.body.database, o), this.config.write_timeout_ms, 'objectExists').catch(() => null)
                : null;
            }
            const body: OutcomeBody = {
              decision_id: r.id, session_id: (r.body as { session_id?: string }).session_id ?? '', principal: (r.body as { principal?: string }).principal ?? '',
              outcome: { status: 'unknown', command_tag: null, rows: null, duration_ms: null, sqlstate: null,
                message: 'pgairlock stopped before the server answered (crash or kill); whether the statement ran is unknown' },
              catalog_version_after: null,
              recovered: { from_instance: instance, by_instance: this.instance, objects_exist: objectsExist },
            };
            await this.append(recordId(), new Date().toISOString(), 'outcome', { body }, 'event');
            recovered.push({ decisionId: r.id, instance, seq: Number(r.seq), objectsExist });
          }
        } finally {
          if (!own) await c.query('SELECT pg_advisory_unlock($1, hashtext($2))', [INSTANCE_LOCK_CLASS, instance]);
        }
      }
    } finally {
      c.release();
    }
    if (recovered.length > 0) this.logger?.warn({ count: recovered.length }, 'audit: recorded outcome unknown for decisions orphaned by a crash');
    return { recovered, skippedLiveInstances: skipped };
  }

  /** Writes everything queued (and, with aggregates: true, the open read aggregates) and waits for it. */
  async flush(opts: { aggregates?: boolean } = {}): Promise<void> {
    if (opts.aggregates) this.flushAggregates();
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    for (let i = 0; i < 1000 && (this.queue.length > 0 || this.loop); i++) await this.runLoop();
  }

  /** Store health as last seen by a write or probe. */
  health(): { healthy: boolean; lastError?: string; queued: number; head: Head | null } {
    return { healthy: this.healthy, ...(this.lastError ? { lastError: this.lastError } : {}), queued: this.queue.length, head: this.head ? { ...this.head } : null };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush({ aggregates: true }).catch(() => undefined);
    this.closed = true;
    if (this.aggTimer) clearInterval(this.aggTimer);
    if (this.probe) clearInterval(this.probe);
    await this.shutdownConnections();
  }

  // ---------------------------------------------------------------- internals

  private async shutdownConnections(): Promise<void> {
    if (this.lockRetry) clearInterval(this.lockRetry);
    if (this.timer) clearTimeout(this.timer);
    if (this.watchdog) { clearInterval(this.watchdog); this.watchdog = undefined; }
    const lc = this.lockClient;
    this.lockClient = undefined;
    await lc?.end().catch(() => undefined);
    await Promise.all([this.writePool.end().catch(() => undefined), this.readPool.end().catch(() => undefined)]);
  }

  private async acquireInstanceLock(first: boolean): Promise<void> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: this.config.connect_timeout_ms, application_name: `pgairlock-audit-lock:${this.instance}`.slice(0, 63) });
    c.on('error', () => undefined);
    await c.connect();
    if (this.closed) { await c.end().catch(() => undefined); return; }
    const r = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS ok', [INSTANCE_LOCK_CLASS, this.instance]);
    if (!r.rows[0]?.ok) {
      await c.end().catch(() => undefined);
      if (first) throw new AuditInstanceInUseError(this.instance);
      throw new Error(`audit chain ${this.instance} was taken over by another process while the control database was unreachable`);
    }
    // Losing the connection loses the lock: take it again when the store is back.
    c.on('end', () => {
      if (this.closed || this.lockClient !== c) return;
      this.lockClient = undefined;
      this.logger?.warn({ instance: this.instance }, 'audit: lost the instance lock connection; retrying');
      this.lockRetry ??= setInterval(() => {
        this.acquireInstanceLock(false).then(() => {
          if (this.lockRetry) clearInterval(this.lockRetry);
          this.lockRetry = undefined;
        }, (err) => { this.logger?.debug({ err }, 'audit: instance lock not yet re-acquired'); });
      }, 2_000);
      this.lockRetry.unref();
    });
    this.lockClient = c;
  }

  private async loadHead(): Promise<Head> {
    const r = await this.writePool.query<{ seq: string; hash: string }>(
      'SELECT seq, hash FROM pgairlock.audit_log WHERE instance = $1 ORDER BY seq DESC LIMIT 1', [this.instance]);
    const row = r.rows[0];
    return row ? { seq: Number(row.seq), hash: row.hash } : { seq: 0, hash: '0'.repeat(64) };
  }

  /**
   * A decision whose rules (the whole evaluation, every rule with its verdict and reason) are the same as
   * those of a decision this process already committed in this chain stores `rules_ref` instead: they are
   * most of a record's bytes, and repeat for every execution of the same statement shape.
   */
  private composeDecision(item: Item, d: DecisionText): void {
    const ref = this.ruleSets.get(d.rules.json);
    if (ref) {
      item.bodyJson = d.head + ref.member + d.tail;
    } else {
      item.bodyJson = `${d.head}"rules":${d.rules.json}${d.tail}`;
      item.rulesJson = d.rules.json;
    }
  }

  /** Enqueues a record and waits for its commit; rejects with AuditUnavailableError. */
  private append(id: string, time: string, kind: RecordKind, payload: { body: unknown } | { decision: DecisionText }, cls: ItemClass, gates?: Item['gates']): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const deadline = performance.now() + this.commitBoundMs();
      const waiter: Waiter = {
        deadline, settled: false,
        resolve: () => { if (!waiter.settled) { waiter.settled = true; this.waiters--; resolve(); } },
        reject: (e: Error) => { if (!waiter.settled) { waiter.settled = true; this.waiters--; reject(e); } },
      };
      this.waiters++;
      this.watchdog ??= setInterval(() => this.expireWaiters(), WATCHDOG_MS);
      this.enqueue({
        id, time, kind, cls,
        ...('decision' in payload ? { decision: payload.decision } : { body: sanitize(payload.body) }),
        waiter,
        ...(gates ? { gates } : {}),
      });
    });
  }

  /**
   * Rejects waiters past their deadline (one timer for all of them, not one per record). A record still
   * queued is dropped, so no record appears for a statement that was refused; one in a batch being
   * written may still commit.
   */
  private expireWaiters(): void {
    const now = performance.now();
    const overdue = (it: Item): boolean => it.waiter !== undefined && !it.waiter.settled && it.waiter.deadline <= now;
    const refuse = (it: Item) => it.waiter!.reject(new AuditUnavailableError(it.cls, new Error(`no commit within ${this.commitBoundMs()} ms`)));
    // Most ticks find nothing: only then is the queue rebuilt.
    if (this.queue.some(overdue)) {
      this.queue = this.queue.filter((it) => {
        if (!overdue(it)) return true;
        refuse(it);
        return false;
      });
    }
    for (const it of this.inFlight) {
      if (!overdue(it)) continue;
      refuse(it);
      this.noteUnsure(it);
    }
    if (this.waiters <= 0 && this.watchdog) { clearInterval(this.watchdog); this.watchdog = undefined; }
  }

  /** Bound on a commit wait even when an earlier batch hangs: one batch's worst case (connect, head reload, insert). */
  private commitBoundMs(): number {
    return this.config.connect_timeout_ms + 2 * this.config.write_timeout_ms + 100;
  }

  private enqueue(item: Item): void {
    if (this.closed) {
      const err = new Error('the audit log is closed');
      if (item.waiter) item.waiter.reject(new AuditUnavailableError(item.cls, err)); else this.lost(item.kind, 'closed', 1);
      return;
    }
    if (this.queue.length >= this.config.max_queue) {
      const err = new Error(`audit queue full (${this.config.max_queue} records waiting)`);
      if (item.waiter) item.waiter.reject(new AuditUnavailableError(item.cls, err)); else this.lost(item.kind, 'queue_full', 1);
      return;
    }
    if (item.decision) this.composeDecision(item, item.decision);
    else item.bodyJson ??= storableJson(item.body);
    this.queue.push(item);
    if (item.waiter || this.queue.length >= this.config.reads.max_batch || this.config.reads.group_commit_ms === 0) {
      if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
      void this.runLoop();
    } else if (!this.timer && !this.loop) {
      this.timer = setTimeout(() => { this.timer = undefined; void this.runLoop(); }, this.config.reads.group_commit_ms);
    }
  }

  /** The single writer: takes batches off the queue in order until it is empty. */
  private runLoop(): Promise<void> {
    this.loop ??= (async () => {
      try {
        while (this.queue.length > 0) {
          const batch = this.queue.splice(0, this.config.reads.max_batch);
          this.inFlight = batch;
          await this.writeBatch(batch);
          this.inFlight = [];
        }
      } finally {
        this.loop = undefined;
      }
    })();
    return this.loop;
  }

  private async writeBatch(batch: Item[]): Promise<void> {
    const started = performance.now();
    for (let attempt = 0; ; attempt++) {
      try {
        this.head ??= await this.loadHead();
        let { seq, hash } = this.head;
        const rows: string[] = [];
        const hashes: string[] = [];
        for (const it of batch) {
          const prev = hash;
          seq += 1;
          const bodyJson = (it.bodyJson ??= storableJson(it.body));
          hash = recordHashWithBody({ id: it.id, instance: this.instance, seq, time: it.time, kind: it.kind, prev_hash: prev }, bodyJson);
          hashes.push(hash);
          // id (recordId), time (toISOString), kind and the hashes are plain ASCII without quotes or escapes.
          rows.push(`{"id":"${it.id}","instance":${this.instanceJson},"seq":${seq},"time":"${it.time}","kind":"${it.kind}","prev_hash":"${prev}","hash":"${hash}","body":${bodyJson}}`);
        }
        await this.writePool.query({ name: 'pgairlock_audit_insert', text: INSERT_SQL, values: [`[${rows.join(',')}]`] });
        this.head = { seq, hash };
        this.markHealthy();
        this.metrics.flushSeconds.observe((performance.now() - started) / 1000);
        const kinds = new Map<RecordKind, number>();
        for (const it of batch) kinds.set(it.kind, (kinds.get(it.kind) ?? 0) + 1);
        for (const [kind, n] of kinds) this.metrics.written.inc({ kind }, n);
        for (const it of batch) {
          if (it.rulesJson !== undefined && !this.ruleSets.has(it.rulesJson)) {
            if (this.ruleSets.size >= MAX_RULE_SETS) this.ruleSets = new Map();
            const sha256 = sha256Hex(it.rulesJson);
            // rules_ref's canonical member (keys sorted): {decision_id, sha256}.
            this.ruleSets.set(it.rulesJson, { decision_id: it.id, sha256, member: `"rules_ref":{"decision_id":${JSON.stringify(it.id)},"sha256":"${sha256}"}` });
          }
          it.waiter?.resolve();
        }
        if (this.config.mirror_to_log && this.logger) this.mirror(batch, seq - batch.length, hashes);
        if (this.unsure.length > 0) void this.settleUnsure();
        return;
      } catch (err) {
        // The head is unknown now (the insert may even have committed before the error): reload next time.
        this.head = undefined;
        if (attempt === 0 && (err as { code?: string }).code === '23505') continue;
        this.metrics.writeFailures.inc();
        this.noteFailure(err);
        let gaps = 0;
        for (const it of batch) {
          if (it.waiter) {
            // A timeout or a lost connection can come after the server committed: the record may exist.
            if (!it.waiter.settled) this.noteUnsure(it);
            it.waiter.reject(new AuditUnavailableError(it.cls, err));
          } else { gaps++; this.metrics.lost.inc({ kind: it.kind, reason: 'store_error' }); }
        }
        this.logger?.error({ err, records: batch.length, lost: gaps, instance: this.instance },
          'audit: could not write to the audit store; changes are refused, unaudited records counted in pgairlock_audit_records_lost_total');
        return;
      }
    }
  }

  private noteUnsure(it: Item): void {
    if (it.gates && this.unsure.length < MAX_UNSURE) this.unsure.push(it);
  }

  /**
   * Write-ahead decisions whose statements were refused (their commit was not confirmed in time) but whose
   * records may have committed anyway: for each one that did, an outcome record says the statement was not
   * executed, so the log never shows an allowed change without saying it did not run. Runs after a
   * successful batch (the store answers again); those not found were never written; a failed look-up keeps
   * them for the next time.
   */
  private async settleUnsure(): Promise<void> {
    if (this.settling) return;
    this.settling = true;
    const items = this.unsure;
    this.unsure = [];
    try {
      const r = await this.readPool.query<{ id: string }>('SELECT id::text AS id FROM pgairlock.audit_log WHERE id = ANY($1::uuid[])', [items.map((it) => it.id)]);
      const found = new Set(r.rows.map((x) => x.id));
      for (const it of items) {
        if (!found.has(it.id)) continue;
        const bodyJson = outcomeText(it.id, it.gates!.sessionId, it.gates!.principal, {
          status: 'error', sqlstate: '58000',
          message: 'not executed: pgairlock refused the statement because its decision record was not confirmed committed in time (the record committed later)',
        });
        this.enqueue({ id: recordId(), time: new Date().toISOString(), kind: 'outcome', bodyJson, cls: 'read' });
      }
    } catch (err) {
      this.unsure = [...items, ...this.unsure].slice(0, MAX_UNSURE);
      this.logger?.warn({ err }, 'audit: could not check refused changes whose records may have committed; will retry');
    } finally {
      this.settling = false;
    }
  }

  /** One pino line per committed record, with its chain position and hash (usable as a verify anchor). */
  private mirror(batch: Item[], firstSeqMinusOne: number, hashes: string[]): void {
    batch.forEach((it, i) => {
      this.logger?.info({
        audit: { id: it.id, instance: this.instance, seq: firstSeqMinusOne + i + 1, time: it.time, kind: it.kind, hash: hashes[i], body: it.body ?? JSON.parse(it.bodyJson!) },
      }, 'audit record');
    });
  }

  private lostLoggedAt = new Map<string, number>();

  /** Counts records that will never be written; logs at most once per reason every 10 s (no log floods). */
  private lost(kind: RecordKind, reason: string, n: number): void {
    this.metrics.lost.inc({ kind, reason }, n);
    const now = Date.now();
    if (now - (this.lostLoggedAt.get(reason) ?? 0) < 10_000) return;
    this.lostLoggedAt.set(reason, now);
    this.logger?.error({ kind, reason, n }, 'audit: record(s) lost; see pgairlock_audit_records_lost_total');
  }

  private noteFailure(err: unknown): void {
    this.healthy = false;
    this.lastError = err instanceof Error ? err.message : String(err);
    if (this.probe || this.closed) return;
    // Without traffic nobody would notice the store coming back (reads may all be refused): probe it.
    // On the read pool, so a hanging probe never holds the writer's single connection.
    let inFlight = false;
    this.probe = setInterval(() => {
      if (inFlight) return;
      inFlight = true;
      this.readPool.query({ text: 'SELECT 1', query_timeout: this.config.write_timeout_ms } as pg.QueryConfig)
        .then(() => this.markHealthy(), () => undefined).finally(() => { inFlight = false; });
    }, 1_000);
    this.probe.unref();
  }

  private markHealthy(): void {
    this.healthy = true;
    this.lastError = undefined;
    if (this.probe) { clearInterval(this.probe); this.probe = undefined; }
  }

  private aggregate(input: DecisionInput, time: string): DecisionReceipt {
    const s = input.session;
    const fp = fingerprintOf(input.sql, input.facts);
    const key = aggregateKey(s.principal.name, s.database, fp, input.sql);
    let b = this.buckets.get(key);
    if (!b) {
      b = {
        id: recordId(),
        sessions: new Set(),
        body: {
          principal: s.principal.name, roles: [...s.principal.roles], database: s.database, database_user: s.databaseUser,
          fingerprint: fp, sample_sql: this.config.redact_literals ? redactSql(input.sql) : input.sql, sql_redacted: this.config.redact_literals,
          objects: objectsOf(input.facts),
          decision: { effect: input.decision.effect, reasons: [...input.decision.reasons], message: input.decision.message ?? null },
          first_time: time, last_time: time, count: 0, session_ids: [], sessions_total: 0, application_names: [],
          outcomes: { ok: 0, error: 0, rows: 0, duration_ms_total: 0, duration_ms_max: 0, sqlstates: {} },
        },
      };
      this.buckets.set(key, b);
    }
    b.body.count++;
    b.body.last_time = time;
    if (!b.sessions.has(s.sessionId)) {
      b.sessions.add(s.sessionId);
      b.body.sessions_total = b.sessions.size;
      if (b.body.session_ids.length < 20) b.body.session_ids.push(s.sessionId);
    }
    const app = s.applicationName ?? '';
    if (app && !b.body.application_names.includes(app) && b.body.application_names.length < 20) b.body.application_names.push(app);
    return { id: b.id, committed: false, change: false, aggregateKey: key };
  }

  private foldOutcome(key: string, o: OutcomeInput): void {
    let b = this.buckets.get(key);
    if (!b) {
      // The read's aggregate was already written: count the outcome in the next interval's aggregate (count 0).
      const prev = this.previousBuckets.get(key);
      if (!prev) { this.lost('read_aggregate', 'late_outcome', 1); return; }
      b = {
        id: recordId(), sessions: new Set(),
        body: {
          ...prev.body, count: 0, session_ids: [], sessions_total: 0, application_names: [],
          outcomes: { ok: 0, error: 0, rows: 0, duration_ms_total: 0, duration_ms_max: 0, sqlstates: {} },
        },
      };
      this.buckets.set(key, b);
    }
    const out = b.body.outcomes;
    if (o.status === 'ok') out.ok++; else out.error++;
    out.rows += o.rows ?? 0;
    const d = o.durationMs ?? 0;
    out.duration_ms_total += d;
    out.duration_ms_max = Math.max(out.duration_ms_max, d);
    if (o.sqlstate) out.sqlstates[o.sqlstate] = (out.sqlstates[o.sqlstate] ?? 0) + 1;
  }

  private flushAggregates(): void {
    this.previousBuckets = this.buckets;
    this.buckets = new Map();
    for (const b of this.previousBuckets.values()) {
      this.enqueue({ id: b.id, time: b.body.last_time, kind: 'read_aggregate', body: sanitize(b.body), cls: 'read' });
    }
  }
}
