// A controller's loop: a work queue of namespace/name keys (deduplicated), its workers (started once the caches
// have synced; a key whose namespace another operator claims is left alone), and a full pass now and then as a
// safety net under the event-driven queue.
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { WorkQueue } from '../kube/queue.ts';
import { type ReconcileResult, work } from '../kube/worker.ts';
import type { OperatorMetrics } from '../metrics.ts';
import type { Shared } from './shared.ts';

/** How often every object is queued again, whatever changed. */
export const RESYNC_MS = 10 * 60 * 1000;

export class ControllerLoop {
  private readonly queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 5 * 60 * 1000 });
  private readonly workers: Promise<void>[] = [];
  private resync: NodeJS.Timeout | undefined;
  private readonly name: string;
  private readonly shared: Shared;
  private readonly metrics: OperatorMetrics;
  private readonly log: Logger;

  constructor(name: string, shared: Shared, metrics: OperatorMetrics, log: Logger) {
    this.name = name;
    this.shared = shared;
    this.metrics = metrics;
    this.log = log;
    metrics.watchQueue(name, () => this.queue.length);
  }

  enqueue(namespace: string | undefined, name: string | undefined): void {
    // Informers see only the watched namespaces; of those, a namespace claimed by another operator is skipped
    // when its key comes up, so that a claim's change is seen at once.
    if (!namespace || !name) return;
    this.queue.add(`${namespace}/${name}`);
  }

  /** Queues every object `all()` lists, now and every RESYNC_MS, and starts `count` workers. */
  start(count: number, all: () => readonly KubernetesObject[], reconcile: (key: string) => Promise<ReconcileResult>): void {
    const enqueueAll = () => {
      for (const obj of all()) this.enqueue(obj.metadata?.namespace, obj.metadata?.name);
    };
    enqueueAll();
    this.resync = setInterval(enqueueAll, RESYNC_MS);
    this.resync.unref();
    for (let i = 0; i < count; i++) {
      this.workers.push(
        work({
          controller: this.name,
          queue: this.queue,
          metrics: this.metrics,
          log: this.log,
          skip: (key) => {
            const other = this.shared.claimedBy(key.slice(0, key.indexOf('/')));
            return other ? `namespace claimed by operator ${other}` : undefined;
          },
          reconcile,
        }),
      );
    }
    this.log.info({ controller: this.name, workers: count }, 'caches synced; workers started');
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    this.queue.shutdown();
    await Promise.all(this.workers);
  }
}
