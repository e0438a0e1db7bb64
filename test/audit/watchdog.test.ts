import pg from 'pg';
import client from 'prom-client';
import { describe, expect, it } from 'vitest';
import { AuditUnavailableError } from '../../governance/audit/errors.js';
import { AuditLog } from '../../governance/audit/log.js';
import { AuditQuery } from '../../governance/audit/query.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { allowUpdate } from './fixtures.js';

/**
 * The commit-wait bound of a change's record (connect_timeout_ms + 2 x write_timeout_ms + 100 ms), enforced by
 * one watchdog interval for all waiters: a writer stuck behind a lock on the audit table refuses the change in
 * time, a record dropped from the queue never appears, the chain has no hole, and no timer outlives the log.
 * The control database is this file's own database on the shared server (the lock is taken from another connection).
 */
const db = useTestDatabase();

const timeouts = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
const watchdogOf = (log: AuditLog): unknown => (log as unknown as { watchdog?: unknown }).watchdog;
const settle = <T>(p: Promise<T>) => p.then(() => null, (e: unknown) => e);

describe.runIf(postgresAvailable())('audit: commit-wait watchdog', () => {
  it('a writer blocked by a lock on the audit table: changes refused (58000) within the bound, queued ones dropped, the chain whole afterwards', async () => {
    const baseline = timeouts();
    const log = await AuditLog.open({
      databaseUrl: db.url, instance: 'wd-lock', registry: new client.Registry(),
      // One record per batch, so changes pile up behind the blocked writer.
      config: { connect_timeout_ms: 300, write_timeout_ms: 300, reads: { group_commit_ms: 5, max_batch: 1, aggregate: false, aggregate_interval_ms: 10_000 } },
    });
    const bound = 300 + 2 * 300 + 100;
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    let locked = false;
    let chainLength: number | undefined;
    try {
      await log.recordDecision(allowUpdate('UPDATE accounts SET balance = 1 WHERE id = 1'));
      // Stopped at its first tick after the last waiter settled.
      await new Promise((r) => setTimeout(r, 120));
      expect(watchdogOf(log)).toBeUndefined();

      await locker.query('BEGIN');
      await locker.query('LOCK TABLE pgairlock.audit_log IN ACCESS EXCLUSIVE MODE');
      locked = true;

      // One change alone: refused with 58000 within the bound.
      let t0 = performance.now();
      const alone = await settle(log.recordDecision(allowUpdate('UPDATE accounts SET balance = 2 WHERE id = 2')));
      expect(alone).toBeInstanceOf(AuditUnavailableError);
      expect(alone).toMatchObject({ sqlstate: '58000' });
      expect(performance.now() - t0).toBeLessThan(bound + 500);

      // Six at once, one per batch: each batch waits out write_timeout_ms (statement_timeout) on the lock, so
      // the later ones are past their deadline before their turn: the watchdog refuses them ("no commit within").
      t0 = performance.now();
      const sqls = [3, 4, 5, 6, 7, 8].map((i) => `UPDATE accounts SET balance = ${i} WHERE id = ${i}`);
      const pile = sqls.map((s) => settle(log.recordDecision(allowUpdate(s))).then((e) => ({ e, ms: performance.now() - t0 })));
      const results = await Promise.all(pile);
      for (const r of results) {
        expect(r.e).toBeInstanceOf(AuditUnavailableError);
        expect(r.e).toMatchObject({ sqlstate: '58000' });
        // The deadline, one watchdog period (50 ms) and a generous margin for a loaded machine.
        expect(r.ms).toBeLessThan(bound + 50 + 600);
      }
      const byWatchdog = results.filter((r) => (r.e as AuditUnavailableError).detail.includes(`no commit within ${bound} ms`));
      expect(byWatchdog.length).toBeGreaterThanOrEqual(1);
      // The last one cannot have had its turn at the writer (after five 300 ms batches): the watchdog refused it.
      expect((results.at(-1)!.e as AuditUnavailableError).detail).toContain(`no commit within ${bound} ms`);
      for (const r of byWatchdog) expect(r.ms).toBeGreaterThanOrEqual(bound - 5);

      // Release the lock at once: the batch still in the writer's hand (if any) may now commit although its
      // waiter was refused (documented); the records the watchdog took off the queue must never be written.
      await locker.query('COMMIT');
      locked = false;
      await log.flush();
      const after = await log.recordDecision(allowUpdate('UPDATE accounts SET balance = 9 WHERE id = 9'));
      expect(after.committed).toBe(true);
      const found = (await db.query<{ sql: string }>(
        `SELECT body->>'sql' AS sql FROM pgairlock.audit_log WHERE instance = 'wd-lock' AND kind = 'decision' ORDER BY seq`)).rows.map((r) => r.sql);
      expect(found[0]).toBe('UPDATE accounts SET balance = 1 WHERE id = 1');
      expect(found.at(-1)).toBe('UPDATE accounts SET balance = 9 WHERE id = 9');
      const refusedButWritten = found.slice(1, -1);
      expect(refusedButWritten.length).toBeLessThanOrEqual(1);
      // A refused change whose record committed anyway gets an outcome saying it was not executed (58000), once
      // the store answers again (settleUnsure, after the next successful batch): the log never shows it as run.
      const outcomes = async () => (await db.query<{ sql: string; status: string; sqlstate: string | null }>(
        `SELECT d.body->>'sql' AS sql, o.body->'outcome'->>'status' AS status, o.body->'outcome'->>'sqlstate' AS sqlstate
           FROM pgairlock.audit_log d JOIN pgairlock.audit_log o ON o.kind = 'outcome' AND o.body->>'decision_id' = d.id::text
          WHERE d.instance = 'wd-lock' AND d.kind = 'decision'`)).rows;
      for (let i = 0; i < 60 && (await outcomes()).length < refusedButWritten.length; i++) {
        await new Promise((r) => setTimeout(r, 50));
        await log.flush();
      }
      expect(await outcomes()).toEqual(refusedButWritten.map((sql) => ({ sql, status: 'error', sqlstate: '58000' })));
      // The last two were still queued when the watchdog ran (their turn would have come after 4 or 5 x 300 ms).
      expect(found).not.toContain(sqls[4]);
      expect(found).not.toContain(sqls[5]);
      expect(found).not.toContain('UPDATE accounts SET balance = 2 WHERE id = 2');
      chainLength = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pgairlock.audit_log WHERE instance = 'wd-lock'`)).rows[0]!.n;

      // Every waiter has settled: the watchdog has stopped at its next tick (no interval keeps the process alive).
      await new Promise((r) => setTimeout(r, 120));
      expect(watchdogOf(log)).toBeUndefined();
    } finally {
      if (locked) await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      await log.close();
    }
    expect(watchdogOf(log)).toBeUndefined();
    // pg's pools and the instance-lock client are gone too: no timer left beyond those before open().
    await new Promise((r) => setTimeout(r, 100));
    expect(timeouts()).toBeLessThanOrEqual(baseline);

    const q = new AuditQuery(db.url);
    try {
      const v = await q.verify({ instance: 'wd-lock' });
      expect(v).toMatchObject({ ok: true, chains: [{ records: chainLength, head: { seq: chainLength } }] });
    } finally { await q.close(); }
  });

  it('close() with no waiter pending leaves no timer; a change refused after close() does not leave the watchdog running', async () => {
    const baseline = timeouts();
    const log = await AuditLog.open({ databaseUrl: db.url, instance: 'wd-close', registry: new client.Registry(), config: { connect_timeout_ms: 300, write_timeout_ms: 300 } });
    await log.recordDecision(allowUpdate());
    await log.close();
    await expect(log.recordDecision(allowUpdate())).rejects.toMatchObject({ sqlstate: '58000' });
    // The refusal settled its waiter at once; the interval started for it stops at its next tick.
    await new Promise((r) => setTimeout(r, 150));
    expect(watchdogOf(log)).toBeUndefined();
    expect(timeouts()).toBeLessThanOrEqual(baseline);
  });
});
