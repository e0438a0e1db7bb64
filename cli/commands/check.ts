import type { Command } from 'commander';

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function registerCheck(program: Command): void {
  program
    .command('check')
    .description('lint SQL migrations for locking and safety problems (offline; stdin when no files or "-")')
    .argument('[files...]', 'SQL files to check; "-" or none reads stdin')
    .option('-f, --format <format>', 'text | json | sarif | github', 'text')
    .option('--pg-version <major>', 'target PostgreSQL major version, 13..18 (default: config check.pg_version, else 18)')
    .option('--fail-on <severity>', 'exit 1 when a finding is at least this severe: error | warning | info (default: config check.fail_on, else warning)')
    .option('--disable <rules>', 'rule ids to skip, comma-separated, repeatable (squawk ids accepted)', collect)
    .option('--enable <rules>', 'opt-in rule ids to turn on, comma-separated, repeatable', collect)
    .option('--assume-in-transaction', 'the migration tool runs each file inside its own transaction')
    .option('--stdin-name <name>', 'file name to report for stdin', 'stdin')
    .option('-c, --config <path>', 'config file (default: $PGAIRLOCK_CONFIG or ./pgairlock.yaml)')
    .option('--no-color', 'no ANSI colours in text output')
    .option('--list-rules', 'print every rule id, severity and title, and exit')
    .action(async (files: string[], opts: Record<string, unknown>) => {
      const { runCheck, listRules, defaultIo } = await import('../check/run.js');
      const io = defaultIo();
      if (opts.listRules === true) {
        io.stdout(listRules());
        process.exitCode = 0;
        return;
      }
      process.exitCode = await runCheck(
        files,
        {
          format: opts.format as string,
          ...(typeof opts.pgVersion === 'string' ? { pgVersion: opts.pgVersion } : {}),
          ...(typeof opts.failOn === 'string' ? { failOn: opts.failOn } : {}),
          ...(Array.isArray(opts.disable) ? { disable: opts.disable as string[] } : {}),
          ...(Array.isArray(opts.enable) ? { enable: opts.enable as string[] } : {}),
          ...(typeof opts.config === 'string' ? { config: opts.config } : {}),
          ...(opts.assumeInTransaction === true ? { assumeInTransaction: true } : {}),
          stdinName: opts.stdinName as string,
          // commander sets color=false for --no-color; otherwise decide from the terminal.
          ...(opts.color === false ? { color: false } : {}),
        },
        io,
      );
    });
}
