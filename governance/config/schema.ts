import { z } from 'zod';
import { policyConfigSchema, principalsConfigSchema } from '../policy/schema.js';

/**
 * The whole pgairlock.yaml, validated with zod. Every key is documented in docs/configuration.md;
 * keep the two in step. Sections owned by later features (policy, audit, approvals, state, mcp)
 * are added here as those land.
 */

const hostPort = z.string().regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:6432');

export const sslModes = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof sslModes)[number];

const upstreamSchema = z.strictObject({
  /** postgres://user:password@host:port/db?sslmode=... : the server, and pgairlock's own service credentials. */
  url: z.string().url().optional(),
  /** TLS to the upstream, as libpq's sslmode. Overrides ?sslmode= in the URL. */
  sslmode: z.enum(sslModes).optional(),
  /** CA bundle (PEM file) for verify-ca / verify-full. */
  sslrootcert: z.string().optional(),
  connect_timeout_ms: z.number().int().positive().default(10_000),
});

/** pgbouncer-style [databases]: the name a client asks for -> where it really goes. */
const databaseMapSchema = z.strictObject({
  /** Database name on the upstream (default: the client's name). */
  dbname: z.string().min(1).optional(),
  /** Force this user name on the upstream (the client still authenticates as that user). */
  user: z.string().min(1).optional(),
  /** Another server for this database (host:port); default: the upstream URL's. */
  host: z.string().min(1).optional(),
  port: z.number().int().min(1).max(65535).optional(),
});

const tlsSchema = z.strictObject({
  /** PEM certificate chain and key served to clients that send SSLRequest. Without them pgairlock answers 'N'. */
  cert: z.string().min(1),
  key: z.string().min(1),
});

const limitsSchema = z.strictObject({
  /** Largest frontend message accepted, in bytes; larger ends the connection with 08P01. */
  max_message_bytes: z.number().int().min(1024).default(64 * 1024 * 1024),
  /** Largest startup packet, in bytes (PostgreSQL's own limit is 10000). */
  max_startup_bytes: z.number().int().min(64).max(1024 * 1024).default(10_000),
  /** Client connections at once; more are refused with 53300 too_many_connections. */
  max_client_connections: z.number().int().positive().default(1000),
  /** A client must finish startup (and authentication) within this time. */
  startup_timeout_ms: z.number().int().positive().default(60_000),
});

const logSchema = z.strictObject({
  level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Human-readable output via pino-pretty; JSON (the default) otherwise. */
  pretty: z.boolean().default(false),
});

export const configSchema = z.strictObject({
  /** host:port the proxy listens on. */
  listen: hostPort.default('127.0.0.1:6432'),
  upstream: upstreamSchema.default({ connect_timeout_ms: 10_000 }),
  databases: z.record(z.string().min(1), databaseMapSchema).default({}),
  tls: tlsSchema.optional(),
  limits: limitsSchema.default({
    max_message_bytes: 64 * 1024 * 1024,
    max_startup_bytes: 10_000,
    max_client_connections: 1000,
    startup_timeout_ms: 60_000,
  }),
  log: logSchema.default({ level: 'info', pretty: false }),
  /** On SIGTERM/SIGINT: stop accepting, let sessions finish this long, then close them. */
  shutdown_timeout_ms: z.number().int().min(0).default(30_000),
  /** Label of this proxy's environment (e.g. production); policies can match on it. */
  environment: z.string().min(1).default('default'),
  /** The admin console: `psql -d pgairlock` is served by pgairlock itself (proxy/console, docs/approvals.md). */
  console: z
    .strictObject({
      /** Upstream database the console's users authenticate against (they need CONNECT on it). */
      auth_database: z.string().min(1).default('postgres'),
    })
    .prefault({}),
  /** Prometheus metrics over HTTP (cli/metrics-http.ts, docs/configuration.md "metrics"). */
  metrics: z
    .strictObject({
      /** host:port serving GET /metrics; empty (default): not served. */
      listen: z.union([z.literal(''), hostPort]).default(''),
    })
    .prefault({}),
  /** The MCP server (mcp/, docs/mcp.md): Streamable HTTP in `pgairlock start`, stdio via `pgairlock mcp`. */
  mcp: z
    .strictObject({
      /** Serve MCP over HTTP beside the proxy. */
      enabled: z.boolean().default(true),
      listen: hostPort.default('127.0.0.1:6433'),
      path: z.string().startsWith('/').default('/mcp'),
      /** Bearer tokens, stored as sha256 hex of the token (never the token itself). */
      tokens: z
        .array(
          z.strictObject({
            sha256: z.string().length(64).regex(/^[0-9a-f]{64}$/, 'lower-case hex sha256 of the token'),
            /** The principal this token acts as (audit, policy, approvals). */
            principal: z.string().min(1),
            roles: z.array(z.string().min(1)).min(1),
            /** Name of an environment variable holding the postgres URL (credentials) this principal's SQL runs with. */
            database_url_env: z.string().min(1).optional(),
          }),
        )
        .default([]),
      /** Identity of `pgairlock mcp` (stdio); --principal/--roles override. */
      stdio: z
        .strictObject({ principal: z.string().min(1).default('mcp-local'), roles: z.array(z.string().min(1)).min(1).default(['agent']), database_url_env: z.string().min(1).optional() })
        .prefault({}),
      /** Roles that may approve and reject through MCP (the approval service still checks each request's roles). */
      approver_roles: z.array(z.string().min(1)).default(['dba', 'release-manager']),
      /** Most rows run_sql returns (the rest are counted, not sent). */
      max_rows: z.number().int().min(1).max(100_000).default(1_000),
      /** A tool's statement runs at most this long (statement_timeout). */
      statement_timeout_ms: z.number().int().min(100).default(60_000),
    })
    .prefault({}),
  /** Name of this proxy instance (audit chain id); default: hostname and pid. */
  instance: z.string().min(1).optional(),
  /** Audit trail (governance/audit, docs/audit.md; keys documented in docs/configuration.md "audit"). */
  audit: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** Control database; default: upstream.url with database `postgres`. */
      database_url: z.string().url().optional(),
      /** Create/upgrade schema `pgairlock` at start-up; false: only check it is current. */
      migrate: z.boolean().default(true),
      /** Store SQL with constants replaced by $n (libpg_query normalize). */
      redact_literals: z.boolean().default(false),
      connect_timeout_ms: z.number().int().positive().default(2_000),
      /** Bound on one write (and on the pg_current_wal_lsn() call) before a change is refused. */
      write_timeout_ms: z.number().int().positive().default(2_000),
      on_store_failure_for_reads: z.enum(['serve', 'refuse']).default('serve'),
      /**
       * A pg_current_wal_lsn() sample whose read completed at most this long ago is reused as a change's
       * wal_lsn (read before the change is forwarded, so still before its commit). 0: a read per transaction.
       */
      wal_lsn_max_age_ms: z.number().int().min(0).max(60_000).default(50),
      /**
       * true: every change's record is committed before the statement is forwarded. false (default): DML
       * inside an explicit transaction block may be forwarded first; COMMIT waits for the records (docs/audit.md).
       */
      strict_write_ahead: z.boolean().default(false),
      reads: z
        .strictObject({
          group_commit_ms: z.number().int().min(0).max(10_000).default(10),
          max_batch: z.number().int().min(1).max(10_000).default(500),
          aggregate: z.boolean().default(false),
          aggregate_interval_ms: z.number().int().min(100).default(10_000),
        })
        .prefault({}),
      /** Records waiting for a write; beyond it reads are dropped (counted) and changes refused. */
      max_queue: z.number().int().min(100).default(100_000),
      /** Also log every committed record as one pino line (msg "audit record"). */
      mirror_to_log: z.boolean().default(false),
    })
    .prefault({}),
  /** Change requests and separation of duties (governance/approvals, docs/approvals.md; keys in docs/configuration.md "approvals"). */
  approvals: z
    .strictObject({
      /** Lifetime of a change request, pending or approved; after it, it is expired and cannot run. */
      expire_after_seconds: z.number().int().min(10).default(3_600),
      /** How long a `wait`-mode statement stays pending before it is expired and the client gets an error. */
      wait_timeout_seconds: z.number().int().min(1).default(300),
      /** Refuse to run an approved change for a principal that approved it (implied by the no-self-approval rule; checked again). */
      executor_must_differ_from_approver: z.boolean().default(false),
      /** Approvals needed when the policy rule that holds a statement does not say. */
      default_required: z
        .strictObject({
          count: z.number().int().min(1).max(10).default(1),
          roles: z.array(z.string().min(1)).min(1).default(['dba']),
        })
        .prefault({}),
      /** Decided requests stay readable (show, list, audit cross-check) this long after they expire. */
      retention_seconds: z.number().int().min(0).default(7 * 24 * 3_600),
      /** Statements longer than this are refused instead of held (they are stored and shown to approvers). */
      max_sql_bytes: z.number().int().min(1_024).max(16 * 1024 * 1024).default(1024 * 1024),
      /** Safety re-check of waiting statements in case a pub/sub wake-up was lost. */
      recheck_interval_ms: z.number().int().min(100).default(5_000),
      /** How often a proxy sweeps open requests past their expiry to `expired`. */
      expiry_sweep_interval_ms: z.number().int().min(100).default(10_000),
    })
    .prefault({}),
  /** Who is acting: connection -> principal with roles (governance/principals.ts; docs/configuration.md "principals"). */
  principals: principalsConfigSchema.prefault({}),
  /** The policy: inline rules, `file`, or (neither) docs/default-policy.yaml (governance/policy; docs/policy.md). */
  policy: policyConfigSchema.prefault({}),
  /** `pgairlock check`, the offline migration linter (docs/rules.md; keys in docs/configuration.md "check"). */
  check: z
    .strictObject({
      /** Rule ids (ours or squawk's) never reported. */
      disabled_rules: z.array(z.string().min(1)).default([]),
      /** Opt-in rules to turn on (the application-compatibility ones marked opt-in in docs/rules.md). */
      enabled_rules: z.array(z.string().min(1)).default([]),
      /** Lowest severity that makes `check` exit 1; --fail-on overrides. */
      fail_on: z.enum(['error', 'warning', 'info']).default('warning'),
      /** Target PostgreSQL major version (13..18); --pg-version overrides. */
      pg_version: z.number().int().min(13).max(18).default(18),
      /** Files run inside a transaction the migration tool opens (BEGIN in a file is then nesting). */
      assume_in_transaction: z.boolean().default(false),
    })
    .prefault({}),
  /** The analyzer's cache of statement facts (analyzer/cache.ts, docs/analyzer.md; keys in docs/configuration.md "analyzer"). */
  analyzer: z
    .strictObject({
      /** Bound of the estimated bytes the analysis cache retains (facts summaries, never ASTs). */
      cache_max_bytes: z.number().int().min(0).default(16 * 1024 * 1024),
      /** Texts longer than this (UTF-16 units) are analysed but never cached. */
      cache_max_text_length: z.number().int().min(0).default(64 * 1024),
      /** Simple-protocol statements that differ only in inert literals share one cached analysis (analyzer/literals.ts). */
      cache_literals: z.boolean().default(true),
      /** Statement strings longer than this (bytes) are refused before parsing (54000): parsing is synchronous CPU. */
      max_statement_bytes: z.number().int().min(1024).default(1024 * 1024),
    })
    .prefault({}),
  /** Redis for approvals and cross-replica wake-ups. REDIS_URL overrides url; without either, an in-process store. */
  redis: z
    .strictObject({
      url: z.string().regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://...').optional(),
      /** Prefix of every key and channel; replicas sharing approvals must use the same one. */
      key_prefix: z.string().min(1).default('pgairlock:'),
      connect_timeout_ms: z.number().int().positive().default(2_000),
      /** A Redis command without an answer within this fails (the statement needing it is refused). */
      command_timeout_ms: z.number().int().positive().default(2_000),
    })
    .prefault({}),
  /** Real state: catalog snapshots, drift, usage index (governance/state, docs/state.md; keys in docs/configuration.md "state"). */
  state: z
    .strictObject({
      /** Keep catalog snapshots (impact facts, drift, expected schema). */
      enabled: z.boolean().default(true),
      /** Refresh every snapshot this often to catch changes made around pgairlock; 0 = only on DDL and on demand. */
      refresh_interval_ms: z.number().int().min(0).default(300_000),
      /** After DDL passed through, wait this long before refreshing so a burst of DDL costs one refresh. */
      ddl_debounce_ms: z.number().int().min(0).max(60_000).default(200),
      /** Distinct schema versions remembered per database for `pgairlock.expect_schema` checks. */
      history: z.number().int().min(1).max(1_000).default(20),
      /** Schemas left out of snapshots besides pg_*, information_schema and pgairlock. */
      exclude_schemas: z.array(z.string().min(1)).default([]),
      /** statement_timeout of the catalog read. */
      read_timeout_ms: z.number().int().positive().default(30_000),
      /** statement_timeout of an EXPLAIN for a DML row estimate (only when a policy asks). */
      explain_timeout_ms: z.number().int().positive().default(2_000),
      usage: z
        .strictObject({
          /** auto: Redis when redis.url / REDIS_URL is set, in process otherwise. */
          store: z.enum(['auto', 'memory', 'redis']).default('auto'),
          /** Width of a count bucket. */
          bucket_seconds: z.number().int().min(1).default(3_600),
          /** How long uses are remembered. */
          retention_hours: z.number().min(1).default(168),
          /** In process: most (table or column, principal, application) entries; least recently used evicted. */
          max_entries: z.number().int().min(100).default(100_000),
          /** Redis: most (principal, application, mode) members kept per table or column. */
          max_users_per_target: z.number().int().min(1).default(1_000),
          /** Buffered uses are applied this often. */
          flush_interval_ms: z.number().int().min(10).default(1_000),
          /** Uses waiting to be applied; beyond it new ones are dropped (counted). */
          max_buffer: z.number().int().min(100).default(10_000),
        })
        .prefault({}),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
export type DatabaseMapping = z.infer<typeof databaseMapSchema>;
