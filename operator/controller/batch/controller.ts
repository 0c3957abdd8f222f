// The BatchPrediction controller, beside the ModelServing one and in its manner: watches (shared) on
// BatchPredictions, their Jobs and pods, and the ModelServings they name; a work queue of keys; workers that run
// reconcileBatch once every cache has synced.
import type { KubeConfig, KubernetesObject, V1Job, V1Pod } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import {
  API_VERSION,
  type BatchPrediction,
  type BatchPredictionStatus,
  GROUP,
  KIND,
  PLURAL,
  VERSION,
} from '../../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../../config.ts';
import { makeWriter, type Writer } from '../../kube/apply.ts';
import { customResource, RESOURCES } from '../../kube/watch.ts';
import type { OperatorMetrics } from '../../metrics.ts';
import { conditionTime, MODEL_SERVINGS, OWNED } from '../controller.ts';
import { FIELD_MANAGER } from '../desired/labels.ts';
import { ControllerLoop } from '../loop.ts';
import { Shared } from '../shared.ts';
import { BATCH_LABEL } from './labels.ts';
import { type BatchCaches, reconcileBatch } from './reconcile.ts';

export const BATCH_PREDICTIONS = customResource(GROUP, VERSION, KIND, PLURAL);
const NAME = 'batchprediction';

export class BatchPredictionController {
  private readonly loop: ControllerLoop;
  private readonly writer: Writer<BatchPredictionStatus>;
  private readonly config: OperatorConfig;
  private readonly log: Logger;
  private readonly shared: Shared;
  private readonly ownsShared: boolean;

  constructor(kc: KubeConfig, config: OperatorConfig, log: Logger, metrics: OperatorMetrics, shared?: Shared) {
    this.config = config;
    this.log = log;
    this.shared = shared ?? new Shared(kc, config, log, metrics);
    this.ownsShared = !shared;
    this.loop = new ControllerLoop(NAME, this.shared, metrics, log);
    this.writer = makeWriter(kc, {
      fieldManager: FIELD_MANAGER,
      resource: BATCH_PREDICTIONS,
      onWrite: (verb, kind) => metrics.writes.labels(verb, kind).inc(),
    });
  }

  async start(): Promise<void> {
    const { watches } = this.shared;
    const enqueue = (namespace: string | undefined, name: string | undefined) => this.loop.enqueue(namespace, name);
    const batches = watches.watch<BatchPrediction & KubernetesObject>(BATCH_PREDICTIONS);
    const modelServings = watches.watch<ModelServing & KubernetesObject>(MODEL_SERVINGS);
    const jobs = watches.watch<V1Job>(RESOURCES.jobs, `${OWNED},${BATCH_LABEL}`);
    // The ModelServing controller's pod watch: every pod the operator's objects make (batch pods among them).
    const pods = watches.watch<V1Pod>(RESOURCES.pods, OWNED);
    const claims = this.shared.watchClaims();
    claims?.onChange((namespace) => {
      for (const obj of batches.cache.list(namespace.metadata?.name)) enqueue(obj.metadata?.namespace, obj.metadata?.name);
    });
    batches.onChange((obj) => enqueue(obj.metadata?.namespace, obj.metadata?.name));
    for (const watched of [jobs, pods] as { onChange(h: (obj: KubernetesObject) => void): void }[]) {
      watched.onChange((obj) => enqueue(obj.metadata?.namespace, obj.metadata?.labels?.[BATCH_LABEL]));
    }
    // A ModelServing made (or gone) is news to the runs that name it and have not finished.
    modelServings.onChange((obj) => {
      const namespace = obj.metadata?.namespace;
      for (const bp of batches.cache.list(namespace) as BatchPrediction[]) {
        if (bp.spec?.model?.modelServing === obj.metadata?.name && !bp.status?.completionTime) enqueue(namespace, bp.metadata.name);
      }
    });
    await Promise.all([batches, modelServings, jobs, pods, ...(claims ? [claims] : [])].map((w) => w.synced));
    const caches: BatchCaches = { batchPredictions: batches.cache, modelServings: modelServings.cache, jobs: jobs.cache, pods: pods.cache };
    this.loop.start(
      this.config.workers,
      // A finished run has nothing left to do: the resync passes it by.
      () => batches.cache.list().filter((obj) => !(obj as BatchPrediction).status?.completionTime),
      (key) =>
        reconcileBatch(key, {
          caches,
          writer: this.writer,
          config: this.config,
          log: this.log,
          now: conditionTime,
          note: (bp, type, reason, message) =>
            this.shared.note({ ...bp.metadata, apiVersion: API_VERSION, kind: KIND }, type, reason, message),
        }),
    );
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    if (this.ownsShared) await this.shared.stop();
  }
}
