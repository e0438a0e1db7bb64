import { beforeAll, describe, expect, it } from 'vitest';
import { analyze, loadAnalyzer } from '../../analyzer/index.js';
import { SessionState } from '../../proxy/gate/session-state.js';

/** What the gate remembers of a session must change exactly as the server's session does. */
function run(state: SessionState, sql: string): void {
  const a = analyze(sql);
  if (!a.ok) throw new Error(`did not parse: ${sql}`);
  state.apply(a.statements);
}

function prepared(): SessionState {
  const s = new SessionState(new Map());
  run(s, 'SET search_path = secret, public');
  run(s, "SET pgairlock.expect_schema = 'abc'");
  run(s, "SET lock_timeout = '2s'");
  run(s, 'SET ROLE app_writer');
  run(s, 'PREPARE p AS SELECT 1');
  return s;
}

describe('SessionState', () => {
  beforeAll(async () => {
    await loadAnalyzer();
  });

  it.each(['DISCARD PLANS', 'DISCARD SEQUENCES', 'DISCARD TEMP', 'DISCARD TEMPORARY'])('%s leaves settings and prepared statements as they were', (sql) => {
    const s = prepared();
    run(s, sql);
    expect(s.searchPath).toEqual(['secret', 'public']);
    expect(s.expectSchema).toBe('abc');
    expect(s.lockTimeoutSet).toBe(true);
    expect(s.effectiveRole).toBe('app_writer');
    expect([...s.prepared.keys()]).toEqual(['p']);
  });

  it('DISCARD ALL resets search_path, role, lock_timeout, expect_schema and prepared statements', () => {
    const s = prepared();
    run(s, 'DISCARD ALL');
    expect(s.searchPath).toBeUndefined();
    expect(s.expectSchema).toBeUndefined();
    expect(s.lockTimeoutSet).toBe(false);
    expect(s.effectiveRole).toBeUndefined();
    expect(s.prepared.size).toBe(0);
  });
});
