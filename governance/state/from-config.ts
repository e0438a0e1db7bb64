import { Redis } from 'ioredis';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { CatalogState, type DriftEvent } from './service.js';
import { createUsageIndex, type UsageIndex } from './usage.js';

/** Wiring helpers: the `state` config section -> the services (docs/configuration.md "state"). */

export interface CatalogStateWiring {
  readonly connect: (database: string) => Promise<pg.Client>;
  readonly onDrift?: (event: DriftEvent) => void;
  readonly onError?: (database: string, err: unknown) => void;
  readonly registry?: Registry;
}

export function catalogStateFromConfig(config: Config, wiring: CatalogStateWiring): CatalogState {
  const s = config.state;
  return new CatalogState({
    connect: wiring.connect,
    intervalMs: s.refresh_interval_ms,
    ddlDebounceMs: s.ddl_debounce_ms,
    historySize: s.history,
    excludeSchemas: s.exclude_schemas,
    timeoutMs: s.read_timeout_ms,
    ...(wiring.onDrift ? { onDrift: wiring.onDrift } : {}),
    ...(wiring.onError ? { onError: wiring.onError } : {}),
    ...(wiring.registry ? { registry: wiring.registry } : {}),
  });
}

/**
 * The Redis client for the usage index when Redis is configured (`REDIS_URL` or `redis.url`) and
 * `state.usage.store` is not `memory`; undefined otherwise. Commands fail at once while Redis is unreachable
 * (no offline queue): a failed batch of uses is dropped and counted, a failed lookup of recent users leaves
 * the usage conditions unknown (fail closed for deny and hold rules). The caller quits it after the index.
 */
export function usageRedisFromConfig(config: Config, env: NodeJS.ProcessEnv = process.env, onError?: (err: Error) => void): Redis | undefined {
  const url = env.REDIS_URL || config.redis.url || undefined;
  if (!url || config.state.usage.store === 'memory') return undefined;
  const redis = new Redis(url, {
    connectTimeout: config.redis.connect_timeout_ms,
    commandTimeout: config.redis.command_timeout_ms,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times: number) => Math.min(times * 200, 2000),
    connectionName: 'pgairlock-usage',
    disableClientInfo: true,
  });
  redis.on('error', onError ?? (() => undefined));
  return redis;
}

/**
 * The usage index for the config: Redis (keys under `<redis.key_prefix>usage:`) when `state.usage.store` is
 * `redis`, or `auto` and a client is given; in process otherwise. `redis` without a client is a config error.
 */
export function usageIndexFromConfig(config: Config, redis?: Redis, onError?: (err: unknown) => void): UsageIndex {
  const u = config.state.usage;
  if (u.store === 'redis' && !redis) throw new Error('state.usage.store is redis but no Redis is configured: set redis.url or REDIS_URL, or use store: auto');
  const useRedis = u.store !== 'memory' && redis !== undefined;
  return createUsageIndex({
    bucketMs: u.bucket_seconds * 1000,
    retentionMs: Math.round(u.retention_hours * 3_600_000),
    flushIntervalMs: u.flush_interval_ms,
    maxBuffer: u.max_buffer,
    maxEntries: u.max_entries,
    maxUsersPerTarget: u.max_users_per_target,
    keyPrefix: `${config.redis.key_prefix}usage:`,
    ...(useRedis ? { redis } : {}),
    ...(onError ? { onError } : {}),
  });
}
