import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { analyzeCached } from '../analyzer/index.js';
import { requirementsFromHoldSpec, type ApprovalService, type ChangeRequest, type ChangeStatus } from '../governance/approvals/index.js';
import type { AuditQuery } from '../governance/audit/query.js';
import type { Config } from '../governance/config/schema.js';
import type { CompiledPolicy } from '../governance/policy/compile.js';
import { evaluate } from '../governance/policy/evaluate.js';
import type { Decision, StatementsInput } from '../governance/policy/types.js';
import type { Principal } from '../governance/principal.js';
import { summarizeFacts } from '../governance/audit/build.js';
import type { CatalogState } from '../governance/state/service.js';
import { diffSnapshots, formatDiff } from '../governance/state/diff.js';
import { hashMatches } from '../governance/state/expected.js';
import type { CatalogSnapshot } from '../governance/state/types.js';
import type { PgErrorFields } from '../proxy/errors.js';
import type { DecisionServices } from '../proxy/gate/decision-services.js';
import { GovernedGate } from '../proxy/gate/governed-gate.js';
import { TxStatus } from '../proxy/wire/protocol.js';

/** Who is calling: from the bearer token (HTTP) or config/flags (stdio). */
export interface McpIdentity {
  readonly principal: Principal;
  /** postgres URL (with credentials) this principal's SQL runs with; default: pgairlock's upstream URL. */
  readonly databaseUrl?: string;
}

/** The governance parts the MCP tools use: the same objects the wire proxy uses. */
export interface McpGovernance {
  readonly config: Config;
  readonly log: Logger;
  readonly policy: () => CompiledPolicy;
  readonly services: DecisionServices;
  readonly approvals: ApprovalService;
  readonly auditQuery?: AuditQuery;
  readonly catalog?: CatalogState;
}

/** A tool failure the caller can act on: shown as a tool error (isError), never a stack trace. */
export class ToolError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
    readonly hint?: string,
    readonly sqlstate?: string,
    readonly data?: Record<string, unknown>,
  ) {
    super(message);
  }

  static fromPg(e: PgErrorFields, data?: Record<string, unknown>): ToolError {
    return new ToolError(e.message, e.detail, e.hint, e.code, data);
  }
}

export function isApprover(gov: McpGovernance, p: Principal): boolean {
  return p.roles.some((r) => gov.config.mcp.approver_roles.includes(r));
}

function upstreamUrl(gov: McpGovernance, id: McpIdentity, database: string): string {
  const base = id.databaseUrl ?? gov.config.upstream.url;
  if (!base) throw new ToolError('no upstream database is configured', undefined, 'Set DATABASE_URL or upstream.url.');
  const u = new URL(base);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

export function defaultDatabase(gov: McpGovernance): string {
  const url = gov.config.upstream.url;
  const path = url ? decodeURIComponent(new URL(url).pathname.slice(1)) : '';
  return path || 'postgres';
}

function statementsOf(sql: string, serverVersion?: number): StatementsInput {
  const a = analyzeCached(sql, serverVersion ? { serverVersion } : {});
  return a.ok ? a.statements : { parseError: a.error };
}

function decisionView(d: Decision) {
  return {
    effect: d.effect,
    reasons: [...d.reasons],
    rules: d.verdicts.filter((v) => v.matched).map((v) => ({ id: v.id, effect: v.effect, reason: v.reason })),
    ...(d.effect !== 'allow' ? { message: d.error.message, hint: d.error.hint ?? null } : {}),
    ...(d.effect === 'hold' ? { hold: { mode: d.holdSpec.mode, approvals: d.holdSpec.approvals, approver_roles: [...d.holdSpec.approverRoles] } } : {}),
  };
}

function analysisView(statements: StatementsInput) {
  if (!Array.isArray(statements)) {
    const e = (statements as { parseError: { message: string; location?: { char: number } } }).parseError;
    return { parse_error: { message: e.message, position: e.location ? e.location.char + 1 : null }, statements: [] };
  }
  return { parse_error: null, statements: (statements as Parameters<typeof summarizeFacts>[0][]).map((f) => summarizeFacts(f)) };
}

async function expectedSchemaCheck(gov: McpGovernance, database: string, expected: string | undefined, statements: StatementsInput): Promise<void> {
  if (!expected) return;
  const changesSchema = Array.isArray(statements) && (statements as { kind: string }[]).some((f) => f.kind === 'ddl');
  if (!changesSchema) return;
  if (!gov.catalog) throw new ToolError('expected_schema cannot be checked: catalog state is disabled (state.enabled: false)');
  const live = await gov.catalog.current(database);
  if (hashMatches(live.schemaHash, expected)) return;
  const then = gov.catalog.findVersion(database, expected);
  const diff = then ? formatDiff(diffSnapshots(then, live), { maxLines: 40, baseLabel: 'expected', liveLabel: 'live' }) : 'the expected version is not among the versions pgairlock remembers';
  throw new ToolError(
    `refused: the live schema of ${database} (${live.schemaHash.slice(0, 12)}) differs from the expected ${expected.slice(0, 12)}`,
    diff,
    'Call schema_state, review what changed, and write the migration against the live schema.',
    '42501',
  );
}

/** Dry run: facts, findings and the decision this principal would get; nothing is executed or recorded. */
export function analyzeSql(gov: McpGovernance, id: McpIdentity, args: { sql: string; database?: string }) {
  const database = args.database ?? defaultDatabase(gov);
  const statements = statementsOf(args.sql, gov.catalog?.get(database)?.serverVersion);
  const decision = evaluate(
    { statements, principal: id.principal, database, environment: gov.config.environment, now: new Date() },
    gov.policy(),
  );
  return { database, principal: id.principal.name, ...analysisView(statements), decision: decisionView(decision) };
}

/**
 * Runs SQL through exactly the wire's decision path (analysis, policy, audit, approvals), then
 * executes it upstream as the identity's database user. A hold returns the change id (MCP never
 * blocks on an approval: wait holds are deferred).
 */
export async function runSql(gov: McpGovernance, id: McpIdentity, args: { sql: string; database?: string; expected_schema?: string; max_rows?: number }) {
  const database = args.database ?? defaultDatabase(gov);
  await expectedSchemaCheck(gov, database, args.expected_schema, statementsOf(args.sql));
  const notices: string[] = [];
  const session = { serverVersionNum: gov.catalog?.get(database)?.serverVersion ?? 0, txStatus: TxStatus.Idle, sendToClient: () => undefined };
  const info = {
    sessionId: `mcp-${randomBytes(5).toString('hex')}`,
    user: id.principal.name,
    database,
    applicationName: 'pgairlock-mcp',
    clientAddress: 'mcp',
    params: new Map<string, string>(),
    tls: false,
  };
  const catalog = gov.catalog;
  const gate = new GovernedGate(info, id.principal, gov.log, session, {
    policy: gov.policy,
    environment: gov.config.environment,
    services: gov.services,
    ...(catalog ? { onDdlDone: () => catalog.onDdl(database) } : {}),
  }, 'mcp');
  const verdict = await gate.decide(args.sql, 'query');
  if (verdict && verdict.action === 'refuse') {
    const change = /change ([0-9A-Z]{8})/.exec(verdict.error.message)?.[1];
    throw ToolError.fromPg(verdict.error, change ? { change_id: change } : undefined);
  }
  const client = new pg.Client({
    connectionString: upstreamUrl(gov, id, database),
    application_name: `pgairlock-mcp:${id.principal.name}`.slice(0, 63),
    statement_timeout: gov.config.mcp.statement_timeout_ms,
  });
  client.on('error', () => undefined);
  // The server's NOTICE and WARNING messages (e.g. "relation ... already exists, skipping"), as psql shows them.
  client.on('notice', (n) => notices.push(`${n.severity ?? 'NOTICE'}: ${n.message}`));
  // The exact command tags ("CREATE TABLE", "INSERT 0 3"): pg's results keep only the first word of a tag.
  const serverTags: string[] = [];
  (client as unknown as { connection: { on(e: 'commandComplete', f: (m: { text: string }) => void): void } })
    .connection.on('commandComplete', (m) => serverTags.push(m.text));
  try {
    await client.connect();
  } catch (err) {
    gate.completeOutcomes({ commandTags: [], error: { sqlstate: '08001', message: (err as Error).message } });
    throw new ToolError(`could not connect to ${database}: ${(err as Error).message}`, undefined, 'Check the database name and the credentials configured for this MCP identity.', '08001');
  }
  try {
    const raw = await client.query(args.sql);
    const results = (Array.isArray(raw) ? raw : [raw]) as pg.QueryResult[];
    const tags = serverTags.length === results.length
      ? serverTags
      : results.map((r) => (r.command === 'INSERT' ? `INSERT 0 ${r.rowCount ?? 0}` : `${r.command}${r.rowCount !== null ? ` ${r.rowCount}` : ''}`));
    gate.completeOutcomes({ commandTags: tags });
    const max = Math.min(args.max_rows ?? gov.config.mcp.max_rows, gov.config.mcp.max_rows);
    const last = results[results.length - 1];
    const rows = (last?.rows ?? []) as Record<string, unknown>[];
    return {
      database,
      command_tags: tags,
      columns: last?.fields.map((f) => f.name) ?? [],
      rows: rows.slice(0, max),
      row_count: rows.length,
      truncated: rows.length > max,
      notices,
    };
  } catch (err) {
    const e = err as { code?: string; message?: string; detail?: string; hint?: string; position?: string };
    gate.completeOutcomes({ commandTags: [], error: { sqlstate: e.code ?? 'XX000', message: e.message ?? String(err) } });
    throw new ToolError(`the server refused it: ${e.message ?? String(err)}`, e.detail, e.hint, e.code);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Submits a migration for approval: analysed, decided (a denied statement cannot be approved), then held. */
export async function requestChange(gov: McpGovernance, id: McpIdentity, args: { sql: string; justification: string; database?: string; expected_schema?: string }) {
  const database = args.database ?? defaultDatabase(gov);
  const statements = statementsOf(args.sql);
  await expectedSchemaCheck(gov, database, args.expected_schema, statements);
  const decision = evaluate({ statements, principal: id.principal, database, environment: gov.config.environment, now: new Date() }, gov.policy());
  if (decision.effect === 'deny') throw ToolError.fromPg({ code: decision.error.sqlstate, message: decision.error.message, detail: decision.error.detail, hint: decision.error.hint });
  const analysis = analysisView(statements);
  const req = await gov.approvals.hold({
    requester: id.principal,
    database,
    sql: args.sql,
    fingerprint: Array.isArray(statements) ? ((statements as { fingerprint: string }[])[0]?.fingerprint ?? '') : '',
    facts: JSON.parse(JSON.stringify({ justification: args.justification, expected_schema: args.expected_schema ?? null, ...analysis })),
    rules:
      decision.effect === 'hold'
        ? decision.verdicts.filter((v) => v.matched && v.effect === 'hold').map((v) => ({ rule: v.id, reason: v.reason }))
        : [{ rule: 'mcp-request-change', reason: `requested through MCP: ${args.justification}` }],
    ...(decision.effect === 'hold' ? { requirements: requirementsFromHoldSpec(decision.holdSpec), ttlMs: decision.holdSpec.timeoutMs } : {}),
    mode: 'defer',
  });
  return { change: changeView(req), decision: decisionView(decision), ...analysis, next: `After approval, call run_sql with exactly the same sql (it runs once, as ${id.principal.name}).` };
}

export function changeView(r: ChangeRequest) {
  return {
    id: r.id,
    status: r.status,
    requester: r.requester.name,
    database: r.database,
    sql: r.sql,
    // Held with bound values (extended protocol): the approval covers the text with exactly these.
    ...(r.params ? { params: r.params.shown.map((p) => ({ ...p })), ...(r.params.omitted ? { params_omitted: r.params.omitted } : {}), params_sha256: r.paramsHash ?? null } : {}),
    required: { count: r.required.count, roles: [...r.required.roles] },
    created_at: r.createdAt,
    expires_at: r.expiresAt,
    events: r.events.map((e) => JSON.parse(JSON.stringify(e)) as Record<string, unknown>),
  };
}

export async function listChanges(gov: McpGovernance, args: { status?: ChangeStatus[]; limit?: number }) {
  const reqs = await gov.approvals.list({ ...(args.status ? { status: args.status } : {}), limit: args.limit ?? 50 });
  return { changes: reqs.map(changeView) };
}

export async function schemaState(gov: McpGovernance, args: { database?: string; object?: string }) {
  if (!gov.catalog) throw new ToolError('catalog state is disabled (state.enabled: false)');
  const database = args.database ?? defaultDatabase(gov);
  const snap: CatalogSnapshot = await gov.catalog.current(database);
  const objects = snap.objects
    .filter((o) => !args.object || o.key.endsWith(`:${args.object}`) || o.key.includes(`:${args.object}.`) || o.key.includes(`.${args.object}`))
    .map((o) => ({ key: o.key, kind: o.kind, hash: o.hash, ...(args.object ? { definition: (o as { definition?: string }).definition ?? null } : {}) }));
  return { database, schema_hash: snap.schemaHash, server_version: snap.serverVersion, taken_at: snap.takenAt, object_count: snap.objects.length, objects };
}

export async function checkDrift(gov: McpGovernance, args: { database?: string; expected_schema: string }) {
  if (!gov.catalog) throw new ToolError('catalog state is disabled (state.enabled: false)');
  const database = args.database ?? defaultDatabase(gov);
  const live = await gov.catalog.refresh(database, 'demand');
  if (hashMatches(live.schemaHash, args.expected_schema)) return { database, drift: false, live_schema_hash: live.schemaHash, diff: '' };
  const then = gov.catalog.findVersion(database, args.expected_schema);
  return {
    database,
    drift: true,
    live_schema_hash: live.schemaHash,
    diff: then ? formatDiff(diffSnapshots(then, live), { maxLines: 200, baseLabel: 'expected', liveLabel: 'live' }) : 'the expected version is not among the versions this pgairlock remembers (save snapshots with `pgairlock snapshot save` and compare with `pgairlock drift`)',
  };
}
