/**
 * Read side of the audit log, shared by the CLI, the MCP server and the admin console.
 * Everything here only SELECTs; a role with SELECT on pgairlock.audit_log is enough.
 */
import pg from 'pg';
import { ChainVerifier, type ChainBreak } from './chain.js';
import type { AuditEntry, RecordKind } from './types.js';
import { explain } from './why.js';

export interface SearchFilters {
  /** Inclusive lower bound on record time (Date or ISO 8601 / anything PostgreSQL parses as timestamptz). */
  readonly since?: Date | string;
  /** Exclusive upper bound on record time. */
  readonly until?: Date | string;
  readonly principal?: string;
  /** A relation as written (schema.name) or its bare name: matches records naming it either way. */
  readonly object?: string;
  /** Decision effect: allow, deny or hold. */
  readonly decision?: string;
  readonly fingerprint?: string;
  /** Record kind (decision, outcome, ...) or statement kind (read, write, ddl, dcl, ...). */
  readonly kind?: string;
  readonly sessionId?: string;
  readonly instance?: string;
}

export interface StoredEntry extends AuditEntry {
  /** Global insertion position (not hashed; used for tail/export paging). */
  readonly pos: number;
}

export interface ShownEntry {
  readonly entry: StoredEntry;
  /** For a decision: its outcome records. For an outcome: its decision. Approval events of the same change. */
  readonly related: readonly StoredEntry[];
}

export interface ChainReport {
  readonly instance: string;
  readonly records: number;
  readonly head: { seq: number; hash: string } | null;
  readonly break?: ChainBreak;
}

/** A head recorded earlier outside the database (e.g. from `verify` output or the pino mirror). */
export interface ChainAnchor {
  readonly instance: string;
  readonly seq: number;
  readonly hash: string;
}

/** Parses `instance:seq:hash` (the instance may itself contain colons, e.g. host:pid). */
export function parseAnchor(text: string): ChainAnchor {
  const parts = text.split(':');
  const hash = parts.pop();
  const seq = Number(parts.pop());
  const instance = parts.join(':');
  if (!instance || !Number.isSafeInteger(seq) || seq < 1 || !hash || !/^[0-9a-f]{64}$/.test(hash)) {
    throw new Error(`bad anchor ${JSON.stringify(text)}: expected <instance>:<seq>:<64 hex digits>`);
  }
  return { instance, seq, hash };
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly chains: readonly ChainReport[];
}

const RECORD_KIND_SET = new Set<string>(['decision', 'outcome', 'read_aggregate', 'approval', 'session_start', 'session_end', 'drift']);

const COLUMNS = `pos, id, instance, seq, to_char(time AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS time, kind, prev_hash, hash, body`;

interface Row { pos: string; id: string; instance: string; seq: string; time: string; kind: string; prev_hash: string; hash: string; body: AuditEntry['body'] }

function toEntry(r: Row): StoredEntry {
  return { pos: Number(r.pos), id: r.id, instance: r.instance, seq: Number(r.seq), time: r.time, kind: r.kind as RecordKind, prev_hash: r.prev_hash, hash: r.hash, body: r.body };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Builds the WHERE clause for filters; parameters are bound, never spliced. */
export function whereClause(f: SearchFilters, params: unknown[]): string {
  const cond: string[] = [];
  const p = (v: unknown) => { params.push(v instanceof Date ? v.toISOString() : v); return `$${params.length}`; };
  if (f.since !== undefined) cond.push(`time >= ${p(f.since)}::timestamptz`);
  if (f.until !== undefined) cond.push(`time < ${p(f.until)}::timestamptz`);
  if (f.principal !== undefined) cond.push(`body->>'principal' = ${p(f.principal)}`);
  if (f.fingerprint !== undefined) cond.push(`body->>'fingerprint' = ${p(f.fingerprint)}`);
  if (f.decision !== undefined) cond.push(`body->'decision'->>'effect' = ${p(f.decision)}`);
  if (f.sessionId !== undefined) cond.push(`body->>'session_id' = ${p(f.sessionId)}`);
  if (f.instance !== undefined) cond.push(`instance = ${p(f.instance)}`);
  if (f.kind !== undefined) cond.push(RECORD_KIND_SET.has(f.kind) ? `kind = ${p(f.kind)}` : `body->'facts'->>'kind' = ${p(f.kind)}`);
  if (f.object !== undefined) {
    const o = p(f.object);
    cond.push(`(body->'objects' ? ${o} OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(body->'objects') AS x(name)
      WHERE right(x.name, length(${o}) + 1) = '.' || ${o} OR right(${o}, length(x.name) + 1) = '.' || x.name))`);
  }
  return cond.length ? `WHERE ${cond.join(' AND ')}` : '';
}

export class AuditQuery {
  private readonly pool: pg.Pool;
  private readonly ownsPool: boolean;

  /** Pass a control database URL, or a pool you own (it is not ended by close()). */
  constructor(target: string | pg.Pool) {
    if (typeof target === 'string') {
      this.pool = new pg.Pool({ connectionString: target, max: 2, connectionTimeoutMillis: 5_000, application_name: 'pgairlock-audit-query' });
      this.pool.on('error', () => undefined);
      this.ownsPool = true;
    } else {
      this.pool = target;
      this.ownsPool = false;
    }
  }

  async close(): Promise<void> {
    if (this.ownsPool) await this.pool.end();
  }

  async get(id: string): Promise<StoredEntry | null> {
    if (!UUID.test(id)) return null;
    const r = await this.pool.query<Row>(`SELECT ${COLUMNS} FROM pgairlock.audit_log WHERE id = $1`, [id]);
    return r.rows[0] ? toEntry(r.rows[0]) : null;
  }

  /** One record and the records linked to it (outcomes <-> decision, approval events of the same change). */
  async show(id: string): Promise<ShownEntry | null> {
    const entry = await this.get(id);
    if (!entry) return null;
    const related: StoredEntry[] = [];
    if (entry.kind === 'decision') {
      const r = await this.pool.query<Row>(`SELECT ${COLUMNS} FROM pgairlock.audit_log WHERE kind IN ('outcome', 'approval') AND body->>'decision_id' = $1 ORDER BY pos`, [id]);
      related.push(...r.rows.map(toEntry));
      // rules_ref: the decision that carries this one's rules inline (docs/audit.md).
      const ref = (entry.body.rules_ref as { decision_id?: unknown } | undefined)?.decision_id;
      if (typeof ref === 'string' && ref !== id) {
        const d = await this.get(ref);
        if (d) related.push(d);
      }
    } else if ((entry.kind === 'outcome' || entry.kind === 'approval') && typeof entry.body.decision_id === 'string') {
      const d = await this.get(entry.body.decision_id);
      if (d) related.push(d);
    }
    const change = entry.kind === 'decision'
      ? (entry.body.decision as { change_id?: string } | null)?.change_id
      : entry.kind === 'approval' ? (entry.body.change_id as string) : undefined;
    if (change) {
      const r = await this.pool.query<Row>(
        `SELECT ${COLUMNS} FROM pgairlock.audit_log WHERE kind = 'approval' AND body->>'change_id' = $1 AND id <> $2 ORDER BY pos`, [change, id]);
      related.push(...r.rows.map(toEntry));
    }
    return { entry, related };
  }

  /** Newest first unless order: 'asc'. Default limit 100. */
  async search(filters: SearchFilters = {}, opts: { limit?: number; order?: 'asc' | 'desc' } = {}): Promise<StoredEntry[]> {
    const params: unknown[] = [];
    const where = whereClause(filters, params);
    params.push(opts.limit ?? 100);
    const r = await this.pool.query<Row>(
      `SELECT ${COLUMNS} FROM pgairlock.audit_log ${where} ORDER BY pos ${opts.order === 'asc' ? 'ASC' : 'DESC'} LIMIT $${params.length}`, params);
    return r.rows.map(toEntry);
  }

  /** All matching records in insertion order, paged (for export). */
  async *scan(filters: SearchFilters = {}, pageSize = 1000): AsyncGenerator<StoredEntry> {
    let after = 0;
    for (;;) {
      const params: unknown[] = [];
      const where = whereClause(filters, params);
      params.push(after, pageSize);
      const r = await this.pool.query<Row>(
        `SELECT ${COLUMNS} FROM pgairlock.audit_log ${where ? `${where} AND` : 'WHERE'} pos > $${params.length - 1} ORDER BY pos LIMIT $${params.length}`, params);
      for (const row of r.rows) yield toEntry(row);
      if (r.rows.length < pageSize) return;
      after = Number(r.rows[r.rows.length - 1]!.pos);
    }
  }

  /** Writes one JSON object per line (the stored record: id, instance, seq, time, kind, prev_hash, hash, body). */
  async exportJsonl(filters: SearchFilters, write: (line: string) => void | Promise<void>): Promise<number> {
    let n = 0;
    for await (const e of this.scan(filters)) {
      const { pos: _pos, ...record } = e;
      await write(`${JSON.stringify(record)}\n`);
      n++;
    }
    return n;
  }

  /**
   * The last `last` records, then (follow) new ones as they are committed, polling every intervalMs until the
   * signal aborts. Positions are assigned at insert and may become visible out of order across instances, so
   * follow re-reads a window behind the last position and skips records already yielded.
   */
  async *tail(opts: { last?: number; follow?: boolean; intervalMs?: number; signal?: AbortSignal; filters?: SearchFilters } = {}): AsyncGenerator<StoredEntry> {
    const initial = (await this.search(opts.filters ?? {}, { limit: opts.last ?? 20, order: 'desc' })).reverse();
    const seen = new Map<string, number>();
    let high = 0;
    for (const e of initial) { seen.set(e.id, e.pos); high = Math.max(high, e.pos); yield e; }
    if (!opts.follow) return;
    if (high === 0) {
      const r = await this.pool.query<{ p: string | null }>('SELECT max(pos) AS p FROM pgairlock.audit_log');
      high = Number(r.rows[0]?.p ?? 0);
    }
    const WINDOW = 1000;
    while (!opts.signal?.aborted) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, opts.intervalMs ?? 500);
        opts.signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
      });
      if (opts.signal?.aborted) return;
      const params: unknown[] = [];
      const where = whereClause(opts.filters ?? {}, params);
      params.push(Math.max(0, high - WINDOW));
      const r = await this.pool.query<Row>(
        `SELECT ${COLUMNS} FROM pgairlock.audit_log ${where ? `${where} AND` : 'WHERE'} pos > $${params.length} ORDER BY pos LIMIT 5000`, params);
      for (const row of r.rows) {
        const e = toEntry(row);
        if (seen.has(e.id)) continue;
        seen.set(e.id, e.pos);
        high = Math.max(high, e.pos);
        yield e;
      }
      for (const [id, pos] of seen) if (pos <= high - WINDOW) seen.delete(id);
    }
  }

  /** "Why was this allowed / refused?" in words, from the record and the records linked to it. */
  async why(id: string): Promise<string | null> {
    const shown = await this.show(id);
    if (!shown) return null;
    if (shown.entry.kind === 'outcome') {
      const d = shown.related.find((r) => r.kind === 'decision');
      if (d) {
        const again = await this.show(d.id);
        if (again) return explain(again.entry, again.related);
      }
    }
    return explain(shown.entry, shown.related);
  }

  /** Walks every chain in seq order and reports, per chain, the first broken or missing link. */
  async verify(opts: { instance?: string; pageSize?: number; anchors?: readonly ChainAnchor[] } = {}): Promise<VerifyReport> {
    const pageSize = opts.pageSize ?? 5000;
    const anchors = opts.anchors ?? [];
    const instances = opts.instance !== undefined
      ? [opts.instance]
      : (await this.pool.query<{ instance: string }>('SELECT DISTINCT instance FROM pgairlock.audit_log ORDER BY instance')).rows.map((r) => r.instance);
    // An anchored chain that has vanished entirely is a break too.
    for (const a of anchors) if (!instances.includes(a.instance) && (opts.instance === undefined || opts.instance === a.instance)) instances.push(a.instance);
    const chains: ChainReport[] = [];
    for (const instance of instances) {
      const v = new ChainVerifier(instance, new Map(anchors.filter((a) => a.instance === instance).map((a) => [a.seq, a.hash])));
      let after = 0;
      for (;;) {
        const r = await this.pool.query<Row>(
          `SELECT ${COLUMNS} FROM pgairlock.audit_log WHERE instance = $1 AND seq > $2 ORDER BY seq LIMIT $3`, [instance, after, pageSize]);
        let broke = false;
        for (const row of r.rows) {
          if (v.push(toEntry(row))) { broke = true; break; }
        }
        if (broke || r.rows.length < pageSize) break;
        after = Number(r.rows[r.rows.length - 1]!.seq);
      }
      v.finish();
      chains.push({ instance, ...v.result() });
    }
    return { ok: chains.every((c) => !c.break), chains };
  }
}
