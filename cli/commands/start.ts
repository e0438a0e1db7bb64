import type { Command } from 'commander';

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run the proxy (and an embedded PostgreSQL when no upstream is configured)')
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml)')
    .action(async (opts: { config?: string }) => {
      const { runStart } = await import('../start.js');
      await runStart(opts);
    });
}
