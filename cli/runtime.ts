import os from 'node:os';
import pg from 'pg';
import type { Logger } from 'pino';
import { loadAnalyzer } from '../analyzer/index.js';
import { createApprovalService, type ApprovalService } from '../governance/approvals/index.js';
import { controlDatabaseUrl } from '../governance/audit/control.js';
import { AuditLog } from '../governance/audit/log.js';
import type { Config } from '../governance/config/schema.js';
import { policyFromConfig } from '../governance/policy/load.js';
import type { CompiledPolicy } from '../governance/policy/compile.js';
import { compilePrincipals, type PrincipalResolver } from '../governance/principals.js';
import { AdminConsole, CONSOLE_DATABASE, type SessionRow } from '../proxy/console/console.js';
import { DecisionServices } from '../proxy/gate/decision-services.js';
import { GovernedGate } from '../proxy/gate/governed-gate.js';
import { startProxy, type ProxyHooks, type ProxyServer } from '../proxy/server.js';
import type { Session, SessionInfo } from '../proxy/session.js';
import { consoleAudit } from './console-audit.js';

/**
 * The composition root: builds the governance core (policy, principals, audit, approvals) from
 * config and hands the proxy its hooks. Everything here is wiring; the logic lives in the modules.
 */
export interface Runtime {
  readonly proxy: ProxyServer;
  readonly policy: CompiledPolicy;
  readonly principals: PrincipalResolver;
  readonly audit?: AuditLog;
  readonly approvals?: ApprovalService;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  /** Skip the audit trail (tests of other parts; `audit.enabled: false`). */
  readonly audit?: boolean;
}

export async function startRuntime(config: Config, log: Logger, opts: RuntimeOptions = {}): Promise<Runtime> {
  await loadAnalyzer();
  const policy = policyFromConfig(config.policy);
  const principals = compilePrincipals(config.principals);
  const instance = config.instance ?? `${os.hostname()}:${process.pid}`;
  log.info({ policy: policy.source, rules: policy.rules.length, instance }, 'policy loaded');

  let audit: AuditLog | undefined;
  let auditView: ReturnType<typeof consoleAudit> | undefined;
  if (config.audit.enabled && opts.audit !== false) {
    const controlUrl = controlDatabaseUrl(config);
    audit = await AuditLog.open({ databaseUrl: controlUrl, instance, config: config.audit, logger: log });
    auditView = consoleAudit(controlUrl);
    const recovered = await audit.recoverOrphans().catch((err: unknown) => {
      log.warn({ err }, 'audit: orphan recovery failed');
      return undefined;
    });
    if (recovered?.recovered.length) log.warn({ count: recovered.recovered.length }, 'audit: recorded unknown outcomes for decisions of a previous run');
  }

  const approvals = createApprovalService(config, {
    onEvent: (req, ev) => {
      if (!audit) return;
      const by = 'by' in ev && ev.by ? { name: ev.by.name, roles: ev.by.roles } : req.requester;
      void audit
        .recordApprovalEvent({
          event: ev.type,
          changeId: req.id,
          actor: by,
          comment: 'comment' in ev ? (ev.comment ?? null) : 'reason' in ev ? ev.reason : null,
          fingerprint: req.fingerprint,
          sqlHash: req.textHash,
          database: req.database,
        })
        .catch((err: unknown) => log.warn({ err, change: req.id }, 'audit: could not record an approval event'));
    },
  });
  const stopSweep = approvals.startExpirySweep((err) => log.warn({ err }, 'approvals: expiry sweep failed'));

  // pg_current_wal_lsn() is server-wide: one service connection per upstream server is enough.
  const walPool = config.upstream.url ? new pg.Pool({ connectionString: config.upstream.url, max: 1, idleTimeoutMillis: 30_000 }) : undefined;
  walPool?.on('error', (err) => log.debug({ err: err.message }, 'WAL position pool error'));
  const walLsn = walPool
    ? async () => {
        const r = await walPool.query<{ lsn: string | null }>('SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS lsn');
        return r.rows[0]?.lsn ?? null;
      }
    : undefined;

  const approveHint = (id: string) => `An approver runs: psql -h <pgairlock> -p <port> -U <approver> ${CONSOLE_DATABASE} -c "APPROVE ${id};" (or: pgairlock changes approve ${id}).`;
  const services = new DecisionServices({ audit, approvals, walLsn, approveHint });
  const gates = new WeakMap<Session, GovernedGate>();

  const hooks: ProxyHooks = {
    gateFor(info: SessionInfo, session: Session) {
      const resolved = principals.resolve({ user: info.user, database: info.database, applicationName: info.applicationName, clientAddress: info.clientAddress });
      const gate = new GovernedGate(info, resolved.principal, session.log, session, { policy: () => policy, environment: config.environment, services });
      gates.set(session, gate);
      session.log.info({ principal: resolved.principal.name, roles: resolved.principal.roles, matchedBy: resolved.matchedBy }, 'principal resolved');
      audit?.recordSessionStart({
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
      const resolved = principals.resolve({ user: info.user, database: info.database, applicationName: info.applicationName, clientAddress: info.clientAddress });
      return new AdminConsole(session, resolved.principal, {
        approvals,
        auditRecent: auditView ? (limit) => auditView.recent(limit) : undefined,
        sessions: () => sessionRows(proxy, gates),
        log: session.log,
      });
    },
  };
  const proxy = await startProxy(config, log, hooks, { [CONSOLE_DATABASE]: config.console.auth_database });

  return {
    proxy,
    policy,
    principals,
    audit,
    approvals,
    async close() {
      await proxy.shutdown();
      stopSweep();
      await approvals.store.close?.();
      await auditView?.close();
      await audit?.close();
      await walPool?.end();
    },
  };
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
