// The operator process: wiring only. Config, logger, metrics and health server, leader election, the
// ModelServing and BatchPrediction controllers (sharing their watches and event recorder). Exits when it loses the
// lease; on SIGTERM stops its workers and releases the lease.
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { pino } from 'pino';
import { loadOperatorConfig } from './config.ts';
import { BatchPredictionController } from './controller/batch/controller.ts';
import { ModelServingController } from './controller/controller.ts';
import { Shared } from './controller/shared.ts';
import { PooledKubeConfig } from './kube/config.ts';
import { apiError } from './kube/errors.ts';
import { LeaderElector } from './kube/leader.ts';
import { OperatorMetrics } from './metrics.ts';

export async function main(): Promise<void> {
  const config = loadOperatorConfig();
  const log = pino({ level: process.env.MODELSHIP_LOG_LEVEL ?? 'info', base: { component: 'modelship-operator' } });
  const kc = new PooledKubeConfig();
  kc.loadFromDefault();
  const metrics = new OperatorMetrics();
  const shared = new Shared(kc, config, log, metrics);
  const controllers = [
    new ModelServingController(kc, config, log, metrics, shared),
    new BatchPredictionController(kc, config, log, metrics, shared),
  ];
  let ready = false;

  const server = createServer(async (req, res) => {
    if (req.url === '/healthz') return void res.writeHead(200).end('ok');
    if (req.url === '/readyz') return void res.writeHead(ready ? 200 : 503).end(ready ? 'ok' : 'not ready');
    if (req.url === '/metrics') {
      res.writeHead(200, { 'content-type': metrics.registry.contentType });
      return void res.end(await metrics.registry.metrics());
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(config.metricsPort, process.env.MODELSHIP_OPERATOR_BIND ?? '0.0.0.0', r));
  log.info({ port: (server.address() as { port: number }).port }, 'health and metrics listening');

  const identity = `${hostname()}-${process.pid}`;
  const leader = config.leaderElection
    ? new LeaderElector(kc, { namespace: config.leaseNamespace, name: config.leaseName, identity, log })
    : undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    ready = false;
    log.info('stopping');
    await Promise.all(controllers.map((c) => c.stop().catch(() => {})));
    await shared.stop().catch(() => {});
    await leader?.release();
    server.close();
    process.exit(code);
  };
  process.once('SIGTERM', () => void shutdown(0));
  process.once('SIGINT', () => void shutdown(0));

  if (leader) {
    await leader.acquire(() => {
      // Another process may already act as leader: stop at once, never reconcile without the lease.
      metrics.leader.set(0);
      process.exit(1);
    });
    metrics.leader.set(1);
  }
  await Promise.all(controllers.map((c) => c.start()));
  ready = true;
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(JSON.stringify({ level: 'fatal', msg: apiError(err).message }));
    process.exit(1);
  });
}
