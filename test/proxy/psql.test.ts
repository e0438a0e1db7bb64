import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { startTestProxy, type TestProxy } from '../harness/proxy.js';
import { psql, tempDir } from '../harness/tools.js';

const db = useTestDatabase();

describe.skipIf(!postgresAvailable())('psql through the proxy', () => {
  let proxy: TestProxy;
  let url: string;
  const tmp = tempDir('pgairlock-psql-');

  beforeAll(async () => {
    proxy = await startTestProxy();
    url = proxy.url(db.name, 'postgres', undefined, 'sslmode=disable');
    await db.query(`CREATE TABLE widgets (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) DEFAULT 0)`);
    await db.query(`CREATE INDEX widgets_name_idx ON widgets (name)`);
    await db.query(`INSERT INTO widgets SELECT g, 'w' || g, g * 1.5 FROM generate_series(1, 100) g`);
  });
  afterAll(async () => {
    await proxy?.close();
    tmp.remove();
  });

  it('\\d describes a table with its columns and index', async () => {
    const r = await psql(url, ['-c', '\\d widgets']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Table "public.widgets"');
    expect(r.stdout).toMatch(/price\s*\|\s*numeric\(10,2\)/);
    expect(r.stdout).toContain('"widgets_pkey" PRIMARY KEY, btree (id)');
    expect(r.stdout).toContain('"widgets_name_idx" btree (name)');
  });

  it('\\dt lists the table and \\l lists the test database', async () => {
    const dt = await psql(url, ['-c', '\\dt']);
    expect(dt.code).toBe(0);
    expect(dt.stdout).toMatch(/public\s*\|\s*widgets\s*\|\s*table/);
    const l = await psql(url, ['-c', '\\l']);
    expect(l.code).toBe(0);
    expect(l.stdout).toContain(db.name);
  });

  it('\\copy exports to a file and imports from it', async () => {
    const file = path.join(tmp.dir, 'widgets.csv');
    const out = await psql(url, ['-c', `\\copy (SELECT id, name, price FROM widgets ORDER BY id) TO '${file}' WITH (FORMAT csv)`]);
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('COPY 100');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(100);
    expect(lines[0]).toBe('1,w1,1.50');

    // Import a file bigger than one network chunk.
    const big = path.join(tmp.dir, 'more.csv');
    writeFileSync(big, Array.from({ length: 20_000 }, (_, i) => `${1000 + i},imported ${'x'.repeat(40)} ${i},${i}.25`).join('\n') + '\n');
    const inn = await psql(url, ['-c', `\\copy widgets (id, name, price) FROM '${big}' WITH (FORMAT csv)`]);
    expect(inn.stderr).toBe('');
    expect(inn.stdout.trim()).toBe('COPY 20000');
    const { rows } = await db.query(`SELECT count(*)::int AS n, sum(price)::text AS s FROM widgets WHERE id >= 1000`);
    expect(rows[0]).toEqual({ n: 20000, s: String(Array.from({ length: 20000 }, (_, i) => i + 0.25).reduce((a, b) => a + b, 0).toFixed(2)) });
  });

  it('runs a multi-statement -c string and prints every result', async () => {
    const r = await psql(url, ['-A', '-t', '-c', 'SELECT 1 AS a; SELECT 2 AS b; SELECT current_database()']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual(['1', '2', db.name]);
  });

  it('shows a server error with its LINE and caret position', async () => {
    const r = await psql(url, ['-c', 'SELECT id, nosuchcolumn FROM widgets']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('ERROR:  column "nosuchcolumn" does not exist');
    expect(r.stderr).toContain('LINE 1: SELECT id, nosuchcolumn FROM widgets');
    // The caret sits under the 'n' of nosuchcolumn: "LINE 1: " is 8 wide, the column starts at offset 11.
    const caretLine = r.stderr.split('\n').find((l) => l.trim() === '^');
    expect(caretLine).toBeDefined();
    expect(caretLine!.indexOf('^')).toBe('LINE 1: SELECT id, '.length);
  });

  it('ON_ERROR_STOP stops the script with exit code 3 and leaves later statements unrun', async () => {
    const script = path.join(tmp.dir, 'script.sql');
    writeFileSync(script, `CREATE TABLE stop_marker_a (x int);\nSELECT 1/0;\nCREATE TABLE stop_marker_b (x int);\n`);
    const r = await psql(url, ['-v', 'ON_ERROR_STOP=1', '-f', script]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain('division by zero');
    const { rows } = await db.query(`SELECT to_regclass('stop_marker_a') IS NOT NULL AS a, to_regclass('stop_marker_b') IS NOT NULL AS b`);
    expect(rows[0]).toEqual({ a: true, b: false });

    // Without ON_ERROR_STOP psql carries on: the session survives the error through the proxy.
    const cont = await psql(url, ['-f', script]);
    expect(cont.code).toBe(0);
    expect(cont.stderr).toContain('already exists');
    const after = await db.query(`SELECT to_regclass('stop_marker_b') IS NOT NULL AS b`);
    expect(after.rows[0]).toEqual({ b: true });
  });

  it('\\conninfo reports the proxy port and the database', async () => {
    const r = await psql(url, ['-c', '\\conninfo']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`database "${db.name}"`);
    expect(r.stdout).toContain(`port "${proxy.port}"`);
  });

  it('interactive-style input on stdin with a transaction and \\gset', async () => {
    const r = await psql(url, ['-A', '-t', '-v', 'ON_ERROR_STOP=1'], {
      input: `BEGIN;\nSELECT count(*) AS n FROM widgets \\gset\nSELECT :n + 1;\nROLLBACK;\n`,
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('20101');
  });
});
