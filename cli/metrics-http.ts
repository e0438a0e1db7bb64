import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, register as defaultRegistry, type Registry } from 'prom-client';
import { parseHostPort } from '../proxy/server.js';

/**
 * Prometheus exposition of every pgairlock metric (`GET /metrics`, text format) on its own port, off by
 * default (`metrics.listen`, docs/configuration.md). Besides pgairlock's own counters (audit, catalog refresh,
 * schema drift) it carries prom-client's process metrics, including the event-loop delay
 * (`nodejs_eventloop_lag_*`), which is what a stalled proxy shows first.
 */
export interface MetricsHttpServer {
  readonly address: { host: string; port: number };
  close(): Promise<void>;
}

const withDefaults = new WeakSet<Registry>();

export async function startMetricsHttp(listen: string, registry: Registry = defaultRegistry): Promise<MetricsHttpServer> {
  if (!withDefaults.has(registry) && !registry.getSingleMetric('process_cpu_seconds_total')) collectDefaultMetrics({ register: registry });
  withDefaults.add(registry);
  const { host, port } = parseHostPort(listen);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('pgairlock serves GET /metrics only\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${(err as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  return {
    address: { host: addr.address, port: addr.port },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
