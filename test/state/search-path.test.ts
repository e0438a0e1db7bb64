import pg from 'pg';
import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer } from '../../analyzer/index.js';
import { formatSearchPath, parseSearchPath, quoteIdentifier, searchPathSchemas } from '../../governance/search-path.js';
import { parseSearchPath as fromPolicy } from '../../governance/policy/units.js';
import { parseSearchPath as fromState, searchPathSchemas as stateSchemas } from '../../governance/state/deps.js';
import { SessionState } from '../../proxy/gate/session-state.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';

describe('parseSearchPath (PostgreSQL list rules)', () => {
  it('is one implementation for policy and state', () => {
    expect(fromPolicy).toBe(parseSearchPath);
    expect(fromState).toBe(parseSearchPath);
  });

  it('lower-cases unquoted names and keeps quoted ones, which may hold commas, spaces and quotes', () => {
    expect(parseSearchPath('"$user", public')).toEqual(['$user', 'public']);
    expect(parseSearchPath('$user,Public')).toEqual(['$user', 'public']);
    expect(parseSearchPath('"My Schema", "a,b" ,  x')).toEqual(['My Schema', 'a,b', 'x']);
    expect(parseSearchPath('PgAirlock,"My ""S"""')).toEqual(['pgairlock', 'My "S"']);
    expect(parseSearchPath('ÄBC')).toEqual(['Äbc']); // only ASCII letters are folded (UTF-8 server)
    expect(parseSearchPath('')).toEqual([]);
    expect(parseSearchPath(' , ,')).toEqual([]);
  });

  it('truncates names to 63 bytes at a character boundary', () => {
    expect(parseSearchPath('a'.repeat(70))).toEqual(['a'.repeat(63)]);
    expect(parseSearchPath(`"${'é'.repeat(40)}"`)[0]).toBe('é'.repeat(31));
  });

  it('expands $user and round-trips through formatSearchPath', () => {
    expect(searchPathSchemas(['$user', 'public'], 'alice')).toEqual(['alice', 'public']);
    expect(searchPathSchemas(['$user', 'public'], undefined)).toEqual(['public']);
    expect(searchPathSchemas(undefined, 'bob')).toEqual(['bob', 'public']);
    expect(stateSchemas(['$user', 'x'], 'bob')).toEqual(['bob', 'x']);
    const names = ['My Schema', 'a,b', 'q"q', 'public'];
    expect(parseSearchPath(formatSearchPath(names))).toEqual(names);
    expect(quoteIdentifier('a"b')).toBe('"a""b"');
  });
});

describe('search_path from SET through the analyzer into the session state', () => {
  beforeAll(async () => loadAnalyzer());
  const sessionAfter = (sql: string) => {
    const a = analyze(sql, { serverVersion: 150000 });
    if (!a.ok) throw new Error(a.error.message);
    const s = new SessionState(new Map());
    s.apply(a.statements);
    return s.searchPath;
  };

  it('keeps quoted names whole and folds unquoted ones', () => {
    expect(sessionAfter(`SET search_path = "My Schema", Public, 'a,b'`)).toEqual(['My Schema', 'public', 'a,b']);
    expect(sessionAfter(`SET search_path TO "$user", public`)).toEqual(['$user', 'public']);
    expect(sessionAfter('SET search_path TO DEFAULT')).toBeUndefined();
  });

  it('takes the startup parameter as the server does', () => {
    expect(new SessionState(new Map([['search_path', '"My Schema",public']])).searchPath).toEqual(['My Schema', 'public']);
  });
});

const db = useTestDatabase();

describe.skipIf(!postgresAvailable())('search_path against the server', () => {
  it('resolves to the schemas the server resolves (current_schemas)', async () => {
    await db.query(`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'Sp User') THEN CREATE ROLE "Sp User"; END IF; END $$`);
    await db.query(`CREATE SCHEMA "My Schema"; CREATE SCHEMA "a,b"; CREATE SCHEMA lower_one; CREATE SCHEMA "Sp User";
      GRANT USAGE ON SCHEMA "My Schema", "a,b", lower_one, "Sp User" TO "Sp User"`);
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      for (const set of [`"My Schema", Lower_One, 'a,b', public`, `"$user", "a,b"`, `'$user', PUBLIC`]) {
        await c.query(`SET search_path = ${set}`);
        const shown = (await c.query<{ search_path: string }>('SHOW search_path')).rows[0]!.search_path;
        await c.query('SET ROLE "Sp User"').catch(() => undefined);
        const server = (await c.query<{ s: string[] }>('SELECT current_schemas(false)::text[] AS s')).rows[0]!.s;
        const user = (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u;
        await c.query('RESET ROLE');
        const a = analyze(`SET search_path = ${set}`, { serverVersion: 150000 });
        if (!a.ok) throw new Error(a.error.message);
        const ours = parseSearchPath(a.statements[0]!.setting!.value!);
        expect(ours).toEqual(parseSearchPath(shown));
        const existing = new Set((await c.query<{ n: string }>('SELECT nspname AS n FROM pg_namespace')).rows.map((r) => r.n));
        expect(searchPathSchemas(ours, user).filter((s) => existing.has(s))).toEqual(server);
      }
    } finally {
      await c.end();
    }
  });
});
