import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../harness/proxy.js';

/** The real CLI in a child process, as a user runs it (no PGAIRLOCK_CONFIG from the outside: undefined drops it). */
const cli = (...args: string[]) => runCli(args, { env: { PGAIRLOCK_CONFIG: undefined }, timeoutMs: 60_000 });

const dir = mkdtempSync(join(tmpdir(), 'pgairlock-policy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const write = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const config = write(
  'pgairlock.yaml',
  `environment: production
principals:
  map:
    - { name: billing-bot, roles: [agent], match: { users: [bot_billing] } }
    - { name: alice, roles: [dba], match: { users: [alice] } }
`,
);

describe('pgairlock policy test', () => {
  it('runs the default policy\'s cases: every one passes, exit 0', async () => {
    const r = await cli('policy', 'test', 'docs/default-policy.cases.yaml', '--config', config);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('PASS: an unknown connection is an agent and may read (allow');
    expect(r.stdout).toMatch(/PASS: (\d+)\/\1\n/);
    expect(r.stdout).not.toContain('FAIL');
    expect(r.code).toBe(0);
  });

  it('a mismatch prints FAIL with the reasons and exits 1', async () => {
    const cases = write(
      'cases.yaml',
      `cases:
  - { name: reads are fine, principal: billing-bot, sql: "SELECT 1", expect: allow, rules: [agent-read] }
  - { name: wrongly expects allow, principal: billing-bot, sql: "DROP TABLE orders", expect: allow }
  - { name: wrong rule, user: alice, sql: "DROP TABLE orders", expect: allow, rules: [agent-read] }
`,
    );
    const r = await cli('policy', 'test', cases, '--config', config);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('PASS: reads are fine');
    expect(r.stdout).toContain('FAIL: wrongly expects allow');
    expect(r.stdout).toContain('expected allow, got hold (decided by agent-ddl-held)');
    expect(r.stdout).toContain('expected rule agent-read to match; matched: dba-anything');
    expect(r.stdout).toContain('PASS: 1/3');
    expect(r.stdout).toContain('FAIL: 2/3');
  });

  it('bad input exits 2: a malformed cases file, an unknown principal, a bad policy', { timeout: 180_000 }, async () => {
    const bad = await cli('policy', 'test', write('bad.yaml', 'cases:\n  - { name: x, sql: "SELECT 1", expect: maybe }\n'), '--config', config);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('cases.0.expect (case "x")');
    const who = await cli('policy', 'test', write('who.yaml', 'cases:\n  - { name: x, principal: nobody, sql: "SELECT 1", expect: allow }\n'), '--config', config);
    expect(who.code).toBe(2);
    expect(who.stderr).toContain('unknown principal "nobody"');
    const badPolicy = write('badpolicy.yaml', 'policy:\n  rules:\n    - { id: broken-rule, description: d, match: { lock_at_least: Huge }, effect: deny }\n');
    const r = await cli('policy', 'test', 'docs/default-policy.cases.yaml', '--config', badPolicy);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('rule "broken-rule", key match.lock_at_least');
  });
});

describe('pgairlock policy explain', () => {
  it('prints the decision, what the client sees, and every rule\'s verdict', async () => {
    const r = await cli('policy', 'explain', '--as', 'billing-bot', '--database', 'app', '--config', config, 'CREATE INDEX i ON orders (customer_id)');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('principal:   billing-bot (roles: agent)');
    expect(r.stdout).toContain('environment: production');
    expect(r.stdout).toContain('decision:    DENY (decided by blocking-index-build-denied)');
    expect(r.stdout).toContain('SQLSTATE: 42501');
    expect(r.stdout).toContain('HINT:    Use CREATE INDEX CONCURRENTLY');
    expect(r.stdout).toMatch(/MATCH deny\s+blocking-index-build-denied/);
    expect(r.stdout).toMatch(/no {4}allow dba-anything\s+principal billing-bot has roles \[agent\], none of dba/);
    expect(r.stdout).toContain('builtin-protect-pgairlock-schema');
  });

  it('--json gives the Decision; unparseable SQL carries 42601 and the position', async () => {
    const r = await cli('policy', 'explain', '--as', 'unknown', '--json', '--config', config, 'SELECT * FROM t WHER x = 1');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.stdout) as { effect: string; error: { sqlstate: string; position: number }; rule: { id: string } };
    expect(d.effect).toBe('deny');
    expect(d.rule.id).toBe('agent-unparseable-denied');
    expect(d.error.sqlstate).toBe('42601');
    expect(d.error.position).toBe(22);
  });

  it('an unknown principal is bad input (exit 2)', async () => {
    const r = await cli('policy', 'explain', '--as', 'mallory', '--config', config, 'SELECT 1');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown principal "mallory"');
  });
});
