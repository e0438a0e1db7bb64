#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { registerStart } from './commands/start.js';
import { registerMcp } from './commands/mcp.js';
import { registerSnapshot } from './commands/snapshot.js';
import { registerDrift } from './commands/drift.js';
import { registerAudit } from './commands/audit.js';
import { registerCheck } from './commands/check.js';
import { registerChanges } from './commands/changes.js';
import { registerPolicy } from './commands/policy.js';

/**
 * The `pgairlock` command. Each subcommand lives in cli/commands/<name>.ts and exports a
 * register function; add new ones to the list below.
 * Exit codes: 0 success, 1 a finding/mismatch/failure the command reports, 2 usage or input errors.
 */
export function buildProgram(): Command {
  const program = new Command('pgairlock')
    .description('Governed gateway between AI agents and PostgreSQL')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  for (const register of [registerStart, registerAudit, registerSnapshot, registerDrift, registerChanges, registerPolicy, registerCheck, registerMcp]) register(program);
  return program;
}

export async function main(argv = process.argv): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    console.error(`pgairlock: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 2;
  }
}

await main();
