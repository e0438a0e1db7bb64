import type { Command } from 'commander';

export function registerMcp(program: Command): void {
  program
    .command('mcp')
    .description('serve MCP over stdio for a local agent client (same governance as the wire)')
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml)')
    .option('--principal <name>', 'principal this stdio session acts as (default: mcp.stdio.principal)')
    .option('--roles <roles>', 'comma-separated roles of that principal (default: mcp.stdio.roles)')
    .action(async (opts: { config?: string; principal?: string; roles?: string }) => {
      const { runMcpStdio } = await import('../mcp-stdio.js');
      await runMcpStdio(opts);
    });
}
