import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { controlDatabaseUrl, instanceName } from './control.js';
import { AuditLog } from './log.js';

/**
 * Start-up in one call for the proxy / MCP server: resolves the control database and chain name from the
 * config, migrates, takes the instance lock. Call `recoverOrphans()` on the result before serving.
 */
export function openAuditLog(config: Config, opts: { logger?: Logger; registry?: Registry; env?: NodeJS.ProcessEnv } = {}): Promise<AuditLog> {
  return AuditLog.open({
    databaseUrl: controlDatabaseUrl(config, opts.env),
    instance: instanceName(config),
    config: config.audit,
    ...(opts.logger ? { logger: opts.logger } : {}),
    ...(opts.registry ? { registry: opts.registry } : {}),
  });
}
