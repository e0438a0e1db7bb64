import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { adminQuery } from './scratch.js';

/** What the numbers were measured on: without it, a TPS figure means nothing. */
export interface MachineInfo {
  readonly cores: number;
  readonly cpuModel: string;
  readonly kernel: string;
  readonly memoryGiB: number;
  readonly postgres: string;
  /** Server settings that move TPC-B and select-only numbers. */
  readonly postgresSettings: string;
  readonly pgbench: string;
  readonly pgbouncer: string | undefined;
  readonly node: string;
  /** 1/5/15-minute load averages when the run started: other work on the machine skews everything. */
  readonly loadAtStart: readonly number[];
}

function firstLine(file: string, args: string[]): string | undefined {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]?.trim();
  } catch {
    return undefined;
  }
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line) return line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // fall through
  }
  return os.cpus()[0]?.model ?? 'unknown';
}

export async function describeMachine(adminUrl: string, pgbouncerBin: string | undefined): Promise<MachineInfo> {
  const pgVersion = await adminQuery<{ version: string }>(adminUrl, 'SELECT version() AS version', 10_000)
    .then((r) => r.rows[0]?.version ?? 'unknown')
    .catch((err: unknown) => `unreachable (${err instanceof Error ? err.message : String(err)})`);
  const settings = await adminQuery<{ s: string }>(
    adminUrl,
    "SELECT string_agg(name || '=' || current_setting(name), ', ' ORDER BY name) AS s FROM pg_settings WHERE name IN ('shared_buffers', 'fsync', 'synchronous_commit', 'autovacuum', 'max_connections')",
    10_000,
  )
    .then((r) => r.rows[0]?.s ?? 'unknown')
    .catch(() => 'unknown');
  return {
    postgresSettings: settings,
    cores: os.availableParallelism(),
    cpuModel: cpuModel(),
    kernel: `${os.type()} ${os.release()}`,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    postgres: pgVersion.split(' on ')[0] ?? pgVersion,
    pgbench: firstLine('pgbench', ['--version']) ?? 'unknown',
    pgbouncer: pgbouncerBin ? firstLine(pgbouncerBin, ['--version']) : undefined,
    node: process.version,
    loadAtStart: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}
