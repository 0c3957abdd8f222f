// What the operator's controllers share: the watches (one informer per resource and selector), one event recorder
// (one sender, one bound for the whole process) and, watching every namespace, the namespace claims: a namespace
// labelled modelship.dev/operator=<another release> belongs to that operator, and every controller leaves it alone.
import { CoreV1Api, type CoreV1Event, type KubeConfig, type V1Namespace } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OperatorConfig } from '../config.ts';
import { apiError } from '../kube/errors.ts';
import { EventRecorder, type InvolvedObject, objectEvent } from '../kube/events.ts';
import { RESOURCES, type Watched, Watches } from '../kube/watch.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { claimedByAnother, FIELD_MANAGER, OPERATOR_LABEL } from './desired/labels.ts';

export class Shared {
  readonly watches: Watches;
  private readonly events: EventRecorder<CoreV1Event>;
  private readonly config: OperatorConfig;
  /** Only when watching every namespace (with watchNamespaces the operator takes those whatever their label). */
  private claims: Watched<V1Namespace> | undefined;

  constructor(kc: KubeConfig, config: OperatorConfig, log: Logger, metrics: OperatorMetrics) {
    this.config = config;
    this.watches = new Watches(kc, {
      namespaces: config.namespaces,
      log,
      onError: (informer) => metrics.informerRestarts.labels(informer).inc(),
    });
    const core = kc.makeApiClient(CoreV1Api);
    this.events = new EventRecorder(
      async (body) => {
        metrics.writes.labels('create', 'Event').inc();
        await core
          .createNamespacedEvent({ namespace: body.metadata?.namespace ?? '', body })
          .catch((err: unknown) => log.debug({ err: apiError(err).message }, 'event not recorded'));
      },
      { onDrop: () => metrics.eventsDropped.inc() },
    );
  }

  /**
   * Watching every namespace: the claimed ones (only those are cached), else undefined. A controller re-queues a
   * namespace's keys when its claim is made, changed or dropped: the new owner takes them, the old one stops.
   */
  watchClaims(): Watched<V1Namespace> | undefined {
    if (this.config.namespaces.length > 0) return undefined;
    this.claims ??= this.watches.watch<V1Namespace>(RESOURCES.namespaces, OPERATOR_LABEL, true);
    return this.claims;
  }

  /** The operator that claims `namespace`, when it is another one (its keys are left alone), else undefined. */
  claimedBy(namespace: string): string | undefined {
    const labels = this.claims?.cache.get(namespace)?.metadata?.labels;
    return claimedByAnother(labels, this.config.name) ? labels?.[OPERATOR_LABEL] : undefined;
  }

  /** Records an Event about `involved` (queued: never awaited, dropped and counted when the queue is full). */
  note(involved: InvolvedObject, type: 'Normal' | 'Warning', reason: string, message: string): void {
    this.events.record(objectEvent(involved, type, reason, message, FIELD_MANAGER, new Date()));
  }

  async stop(): Promise<void> {
    await this.watches.stop();
    await this.events.flush(2000);
  }
}
