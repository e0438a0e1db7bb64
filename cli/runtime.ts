import pg from 'pg';
import type { Logger } from 'pino';
import { analyze, configureAnalysisCache, loadAnalyzer } from '../analyzer/index.js';
import { approvalAuditEvent, createApprovalService, type ApprovalService } from '../governance/approvals/index.js';
import { controlDatabaseUrl, instanceName } from '../governance/audit/control.js';
import type { AuditLog } from '../governance/audit/log.js';
import { openAuditLog } from '../governance/audit/open.js';
import { AuditQuery } from '../governance/audit/query.js';
import type { Config } from '../governance/config/schema.js';
import type { CompiledPolicy } from '../governance/policy/compile.js';
import { policyFromConfig } from '../governance/policy/load.js';
import { compilePrincipals, type PrincipalResolver } from '../governance/principals.js';
import { allChanges } from '../governance/state/diff.js';
import { driftAuditInputs } from '../governance/state/drift-audit.js';
import { catalogStateFromConfig, usageIndexFromConfig, usageRedisFromConfig } from '../governance/state/from-config.js';
import { needsState, policyStateFor } from '../governance/state/policy-state.js';
import { recordStatementUse } from '../governance/state/usage-glue.js';
import type { UsageIndex } from '../governance/state/usage.js';
import { StatementStatsSampler } from '../governance/state/pg-stat-usage.js';
import { connectByUrl, type CatalogState } from '../governance/state/service.js';
import { RowEstimator } from '../governance/state/explain.js';
import type { CatalogSnapshot } from '../governance/state/types.js';
import type { McpGovernance } from '../mcp/core.js';
import { startMcpHttp, type McpHttpServer } from '../mcp/http.js';
import { AdminConsole, CONSOLE_DATABASE, type SessionRow } from '../proxy/console/console.js';
import { DecisionServices } from '../proxy/gate/decision-services.js';
import { GovernedGate, type GateContext } from '../proxy/gate/governed-gate.js';
import { startProxy, type ProxyHooks, type ProxyServer } from '../proxy/server.js';
import type { Session, SessionInfo } from '../proxy/session.js';
import { consoleAudit, type ConsoleAudit } from './console-audit.js';
import { startMetricsHttp, type MetricsHttpServer } from './metrics-http.js';

/**
 * The composition root: builds the governance core (policy, principals, audit, approvals, catalog
 * state) from config, and the two front doors onto it (the wire proxy, the MCP server). Everything
 * here is wiring; the logic lives in the modules it connects.
 */
export interface Governance extends McpGovernance {
  readonly principals: PrincipalResolver;
  readonly audit?: AuditLog;
  readonly auditView?: ConsoleAudit;
  /** pg_stat_statements sampling into the usage index (when state and an upstream are configured). */
  readonly statsSampler?: StatsSampling;
  close(): Promise<void>;
}

export interface GovernanceOptions {
  /** Start without the audit trail (same as `audit.enabled: false`). */
  readonly audit?: boolean;
  /** Where the config came from: a relative `policy.file` resolves against its folder. */
  readonly configSource?: string;
}

export async function openGovernance(config: Config, log: Logger, opts: GovernanceOptions = {}): Promise<Governance> {
  await loadAnalyzer();
  configureAnalysisCache({ maxBytes: config.analyzer.cache_max_bytes, maxTextLength: config.analyzer.cache_max_text_length, literals: config.analyzer.cache_literals });
  const policy: CompiledPolicy = policyFromConfig(config.policy, opts.configSource);
  const principals = compilePrincipals(config.principals);
  log.info({ policy: policy.source, rules: policy.rules.length, instance: instanceName(config) }, 'policy loaded');

  let audit: AuditLog | undefined;
  let auditView: ConsoleAudit | undefined;
  let auditQuery: AuditQuery | undefined;
  if (config.audit.enabled && opts.audit !== false) {
    const controlUrl = controlDatabaseUrl(config);
    audit = await openAuditLog(config, { logger: log });
    auditView = consoleAudit(controlUrl);
    auditQuery = new AuditQuery(controlUrl);
    const recovered = await audit.recoverOrphans().catch((err: unknown) => {
      log.warn({ err }, 'audit: orphan recovery failed');
      return undefined;
    });
    if (recovered?.recovered.length) log.warn({ count: recovered.recovered.length }, 'audit: recorded unknown outcomes for decisions of a previous run');
  }

  const approvals: ApprovalService = createApprovalService(config, {
    onEvent: (req, ev) => {
      if (!audit) return;
      void audit
        .recordApprovalEvent(approvalAuditEvent(req, ev))
        .catch((err: unknown) => log.warn({ err, change: req.id }, 'audit: could not record an approval event'));
    },
  });
  const stopSweep = approvals.startExpirySweep((err) => log.warn({ err }, 'approvals: expiry sweep failed'));

  const upstreamUrl = config.upstream.url;
  // pg_current_wal_lsn() is server-wide: one service connection per upstream server is enough.
  const walPool = upstreamUrl ? new pg.Pool({ connectionString: upstreamUrl, max: 1, idleTimeoutMillis: 30_000, application_name: 'pgairlock-wal' }) : undefined;
  walPool?.on('error', (err) => log.debug({ err: err.message }, 'WAL position pool error'));
  const walLsn = walPool
    ? async () => {
        const r = await walPool.query<{ lsn: string | null }>('SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn');
        return r.rows[0]?.lsn ?? null;
      }
    : undefined;

  let catalog: CatalogState | undefined;
  let estimator: RowEstimator | undefined;
  if (config.state.enabled && upstreamUrl) {
    // EXPLAIN for state.min_estimated_rows: pgairlock's own connections, never a client's.
    estimator = new RowEstimator({ baseUrl: upstreamUrl, timeoutMs: config.state.explain_timeout_ms });
    catalog = catalogStateFromConfig(config, {
      connect: connectByUrl(upstreamUrl, { application_name: 'pgairlock-catalog' }),
      onDrift: (ev) => {
        const changes = allChanges(ev.diff);
        log.warn({ database: ev.database, objects: changes.length }, 'schema changed outside pgairlock (drift)');
        // One record per object, with the changed definition lines (what a reviewer needs to judge it).
        for (const input of driftAuditInputs(ev)) audit?.recordDrift(input);
      },
      onError: (database, err) => log.warn({ database, err }, 'catalog refresh failed'),
    });
  }

  const approveHint = (id: string) =>
    `An approver runs: psql -h <pgairlock> -p <port> -U <approver> ${CONSOLE_DATABASE} -c "APPROVE ${id};" (or: pgairlock changes approve ${id}).`;
  // Shared across replicas through Redis when it is configured (REDIS_URL / redis.url), in process otherwise.
  const usageRedis = catalog ? usageRedisFromConfig(config, process.env, (err) => log.debug({ err: err.message }, 'usage index: Redis connection error')) : undefined;
  const usage = catalog ? usageIndexFromConfig(config, usageRedis, (err) => log.warn({ err }, 'usage index: a batch of uses could not be written to Redis')) : undefined;
  // Traffic around pgairlock, from pg_stat_statements when the extension is there, into the same index.
  const statsSampler = usage && catalog && upstreamUrl ? statementStatsSampler(usage, catalog, upstreamUrl, log) : undefined;
  const statsTimer =
    statsSampler && config.state.refresh_interval_ms > 0
      ? setInterval(() => {
          for (const db of catalog!.databases()) void statsSampler.sample(db);
        }, config.state.refresh_interval_ms)
      : undefined;
  statsTimer?.unref();
  const searchPathOf = (ctx: GateContext) => ctx.state.searchPath ?? ['$user', 'public'];
  const services = new DecisionServices({
    audit,
    approvals,
    walLsn,
    walLsnMaxAgeMs: config.audit.wal_lsn_max_age_ms,
    approveHint,
    ...(catalog
      ? {
          catalogVersion: (database: string) => catalog.get(database)?.schemaHash ?? null,
          catalogVersionAfterDdl: (database: string) => catalog.versionAfterDdl(database),
        }
      : {}),
    recordUse:
      usage && catalog
        ? (ctx, statements) => {
            const record = (snapshot: CatalogSnapshot | undefined) =>
              recordStatementUse(
                usage,
                { principal: ctx.principal.name, application: ctx.info.applicationName },
                { database: ctx.info.database, snapshot, searchPath: searchPathOf(ctx), user: ctx.info.user },
                statements,
              );
            const snap = catalog.get(ctx.info.database);
            // Names resolve against the catalog; before its first snapshot, record once it is there (off the hot path).
            if (snap) record(snap);
            else catalog.current(ctx.info.database).then(record, () => undefined);
          }
        : undefined,
    prepareState: catalog
      ? (ctx, statements) =>
          needsState(statements) || ctx.state.expectSchema
            ? policyStateFor({
                catalog,
                usage,
                database: ctx.info.database,
                searchPath: searchPathOf(ctx),
                user: ctx.state.effectiveRole ?? ctx.info.user,
                loginUser: ctx.info.user,
                principal: ctx.principal,
                application: ctx.info.applicationName,
                statements,
                expectSchema: ctx.state.expectSchema,
                usageWindowMs: config.state.usage.retention_hours * 3_600_000,
                estimator,
              })
            : undefined
      : undefined,
  });

  return {
    config,
    log,
    policy: () => policy,
    principals,
    services,
    approvals,
    audit,
    auditView,
    auditQuery,
    catalog,
    statsSampler,
    async close() {
      stopSweep();
      if (statsTimer) clearInterval(statsTimer);
      await approvals.store.close();
      await catalog?.stop();
      await estimator?.close();
      await usage?.close?.();
      usageRedis?.disconnect();
      await auditView?.close();
      await auditQuery?.close();
      await audit?.close();
      await walPool?.end();
    },
  };
}

export interface Runtime {
  readonly governance: Governance;
  readonly proxy: ProxyServer;
  readonly mcp?: McpHttpServer;
  /** GET /metrics (Prometheus), when `metrics.listen` is set. */
  readonly metrics?: MetricsHttpServer;
  /** Stops the front doors (graceful proxy shutdown), then the governance core. */
  close(): Promise<void>;
}

/** `pgairlock start`: the governance core, the wire proxy, and (unless disabled) MCP over HTTP. */
export async function startRuntime(config: Config, log: Logger, opts: GovernanceOptions = {}): Promise<Runtime> {
  const gov = await openGovernance(config, log, opts);
  const gates = new WeakMap<Session, GovernedGate>();
  const hooks: ProxyHooks = {
    gateFor(info: SessionInfo, session: Session) {
      const resolved = gov.principals.resolve({ user: info.user, database: info.database, applicationName: info.applicationName, clientAddress: info.clientAddress });
      const gate = new GovernedGate(info, resolved.principal, session.log, session, {
        policy: gov.policy,
        environment: config.environment,
        services: gov.services,
        maxStatementBytes: config.analyzer.max_statement_bytes,
        ...(gov.catalog ? { onDdlDone: ddlDone(gov.catalog) } : {}),
      });
      gates.set(session, gate);
      // Load the catalog of this database now, so usage and real state are known from the first statement.
      gov.catalog?.current(info.database).then(
        () => gov.statsSampler?.baseline(info.database),
        (err: unknown) => session.log.warn({ err }, 'catalog snapshot unavailable'),
      );
      session.log.info({ principal: resolved.principal.name, roles: resolved.principal.roles, matchedBy: resolved.matchedBy }, 'principal resolved');
      gov.audit?.recordSessionStart({
        sessionId: info.sessionId,
        principal: resolved.principal,
        databaseUser: info.user,
        applicationName: info.applicationName || null,
        clientAddress: info.clientAddress,
        database: info.database,
        source: 'wire',
      });
      return gate;
    },
    virtualDatabase(session: Session, info: SessionInfo) {
      if (info.database !== CONSOLE_DATABASE) return undefined;
      const resolved = gov.principals.resolve({ user: info.user, database: info.database, applicationName: info.applicationName, clientAddress: info.clientAddress });
      return new AdminConsole(session, resolved.principal, {
        approvals: gov.approvals,
        auditRecent: gov.auditView ? (limit) => gov.auditView!.recent(limit) : undefined,
        sessions: () => (proxy ? sessionRows(proxy, gates) : []),
        log: session.log,
      });
    },
  };
  let proxy: ProxyServer | undefined;
  let mcp: McpHttpServer | undefined;
  let metrics: MetricsHttpServer | undefined;
  try {
    proxy = await startProxy(config, log, hooks, { [CONSOLE_DATABASE]: config.console.auth_database });
    if (config.mcp.enabled) mcp = await startMcpHttp(gov, config);
    if (config.metrics.listen) metrics = await startMetricsHttp(config.metrics.listen);
  } catch (err) {
    // Never keep serving without the governance core behind it.
    await mcp?.close();
    await proxy?.shutdown(0);
    await gov.close();
    throw err;
  }
  const started: ProxyServer = proxy;
  return {
    governance: gov,
    proxy: started,
    mcp,
    metrics,
    async close() {
      await metrics?.close();
      await mcp?.close();
      await started.shutdown();
      await gov.close();
    },
  };
}

/**
 * Samples pg_stat_statements of each database on pgairlock's catalog connection settings. The service user's
 * own statements (catalog reads, EXPLAIN) are not usage. A database without the extension is logged once.
 */
interface StatsSampling {
  sample(database: string): Promise<void>;
  /** The first sample of a database (its baseline), once; later ones come with the interval. */
  baseline(database: string): Promise<void> | undefined;
}

function statementStatsSampler(usage: UsageIndex, catalog: CatalogState, upstreamUrl: string, log: Logger): StatsSampling {
  const serviceUser = decodeURIComponent(new URL(upstreamUrl).username);
  const sampler = new StatementStatsSampler({
    usage,
    connect: connectByUrl(upstreamUrl, { application_name: 'pgairlock-usage-stats' }),
    snapshot: (db) => catalog.get(db),
    analyze: (sql) => {
      const a = analyze(sql, { serverVersion: 150000 });
      return a.ok ? a.statements : [];
    },
    ...(serviceUser ? { excludeRoles: [serviceUser] } : {}),
  });
  const unavailable = new Set<string>();
  const seen = new Set<string>();
  const sample = (database: string): Promise<void> =>
      sampler.sample(database).then(
        (r) => {
          if (!r.available && !unavailable.has(database)) {
            unavailable.add(database);
            log.info({ database, reason: r.reason }, 'usage index: pg_stat_statements not available, only traffic through pgairlock is counted');
          }
        },
        (err: unknown) => log.warn({ database, err }, 'usage index: could not read pg_stat_statements'),
      );
  return {
    sample: (database) => {
      seen.add(database);
      return sample(database);
    },
    baseline: (database) => (seen.has(database) ? undefined : (seen.add(database), sample(database))),
  };
}

/** DDL through pgairlock has taken effect: refresh that database's snapshot (debounced), not counting it as drift. */
function ddlDone(catalog: CatalogState): (ctx: GateContext) => void {
  return (ctx) => catalog.onDdl(ctx.info.database);
}

function sessionRows(proxy: ProxyServer, gates: WeakMap<Session, GovernedGate>): SessionRow[] {
  const rows: SessionRow[] = [];
  for (const s of proxy.sessions) {
    const info = s.info;
    if (!info) continue;
    const gate = gates.get(s);
    rows.push({
      id: s.id,
      principal: gate?.ctx.principal.name ?? (info.database === CONSOLE_DATABASE ? '(console)' : ''),
      user: info.user,
      database: info.database,
      application: info.applicationName,
      client: s.clientAddress,
      state: s.phase === 'ready' ? (s.isIdle() ? 'idle' : 'active') : s.phase,
      since: new Date(s.startedAt).toISOString(),
    });
  }
  return rows;
}
