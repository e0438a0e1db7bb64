import type { StatementFacts } from '../../analyzer/types.js';
import { compilePolicy, type CompiledPolicy } from '../../governance/policy/compile.js';
import { evaluate } from '../../governance/policy/evaluate.js';
import { policyFileSchema } from '../../governance/policy/schema.js';
import type { Decision, EvaluationInput } from '../../governance/policy/types.js';
import type { Principal } from '../../governance/principal.js';

/** Hand-built analyzer facts: a plain SELECT unless overridden. */
export function facts(over: Partial<StatementFacts> = {}): StatementFacts {
  const text = over.text ?? 'SELECT 1';
  return {
    index: 0,
    byteStart: 0,
    byteEnd: Buffer.byteLength(text),
    text,
    location: { byte: 0, char: 0 },
    node: 'SelectStmt',
    kind: 'read',
    commandTag: 'SELECT',
    relations: [],
    functions: [],
    types: [],
    schemas: [],
    databases: [],
    roles: [],
    locks: [],
    destructive: [],
    opaque: [],
    privileged: [],
    nested: [],
    findings: [],
    fingerprint: '0',
    normalized: text,
    ...over,
  };
}

export const agent: Principal = { name: 'bot', roles: ['agent'] };
export const dba: Principal = { name: 'alice', roles: ['dba'] };
export const developer: Principal = { name: 'dev', roles: ['developer'] };

export function policy(raw: unknown): CompiledPolicy {
  return compilePolicy(policyFileSchema.parse(raw), 'test');
}

export function decide(p: CompiledPolicy, statements: EvaluationInput['statements'], over: Partial<EvaluationInput> = {}): Decision {
  return evaluate({ statements, principal: agent, database: 'app', environment: 'test', now: new Date('2026-11-25T10:00:00Z'), ...over }, p);
}

/** A one-rule policy with a deny rule; default allow so a non-match is visible as allow. */
export function denyWhen(match: Record<string, unknown>): CompiledPolicy {
  return policy({ default_effect: 'allow', rules: [{ id: 'r', description: 'test rule', match, effect: 'deny' }] });
}

export function verdict(d: Decision, id: string) {
  const v = d.verdicts.find((x) => x.id === id);
  if (!v) throw new Error(`no verdict for ${id}`);
  return v;
}
