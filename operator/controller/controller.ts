// The ModelServing controller: informers on ModelServings and on what they own, a work queue of keys, and
// workers that run reconcile. Workers start only after every cache has synced.
import {
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesObject,
  PolicyV1Api,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, type ModelServing, PLURAL, VERSION } from '../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../config.ts';
import { TopicAdmin } from '../kafka.ts';
import { makeWriter, type Writer } from '../kube/apply.ts';
import { type ResilientInformer, startInformer } from '../kube/informer.ts';
import { WorkQueue } from '../kube/queue.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { FIELD_MANAGER, MANAGED_BY, MODEL_LABEL } from './desired/labels.ts';
import { type Caches, reconcile } from './reconcile.ts';
import type { LoggingObserved } from './status.ts';

const OWNED = `${MANAGED_BY}=${FIELD_MANAGER}`;
/** A full pass over every ModelServing now and then, as a safety net under the event-driven queue. */
const RESYNC_MS = 10 * 60 * 1000;

export class ModelServingController {
  private readonly queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 5 * 60 * 1000 });
  private readonly informers: ResilientInformer<KubernetesObject>[] = [];
  private readonly workers: Promise<void>[] = [];
  private resync: NodeJS.Timeout | undefined;
  private caches: Caches | undefined;
  private readonly writer: Writer;
  private readonly kc: KubeConfig;
  private readonly config: OperatorConfig;
  private readonly log: Logger;
  private readonly metrics: OperatorMetrics;
  private readonly topics: TopicAdmin | undefined;
  private readonly topicChecks = new Map<string, { topic: string; at: number; result: LoggingObserved }>();

  constructor(kc: KubeConfig, config: OperatorConfig, log: Logger, metrics: OperatorMetrics) {
    this.kc = kc;
    this.config = config;
    this.log = log;
    this.metrics = metrics;
    this.writer = makeWriter(kc, (verb, kind) => metrics.writes.labels(verb, kind).inc());
    metrics.queueDepth = () => this.queue.length;
    this.topics = config.kafka ? new TopicAdmin(config.kafka) : undefined;
  }

  private watched(namespace: string | undefined): boolean {
    return this.config.namespaces.length === 0 || (namespace !== undefined && this.config.namespaces.includes(namespace));
  }

  private informer<T extends KubernetesObject>(name: string, path: string, list: () => Promise<{ items: T[] }>, labelSelector?: string) {
    const inf = startInformer<T>({
      kubeConfig: this.kc,
      name,
      path,
      list: list as never,
      ...(labelSelector ? { labelSelector } : {}),
      log: this.log,
      onError: (n) => this.metrics.informerRestarts.labels(n).inc(),
    });
    this.informers.push(inf as unknown as ResilientInformer<KubernetesObject>);
    return inf;
  }

  async start(): Promise<void> {
    const custom = this.kc.makeApiClient(CustomObjectsApi);
    const apps = this.kc.makeApiClient(AppsV1Api);
    const core = this.kc.makeApiClient(CoreV1Api);
    const autoscaling = this.kc.makeApiClient(AutoscalingV2Api);
    const policy = this.kc.makeApiClient(PolicyV1Api);
    const ms = this.informer<ModelServing & KubernetesObject>(
      'modelservings',
      `/apis/${GROUP}/${VERSION}/${PLURAL}`,
      () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }) as never,
    );
    const deployments = this.informer(
      'deployments',
      '/apis/apps/v1/deployments',
      () => apps.listDeploymentForAllNamespaces({ labelSelector: OWNED }),
      OWNED,
    );
    const services = this.informer('services', '/api/v1/services', () => core.listServiceForAllNamespaces({ labelSelector: OWNED }), OWNED);
    const hpas = this.informer(
      'horizontalpodautoscalers',
      '/apis/autoscaling/v2/horizontalpodautoscalers',
      () => autoscaling.listHorizontalPodAutoscalerForAllNamespaces({ labelSelector: OWNED }),
      OWNED,
    );
    const pdbs = this.informer(
      'poddisruptionbudgets',
      '/apis/policy/v1/poddisruptionbudgets',
      () => policy.listPodDisruptionBudgetForAllNamespaces({ labelSelector: OWNED }),
      OWNED,
    );
    const pods = this.informer('pods', '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: OWNED }), OWNED);

    ms.onChange((o) => this.enqueue(o.metadata?.namespace, o.metadata?.name));
    // An owned object's change queues its owner (found by the model label).
    for (const inf of [deployments, services, hpas, pdbs, pods] as ResilientInformer<KubernetesObject>[]) {
      inf.onChange((o) => this.enqueue(o.metadata?.namespace, o.metadata?.labels?.[MODEL_LABEL]));
    }
    await Promise.all(this.informers.map((i) => i.synced));
    this.caches = {
      modelServings: ms.cache,
      deployments: deployments.cache,
      services: services.cache,
      hpas: hpas.cache,
      pdbs: pdbs.cache,
      pods: pods.cache,
    } as Caches;
    for (const o of ms.cache.list()) this.enqueue(o.metadata?.namespace, o.metadata?.name);
    this.resync = setInterval(() => {
      for (const o of ms.cache.list()) this.enqueue(o.metadata?.namespace, o.metadata?.name);
    }, RESYNC_MS);
    this.resync.unref();
    for (let i = 0; i < this.config.workers; i++) this.workers.push(this.work());
    this.log.info({ workers: this.config.workers }, 'caches synced; workers started');
  }

  private enqueue(namespace: string | undefined, name: string | undefined): void {
    if (!namespace || !name || !this.watched(namespace)) return;
    this.queue.add(`${namespace}/${name}`);
  }

  private async work(): Promise<void> {
    const core = this.kc.makeApiClient(CoreV1Api);
    const event = async (ms: ModelServing, type: 'Normal' | 'Warning', reason: string, message: string) => {
      this.metrics.writes.labels('create', 'Event').inc();
      await core
        .createNamespacedEvent({
          namespace: ms.metadata.namespace,
          body: {
            metadata: { generateName: `${ms.metadata.name}.`, namespace: ms.metadata.namespace },
            involvedObject: {
              apiVersion: `${GROUP}/${VERSION}`,
              kind: 'ModelServing',
              name: ms.metadata.name,
              namespace: ms.metadata.namespace,
              uid: ms.metadata.uid,
            },
            type,
            reason,
            message: message.slice(0, 1024),
            source: { component: FIELD_MANAGER },
            reportingComponent: FIELD_MANAGER,
            firstTimestamp: new Date(),
            lastTimestamp: new Date(),
            count: 1,
          },
        })
        .catch((err: unknown) => this.log.debug({ err: (err as Error).message }, 'event not recorded'));
    };
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const end = this.metrics.reconcileDuration.startTimer();
      try {
        const result = await reconcile(key, {
          caches: this.caches as Caches,
          writer: this.writer,
          config: this.config,
          log: this.log,
          now: () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          event,
          topics: this.topics,
          topicChecks: this.topicChecks,
        });
        this.queue.forget(key);
        if (result.requeueAfterMs) {
          this.queue.addAfter(key, result.requeueAfterMs);
          this.metrics.reconciles.labels('requeue').inc();
        } else this.metrics.reconciles.labels('ok').inc();
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        this.metrics.reconciles.labels('error').inc();
        this.log.warn({ key, err: (err as Error).message, retryInMs: delay }, 'reconcile failed');
      } finally {
        end();
        this.queue.done(key);
      }
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.resync);
    this.queue.shutdown();
    await Promise.all(this.workers);
    await Promise.all(this.informers.map((i) => i.stop()));
    await this.topics?.close();
  }
}
