import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../governance/config/load.js';
import { loadDefaultPolicy, loadPolicyFile, PolicyError, policyFromConfig } from '../../governance/policy/load.js';

const dir = mkdtempSync(join(tmpdir(), 'pgairlock-policy-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

function configError(yaml: string): string {
  const path = write(`c${Math.random().toString(36).slice(2)}.yaml`, yaml);
  try {
    loadConfig({ path, env: {} });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('a bad policy refuses to load, naming the rule and the key', () => {
  it('an unknown lock mode', () => {
    const msg = configError(`
policy:
  rules:
    - id: ok-rule
      description: fine
      effect: allow
    - id: agent-ddl
      description: x
      match: { lock_at_least: VeryStrongLock }
      effect: deny
`);
    expect(msg).toContain('policy.rules.1.match.lock_at_least');
    expect(msg).toContain('rule "agent-ddl", key match.lock_at_least');
  });
  it('an unknown key inside match', () => {
    const msg = configError(`
policy:
  rules:
    - { id: typo, description: x, match: { role: [agent] }, effect: deny }
`);
    expect(msg).toContain('rule "typo", key match');
    expect(msg).toContain('role');
  });
  it('a bad time zone, a bad clock, a hold on a deny rule', () => {
    const msg = configError(`
policy:
  rules:
    - id: freeze
      description: x
      match: { during: [{ timezone: Mars/Olympus, from: "9:00" }] }
      effect: deny
      hold: { approvals: 2 }
`);
    expect(msg).toContain('rule "freeze", key match.during.0.timezone: unknown time zone');
    expect(msg).toContain('rule "freeze", key match.during.0.from: expected a time of day');
    expect(msg).toContain('rule "freeze", key hold: only valid with effect: hold');
  });
  it('duplicate ids, reserved ids, missing ids', () => {
    const msg = configError(`
policy:
  rules:
    - { id: a, description: x, effect: allow }
    - { id: a, description: y, effect: deny }
    - { id: builtin-mine, description: z, effect: deny }
    - { description: no id, effect: deny }
`);
    expect(msg).toContain('rule "a", key id: duplicate id (also rule #1)');
    expect(msg).toContain('rule "builtin-mine", key id: ids starting with "builtin-"');
    expect(msg).toContain('rule #4 (no id), key id');
  });
  it('a bad duration in a hold', () => {
    const msg = configError(`
policy:
  rules:
    - { id: h, description: x, effect: hold, hold: { timeout: soon } }
`);
    expect(msg).toContain('rule "h", key hold.timeout: "soon" is not a duration');
  });
  it('file and inline rules together', () => {
    expect(configError('policy: { file: p.yaml, rules: [] }')).toContain('policy.file: give either file');
  });
  it('a bad policy file names the file, the rule and the key', () => {
    const file = write('bad-policy.yaml', 'rules:\n  - { id: r1, description: d, effect: maybe }\n');
    expect(() => loadPolicyFile(file)).toThrow(PolicyError);
    expect(() => loadPolicyFile(file)).toThrow(/bad-policy\.yaml[\s\S]*rules\.0\.effect: rule "r1", key effect/);
  });
  it('a missing policy file and invalid YAML', () => {
    expect(() => loadPolicyFile(join(dir, 'nope.yaml'))).toThrow('policy file not found');
    expect(() => loadPolicyFile(write('broken.yaml', 'rules: [\n'))).toThrow('is not valid YAML');
  });
});

describe('where the policy comes from', () => {
  it('no policy key: the shipped default policy', () => {
    const { config, source } = loadConfig({ path: write('empty.yaml', 'environment: prod\n'), env: {} });
    expect(config.principals.default_principal).toEqual({ name: 'unknown', roles: ['agent'] });
    const p = policyFromConfig(config.policy, source);
    expect(p).toBe(loadDefaultPolicy());
    expect(p.rules.map((r) => r.id)).toContain('agent-ddl-held');
  });
  it('policy.file is resolved against the config file', () => {
    write('mine.yaml', 'default_effect: allow\nrules:\n  - { id: only, description: d, match: { destructive: true }, effect: deny }\n');
    const { config, source } = loadConfig({ path: write('with-file.yaml', 'policy: { file: mine.yaml }\n'), env: {} });
    const p = policyFromConfig(config.policy, source);
    expect(p.rules.map((r) => r.id)).toEqual(['only']);
    expect(p.defaultEffect.global).toBe('allow');
  });
  it('inline rules get the default default_effect (deny, dba allow)', () => {
    const { config, source } = loadConfig({ path: write('inline.yaml', 'policy:\n  rules:\n    - { id: x, description: d, effect: allow }\n'), env: {} });
    const p = policyFromConfig(config.policy, source);
    expect(p.defaultEffect).toEqual({ global: 'deny', roles: { agent: 'deny', developer: 'deny', dba: 'allow' } });
    expect(p.rules[0]?.id).toBe('x');
  });
  it('a hold rule without a hold key gets the defaults (defer, 1 approval by dba, 24h)', () => {
    const { config, source } = loadConfig({ path: write('hold.yaml', 'policy:\n  rules:\n    - { id: h, description: d, effect: hold }\n'), env: {} });
    expect(policyFromConfig(config.policy, source).rules[0]?.hold).toEqual({ mode: 'defer', approvals: 1, approver_roles: ['dba'], timeout: 86_400_000 });
  });
});

describe('docs/policy.md', () => {
  it('every rule example in the docs is a valid rule', async () => {
    const { readFileSync } = await import('node:fs');
    const { parse } = await import('yaml');
    const { rulesSchema } = await import('../../governance/policy/schema.js');
    const md = readFileSync(new URL('../../docs/policy.md', import.meta.url), 'utf8');
    const blocks = md.split('```yaml\n').slice(1).map((b) => b.slice(0, b.indexOf('```')));
    const ruleBlocks = blocks.filter((b) => b.startsWith('- id:'));
    expect(ruleBlocks.length).toBeGreaterThanOrEqual(5);
    for (const b of ruleBlocks) {
      const res = rulesSchema.safeParse(parse(b));
      expect(res.success, `${b}\n${res.error?.message ?? ''}`).toBe(true);
    }
    const ruleDoc = blocks.find((b) => b.startsWith('rules:'));
    expect(ruleDoc && rulesSchema.safeParse((parse(ruleDoc) as { rules: unknown }).rules).success).toBe(true);
  });
});
