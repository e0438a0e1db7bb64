/**
 * The audit records of one pgbench TPC-B transaction (-M prepared), as the decision path writes them: four
 * DML decisions with the real analyzer's facts and a rule list the size of the default policy's. Used by the
 * audit store measurements (bench/audit-cost.ts, test/audit/bench-tpcb.ts), which write them without a proxy.
 */
import { analyze, loadAnalyzer } from '../../analyzer/index.js';
import type { DecisionInput, RuleVerdict, SessionInfo } from '../../governance/audit/types.js';

export const TPCB_DML = [
  'UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2',
  'UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2',
  'UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2',
  'INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($3, $4, $2, $1, CURRENT_TIMESTAMP)',
] as const;

/** The command tag each of TPCB_DML answers with. */
export const TPCB_TAGS = ['UPDATE 1', 'UPDATE 1', 'UPDATE 1', 'INSERT 0 1'] as const;

/** A session like one of pgbench's connections through the proxy. */
export function tpcbSession(client: number): SessionInfo {
  return {
    sessionId: `s${client}abcdef0123`, principal: { name: 'unknown', roles: ['agent'] }, databaseUser: 'postgres',
    effectiveRole: null, applicationName: 'pgbench', clientAddress: `127.0.0.1:${40000 + client}`, database: 'bench', source: 'wire',
  };
}

/**
 * One DecisionInput per statement of TPCB_DML for `session` (without walLsn: callers add theirs). The default
 * policy evaluates about 25 rules per statement; one rule list per prepared statement, as in the proxy.
 */
export async function tpcbDecisionInputs(session: SessionInfo): Promise<DecisionInput[]> {
  await loadAnalyzer();
  return TPCB_DML.map((sql) => {
    const r = analyze(sql);
    if (!r.ok) throw new Error(r.error.message);
    const facts = r.statements[0]!;
    const rules: RuleVerdict[] = Array.from({ length: 25 }, (_, i) => ({
      id: `rule-${i}`, matched: i === 3, effect: i % 3 === 0 ? 'deny' : 'allow', source: 'policy',
      reason: `principal unknown has role agent; it is a write statement (${facts.commandTag}), rule ${i} says so at some length`,
    }));
    return {
      session, sql, facts, rules,
      decision: { effect: 'allow', reasons: ['rule agent-write: principal unknown has role agent; it is a write statement'], message: null },
    };
  });
}
