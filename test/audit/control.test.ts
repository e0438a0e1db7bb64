import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../governance/config/load.js';
import { controlDatabaseUrl, instanceName } from '../../governance/audit/control.js';
import { openAuditLog } from '../../governance/audit/open.js';
import { AuditQuery } from '../../governance/audit/query.js';
import { postgresAvailable, useTestDatabase } from '../harness/db.js';
import { allowUpdate } from './fixtures.js';

const db = useTestDatabase();

describe('control database and instance resolution', () => {
  it('env beats config beats the upstream server\'s postgres database', () => {
    const up = parseConfig({ upstream: { url: 'postgres://svc:pw@db.internal:5433/app?sslmode=require' } });
    expect(controlDatabaseUrl(up, {})).toBe('postgres://svc:pw@db.internal:5433/postgres?sslmode=require');
    const both = parseConfig({ upstream: { url: 'postgres://svc@db/app' }, audit: { database_url: 'postgres://audit@ctl/auditdb' } });
    expect(controlDatabaseUrl(both, {})).toBe('postgres://audit@ctl/auditdb');
    expect(controlDatabaseUrl(both, { PGAIRLOCK_AUDIT_DATABASE_URL: 'postgres://x@y/z' })).toBe('postgres://x@y/z');
    expect(() => controlDatabaseUrl(parseConfig({}), {})).toThrow(/no audit control database: set audit.database_url/);
  });

  it('instance: configured name, else hostname:pid', () => {
    expect(instanceName(parseConfig({ instance: 'proxy-a' }))).toBe('proxy-a');
    expect(instanceName(parseConfig({}))).toMatch(new RegExp(`:${process.pid}$`));
  });

  it('audit config defaults are documented values', () => {
    expect(parseConfig({}).audit).toEqual({
      enabled: true, migrate: true, redact_literals: false, connect_timeout_ms: 2000, write_timeout_ms: 2000,
      on_store_failure_for_reads: 'serve', strict_write_ahead: false, reads: { group_commit_ms: 10, max_batch: 500, aggregate: false, aggregate_interval_ms: 10_000 },
      max_queue: 100_000, mirror_to_log: false, wal_lsn_max_age_ms: 50,
    });
    expect(() => parseConfig({ audit: { on_store_failure_for_reads: 'maybe' } })).toThrow(/audit.on_store_failure_for_reads/);
  });

  it.runIf(postgresAvailable())('openAuditLog starts from a whole config', async () => {
    const config = parseConfig({ instance: 'from-config', audit: { database_url: db.url, redact_literals: true } });
    const log = await openAuditLog(config, { env: {} });
    try {
      const r = await log.recordDecision(allowUpdate());
      const q = new AuditQuery(db.url);
      try {
        expect(await q.get(r.id)).toMatchObject({ instance: 'from-config', body: { sql: 'UPDATE accounts SET balance = $1 WHERE id = $2', sql_redacted: true } });
      } finally { await q.close(); }
    } finally { await log.close(); }
  });
});
