import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { compilePolicy, type CompiledPolicy } from './compile.js';
import { DEFAULT_DEFAULT_EFFECT, policyFileSchema, type PolicyConfig } from './schema.js';

/**
 * Loading policies: inline from the config's `policy` key, from the file it names, or the shipped
 * default policy (docs/default-policy.yaml) when neither is given. A bad policy throws PolicyError,
 * whose message names the file, the rule (by id) and the key; `pgairlock start` must refuse to start on it.
 */
export class PolicyError extends Error {
  constructor(
    message: string,
    readonly source: string,
  ) {
    super(message);
    this.name = 'PolicyError';
  }
}

export function describePolicyIssues(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((i) => {
      const key = [prefix, ...i.path.map(String)].filter(Boolean).join('.') || '(top level)';
      return `  ${key}: ${i.message}`;
    })
    .join('\n');
}

/** Validates and compiles a policy document (already parsed from YAML). */
export function parsePolicy(raw: unknown, source: string): CompiledPolicy {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new PolicyError(`invalid policy in ${source}: the top level must be a mapping with keys rules and default_effect`, source);
  }
  const res = policyFileSchema.safeParse(raw);
  if (!res.success) throw new PolicyError(`invalid policy in ${source}:\n${describePolicyIssues(res.error)}`, source);
  return compilePolicy(res.data, source);
}

export function loadPolicyFile(path: string): CompiledPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PolicyError(code === 'ENOENT' ? `policy file not found: ${path}` : `cannot read policy file ${path}: ${(err as Error).message}`, path);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (err) {
    throw new PolicyError(`${path} is not valid YAML: ${(err as Error).message}`, path);
  }
  return parsePolicy(raw, path);
}

/** docs/default-policy.yaml, found from this module both in the source tree and in dist/. */
export function defaultPolicyPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'docs', 'default-policy.yaml');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new PolicyError('the default policy (docs/default-policy.yaml) is missing from this installation', 'default policy');
}

let cachedDefault: CompiledPolicy | undefined;
export function loadDefaultPolicy(): CompiledPolicy {
  cachedDefault ??= loadPolicyFile(defaultPolicyPath());
  return cachedDefault;
}

/**
 * The policy a config asks for. `configSource` is the config file's path: a relative `policy.file`
 * is resolved against its directory (or the working directory when the config came from defaults).
 */
export function policyFromConfig(policy: PolicyConfig | undefined, configSource = '(defaults)'): CompiledPolicy {
  if (!policy || (policy.file === undefined && policy.rules === undefined && policy.default_effect === undefined)) return loadDefaultPolicy();
  if (policy.file !== undefined) {
    const base = existsSync(configSource) ? dirname(resolve(configSource)) : process.cwd();
    return loadPolicyFile(isAbsolute(policy.file) ? policy.file : join(base, policy.file));
  }
  return compilePolicy({ rules: policy.rules ?? [], default_effect: policy.default_effect ?? DEFAULT_DEFAULT_EFFECT }, `${configSource} (policy.rules)`);
}
