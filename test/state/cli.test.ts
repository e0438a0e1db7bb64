import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, urlWithDatabase, useTestDatabase } from '../harness/db.js';
import { ADMIN_DATABASE_URL } from '../harness/env.js';
import { run, type RunResult } from '../harness/tools.js';
import type { SnapshotDiff } from '../../governance/state/diff.js';
import { FIXTURE_SQL } from './helpers.js';

/** The real `pgairlock` process (from source), as a user runs it. */
const REPO = path.resolve(import.meta.dirname, '../..');
const cli = (...args: string[]): Promise<RunResult> =>
  run(process.execPath, ['--import', 'tsx', path.join(REPO, 'cli/main.ts'), ...args], { cwd: REPO, timeoutMs: 60_000, env: { DATABASE_URL: '', PGAIRLOCK_CONFIG: '' } });

const prod = useTestDatabase();
const staging = useTestDatabase();
const dir = mkdtempSync(path.join(os.tmpdir(), 'pgairlock-state-cli-'));
const file = path.join(dir, 'prod.json');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe.runIf(postgresAvailable())('pgairlock snapshot save and pgairlock drift', () => {
  beforeAll(async () => {
    await prod.query(FIXTURE_SQL);
    await staging.query(FIXTURE_SQL);
  });

  it('saves a snapshot and prints the same schema hash as `snapshot hash`', async () => {
    const saved = await cli('snapshot', 'save', '--url', prod.url, '-o', file);
    expect(saved.stderr).toMatch(/saved snapshot of pgairlock_cli_\w+: \d+ objects, schema [0-9a-f]{64}/);
    expect(saved.code).toBe(0);
    const json = JSON.parse(readFileSync(file, 'utf8')) as { format: string; schemaHash: string; objects: { key: string }[] };
    expect(json.format).toBe('pgairlock.snapshot/1');
    expect(json.objects.map((o) => o.key)).toContain('view:public.big_paid');
    const hash = await cli('snapshot', 'hash', '--url', prod.url);
    expect(hash.code).toBe(0);
    expect(hash.stdout.trim()).toBe(json.schemaHash);
    // The config's upstream.url with --database reads the same database.
    const cfg = path.join(dir, 'pgairlock.yaml');
    writeFileSync(cfg, `upstream:\n  url: ${urlWithDatabase(ADMIN_DATABASE_URL, 'postgres')}\n`);
    const viaConfig = await cli('snapshot', 'hash', '-c', cfg, '--database', prod.name);
    expect(viaConfig.stdout.trim()).toBe(json.schemaHash);
  });

  it('finds no drift against the saved snapshot, nor between two databases with the same schema', async () => {
    const self = await cli('drift', '--url', prod.url, '--against', file);
    expect(self.stdout).toContain('no drift');
    expect(self.code).toBe(0);
    const other = await cli('drift', '--url', staging.url, '--against-url', prod.url, '--format', 'json');
    expect(other.code).toBe(0);
    const d = JSON.parse(other.stdout) as SnapshotDiff;
    expect(d.equal).toBe(true);
    expect(d.live.schemaHash).toBe(d.base.schemaHash); // hashes are canonical: no OIDs, no database names
    expect(d.live.database).toBe(staging.name);
  });

  it('reports hand changes with exit 1: added, removed and changed objects with the changed lines', async () => {
    await prod.query(`
      DROP VIEW big_paid;
      CREATE OR REPLACE VIEW paid_orders AS SELECT id, customer_id, total FROM orders WHERE status = 'paid' AND total > 10;
      ALTER TABLE orders ADD COLUMN note text;
      CREATE INDEX orders_note_idx ON orders (note);
    `);
    const text = await cli('drift', '--url', prod.url, '--against', file);
    expect(text.code).toBe(1);
    expect(text.stdout).toContain('+ added   index public.orders_note_idx');
    expect(text.stdout).toContain('- removed view public.big_paid');
    expect(text.stdout).toContain('~ changed table public.orders');
    expect(text.stdout).toContain('      +   note text');
    expect(text.stdout).toContain('~ changed view public.paid_orders');
    expect(text.stdout).toMatch(/\+ .*total > 10::numeric/);
    expect(text.stdout).toContain('4 objects differ: 1 added, 1 removed, 2 changed');

    const json = await cli('drift', '--url', prod.url, '--against', file, '--format', 'json');
    expect(json.code).toBe(1);
    const d = JSON.parse(json.stdout) as SnapshotDiff;
    expect(d.added.map((c) => c.key)).toEqual(['index:public.orders_note_idx']);
    expect(d.removed.map((c) => c.key)).toEqual(['view:public.big_paid']);
    expect(d.changed.map((c) => c.key)).toEqual(['table:public.orders', 'view:public.paid_orders']);
    expect(d.changed[0]?.lines).toEqual({ removed: [], added: ['  note text'] });

    // Staging (live) against production (base): the other direction.
    const envs = await cli('drift', '--url', staging.url, '--against-url', prod.url, '--format', 'json');
    expect(envs.code).toBe(1);
    const e = JSON.parse(envs.stdout) as SnapshotDiff;
    expect(e.added.map((c) => c.key)).toEqual(['view:public.big_paid']);
    expect(e.removed.map((c) => c.key)).toEqual(['index:public.orders_note_idx']);
  });

  it('exits 2 with a message on usage, file and connection errors', async () => {
    const none = await cli('drift', '--url', prod.url);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('give exactly one of --against <file> or --against-url');
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '{"format":"something else"}');
    const notSnapshot = await cli('drift', '--url', prod.url, '--against', bad);
    expect(notSnapshot.code).toBe(2);
    expect(notSnapshot.stderr).toContain('is not a pgairlock snapshot');
    const tampered = path.join(dir, 'tampered.json');
    const snap = JSON.parse(readFileSync(file, 'utf8')) as { objects: { hash: string }[] };
    snap.objects[0]!.hash = '0'.repeat(64);
    writeFileSync(tampered, JSON.stringify(snap));
    const edited = await cli('drift', '--url', prod.url, '--against', tampered);
    expect(edited.code).toBe(2);
    expect(edited.stderr).toContain('does not match its objects');
    const missing = await cli('drift', '--url', urlWithDatabase(ADMIN_DATABASE_URL, 'pgairlock_no_such_db_q'), '--against', file);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('cannot read the catalog of');
    const noUrl = await cli('snapshot', 'hash', '-c', path.join(dir, 'absent.yaml'));
    expect(noUrl.code).toBe(2);
  });
});
