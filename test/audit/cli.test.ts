import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditLog } from '../../governance/audit/log.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { run } from '../harness/tools.js';
import { allowRead, allowUpdate, dropFacts } from './fixtures.js';

const db = useTestDatabase();
const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'cli', 'main.ts');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-audit-cli-'));
const configPath = path.join(tmp, 'pgairlock.yaml');
// A developer's environment must not point the CLI elsewhere (undefined values are dropped from a child's env).
const env = { PGAIRLOCK_AUDIT_DATABASE_URL: undefined, DATABASE_URL: undefined, PGAIRLOCK_CONFIG: undefined };

const cli = (...args: string[]) => run(process.execPath, ['--import', 'tsx', MAIN, 'audit', ...args], { cwd: ROOT, env, timeoutMs: 60_000 });

describe.runIf(postgresAvailable())('pgairlock audit (the real CLI process)', () => {
  let update: string;
  let denied: string;
  beforeAll(async () => {
    writeFileSync(configPath, `audit:\n  database_url: ${db.url}\n`);
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'cli-proxy' });
    try {
      const r = await log.recordDecision(allowUpdate());
      update = r.id;
      log.recordOutcome(r, { status: 'ok', commandTag: 'UPDATE 1', rows: 1, durationMs: 2 });
      await log.recordDecision(allowRead());
      denied = (await log.recordDecision({ ...allowUpdate('DROP TABLE orders'), facts: dropFacts(), rules: [{ id: 'no-drop', matched: true, effect: 'deny', reason: 'agents never drop tables' }], decision: { effect: 'deny', reasons: ['agents never drop tables'] } })).id;
      await log.flush();
    } finally { await log.close(); }
  });
  afterAll(() => { rmSync(tmp, { recursive: true, force: true }); });

  it('verify: exit 0 on a whole chain', async () => {
    const r = await cli('verify', '--config', configPath);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ok      cli-proxy: 4 records, head seq 4');
    expect(r.stdout).toContain('every chain is whole');
    const head = /head seq (\d+) hash ([0-9a-f]{64})/.exec(r.stdout)!;
    const anchored = await cli('verify', '--config', configPath, '--anchor', `cli-proxy:${head[1]}:${head[2]}`);
    expect(anchored.code).toBe(0);
    const ahead = await cli('verify', '--config', configPath, '--anchor', `cli-proxy:99:${head[2]}`);
    expect(ahead.code).toBe(1);
    expect(ahead.stdout).toContain('(truncated)');
    expect((await cli('verify', '--config', configPath, '--anchor', 'nonsense')).code).toBe(2);
  });

  it('search with filters, show, why, tail', async () => {
    const s = await cli('search', '--config', configPath, '--decision', 'deny');
    expect(s.code).toBe(0);
    expect(s.stdout.trim().split('\n')).toHaveLength(1);
    expect(s.stdout).toContain(denied);
    expect(s.stdout).toContain('DROP TABLE orders');
    const j = await cli('search', '--database-url', db.url, '--object', 'accounts', '--kind', 'write', '--json');
    expect(j.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id)).toEqual([update]);

    const show = await cli('show', update, '--config', configPath, '--json');
    expect(show.code).toBe(0);
    const shown = JSON.parse(show.stdout) as { entry: { id: string; seq: number }; related: { kind: string }[] };
    expect(shown.entry).toMatchObject({ id: update, seq: 1 });
    expect(shown.related.map((x) => x.kind)).toEqual(['outcome']);

    const why = await cli('why', denied, '--config', configPath);
    expect(why.code).toBe(0);
    expect(why.stdout).toContain('Verdict:  REFUSED');
    expect(why.stdout).toContain('[matched]     no-drop -> deny: agents never drop tables');

    const tail = await cli('tail', '-n', '2', '--config', configPath);
    expect(tail.stdout.trim().split('\n')).toHaveLength(2);
    expect(tail.stdout.trim().split('\n')[1]).toContain(denied);
  });

  it('export --format jsonl to stdout and to a file', async () => {
    const r = await cli('export', '--format', 'jsonl', '--config', configPath);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { seq: number; hash: string; body: unknown });
    expect(lines.map((l) => l.seq)).toEqual([1, 2, 3, 4]);
    expect(lines[0]).not.toHaveProperty('pos');
    const out = path.join(tmp, 'export.jsonl');
    const f = await cli('export', '--format', 'jsonl', '--config', configPath, '--out', out, '--decision', 'deny');
    expect(f.code).toBe(0);
    expect(readFileSync(out, 'utf8').trim().split('\n')).toHaveLength(1);
    expect((await cli('export', '--format', 'csv', '--config', configPath)).code).toBe(2);
  });

  it('tail --follow prints records committed later, and stops on SIGINT', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'audit', 'tail', '--follow', '-n', '1', '--interval', '100', '--config', configPath], { cwd: ROOT, env: { ...process.env, ...env } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    const waitFor = async (s: string) => {
      for (let i = 0; i < 300 && !out.includes(s); i++) await new Promise((r) => setTimeout(r, 50));
      return out.includes(s);
    };
    expect(await waitFor(denied)).toBe(true);
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'cli-follow' });
    let id: string;
    try { id = (await log.recordDecision(allowUpdate('UPDATE accounts SET x = 1 WHERE id = 7'))).id; } finally { await log.close(); }
    expect(await waitFor(id)).toBe(true);
    child.kill('SIGINT');
    const code = await new Promise((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(0);
  });

  it('verify: exit 1 naming the tampered record; show/why of an unknown id: exit 1', async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      await c.query('BEGIN; SET LOCAL session_replication_role = replica');
      await c.query(`UPDATE pgairlock.audit_log SET body = jsonb_set(body, '{decision,effect}', '"allow"') WHERE id = $1`, [denied]);
      await c.query('COMMIT');
    } finally { await c.end(); }
    const r = await cli('verify', '--config', configPath);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`first bad record: id ${denied} seq 4 (altered)`);
    expect(r.stdout).toContain('verification FAILED');
    const json = await cli('verify', '--config', configPath, '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: false });
    expect((await cli('show', '00000000-0000-4000-8000-000000000000', '--config', configPath)).code).toBe(1);
    expect((await cli('why', 'not-a-uuid', '--config', configPath)).code).toBe(1);
  });

  it('migrate is idempotent; config errors exit 2 with a message', async () => {
    const m = await cli('migrate', '--config', configPath);
    expect(m.code).toBe(0);
    expect(m.stdout).toContain('already at version');
    const none = await cli('verify', '--config', path.join(tmp, 'missing.yaml'));
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('config file not found');
    const noUrl = path.join(tmp, 'empty.yaml');
    writeFileSync(noUrl, 'environment: test\n');
    const n = await cli('verify', '--config', noUrl);
    expect(n.code).toBe(2);
    expect(n.stderr).toContain('no audit control database');
    const empty = await cli('verify', '--database-url', db.url.replace(/\/[^/]*$/, '/postgres_nonexistent_db'));
    expect(empty.code).toBe(2);
  });
});
