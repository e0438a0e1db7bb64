import client from 'prom-client';

/** prom-client metrics of the audit writer, shared by every AuditLog in the process (registered once). */
export interface AuditMetrics {
  readonly written: client.Counter<'kind'>;
  readonly lost: client.Counter<'kind' | 'reason'>;
  readonly refused: client.Counter<'class'>;
  readonly writeFailures: client.Counter;
  readonly flushSeconds: client.Histogram;
}

const cache = new WeakMap<client.Registry, AuditMetrics>();

function getOrCreate<T extends client.Metric>(registry: client.Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

export function auditMetrics(registry: client.Registry = client.register): AuditMetrics {
  const hit = cache.get(registry);
  if (hit) return hit;
  const registers = [registry];
  const m: AuditMetrics = {
    written: getOrCreate(registry, 'pgairlock_audit_records_written_total', () => new client.Counter({
      name: 'pgairlock_audit_records_written_total', help: 'Audit records committed, by kind', labelNames: ['kind'], registers })),
    lost: getOrCreate(registry, 'pgairlock_audit_records_lost_total', () => new client.Counter({
      name: 'pgairlock_audit_records_lost_total',
      help: 'Audit records that could not be written (gaps: reads served while the store was down, dropped outcomes/events)',
      labelNames: ['kind', 'reason'], registers })),
    refused: getOrCreate(registry, 'pgairlock_audit_refused_total', () => new client.Counter({
      name: 'pgairlock_audit_refused_total', help: 'Statements refused because their audit record could not be committed', labelNames: ['class'], registers })),
    writeFailures: getOrCreate(registry, 'pgairlock_audit_write_failures_total', () => new client.Counter({
      name: 'pgairlock_audit_write_failures_total', help: 'Failed batch writes to the audit store', registers })),
    flushSeconds: getOrCreate(registry, 'pgairlock_audit_flush_seconds', () => new client.Histogram({
      name: 'pgairlock_audit_flush_seconds', help: 'Time to commit one batch of audit records',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2], registers })),
  };
  cache.set(registry, m);
  return m;
}
