import type pg from 'pg';

/**
 * Versioned, idempotent migrations of the `pgairlock` schema in the control database.
 * Append new migrations at the end; never edit one that has shipped. Each runs in the same transaction
 * as its row in pgairlock.migrations, under a transaction-level advisory lock, so replicas starting at
 * once apply each migration exactly once (the others wait, then find nothing to do).
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const AUDIT_SCHEMA = 'pgairlock';
/** pg_advisory_xact_lock key for migrations: the ASCII bytes of "pgal" / "migr". */
export const MIGRATION_LOCK: readonly [number, number] = [0x7067616c, 0x6d696772];

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'audit log, append-only trigger, indexes',
    sql: `
CREATE TABLE pgairlock.audit_log (
  pos         bigint GENERATED ALWAYS AS IDENTITY,
  id          uuid PRIMARY KEY,
  instance    text NOT NULL,
  seq         bigint NOT NULL CHECK (seq >= 1),
  time        timestamptz NOT NULL,
  kind        text NOT NULL,
  prev_hash   text NOT NULL,
  hash        text NOT NULL,
  body        jsonb NOT NULL,
  -- Derived from body for search; generated, so they can never disagree with the hashed content.
  principal      text GENERATED ALWAYS AS (body->>'principal') STORED,
  session_id     text GENERATED ALWAYS AS (body->>'session_id') STORED,
  fingerprint    text GENERATED ALWAYS AS (body->>'fingerprint') STORED,
  effect         text GENERATED ALWAYS AS (body->'decision'->>'effect') STORED,
  statement_kind text GENERATED ALWAYS AS (body->'facts'->>'kind') STORED,
  decision_id    uuid GENERATED ALWAYS AS ((body->>'decision_id')::uuid) STORED,
  write_ahead    boolean GENERATED ALWAYS AS ((body->>'write_ahead')::boolean) STORED,
  CONSTRAINT audit_log_chain_seq UNIQUE (instance, seq)
);
CREATE UNIQUE INDEX audit_log_pos ON pgairlock.audit_log (pos);
CREATE INDEX audit_log_time ON pgairlock.audit_log (time);
CREATE INDEX audit_log_principal ON pgairlock.audit_log (principal, time);
CREATE INDEX audit_log_fingerprint ON pgairlock.audit_log (fingerprint, time);
CREATE INDEX audit_log_session ON pgairlock.audit_log (session_id);
CREATE INDEX audit_log_decision_id ON pgairlock.audit_log (decision_id) WHERE decision_id IS NOT NULL;
CREATE INDEX audit_log_write_ahead ON pgairlock.audit_log (instance, seq) WHERE kind = 'decision' AND write_ahead;
CREATE INDEX audit_log_objects ON pgairlock.audit_log USING gin ((body->'objects'));

-- Defence in depth: the log is append-only even for a role that was granted too much.
-- (A superuser or the table owner can still disable the trigger; the hash chain catches what follows.)
CREATE FUNCTION pgairlock.audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  RAISE EXCEPTION 'pgairlock.audit_log is append-only: % refused', TG_OP
    USING ERRCODE = '42501', HINT = 'Audit records are never updated or deleted; see docs/audit.md (retention).';
END
$fn$;
CREATE TRIGGER audit_log_no_update_delete BEFORE UPDATE OR DELETE ON pgairlock.audit_log
  FOR EACH ROW EXECUTE FUNCTION pgairlock.audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON pgairlock.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION pgairlock.audit_log_refuse_change();
`,
  },
  {
    version: 2,
    name: 'lean audit_log: search by expressions on body, fewer indexes',
    // Every index and stored generated column is paid for by every record on the hot path of every change
    // (a COMMIT waits for its transaction's records): together about a third of the control database's CPU
    // per record, plus full-page images of randomly placed index pages (session ids are random; a GIN entry
    // per object) after each checkpoint. Searches now filter on body, in pos order, narrowed by time
    // (docs/audit.md, "Indexes"). DROP COLUMN does not rewrite the table.
    sql: `
DROP INDEX IF EXISTS pgairlock.audit_log_principal;
DROP INDEX IF EXISTS pgairlock.audit_log_fingerprint;
DROP INDEX IF EXISTS pgairlock.audit_log_session;
DROP INDEX IF EXISTS pgairlock.audit_log_objects;
DROP INDEX IF EXISTS pgairlock.audit_log_decision_id;
DROP INDEX IF EXISTS pgairlock.audit_log_write_ahead;
ALTER TABLE pgairlock.audit_log
  DROP COLUMN IF EXISTS principal, DROP COLUMN IF EXISTS session_id, DROP COLUMN IF EXISTS fingerprint,
  DROP COLUMN IF EXISTS effect, DROP COLUMN IF EXISTS statement_kind, DROP COLUMN IF EXISTS decision_id,
  DROP COLUMN IF EXISTS write_ahead;
-- New names and IF NOT EXISTS: on a large log a DBA can build these CONCURRENTLY before upgrading, so the
-- migration does not block audit writes (hence changes through the proxy) while it scans the table.
-- A decision's outcomes and approval events (show, crash recovery).
CREATE INDEX IF NOT EXISTS audit_log_outcome_of ON pgairlock.audit_log ((body->>'decision_id')) WHERE kind IN ('outcome', 'approval');
-- Crash recovery: the written-ahead decisions of a chain.
CREATE INDEX IF NOT EXISTS audit_log_written_ahead ON pgairlock.audit_log (instance, seq) WHERE kind = 'decision' AND body->>'write_ahead' = 'true';
`,
  },
];

export const LATEST_VERSION = MIGRATIONS.reduce((m, x) => Math.max(m, x.version), 0);

type Queryable = Pick<pg.ClientBase, 'query'>;

/** Highest applied version; 0 when the schema or the migrations table does not exist yet. Needs no DDL rights. */
export async function currentVersion(client: Queryable): Promise<number> {
  const r = await client.query<{ exists: boolean }>(`SELECT to_regclass('pgairlock.migrations') IS NOT NULL AS exists`);
  if (!r.rows[0]?.exists) return 0;
  const v = await client.query<{ v: number | null }>(`SELECT max(version)::int AS v FROM pgairlock.migrations`);
  return v.rows[0]?.v ?? 0;
}

export interface MigrateResult {
  readonly from: number;
  readonly to: number;
  readonly applied: readonly number[];
}

/**
 * Brings the schema to LATEST_VERSION. Does nothing (and needs no CREATE privilege) when already there,
 * so a proxy running as a role with only INSERT/SELECT starts fine once a DBA has migrated.
 */
export async function migrate(client: pg.ClientBase): Promise<MigrateResult> {
  const before = await currentVersion(client);
  if (before >= LATEST_VERSION) return { from: before, to: before, applied: [] };
  const applied: number[] = [];
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [MIGRATION_LOCK[0], MIGRATION_LOCK[1]]);
    // CREATE SCHEMA checks the database CREATE privilege even with IF NOT EXISTS: skip it when a DBA
    // has already created the schema for a dedicated owner role (docs/audit.md, "Grants").
    const schema = await client.query<{ ok: boolean }>(`SELECT to_regnamespace('${AUDIT_SCHEMA}') IS NOT NULL AS ok`);
    if (!schema.rows[0]?.ok) await client.query(`CREATE SCHEMA ${AUDIT_SCHEMA}`);
    await client.query(`CREATE TABLE IF NOT EXISTS pgairlock.migrations (
      version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
    // Re-read under the lock: another replica may have migrated while we waited.
    const done = new Set((await client.query<{ version: number }>('SELECT version FROM pgairlock.migrations')).rows.map((r) => r.version));
    for (const m of [...MIGRATIONS].sort((a, b) => a.version - b.version)) {
      if (done.has(m.version)) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO pgairlock.migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
      applied.push(m.version);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
  return { from: before, to: LATEST_VERSION, applied };
}
