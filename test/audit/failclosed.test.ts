import net from 'node:net';
import client from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_UNAVAILABLE_SQLSTATE, AuditUnavailableError } from '../../governance/audit/errors.js';
import { AuditLog } from '../../governance/audit/log.js';
import { AuditQuery } from '../../governance/audit/query.js';
import { startPrivateCluster, type PrivateCluster } from '../harness/cluster.js';
import { postgresAvailable } from '../harness/db.js';
import { allowRead, allowUpdate } from './fixtures.js';

/** The control database is a private cluster this file stops and starts. */
describe.runIf(postgresAvailable())('fail closed when the control database goes away', () => {
  let cluster: PrivateCluster;
  beforeAll(async () => { cluster = await startPrivateCluster(); });
  afterAll(async () => { await cluster?.destroy(); });

  async function lost(registry: client.Registry): Promise<number> {
    const m = await registry.getSingleMetric('pgairlock_audit_records_lost_total')?.get();
    return (m?.values ?? []).reduce((s, v) => s + v.value, 0);
  }

  it('changes are refused quickly with SQLSTATE 58000; reads are served (serve) and the gap is counted; writes resume after restart', async () => {
    const registry = new client.Registry();
    const log = await AuditLog.open({
      databaseUrl: cluster.url(), instance: 'fc-serve', registry,
      config: { connect_timeout_ms: 1000, write_timeout_ms: 1000, on_store_failure_for_reads: 'serve', reads: { group_commit_ms: 5, max_batch: 100, aggregate: false, aggregate_interval_ms: 10_000 } },
    });
    try {
      await log.recordDecision(allowUpdate());
      await log.recordDecision(allowRead());
      await log.flush();
      await cluster.stop();

      const t0 = Date.now();
      const err = await log.recordDecision(allowUpdate()).then(() => null, (e: unknown) => e);
      const ms = Date.now() - t0;
      expect(err).toBeInstanceOf(AuditUnavailableError);
      expect(err).toMatchObject({ sqlstate: AUDIT_UNAVAILABLE_SQLSTATE, message: expect.stringContaining('changes are only forwarded once audited') });
      expect((err as AuditUnavailableError).hint).toContain('audit.database_url');
      expect(ms).toBeLessThan(2_500); // connect_timeout_ms + write_timeout_ms at most

      // Deferred durability: the call returns, the durable promise rejects the same way.
      const deferred = await log.recordDecision(allowUpdate(), { durability: 'before-commit' });
      await expect(deferred.durable).rejects.toMatchObject({ sqlstate: '58000' });

      // Approval events are write-ahead too.
      await expect(log.recordApprovalEvent({ event: 'approved', changeId: 'c', actor: { name: 'bob', roles: ['dba'] } })).rejects.toBeInstanceOf(AuditUnavailableError);

      const before = await lost(registry);
      const read = await log.recordDecision(allowRead());
      expect(read).toMatchObject({ committed: false, change: false });
      await log.flush();
      expect(await lost(registry)).toBe(before + 1);
      expect(log.health().healthy).toBe(false);
      const refused = await registry.getSingleMetricAsString('pgairlock_audit_refused_total');
      expect(refused).toContain('class="change"} 2');

      await cluster.start();
      const again = await log.recordDecision(allowUpdate());
      expect(again.committed).toBe(true);
      await log.flush();
      expect(log.health().healthy).toBe(true);
    } finally { await log.close(); }
    const q = new AuditQuery(cluster.url());
    try {
      const v = await q.verify({ instance: 'fc-serve' });
      // Refused and lost records never entered the chain: it is whole, with the 3 committed records.
      expect(v).toMatchObject({ ok: true, chains: [{ records: 3, head: { seq: 3 } }] });
    } finally { await q.close(); }
  });

  it('on_store_failure_for_reads: refuse rejects reads too, and recovers when the store is back', async () => {
    const registry = new client.Registry();
    const log = await AuditLog.open({
      databaseUrl: cluster.url(), instance: 'fc-refuse', registry,
      config: { connect_timeout_ms: 1000, write_timeout_ms: 1000, on_store_failure_for_reads: 'refuse' },
    });
    try {
      const ok = await log.recordDecision(allowRead());
      expect(ok.committed).toBe(true); // under refuse a read waits for its (group-committed) record
      await cluster.stop();
      const t0 = Date.now();
      await expect(log.recordDecision(allowRead())).rejects.toMatchObject({ sqlstate: '58000', message: expect.stringContaining('refuse unaudited reads') });
      expect(Date.now() - t0).toBeLessThan(2_500);
      await expect(log.recordDecision(allowUpdate())).rejects.toBeInstanceOf(AuditUnavailableError);
      await cluster.start();
      expect((await log.recordDecision(allowRead())).committed).toBe(true);
    } finally { await log.close(); }
  });

  it('refuse + aggregation: reads are refused while the store is known to be down, served again once a probe succeeds', async () => {
    const log = await AuditLog.open({
      databaseUrl: cluster.url(), instance: 'fc-agg', registry: new client.Registry(),
      config: { connect_timeout_ms: 1000, write_timeout_ms: 1000, on_store_failure_for_reads: 'refuse', reads: { group_commit_ms: 5, max_batch: 100, aggregate: true, aggregate_interval_ms: 60_000 } },
    });
    try {
      expect((await log.recordDecision(allowRead())).aggregateKey).toBeDefined();
      await cluster.stop();
      await expect(log.recordDecision(allowUpdate())).rejects.toBeInstanceOf(AuditUnavailableError);
      await expect(log.recordDecision(allowRead())).rejects.toBeInstanceOf(AuditUnavailableError);
      await cluster.start();
      const deadline = Date.now() + 10_000;
      while (!log.health().healthy && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(log.health().healthy).toBe(true);
      expect((await log.recordDecision(allowRead())).aggregateKey).toBeDefined();
    } finally { await log.close(); }
  });

  it('a control database that hangs (black hole, not refused) still fails a change within the bound', async () => {
    // A loopback forwarder to the cluster that can be frozen: connections stay open, no bytes move.
    let frozen = false;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((downstream) => {
      const upstream = net.connect(cluster.port, '127.0.0.1');
      for (const sock of [downstream, upstream]) { sockets.add(sock); sock.on('error', () => undefined); sock.on('close', () => sockets.delete(sock)); }
      downstream.on('data', (d) => { if (!frozen) upstream.write(d); });
      upstream.on('data', (d) => { if (!frozen) downstream.write(d); });
      downstream.on('close', () => upstream.destroy());
      upstream.on('close', () => downstream.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    const log = await AuditLog.open({
      databaseUrl: `postgres://postgres@127.0.0.1:${port}/postgres`, instance: 'fc-hang', registry: new client.Registry(),
      config: { connect_timeout_ms: 500, write_timeout_ms: 500 },
    });
    try {
      await log.recordDecision(allowUpdate());
      frozen = true;
      const t0 = Date.now();
      await expect(log.recordDecision(allowUpdate())).rejects.toMatchObject({ sqlstate: '58000' });
      const first = Date.now() - t0;
      // A second change queued behind the hanging batch is bounded too (connect + 2 x write + 100 ms).
      const t1 = Date.now();
      await expect(log.recordDecision(allowUpdate())).rejects.toBeInstanceOf(AuditUnavailableError);
      expect(first).toBeLessThan(2_000);
      expect(Date.now() - t1).toBeLessThan(2_000);
    } finally {
      frozen = false;
      for (const sock of sockets) sock.destroy();
      await log.close();
      await new Promise((r) => server.close(r));
    }
  });
});
