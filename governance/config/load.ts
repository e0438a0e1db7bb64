import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config, type ConfigInput } from './schema.js';

export class ConfigError extends Error {
  constructor(message: string, readonly source: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Renders zod issues as `key.path: message` lines so the user sees which key is wrong. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const key = i.path.length ? i.path.map(String).join('.') : '(top level)';
      return `  ${key}: ${i.message}`;
    })
    .join('\n');
}

export function parseConfig(input: unknown, source = 'config'): Config {
  const result = configSchema.safeParse(input ?? {});
  if (!result.success) {
    throw new ConfigError(`invalid configuration in ${source}:\n${describeIssues(result.error)}`, source);
  }
  return result.data;
}

/** The environment variables that override config keys (documented in docs/configuration.md). */
export function envOverrides(env: NodeJS.ProcessEnv): (raw: ConfigInput) => ConfigInput {
  return (raw) => {
    const out: ConfigInput = { ...raw };
    if (env.DATABASE_URL) out.upstream = { ...(raw.upstream ?? {}), url: env.DATABASE_URL };
    if (env.PGAIRLOCK_LISTEN) out.listen = env.PGAIRLOCK_LISTEN;
    if (env.PGAIRLOCK_MCP_LISTEN) out.mcp = { ...(raw.mcp ?? {}), listen: env.PGAIRLOCK_MCP_LISTEN };
    if (env.PGAIRLOCK_LOG_LEVEL) out.log = { ...(raw.log ?? {}), level: env.PGAIRLOCK_LOG_LEVEL as never };
    return out;
  };
}

export interface LoadOptions {
  /** --config path; falls back to PGAIRLOCK_CONFIG, then ./pgairlock.yaml if present. */
  path?: string;
  env?: NodeJS.ProcessEnv;
}

export function loadConfig(opts: LoadOptions = {}): { config: Config; source: string } {
  const env = opts.env ?? process.env;
  const explicit = opts.path ?? env.PGAIRLOCK_CONFIG;
  const path = explicit ?? 'pgairlock.yaml';
  let raw: unknown;
  let source = '(defaults)';
  try {
    raw = parseYaml(readFileSync(path, 'utf8')) ?? {};
    source = path;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && !explicit) {
      raw = {};
    } else if (code === 'ENOENT') {
      throw new ConfigError(`config file not found: ${path}`, path);
    } else if (err instanceof Error && err.name === 'YAMLParseError') {
      throw new ConfigError(`${path} is not valid YAML: ${err.message}`, path);
    } else {
      throw err;
    }
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${source}: the top level must be a mapping of keys`, source);
  }
  const withEnv = envOverrides(env)(raw);
  return { config: parseConfig(withEnv, source), source };
}
