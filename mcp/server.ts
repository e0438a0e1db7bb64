import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { CHANGE_STATUSES } from '../governance/approvals/model.js';
import { analyzeSql, checkDrift, changeView, defaultDatabase, isApprover, listChanges, requestChange, runSql, schemaState, ToolError, type McpGovernance, type McpIdentity } from './core.js';

export const MCP_TOOLS = [
  'schema_state',
  'analyze_sql',
  'run_sql',
  'request_change',
  'change_status',
  'list_changes',
  'approve_change',
  'reject_change',
  'audit_query',
  'explain_decision',
  'check_drift',
  'verify_audit',
] as const;
export type McpToolName = (typeof MCP_TOOLS)[number];

const APPROVER_ONLY: ReadonlySet<McpToolName> = new Set(['approve_change', 'reject_change']);

/** Which tools this identity sees (and may call): approvals only for approver roles. */
export function toolsFor(gov: McpGovernance, id: McpIdentity): McpToolName[] {
  return MCP_TOOLS.filter((t) => !APPROVER_ONLY.has(t) || isApprover(gov, id.principal));
}

const loose = z.looseObject({});
const READ_ONLY = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false } as const;

/** Runs a tool body; returns text + structuredContent, or a tool error with actionable text (never a stack trace). */
async function handle(gov: McpGovernance, name: string, fn: () => Promise<Record<string, unknown>>, text?: (r: Record<string, unknown>) => string): Promise<CallToolResult> {
  try {
    const result = await fn();
    return { content: [{ type: 'text', text: text ? text(result) : JSON.stringify(result, null, 2) }], structuredContent: result };
  } catch (err) {
    const e = err instanceof ToolError ? err : toToolError(err);
    if (!(err instanceof ToolError)) gov.log.warn({ err, tool: name }, 'mcp tool failed');
    const lines = [e.message, e.detail && `detail: ${e.detail}`, e.hint && `hint: ${e.hint}`, e.sqlstate && `sqlstate: ${e.sqlstate}`, e.data && `data: ${JSON.stringify(e.data)}`].filter(Boolean);
    return { isError: true, content: [{ type: 'text', text: lines.join('\n') }] };
  }
}

function toToolError(err: unknown): ToolError {
  const e = err as { message?: string; hint?: string; sqlstate?: string; code?: string };
  return new ToolError(e.message ?? String(err), undefined, e.hint, e.sqlstate ?? (typeof e.code === 'string' && e.code.length === 5 ? e.code : undefined));
}

/**
 * One MCP server per identity: the tools it may use are the only ones registered, so a client
 * neither sees nor can call the others.
 */
export function buildMcpServer(gov: McpGovernance, id: McpIdentity): McpServer {
  const server = new McpServer(
    { name: 'pgairlock', version: '0.1.0' },
    { instructions: 'Governed access to PostgreSQL. Call schema_state first and send its schema_hash back as expected_schema with changes; analyze_sql is a dry run; run_sql executes under policy; held changes return a change id to be approved by another principal.' },
  );
  const allowed = new Set(toolsFor(gov, id));
  const db = { database: z.string().min(1).max(63).optional().describe('database name (default: the upstream URL\'s)') };
  const sql = z.string().min(1).max(1_000_000).describe('SQL text: one or several statements');

  interface ToolSpec {
    readonly title: string;
    readonly description: string;
    readonly inputSchema: z.ZodRawShape;
    readonly outputSchema: z.ZodType;
    readonly annotations: ToolAnnotations;
  }
  // registerTool's generics infer each handler's argument type from its schema; this wrapper only
  // adds the identity filter, so it passes the pieces through untyped.
  const register = server.registerTool.bind(server) as unknown as (name: string, spec: ToolSpec, cb: (args: never) => Promise<CallToolResult>) => void;
  const reg = (name: McpToolName, spec: ToolSpec, cb: (args: never) => Promise<CallToolResult>) => {
    if (allowed.has(name)) register(name, spec, cb);
  };

  reg('schema_state', {
    title: 'Live schema state',
    description: 'The live schema (or the objects matching `object`) with each object\'s version hash, and the schema_hash to send back as expected_schema.',
    inputSchema: { ...db, object: z.string().min(1).optional().describe('schema.name of one object, or a name') },
    outputSchema: loose,
    annotations: READ_ONLY,
  }, (args: { database?: string; object?: string }) => handle(gov, 'schema_state', () => schemaState(gov, args)));

  reg('analyze_sql', {
    title: 'Dry run',
    description: 'Analyse SQL without running it: kind, objects, locks, findings, and the policy decision this principal would get.',
    inputSchema: { sql, ...db },
    outputSchema: loose,
    annotations: READ_ONLY,
  }, (args: { sql: string; database?: string }) => handle(gov, 'analyze_sql', () => Promise.resolve(analyzeSql(gov, id, args))));

  reg('run_sql', {
    title: 'Run SQL under policy',
    description: 'Execute SQL through pgairlock\'s governance (same decision, approvals and audit as the wire). Returns rows (limited); a held statement returns its change id; after approval send exactly the same SQL again.',
    inputSchema: { sql, ...db, expected_schema: z.string().min(12).max(64).optional().describe('schema_hash from schema_state; DDL is refused if the live schema differs'), max_rows: z.number().int().min(1).max(100_000).optional() },
    outputSchema: loose,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  }, (args: { sql: string; database?: string; expected_schema?: string; max_rows?: number }) => handle(gov, 'run_sql', () => runSql(gov, id, args)));

  reg('request_change', {
    title: 'Submit a change for approval',
    description: 'Submit a migration (one or many statements) with a justification; returns a change id and the full analysis. Another principal must approve it; then run_sql with the same SQL runs it once.',
    inputSchema: { sql, justification: z.string().min(3).max(2000), ...db, expected_schema: z.string().min(12).max(64).optional() },
    outputSchema: loose,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  }, (args: { sql: string; justification: string; database?: string; expected_schema?: string }) => handle(gov, 'request_change', () => requestChange(gov, id, args)));

  reg('change_status', {
    title: 'Change request status',
    description: 'One change request: statement, status, required approvals, every event.',
    inputSchema: { id: z.string().min(4).max(16) },
    outputSchema: loose,
    annotations: READ_ONLY,
  }, (args: { id: string }) => handle(gov, 'change_status', async () => ({ change: changeView(await gov.approvals.show(args.id)) })));

  reg('list_changes', {
    title: 'List change requests',
    description: 'Recent change requests, newest first, optionally by status.',
    inputSchema: { status: z.array(z.enum(CHANGE_STATUSES)).optional(), limit: z.number().int().min(1).max(1000).optional() },
    outputSchema: loose,
    annotations: READ_ONLY,
  }, (args: { status?: (typeof CHANGE_STATUSES)[number][]; limit?: number }) => handle(gov, 'list_changes', () => listChanges(gov, args)));

  reg('approve_change', {
    title: 'Approve a change',
    description: 'Approve a pending change request. Nobody approves their own change; approvals come from distinct principals holding the required roles.',
    inputSchema: { id: z.string().min(4).max(16), comment: z.string().max(2000).optional() },
    outputSchema: loose,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  }, (args: { id: string; comment?: string }) => handle(gov, 'approve_change', async () => ({ change: changeView(await gov.approvals.approve(args.id, id.principal, args.comment)) })));

  reg('reject_change', {
    title: 'Reject a change',
    description: 'Reject a pending change request; a reason is required.',
    inputSchema: { id: z.string().min(4).max(16), reason: z.string().min(3).max(2000) },
    outputSchema: loose,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  }, (args: { id: string; reason: string }) => handle(gov, 'reject_change', async () => ({ change: changeView(await gov.approvals.reject(args.id, id.principal, args.reason)) })));

  const auditQuery = () => {
    if (!gov.auditQuery) throw new ToolError('the audit trail is disabled on this pgairlock (audit.enabled: false)');
    return gov.auditQuery;
  };

  reg('audit_query', {
    title: 'Query the audit trail',
    description: 'What changed, who approved it, why it was allowed: one record by id (with its linked records), or records filtered by principal, object, decision, kind and time range.',
    inputSchema: {
      id: z.uuid().optional(),
      principal: z.string().optional(),
      object: z.string().optional().describe('e.g. public.orders'),
      decision: z.enum(['allow', 'deny', 'hold']).optional(),
      kind: z.string().optional(),
      since: z.iso.datetime({ offset: true }).optional(),
      until: z.iso.datetime({ offset: true }).optional(),
      limit: z.number().int().min(1).max(1000).optional(),
    },
    outputSchema: loose,
    annotations: READ_ONLY,
  }, (args: { id?: string; principal?: string; object?: string; decision?: string; kind?: string; since?: string; until?: string; limit?: number }) =>
    handle(gov, 'audit_query', async () => {
      const q = auditQuery();
      if (args.id) {
        const shown = await q.show(args.id);
        if (!shown) throw new ToolError(`no audit record ${args.id}`);
        return JSON.parse(JSON.stringify(shown)) as Record<string, unknown>;
      }
      const { limit, id: _id, ...filters } = args;
      const records = await q.search(filters, { limit: limit ?? 50, order: 'desc' });
      return { records: JSON.parse(JSON.stringify(records)) as unknown[] };
    }));

  reg('explain_decision', {
    title: 'Why was this allowed or refused?',
    description: 'A readable explanation of one audit record: the decision, the rules that matched and why, approvals, outcome.',
    inputSchema: { id: z.uuid() },
    outputSchema: loose,
    annotations: READ_ONLY,
  }, (args: { id: string }) =>
    handle(gov, 'explain_decision', async () => {
      const why = await auditQuery().why(args.id);
      if (!why) throw new ToolError(`no audit record ${args.id}`);
      return { id: args.id, explanation: why };
    }, (r) => String(r.explanation)));

  reg('check_drift', {
    title: 'Check schema drift',
    description: 'Compare the live schema with the schema_hash the agent expects; lists what changed when pgairlock remembers that version.',
    inputSchema: { ...db, expected_schema: z.string().min(12).max(64) },
    outputSchema: loose,
    annotations: READ_ONLY,
  }, (args: { database?: string; expected_schema: string }) => handle(gov, 'check_drift', () => checkDrift(gov, args)));

  reg('verify_audit', {
    title: 'Verify the audit hash chains',
    description: 'Walk every audit chain and report the first broken or missing link.',
    inputSchema: {},
    outputSchema: loose,
    annotations: READ_ONLY,
  }, () => handle(gov, 'verify_audit', async () => JSON.parse(JSON.stringify(await auditQuery().verify())) as Record<string, unknown>));

  server.registerResource('policy', 'pgairlock://policy', { title: 'Active policy', description: 'The policy this pgairlock enforces (read-only)', mimeType: 'application/yaml' }, (uri) => ({
    contents: [{ uri: uri.href, mimeType: 'application/yaml', text: `# source: ${gov.policy().source}\n${toYaml(gov.policy().spec)}` }],
  }));
  if (gov.catalog) {
    const catalog = gov.catalog;
    server.registerResource('schema', 'pgairlock://schema', { title: 'Schema snapshot', description: 'The live schema snapshot of the default database (objects and version hashes)', mimeType: 'application/json' }, async (uri) => {
      const snap = await catalog.current(defaultDatabase(gov));
      return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify({ database: snap.database, schema_hash: snap.schemaHash, objects: snap.objects.map((o) => ({ key: o.key, kind: o.kind, hash: o.hash })) }, null, 2) }] };
    });
  }
  return server;
}
