import pg from 'pg';
import { Counter, Histogram, register as defaultRegistry, type Registry } from 'prom-client';
import { indexSnapshotAsync } from './deps.js';
import { diffSnapshots, type SnapshotDiff } from './diff.js';
import { hashMatches, MIN_HASH_PREFIX } from './expected.js';
import { readCatalogVersion, readSnapshot, readStats, withFreshStats } from './snapshot.js';
import type { CatalogSnapshot } from './types.js';

/**
 * CatalogState: the latest snapshot of each upstream database, refreshed on demand, after DDL that passed
 * through pgairlock (onDdl), and on an interval. A refresh whose schema differs from the previous one while
 * no DDL passed through pgairlock in between is drift (a change made around pgairlock): it is reported to
 * `onDrift` (the proxy writes it to the audit trail) and counted in pgairlock_schema_drift_total.
 */

export type RefreshReason = 'initial' | 'demand' | 'ddl' | 'interval';

export interface DriftEvent {
  readonly database: string;
  readonly detectedAt: string;
  readonly reason: RefreshReason;
  readonly previous: CatalogSnapshot;
  readonly current: CatalogSnapshot;
  /** What changed (previous = base, current = live). */
  readonly diff: SnapshotDiff;
}

export interface CatalogStateOptions {
  /** A connected client for `database` (pgairlock's service credentials); it is ended after each refresh. */
  readonly connect: (database: string) => Promise<pg.Client>;
  /** Interval refresh of every database seen so far; 0 disables (default 0: the caller passes config). */
  readonly intervalMs?: number;
  /** Wait this long after onDdl before refreshing, so a burst of DDL costs one refresh (default 200). */
  readonly ddlDebounceMs?: number;
  /** Distinct schema versions remembered per database, for expected-schema checks (default 20). */
  readonly historySize?: number;
  readonly excludeSchemas?: readonly string[];
  readonly timeoutMs?: number;
  readonly onDrift?: (event: DriftEvent) => void;
  /** Refresh failures (the previous snapshot stays in use). */
  readonly onError?: (database: string, err: unknown) => void;
  readonly registry?: Registry;
  /** Re-read only statistics when the catalog fingerprint is unchanged (default true; false: always a full read). */
  readonly fastPath?: boolean;
  /** Force a full read after this many fast-path refreshes in a row, in case the fingerprint missed a change (default 12). */
  readonly fullReadEvery?: number;
}

interface DbState {
  latest?: CatalogSnapshot;
  /** ddl epoch when the read of `latest` started. */
  latestEpoch: number;
  /** Incremented by onDdl. */
  epoch: number;
  history: CatalogSnapshot[];
  running?: Promise<CatalogSnapshot>;
  /** A refresh was requested while one was running: run once more after it. */
  queued?: { reason: RefreshReason; promise: Promise<CatalogSnapshot> };
  ddlTimer?: NodeJS.Timeout;
  /** Fast-path refreshes since the last full read. */
  statsOnlyInARow: number;
  /** versionAfterDdl callers: resolved by the first read that started at or after `epoch`. */
  waiters: { readonly epoch: number; readonly resolve: (schemaHash: string | null) => void }[];
}

function metric<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export class CatalogState {
  private readonly dbs = new Map<string, DbState>();
  private interval?: NodeJS.Timeout;
  private readonly driftCounter: Counter<'database'>;
  private readonly refreshCounter: Counter<'database' | 'reason' | 'result'>;
  private readonly refreshSeconds: Histogram<'database'>;
  private stopped = false;

  constructor(private readonly opts: CatalogStateOptions) {
    const registers = [opts.registry ?? defaultRegistry];
    this.driftCounter = metric(registers[0]!, 'pgairlock_schema_drift_total', () => new Counter({
      name: 'pgairlock_schema_drift_total', help: 'Schema changes found on a catalog refresh that did not pass through pgairlock', labelNames: ['database'], registers,
    }));
    this.refreshCounter = metric(registers[0]!, 'pgairlock_catalog_refresh_total', () => new Counter({
      name: 'pgairlock_catalog_refresh_total', help: 'Catalog snapshot refreshes', labelNames: ['database', 'reason', 'result'], registers,
    }));
    this.refreshSeconds = metric(registers[0]!, 'pgairlock_catalog_refresh_seconds', () => new Histogram({
      name: 'pgairlock_catalog_refresh_seconds', help: 'Duration of a catalog snapshot read', labelNames: ['database'], registers,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    }));
    const every = opts.intervalMs ?? 0;
    if (every > 0) {
      this.interval = setInterval(() => {
        for (const db of this.dbs.keys()) this.refresh(db, 'interval').catch(() => undefined);
      }, every);
      this.interval.unref();
    }
  }

  private state(db: string): DbState {
    let s = this.dbs.get(db);
    if (!s) this.dbs.set(db, (s = { latestEpoch: 0, epoch: 0, history: [], statsOnlyInARow: 0, waiters: [] }));
    return s;
  }

  /** Databases seen so far (each refreshed on the interval). */
  databases(): string[] {
    return [...this.dbs.keys()];
  }

  /** The latest snapshot, if one was taken. */
  get(database: string): CatalogSnapshot | undefined {
    return this.dbs.get(database)?.latest;
  }

  /** The latest snapshot, reading one first if there is none yet. */
  async current(database: string): Promise<CatalogSnapshot> {
    return this.get(database) ?? this.refresh(database, 'initial');
  }

  /** A remembered snapshot by schema hash (full, or a prefix of at least 12 hex digits), newest first. */
  findVersion(database: string, schemaHash: string): CatalogSnapshot | undefined {
    if (schemaHash.trim().length < MIN_HASH_PREFIX) return undefined;
    const s = this.dbs.get(database);
    if (!s) return undefined;
    for (let i = s.history.length - 1; i >= 0; i--) {
      const snap = s.history[i];
      if (snap && hashMatches(snap.schemaHash, schemaHash)) return snap;
    }
    return undefined;
  }

  /**
   * Call when DDL has passed through pgairlock and its effect is visible: after it completed in autocommit,
   * or after the COMMIT of the transaction that ran it. Marks the next schema change as ours (not drift)
   * and schedules a refresh (debounced).
   */
  onDdl(database: string): void {
    if (this.stopped) return;
    const s = this.state(database);
    s.epoch += 1;
    if (s.ddlTimer) clearTimeout(s.ddlTimer);
    s.ddlTimer = setTimeout(() => {
      s.ddlTimer = undefined;
      this.refresh(database, 'ddl').catch(() => undefined);
    }, this.opts.ddlDebounceMs ?? 200);
    s.ddlTimer.unref();
  }

  /**
   * The schema version read by the first refresh that starts after the latest onDdl (call it right after
   * onDdl): the catalog version after the DDL that onDdl reported. null when no such read succeeds within
   * `timeoutMs` or the state stops.
   */
  versionAfterDdl(database: string, timeoutMs = 60_000): Promise<string | null> {
    if (this.stopped) return Promise.resolve(null);
    const s = this.state(database);
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      timer.unref();
      const done = (v: string | null) => {
        clearTimeout(timer);
        const i = s.waiters.indexOf(waiter);
        if (i >= 0) s.waiters.splice(i, 1);
        resolve(v);
      };
      const waiter = { epoch: s.epoch, resolve: done };
      s.waiters.push(waiter);
    });
  }

  /** Refreshes now (or joins the refresh queued behind the running one). Rejects when the read fails. */
  refresh(database: string, reason: RefreshReason = 'demand'): Promise<CatalogSnapshot> {
    const s = this.state(database);
    if (s.running) {
      // One refresh at a time per database; requests during a refresh coalesce into one more after it.
      if (!s.queued) {
        const promise = s.running.catch(() => undefined).then(() => {
          s.queued = undefined;
          return this.run(database, s, reason);
        });
        s.queued = { reason, promise };
      }
      return s.queued.promise;
    }
    return this.run(database, s, reason);
  }

  private run(database: string, s: DbState, reason: RefreshReason): Promise<CatalogSnapshot> {
    const p = this.read(database, s, reason).finally(() => {
      if (s.running === p) s.running = undefined;
    });
    s.running = p;
    return p;
  }

  private async read(database: string, s: DbState, reason: RefreshReason): Promise<CatalogSnapshot> {
    const epochAtStart = s.epoch;
    const endTimer = this.refreshSeconds.startTimer({ database });
    let snap: CatalogSnapshot;
    try {
      snap = await this.readOnce(database);
      // Index it now, in slices, so the first statement judged against it does not stall the event loop.
      await indexSnapshotAsync(snap);
    } catch (err) {
      this.refreshCounter.inc({ database, reason, result: 'error' });
      this.opts.onError?.(database, err);
      throw err;
    } finally {
      endTimer();
    }
    this.refreshCounter.inc({ database, reason, result: 'ok' });
    const previous = s.latest;
    // DDL through pgairlock since the previous read started explains any change; without it, a change is drift.
    const ddlInBetween = s.epoch !== s.latestEpoch;
    s.latest = snap;
    s.latestEpoch = epochAtStart;
    this.remember(s, snap);
    for (const w of s.waiters.filter((x) => x.epoch <= epochAtStart)) w.resolve(snap.schemaHash);
    if (previous && previous.schemaHash !== snap.schemaHash && !ddlInBetween) {
      this.driftCounter.inc({ database });
      const event: DriftEvent = { database, detectedAt: new Date().toISOString(), reason, previous, current: snap, diff: diffSnapshots(previous, snap) };
      try {
        this.opts.onDrift?.(event);
      } catch (err) {
        this.opts.onError?.(database, err);
      }
    }
    return snap;
  }

  private async readOnce(database: string): Promise<CatalogSnapshot> {
    const opts = { ...(this.opts.excludeSchemas ? { excludeSchemas: this.opts.excludeSchemas } : {}), ...(this.opts.timeoutMs ? { timeoutMs: this.opts.timeoutMs } : {}) };
    const attempt = async (): Promise<CatalogSnapshot> => {
      const client = await this.opts.connect(database);
      try {
        // Fast path: the catalogs' fingerprint is unchanged since the last full read, so no definition changed;
        // re-read statistics and sizes only (two light queries instead of eleven).
        const s = this.state(database);
        const prev = s.latest;
        if (prev?.catalogVersion && this.opts.fastPath !== false && s.statsOnlyInARow < (this.opts.fullReadEvery ?? 12)) {
          const version = await readCatalogVersion(client);
          if (version === prev.catalogVersion) {
            const { raw, cost } = await readStats(client, opts);
            s.statsOnlyInARow += 1;
            return withFreshStats(prev, raw, cost, version);
          }
        }
        const full = await readSnapshot(client, opts);
        s.statsOnlyInARow = 0;
        return full;
      } finally {
        await client.end().catch(() => undefined);
      }
    };
    try {
      return await attempt();
    } catch (err) {
      // An object dropped between the catalog scan and a pg_get_*def() call gives XX000 "cache lookup failed": read again once.
      if ((err as { code?: string }).code === 'XX000') return attempt();
      throw err;
    }
  }

  private remember(s: DbState, snap: CatalogSnapshot): void {
    const last = s.history[s.history.length - 1];
    if (last && last.schemaHash === snap.schemaHash) s.history[s.history.length - 1] = snap;
    else s.history.push(snap);
    const max = Math.max(1, this.opts.historySize ?? 20);
    while (s.history.length > max) s.history.shift();
  }

  /** Stops the interval and pending DDL refreshes; waits for running refreshes. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.interval) clearInterval(this.interval);
    const running: Promise<unknown>[] = [];
    for (const s of this.dbs.values()) {
      if (s.ddlTimer) clearTimeout(s.ddlTimer);
      for (const w of [...s.waiters]) w.resolve(null);
      if (s.running) running.push(s.running.catch(() => undefined));
      if (s.queued) running.push(s.queued.promise.catch(() => undefined));
    }
    await Promise.all(running);
  }
}

/** `connect` for CatalogState from a base URL: the same server and credentials, another database name. */
export function connectByUrl(baseUrl: string, extra: Omit<pg.ClientConfig, 'connectionString'> = {}): (database: string) => Promise<pg.Client> {
  return async (database) => {
    const u = new URL(baseUrl);
    u.pathname = `/${encodeURIComponent(database)}`;
    const client = new pg.Client({ ...extra, connectionString: u.toString(), application_name: 'pgairlock-catalog' });
    await client.connect();
    return client;
  };
}
