// The operator's Prometheus metrics, in a registry of its own.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles: Counter<'controller' | 'result'>;
  readonly reconcileDuration: Histogram<'controller'>;
  readonly writes: Counter<'verb' | 'kind'>;
  readonly informerRestarts: Counter<'informer'>;
  readonly eventsDropped: Counter;
  readonly leader: Gauge;
  /** Each controller's work queue length, by controller. */
  private readonly queues = new Map<string, () => number>();

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.reconciles = new Counter({
      name: 'modelship_operator_reconciles_total',
      help: 'Reconciles by controller and result (ok, requeue, error, terminal)',
      labelNames: ['controller', 'result'],
      registers,
    });
    this.reconcileDuration = new Histogram({
      name: 'modelship_operator_reconcile_duration_seconds',
      help: 'Time one reconcile took',
      labelNames: ['controller'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.writes = new Counter({
      name: 'modelship_operator_writes_total',
      help: 'Writes to the API server by verb and kind',
      labelNames: ['verb', 'kind'],
      registers,
    });
    this.informerRestarts = new Counter({
      name: 'modelship_operator_informer_restarts_total',
      help: 'Informer restarts after errors',
      labelNames: ['informer'],
      registers,
    });
    this.eventsDropped = new Counter({
      name: 'modelship_operator_events_dropped_total',
      help: 'Kubernetes events not recorded because the event queue was full',
      registers,
    });
    this.leader = new Gauge({ name: 'modelship_operator_leader', help: '1 while this process holds the leader lease', registers });
    const self = this;
    new Gauge({
      name: 'modelship_operator_queue_depth',
      help: 'Keys waiting in the work queue, by controller',
      labelNames: ['controller'],
      registers,
      collect() {
        for (const [controller, length] of self.queues) this.labels(controller).set(length());
      },
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Reports a controller's queue length in modelship_operator_queue_depth. */
  watchQueue(controller: string, length: () => number): void {
    this.queues.set(controller, length);
  }
}
