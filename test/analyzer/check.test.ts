/**
 * `pgairlock check` end to end: spawns the real CLI (node --import tsx cli/main.ts check ...) from
 * the repository root on temporary files and stdin, and checks what a CI pipeline sees: text with
 * file:line:col and a caret, json, SARIF 2.1.0, GitHub annotations, exit codes, ignore comments,
 * --disable / config, --enable and --pg-version. No database needed.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// Each spawn pays tsx start-up (2-5 s on the shared 2-core machine); tests with several spawns need room.
const SLOW = 240_000;

const ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'pgairlock-check-'));
const emptyConfig = join(dir, 'empty.yaml');
writeFileSync(emptyConfig, '# no keys\n');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function check(args: string[], stdin?: string, config = emptyConfig): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'check', '--config', config, ...args], {
    cwd: ROOT,
    input: stdin ?? '',
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, NO_COLOR: '1', PGAIRLOCK_CONFIG: '' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// Line 1 has multi-byte text (2-byte é, 4-byte emoji = 2 UTF-16 units) before the finding on line 2.
const LINE1 = "SELECT 'héllo wörld 🎉'; -- ünïcødé";
const LINE2 = "SELECT 'ñ🎉'; CREATE INDEX idx ON orders (customer_id);";
const MULTIBYTE = `SET lock_timeout = '2s';\n${LINE1}\n${LINE2}\n`;

describe('pgairlock check: text output', () => {
  it('prints file:line:col, the source line with a caret under the relation, why and fix; exit 1', () => {
    const f = file('multibyte.sql', MULTIBYTE);
    const r = check([f]);
    expect(r.code).toBe(1);
    const col = LINE2.indexOf('orders') + 1;
    expect(r.stdout).toContain(`${f}:3:${col}: warning[create-index-without-concurrently]`);
    const lines = r.stdout.split('\n');
    const src = lines.findIndex((l) => l.endsWith(`| ${LINE2}`));
    expect(src).toBeGreaterThan(0);
    const caretLine = lines[src + 1]!;
    // The caret sits under the "o" of orders: same offset in the printed line as in the source.
    expect(caretLine.indexOf('^') - caretLine.indexOf('| ') - 2).toBe(col - 1);
    expect(lines[src]!.slice(lines[src]!.indexOf('| ') + 2)[col - 1]).toBe('o');
    expect(r.stdout).toContain('why: A plain CREATE INDEX holds a SHARE lock');
    expect(r.stdout).toContain('fix: Use CREATE INDEX CONCURRENTLY');
    expect(r.stdout).toMatch(/Found 1 finding/);
  });

  it('reads stdin when no files are given, and for "-"', () => {
    const a = check([], 'SET lock_timeout = 1000;\nDROP TABLE accounts;\n');
    expect(a.code).toBe(1);
    expect(a.stdout).toContain('stdin:2:1: error[drop-table]');
    const b = check(['-', '--stdin-name', 'migrations/007.sql'], 'TRUNCATE t CASCADE;');
    expect(b.code).toBe(1);
    expect(b.stdout).toContain('migrations/007.sql:1:10: error[truncate-cascade]');
  }, SLOW);

  it('clean input exits 0', () => {
    const r = check([file('clean.sql', "SET lock_timeout = '2s';\nCREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\nALTER TABLE t ADD COLUMN note text;\n")]);
    expect(r.stdout).toContain('passed');
    expect(r.code).toBe(0);
  });

  it('a parse error prints the parser message and file:line:col with a caret; exit 2', () => {
    const f = file('broken.sql', "SELECT 'é';\nSELECT * FROM WHERE x;\n");
    const r = check([f]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${f}:2:15: error[syntax-error] syntax error at or near "WHERE"`);
    expect(r.stdout).toContain('| SELECT * FROM WHERE x;');
    expect(r.stdout).toContain(`|${' '.repeat(15)}^`);
  });

  it('several files: findings from the good one are still printed when another fails to parse (exit 2)', () => {
    const good = file('good.sql', 'DELETE FROM t;');
    const bad = file('bad.sql', 'SELEC 1;');
    const r = check([good, bad]);
    expect(r.code).toBe(2);
    expect(r.stdout).toContain(`${good}:1:13: warning[delete-without-where]`);
    expect(r.stdout).toContain(`${bad}:1:1: error[syntax-error]`);
  });

  it('a file opened with BEGIN and never committed is reported', () => {
    const r = check([], 'BEGIN;\nSELECT 1;\n');
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('stdin:1:1: warning[uncommitted-transaction]');
  });
});

describe('pgairlock check: machine formats', () => {
  it('json: findings with line/column (characters) and byte/char offsets', () => {
    const f = file('json.sql', MULTIBYTE);
    const r = check(['--format', 'json', f]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout) as { findings: Array<Record<string, unknown>>; errors: unknown[]; summary: Record<string, number> };
    expect(out.errors).toEqual([]);
    expect(out.findings).toHaveLength(1);
    const x = out.findings[0]!;
    expect(x).toMatchObject({ file: f, line: 3, column: LINE2.indexOf('orders') + 1, rule: 'create-index-without-concurrently', severity: 'warning' });
    expect(x.char).toBe(MULTIBYTE.indexOf('orders'));
    expect(x.byte).toBe(Buffer.byteLength(MULTIBYTE.slice(0, MULTIBYTE.indexOf('orders'))));
    expect(x.byte as number).toBeGreaterThan(x.char as number);
    expect(typeof x.why).toBe('string');
    expect(typeof x.fix).toBe('string');
    expect(out.summary.warning).toBe(1);
  });

  it('sarif: a valid SARIF 2.1.0 log for GitHub code scanning', () => {
    const f = file('sarif.sql', 'DROP TABLE t;\nALTER TABLE u ALTER COLUMN c SET NOT NULL;\n');
    const r = check(['--format', 'sarif', '--disable', 'missing-lock-timeout', f]);
    expect(r.code).toBe(1);
    const log = JSON.parse(r.stdout);
    expect(log.version).toBe('2.1.0');
    expect(log.$schema).toContain('sarif-2.1.0');
    expect(log.runs).toHaveLength(1);
    const run = log.runs[0];
    expect(run.tool.driver.name).toBe('pgairlock');
    const rules = run.tool.driver.rules as Array<{ id: string; shortDescription: { text: string }; defaultConfiguration: { level: string } }>;
    expect(rules.map((x) => x.id)).toContain('drop-table');
    const results = run.results as Array<{ ruleId: string; ruleIndex: number; level: string; message: { text: string }; locations: Array<{ physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number; startColumn: number } } }> }>;
    expect(results.map((x) => x.ruleId).sort()).toEqual(['drop-table', 'set-not-null']);
    for (const res of results) {
      expect(rules[res.ruleIndex]!.id).toBe(res.ruleId);
      expect(['error', 'warning', 'note']).toContain(res.level);
      expect(res.message.text.length).toBeGreaterThan(10);
      const loc = res.locations[0]!.physicalLocation;
      expect(loc.artifactLocation.uri).toContain('sarif.sql');
      expect(loc.region.startLine).toBeGreaterThanOrEqual(1);
      expect(loc.region.startColumn).toBeGreaterThanOrEqual(1);
    }
    const drop = results.find((x) => x.ruleId === 'drop-table')!;
    expect(drop.level).toBe('error');
    expect(drop.locations[0]!.physicalLocation.region).toMatchObject({ startLine: 1, startColumn: 1 });
    expect(results.find((x) => x.ruleId === 'set-not-null')!.locations[0]!.physicalLocation.region.startLine).toBe(2);
  });

  it('github: workflow annotations with file, line, col; error/warning/notice by severity', () => {
    const f = file('gh.sql', "SET lock_timeout = '1s';\nDROP TABLE t;\nDELETE FROM u;\n");
    const r = check(['--format', 'github', f]);
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^::error file=${f.split(':').join('%3A')},line=2,col=1,title=drop-table \\(error\\)::`));
    expect(lines[1]).toContain(',line=3,col=13,');
    expect(lines[1]!.startsWith('::warning ')).toBe(true);
    // Newlines inside the message are escaped, so one annotation stays one line.
    expect(lines[1]).toContain('%0ASafe alternative: ');
  });
});

describe('pgairlock check: exit codes and options', () => {
  const WARN_ONLY = "SET lock_timeout = '1s';\nCREATE INDEX i ON t (a);\n";

  it('--fail-on decides between 0 and 1', () => {
    const f = file('warn.sql', WARN_ONLY);
    expect(check([f]).code).toBe(1);
    expect(check(['--fail-on', 'error', f]).code).toBe(0);
    expect(check(['--fail-on', 'info', file('info.sql', 'CREATE TABLE app.t (a varchar(10));')]).code).toBe(1);
    expect(check([file('info2.sql', 'CREATE TABLE app.t (a varchar(10));')]).code).toBe(0);
  }, SLOW);

  it('usage errors exit 2 with a message', () => {
    const f = file('u.sql', WARN_ONLY);
    const bad = [['--format', 'xml', f], ['--pg-version', '12', f], ['--fail-on', 'fatal', f], ['--disable', 'no-such-rule', f], [join(dir, 'missing.sql')]];
    for (const args of bad) {
      const r = check(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout + r.stderr).not.toBe('');
    }
    expect(check(['--bogus-option', f]).code).toBe(2);
  }, SLOW);

  it('ignore comments suppress the named rules for that statement only', () => {
    const f = file(
      'ignore.sql',
      [
        "SET lock_timeout = '1s';",
        '-- pgairlock:ignore drop-table',
        'DROP TABLE a;',
        'DROP TABLE b; -- pgairlock:ignore truncate',
        'ALTER TABLE c /* pgairlock:ignore ban-drop-column */ DROP COLUMN x;',
        "SELECT '-- pgairlock:ignore drop-table'; DROP TABLE d;",
      ].join('\n'),
    );
    const r = check(['--format', 'json', f]);
    const out = JSON.parse(r.stdout) as { findings: Array<{ rule: string; line: number }> };
    expect(out.findings.map((x) => `${x.rule}@${x.line}`).sort()).toEqual(['drop-table@4', 'drop-table@6']);
    expect(r.code).toBe(1);
  }, SLOW);

  it('--disable (ours or squawk ids, comma-separated, repeatable) and config check.disabled_rules', () => {
    const f = file('dis.sql', 'DROP TABLE a;\nTRUNCATE b;\n');
    expect(check([f]).code).toBe(1);
    expect(check(['--disable', 'drop-table,truncate', '--disable', 'missing-lock-timeout', f]).code).toBe(0);
    expect(check(['--disable', 'ban-drop-table', '--disable', 'truncate,missing-lock-timeout', f]).code).toBe(0);
    const cfg = file('cfg.yaml', 'check:\n  disabled_rules: [drop-table, truncate, require-timeout-settings]\n');
    const r = check([f], undefined, cfg);
    expect(r.stdout).toContain('passed');
    expect(r.code).toBe(0);
    const badCfg = file('badcfg.yaml', 'check:\n  disabled_rules: [not-a-rule]\n');
    expect(check([f], undefined, badCfg).code).toBe(2);
  }, SLOW);

  it('--pg-version changes a verdict: DETACH PARTITION has no CONCURRENTLY before 14', () => {
    const f = file('detach.sql', "SET lock_timeout = '1s';\nALTER TABLE events DETACH PARTITION events_2020;\n");
    const on13 = check(['--pg-version', '13', f]);
    expect(on13.code).toBe(0);
    const on14 = check(['--pg-version', '14', f]);
    expect(on14.code).toBe(1);
    expect(on14.stdout).toContain('warning[detach-partition-without-concurrently]');
  }, SLOW);

  it('opt-in rules stay off unless --enable names them', () => {
    const f = file('optin.sql', "SET lock_timeout = '1s';\nALTER TABLE t ALTER COLUMN c SET DEFAULT 0;\n");
    expect(check(['--fail-on', 'info', f]).code).toBe(0);
    const r = check(['--fail-on', 'info', '--enable', 'alter-column-default', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('info[alter-column-default]');
  }, SLOW);

  it('--assume-in-transaction makes a concurrent index an error', () => {
    const f = file('cic.sql', 'CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (a);\n');
    expect(check([f]).code).toBe(0);
    const r = check(['--assume-in-transaction', f]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('error[concurrent-index-in-transaction]');
  }, SLOW);

  it('--list-rules prints the catalogue', () => {
    const r = check(['--list-rules']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('create-index-without-concurrently');
    expect(r.stdout).toContain('(opt-in)');
  });
});
