import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { loadConfig } from '../governance/config/load.js';
import { buildMcpServer } from '../mcp/server.js';
import { createLogger } from '../proxy/logger.js';
import { openGovernance } from './runtime.js';

/**
 * `pgairlock mcp`: one MCP session on stdin/stdout. stdout carries only MCP messages, so logs go
 * to stderr. The identity is fixed by config (mcp.stdio) or flags: whoever can start this process
 * already holds the configuration and its credentials.
 */
export async function runMcpStdio(opts: { config?: string; principal?: string; roles?: string }): Promise<void> {
  const { config } = loadConfig({ path: opts.config });
  const log = createLogger({ ...config.log, pretty: false });
  const stdio = config.mcp.stdio;
  const roles = opts.roles ? opts.roles.split(',').map((r) => r.trim()).filter(Boolean) : stdio.roles;
  const url = stdio.database_url_env ? process.env[stdio.database_url_env] : undefined;
  const identity = { principal: { name: opts.principal ?? stdio.principal, roles }, ...(url ? { databaseUrl: url } : {}) };
  const gov = await openGovernance(config, log);
  const server = buildMcpServer(gov, identity);
  const transport = new StdioServerTransport();
  let closing = false;
  const close = async () => {
    if (closing) return;
    closing = true;
    await server.close().catch(() => undefined);
    await gov.close();
    process.exit(0);
  };
  transport.onclose = () => void close();
  process.stdin.on('end', () => void close());
  process.on('SIGINT', () => void close());
  process.on('SIGTERM', () => void close());
  await server.connect(transport);
  log.info({ principal: identity.principal.name, roles }, 'MCP (stdio) ready');
}
