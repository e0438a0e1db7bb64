import type { Config } from '../config/schema.js';
import { MemoryApprovalStore } from './memory-store.js';
import { RedisApprovalStore } from './redis-store.js';
import { ApprovalService } from './service.js';
import type { ApprovalStore, StoreOptions } from './store.js';

/** REDIS_URL wins over redis.url; neither means the in-process store. */
export function redisUrlFrom(config: Pick<Config, 'redis'>, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.REDIS_URL || config.redis.url || undefined;
}

export type FactoryOptions = Pick<StoreOptions, 'onEvent' | 'onEventError' | 'now'> & {
  readonly env?: NodeJS.ProcessEnv;
  readonly onConnectionError?: (err: Error) => void;
  readonly connectionName?: string;
};

export function createApprovalStore(config: Pick<Config, 'approvals' | 'redis'>, opts: FactoryOptions = {}): ApprovalStore {
  const common: StoreOptions = {
    policy: { executorMustDifferFromApprover: config.approvals.executor_must_differ_from_approver },
    retentionMs: config.approvals.retention_seconds * 1000,
    recheckIntervalMs: config.approvals.recheck_interval_ms,
    ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    ...(opts.onEventError ? { onEventError: opts.onEventError } : {}),
    ...(opts.now ? { now: opts.now } : {}),
  };
  const url = redisUrlFrom(config, opts.env);
  if (!url) return new MemoryApprovalStore(common);
  return new RedisApprovalStore({
    ...common,
    url,
    keyPrefix: config.redis.key_prefix,
    connectTimeoutMs: config.redis.connect_timeout_ms,
    commandTimeoutMs: config.redis.command_timeout_ms,
    ...(opts.onConnectionError ? { onConnectionError: opts.onConnectionError } : {}),
    ...(opts.connectionName ? { connectionName: opts.connectionName } : {}),
  });
}

export function createApprovalService(config: Pick<Config, 'approvals' | 'redis'>, opts: FactoryOptions = {}): ApprovalService {
  return new ApprovalService(createApprovalStore(config, opts), config.approvals);
}
