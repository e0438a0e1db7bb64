import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { paramsHash, showParams, type ChangeRequest, type RedisApprovalStore } from '../../governance/approvals/index.js';
import { redisAvailable } from '../harness/db.js';
import { REDIS_URL } from '../harness/env.js';
import { freePort } from '../harness/cluster.js';
import { run } from '../harness/tools.js';
import { holdInput, redisKind } from './helpers.js';

/** The real `pgairlock changes` process, against the real Redis, as a second OS process next to this "proxy". */
const ROOT = path.resolve(import.meta.dirname, '../..');
const MAIN = path.join(ROOT, 'cli', 'main.ts');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-changes-cli-'));
const configPath = path.join(tmp, 'pgairlock.yaml');

describe.runIf(redisAvailable())('pgairlock changes (the real CLI process, real Redis)', () => {
  const kind = redisKind('cli');
  let store: RedisApprovalStore;
  let prefix: string;
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    run(process.execPath, ['--import', 'tsx', MAIN, 'changes', ...args], { cwd: ROOT, env: { PGAIRLOCK_CONFIG: configPath, REDIS_URL, PGAIRLOCK_PRINCIPAL: '', ...env }, timeoutMs: 60_000 });

  beforeAll(async () => {
    store = kind.open({ recheckIntervalMs: 60_000 }) as RedisApprovalStore;
    await store.ready();
    prefix = store.keyPrefix;
    writeFileSync(
      configPath,
      [
        'redis:',
        `  key_prefix: "${prefix}"`,
        'principals:',
        '  map:',
        '    - { name: alice, roles: [dba], match: { users: [alice] } }',
        '    - { name: bob, roles: [dba, developer], match: { users: [bob] } }',
        '    - { name: dev, roles: [developer], match: { users: [dev] } }',
        '    - { name: "agent:billing", roles: [agent], match: { users: [billing_bot] } }',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await kind.cleanup();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('an approval from another OS process wakes the waiting statement at once', async () => {
    const r = await store.create(holdInput());
    let wokeAt = 0;
    const waiting = store.waitForResolution(r.id, new AbortController().signal, 60_000).then((x) => {
      wokeAt = Date.now();
      return x;
    });
    const res = await cli(['approve', r.id.toLowerCase(), '--as', 'alice', '--comment', 'backup verified']);
    const exitedAt = Date.now();
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(`approved ${r.id}: agent:billing may now run it once`);
    expect(await waiting).toBe('approved');
    // Woken by pub/sub, not by the 60 s safety re-check: within a second of the CLI finishing.
    expect(wokeAt - exitedAt).toBeLessThan(1000);
    const stored = await store.get(r.id);
    expect(stored?.events.at(-1)).toMatchObject({ type: 'approved', by: { name: 'alice', roles: ['dba'] }, comment: 'backup verified' });
  });

  it('self-approval is refused (exit 1, 42501) even for a requester holding dba', async () => {
    const r = await store.create(holdInput({ requester: { name: 'bob', roles: ['dba', 'developer'] } }));
    const res = await cli(['approve', r.id, '--as', 'bob']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`ERROR 42501 (self_approval): you (bob) requested change ${r.id}; another principal holding dba must approve it`);
    expect((await store.get(r.id))?.status).toBe('pending');
    const wrongRole = await cli(['approve', r.id, '--as', 'dev']);
    expect(wrongRole.code).toBe(1);
    expect(wrongRole.stderr).toContain('(missing_role)');
    // The principal comes from the config: roles cannot be claimed on the command line.
    const unknown = await cli(['approve', r.id, '--as', 'mallory']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown principal "mallory"');
  });

  it('reject needs a reason; list and show print the request; --json is machine-readable', async () => {
    const r: ChangeRequest = await store.create(holdInput({ sql: 'TRUNCATE invoices' }));
    const waiting = store.waitForResolution(r.id, new AbortController().signal, 60_000);
    const list = await cli(['list', '--json']);
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout) as ChangeRequest[]).map((x) => x.id)).toContain(r.id);
    const table = await cli(['list']);
    expect(table.stdout).toContain(`${r.id}  pending`);
    const show = await cli(['show', r.id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain('TRUNCATE invoices');
    expect(show.stdout).toContain('destructive-ddl: drops a column');
    const noReason = await cli(['reject', r.id, '--as', 'alice']);
    expect(noReason.code).toBe(2);
    expect(noReason.stderr).toContain('rejecting needs --reason');
    const rej = await cli(['reject', r.id, '--as', 'alice', '--reason', 'truncate during business hours']);
    expect(rej.code).toBe(0);
    expect(await waiting).toBe('rejected');
    const again = await cli(['approve', r.id, '--as', 'bob']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('rejected by alice: truncate during business hours');
    const missing = await cli(['show', 'ZZZZZZZZ']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('ERROR 42704 (not_found)');
  });

  it('show prints bound parameter values next to the statement; list marks them', async () => {
    const sql = 'DELETE FROM big WHERE id > $1 AND note = $2';
    const values = [Buffer.from('17000'), null];
    const r: ChangeRequest = await store.create(holdInput({ sql, paramsHash: paramsHash(sql, { types: [23], formats: [0, 0], values }), params: showParams({ types: [23], formats: [0, 0], values }) }));
    const show = await cli(['show', r.id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`sql +${sql.replaceAll('$', '\\$')}\\nparam +\\$1 \\(text, type 23\\) = '17000'\\nparam +\\$2 = NULL\\nparams_sha256 +${r.paramsHash}`));
    expect((await cli(['list'])).stdout).toContain('[2 params]');
    const json = JSON.parse((await cli(['show', r.id, '--json'])).stdout) as ChangeRequest;
    expect(json.paramsHash).toBe(r.paramsHash);
    expect(json.params?.shown[0]).toMatchObject({ n: 1, value: '17000' });
  });

  it('without REDIS_URL it explains that the in-process store is out of reach', async () => {
    const res = await cli(['list'], { REDIS_URL: '' });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('no shared approval store');
    expect(res.stderr).toContain('SHOW PENDING');
  });

  it('with Redis unreachable it fails fast with 58000', async () => {
    const port = await freePort();
    const res = await cli(['list'], { REDIS_URL: `redis://127.0.0.1:${port}` });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('ERROR 58000 (store_unavailable)');
    expect(res.ms).toBeLessThan(20_000);
  });
});
