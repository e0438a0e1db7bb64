import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, upstreamUrl, urlWithDatabase, useTestDatabase } from '../harness/db.js';
import { ADMIN_DATABASE_URL } from '../harness/env.js';
import { REPO_ROOT } from '../harness/proxy.js';
import { startTestRuntime, type TestRuntime } from '../harness/runtime.js';
import { tempDir } from '../harness/tools.js';

/**
 * The MCP server over both transports with the SDK's own client: each tool, identity checks,
 * self-approval refused, and equivalence with the wire (same decision, same audit shape).
 */
const db = useTestDatabase();
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const AGENT_TOKEN = 'agent-secret-token-1';
const DBA_TOKEN = 'dba-secret-token-1';
const DBA2_TOKEN = 'dba-secret-token-2';
const WIRE_AGENT = 'airlock_mcp_agent';

interface ToolResult {
  isError?: boolean;
  content: { type: string; text: string }[];
  structuredContent?: Record<string, unknown>;
}

async function call(c: Client, name: string, args: Record<string, unknown> = {}): Promise<ToolResult> {
  return (await c.callTool({ name, arguments: args })) as ToolResult;
}

describe.skipIf(!postgresAvailable())('MCP over Streamable HTTP', () => {
  let rt: TestRuntime;
  let agent: Client;
  let dba: Client;
  let dba2: Client;
  const connect = async (token: string) => {
    const c = new Client({ name: 'test', version: '1.0.0' });
    await c.connect(new StreamableHTTPClientTransport(new URL(rt.runtime.mcp!.url), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return c;
  };

  beforeAll(async () => {
    await db.loginRole(WIRE_AGENT);
    await db.query(`CREATE TABLE accounts(id int primary key, owner text); INSERT INTO accounts SELECT g, 'o' || g FROM generate_series(1, 5) g; GRANT ALL ON accounts TO ${WIRE_AGENT}`);
    const upstream = upstreamUrl(db.name);
    rt = await startTestRuntime(db.name, {
      upstream: { url: upstream },
      principals: { map: [{ name: 'agent:mcp-bot', roles: ['agent'], match: { users: [WIRE_AGENT] } }] },
      mcp: {
        tokens: [
          { sha256: sha(AGENT_TOKEN), principal: 'agent:mcp-bot', roles: ['agent'] },
          { sha256: sha(DBA_TOKEN), principal: 'alice', roles: ['dba'] },
          { sha256: sha(DBA2_TOKEN), principal: 'bob', roles: ['dba'] },
        ],
      },
    });
    agent = await connect(AGENT_TOKEN);
    dba = await connect(DBA_TOKEN);
    dba2 = await connect(DBA2_TOKEN);
  });
  afterAll(async () => {
    for (const c of [agent, dba, dba2]) await c?.close().catch(() => undefined);
    await rt?.close();
  });

  it('answers 401 with WWW-Authenticate to a missing or unknown token', async () => {
    for (const auth of [undefined, 'Bearer not-a-token']) {
      const res = await fetch(rt.runtime.mcp!.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(auth ? { authorization: auth } : {}) },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
  });

  it('lists only the tools an identity may use, and refuses the others if called', async () => {
    const agentTools = (await agent.listTools()).tools.map((t) => t.name);
    expect(agentTools).toContain('run_sql');
    expect(agentTools).not.toContain('approve_change');
    const dbaTools = (await dba.listTools()).tools.map((t) => t.name);
    expect(dbaTools).toEqual(expect.arrayContaining(['approve_change', 'reject_change', 'run_sql']));
    const r = await agent.callTool({ name: 'approve_change', arguments: { id: 'ABCDEFGH' } }).catch((e: Error) => ({ isError: true, content: [{ type: 'text', text: e.message }] }));
    expect((r as ToolResult).isError).toBe(true);
  });

  it('schema_state returns object hashes and a schema hash; analyze_sql is a dry run with the decision', async () => {
    const s = await call(agent, 'schema_state', { object: 'accounts' });
    expect(s.isError).toBeFalsy();
    expect(String(s.structuredContent?.schema_hash)).toMatch(/^[0-9a-f]{64}$/);
    expect((s.structuredContent?.objects as { key: string }[]).some((o) => o.key.includes('accounts'))).toBe(true);
    const a = await call(agent, 'analyze_sql', { sql: 'DROP TABLE accounts' });
    expect(a.structuredContent?.decision).toMatchObject({ effect: 'hold' });
    expect(JSON.stringify(a.structuredContent?.statements)).toContain('AccessExclusiveLock');
    expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts')).rows[0]?.n).toBe(5);
  });

  it('run_sql returns rows for an allowed read, and a change id for a held change', async () => {
    const r = await call(agent, 'run_sql', { sql: 'SELECT id, owner FROM accounts ORDER BY id', max_rows: 2 });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ rows: [{ id: 1, owner: 'o1' }, { id: 2, owner: 'o2' }], row_count: 5, truncated: true });
    const held = await call(agent, 'run_sql', { sql: 'DELETE FROM accounts' });
    expect(held.isError).toBe(true);
    expect(held.content[0]!.text).toMatch(/change [0-9A-Z]{8}/);
    expect((await db.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts')).rows[0]?.n).toBe(5);
  });

  it('run_sql returns the server\'s notices and warnings, and the exact command tags', async () => {
    const r = await call(dba, 'run_sql', { sql: 'CREATE TABLE IF NOT EXISTS accounts (id int)' });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent).toMatchObject({ command_tags: ['CREATE TABLE'], notices: ['NOTICE: relation "accounts" already exists, skipping'] });
    const quiet = await call(agent, 'run_sql', { sql: 'SELECT 1 AS one' });
    expect(quiet.structuredContent).toMatchObject({ command_tags: ['SELECT 1'], rows: [{ one: 1 }], notices: [] });
  });

  it('request_change -> self-approval refused -> another principal approves -> run_sql runs it once', async () => {
    const req = await call(dba, 'request_change', { sql: 'ALTER TABLE accounts ADD COLUMN note text', justification: 'notes for support' });
    expect(req.isError).toBeFalsy();
    const id = (req.structuredContent?.change as { id: string }).id;
    const self = await call(dba, 'approve_change', { id });
    expect(self.isError).toBe(true);
    expect(self.content[0]!.text).toMatch(/own|requested/i);
    const ok = await call(dba2, 'approve_change', { id, comment: 'ok' });
    expect(ok.structuredContent?.change).toMatchObject({ id, status: 'approved' });
    const status = await call(agent, 'change_status', { id });
    expect(status.structuredContent?.change).toMatchObject({ status: 'approved' });
    const listed = await call(dba, 'list_changes', { status: ['approved'] });
    expect(JSON.stringify(listed.structuredContent)).toContain(id);
  });

  it('reject_change needs a reason and records it', async () => {
    const held = await call(agent, 'run_sql', { sql: 'TRUNCATE accounts' });
    const id = /change ([0-9A-Z]{8})/.exec(held.content[0]!.text)![1]!;
    const noReason = await dba.callTool({ name: 'reject_change', arguments: { id } }).catch((e: Error) => ({ isError: true, content: [{ type: 'text', text: e.message }] }));
    expect((noReason as ToolResult).isError).toBe(true);
    const r = await call(dba, 'reject_change', { id, reason: 'never truncate accounts' });
    expect(r.structuredContent?.change).toMatchObject({ status: 'rejected' });
  });

  it('gives the same decision and audit shape as the wire for the same statement', async () => {
    const sql = 'UPDATE accounts SET owner = owner WHERE id = 3';
    const viaMcp = await call(agent, 'run_sql', { sql });
    expect(viaMcp.isError).toBeFalsy();
    const c = new pg.Client({ connectionString: rt.url(db.name, WIRE_AGENT) });
    await c.connect();
    await c.query(sql);
    await c.end();
    await rt.runtime.governance.audit!.flush();
    const rows = await db.query<{ source: string; effect: string; rules: string; keys: string }>(
      `SELECT body->>'source' AS source, body->'decision'->>'effect' AS effect,
              (SELECT string_agg(r->>'id', ',' ORDER BY r->>'id')
                 FROM jsonb_array_elements(COALESCE(d.body->'rules', (SELECT s.body->'rules' FROM pgairlock.audit_log s WHERE s.id = (d.body->'rules_ref'->>'decision_id')::uuid))) r
                WHERE (r->>'matched')::boolean) AS rules,
              (SELECT string_agg(replace(k, 'rules_ref', 'rules'), ',' ORDER BY replace(k, 'rules_ref', 'rules')) FROM jsonb_object_keys(body) k) AS keys
         FROM pgairlock.audit_log d WHERE kind = 'decision' AND body->>'sql' = $1 ORDER BY seq`,
      [sql],
    );
    expect(rows.rows.map((r) => r.source).sort()).toEqual(['mcp', 'wire']);
    const [a, b] = rows.rows;
    expect(a!.effect).toBe('allow');
    expect(b!.effect).toBe(a!.effect);
    expect(b!.rules).toBe(a!.rules);
    expect(b!.keys).toBe(a!.keys);
  });

  it('audit_query, explain_decision and verify_audit answer from the audit trail', async () => {
    await rt.runtime.governance.audit!.flush();
    const q = await call(dba, 'audit_query', { principal: 'agent:mcp-bot', limit: 5 });
    const records = q.structuredContent?.records as { id: string }[];
    expect(records.length).toBeGreaterThan(0);
    const why = await call(dba, 'explain_decision', { id: records[0]!.id });
    expect(why.isError).toBeFalsy();
    expect(why.content[0]!.text.length).toBeGreaterThan(20);
    const v = await call(dba, 'verify_audit');
    expect(v.structuredContent?.ok).toBe(true);
  });

  it('check_drift and expected_schema: a hand change on the server is drift, and stale DDL is refused', async () => {
    const before = String((await call(agent, 'schema_state')).structuredContent?.schema_hash);
    expect((await call(agent, 'check_drift', { expected_schema: before })).structuredContent?.drift).toBe(false);
    await db.query('ALTER TABLE accounts ADD COLUMN hand_made int');
    const d = await call(agent, 'check_drift', { expected_schema: before });
    expect(d.structuredContent?.drift).toBe(true);
    expect(String(d.structuredContent?.diff)).toContain('accounts');
    const stale = await call(dba, 'run_sql', { sql: 'ALTER TABLE accounts DROP COLUMN hand_made', expected_schema: before });
    expect(stale.isError).toBe(true);
    expect(stale.content[0]!.text).toMatch(/differs from the expected/);
  });

  it('exposes the active policy as a read-only resource', async () => {
    const r = await agent.readResource({ uri: 'pgairlock://policy' });
    expect((r.contents[0] as { text: string }).text).toContain('rules');
  });
});

describe.skipIf(!postgresAvailable())('MCP over stdio (the real pgairlock mcp process)', () => {
  let client: Client;
  let tmp: { dir: string; remove(): void };
  beforeAll(async () => {
    tmp = tempDir();
    const cfg = path.join(tmp.dir, 'pgairlock.yaml');
    const upstream = upstreamUrl(db.name);
    writeFileSync(cfg, `upstream:\n  url: "${upstream}"\naudit:\n  database_url: "${urlWithDatabase(ADMIN_DATABASE_URL, db.name)}"\nlog:\n  level: warn\n`);
    client = new Client({ name: 'stdio-test', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', path.join(REPO_ROOT, 'cli/main.ts'), 'mcp', '--config', cfg, '--principal', 'agent:local', '--roles', 'agent'],
        cwd: REPO_ROOT,
        env: { ...(process.env as Record<string, string>), DATABASE_URL: '' },
        stderr: 'ignore',
      }),
    );
  });
  afterAll(async () => {
    await client?.close();
    tmp?.remove();
  });

  it('serves the agent tools, a dry run and a governed read', async () => {
    const tools = (await client.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('analyze_sql');
    expect(tools).not.toContain('approve_change');
    const a = await call(client, 'analyze_sql', { sql: 'DELETE FROM accounts' });
    expect(a.structuredContent?.decision).toMatchObject({ effect: 'hold' });
    const r = await call(client, 'run_sql', { sql: 'SELECT count(*)::int AS n FROM accounts' });
    expect(r.isError).toBeFalsy();
    expect(r.structuredContent?.rows).toEqual([{ n: 5 }]);
    const bad = await call(client, 'run_sql', { sql: 'SELEC 1' });
    expect(bad.isError).toBe(true);
    expect(bad.content[0]!.text).toContain('syntax error');
    expect(bad.content[0]!.text).not.toMatch(/\n\s+at /); // no stack trace
  });
});
