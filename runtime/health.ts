// The health and metrics listener: liveness, readiness and /metrics on a port of their own (HEALTH_PORT), so the
// kubelet's probes and Prometheus never queue behind inference traffic, its connection limits or its
// authentication. Plain node:http: three fixed paths, nothing to parse, no per-request allocation beyond the answer.
import { createServer, type Server } from 'node:http';
import { readiness } from './app.ts';
import { PROBES } from './contract.ts';
import { msError } from './errors.ts';
import type { ServedModel } from './model.ts';
import type { RuntimeMetrics } from './observability/metrics.ts';

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

const LIVE = JSON.stringify({ live: true });

export async function startHealth(model: ServedModel, metrics: RuntimeMetrics, host: string, port: number): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'GET only' }));
    } else if (path === PROBES.live) {
      res.writeHead(200, { 'content-type': 'application/json' }).end(LIVE);
    } else if (path === PROBES.ready) {
      const r = readiness(model);
      res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(r));
    } else if (path === '/metrics') {
      metrics.registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(err.message),
      );
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `no route ${req.method} ${path}` }));
    }
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(msError('MS_ERR_LISTEN_FAILED', { protocol: 'HTTP (health)', address: `${host}:${port}`, detail: err.code ?? err.message })),
    );
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
