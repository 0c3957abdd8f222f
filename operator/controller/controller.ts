// The ModelServing controller: informers on ModelServings and on what they own, a work queue of keys, and
// workers that run reconcile. Workers start only after every cache has synced.
import { dependents } from './dependencies.ts';
import type { TopicChecks } from './topics.ts';
import {
  CoreV1Api,
  type CoreV1Event,
  type KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  type V1Deployment,
  type V1Namespace,
  type V1PodDisruptionBudget,
  type V1Pod,
  type V1Service,
  type V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, type ModelServing, PLURAL, VERSION } from '../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../config.ts';
import { TopicAdmin } from '../kafka.ts';
import { makeWriter, type Writer } from '../kube/apply.ts';
import { EventRecorder } from '../kube/events.ts';
import { apiError } from '../kube/errors.ts';
import { combinedCache, type ResilientInformer, startInformer } from '../kube/informer.ts';
import { WorkQueue } from '../kube/queue.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { claimedByAnother, FIELD_MANAGER, MANAGED_BY, MODEL_LABEL, OPERATOR_LABEL } from './desired/labels.ts';
import { type Caches, reconcile } from './reconcile.ts';

const OWNED = `${MANAGED_BY}=${FIELD_MANAGER}`;

interface Resource {
  apiVersion: string;
  kind: string;
  /** API path prefix: /api/v1 or /apis/<group>/<version>. */
  base: string;
  plural: string;
}
const RESOURCES = {
  modelServings: { apiVersion: `${GROUP}/${VERSION}`, kind: 'ModelServing', base: `/apis/${GROUP}/${VERSION}`, plural: PLURAL },
  deployments: { apiVersion: 'apps/v1', kind: 'Deployment', base: '/apis/apps/v1', plural: 'deployments' },
  services: { apiVersion: 'v1', kind: 'Service', base: '/api/v1', plural: 'services' },
  hpas: { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', base: '/apis/autoscaling/v2', plural: 'horizontalpodautoscalers' },
  pdbs: { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', base: '/apis/policy/v1', plural: 'poddisruptionbudgets' },
  pods: { apiVersion: 'v1', kind: 'Pod', base: '/api/v1', plural: 'pods' },
  namespaces: { apiVersion: 'v1', kind: 'Namespace', base: '/api/v1', plural: 'namespaces' },
} satisfies Record<string, Resource>;
/** A full pass over every ModelServing now and then, as a safety net under the event-driven queue. */
const RESYNC_MS = 10 * 60 * 1000;

export class ModelServingController {
  private readonly queue = new WorkQueue({ baseDelayMs: 100, maxDelayMs: 5 * 60 * 1000 });
  private readonly informers: ResilientInformer<KubernetesObject>[] = [];
  private readonly workers: Promise<void>[] = [];
  private resync: NodeJS.Timeout | undefined;
  private caches: Caches | undefined;
  /** Watching all namespaces: the claimed ones (label modelship.dev/operator), to leave those of another operator alone. */
  private claims: { get(name: string): V1Namespace | undefined } | undefined;
  private readonly writer: Writer;
  private readonly kc: KubeConfig;
  private readonly config: OperatorConfig;
  private readonly log: Logger;
  private readonly metrics: OperatorMetrics;
  private readonly topics: TopicAdmin | undefined;
  private readonly topicChecks: TopicChecks = new Map();
  private readonly envClaims = new Set<string>();
  private readonly authAccounts = new Map<string, number>();

  private readonly events: EventRecorder<CoreV1Event>;

  private readonly event = (ms: ModelServing, type: 'Normal' | 'Warning', reason: string, message: string) => {
    const now = new Date();
    this.events.record({
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
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    });
  };

  constructor(kc: KubeConfig, config: OperatorConfig, log: Logger, metrics: OperatorMetrics) {
    this.kc = kc;
    this.config = config;
    this.log = log;
    this.metrics = metrics;
    this.writer = makeWriter(kc, (verb, kind) => metrics.writes.labels(verb, kind).inc());
    metrics.queueDepth = () => this.queue.length;
    this.topics = config.kafka ? new TopicAdmin(config.kafka) : undefined;
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
   * Informers on one resource: one cluster-wide watch, or one watch per configured namespace (so the
   * operator can run with Roles in those namespaces only), behind a single cache.
   */
  private watch<T extends KubernetesObject>(resource: Resource, labelSelector: string | undefined, clusterWide = false) {
    const objects = KubernetesObjectApi.makeApiClient(this.kc);
    const scopes: (string | undefined)[] = this.config.namespaces.length > 0 && !clusterWide ? this.config.namespaces : [undefined];
    const parts = scopes.map((namespace) => {
      const inf = startInformer<T>({
        kubeConfig: this.kc,
        name: namespace ? `${resource.plural}/${namespace}` : resource.plural,
        path: `${resource.base}${namespace ? `/namespaces/${namespace}` : ''}/${resource.plural}`,
        list: (() =>
          objects.list<T>(
            resource.apiVersion,
            resource.kind,
            namespace,
            undefined,
            undefined,
            undefined,
            undefined,
            labelSelector,
          )) as never,
        ...(labelSelector ? { labelSelector } : {}),
        log: this.log,
        onError: (n) => this.metrics.informerRestarts.labels(n).inc(),
      });
      this.informers.push(inf as unknown as ResilientInformer<KubernetesObject>);
      return [namespace ?? '', inf] as const;
    });
    const cache =
      parts.length === 1 && parts[0]?.[0] === '' ? parts[0][1].cache : combinedCache(new Map(parts.map(([ns, i]) => [ns, i.cache])));
    return {
      cache,
      onChange: (h: (o: T) => void) => {
        for (const [, i] of parts) i.onChange(h);
      },
    };
  }

  async start(): Promise<void> {
    const ms = this.watch<ModelServing & KubernetesObject>(RESOURCES.modelServings, undefined);
    const deployments = this.watch<V1Deployment>(RESOURCES.deployments, OWNED);
    const services = this.watch<V1Service>(RESOURCES.services, OWNED);
    const hpas = this.watch<V2HorizontalPodAutoscaler>(RESOURCES.hpas, OWNED);
    const pdbs = this.watch<V1PodDisruptionBudget>(RESOURCES.pdbs, OWNED);
    const pods = this.watch<V1Pod>(RESOURCES.pods, OWNED);
    if (this.config.namespaces.length === 0) {
      // Only claimed namespaces are cached. A claim made, changed or dropped re-queues the namespace's
      // ModelServings: the new owner takes them, the old one stops.
      const claimed = this.watch<V1Namespace>(RESOURCES.namespaces, OPERATOR_LABEL, true);
      claimed.onChange((n) => {
        for (const o of ms.cache.list(n.metadata?.name)) this.enqueue(o.metadata?.namespace, o.metadata?.name);
      });
      this.claims = { get: (name) => claimed.cache.get(name) };
    }

    ms.onChange((o) => {
      this.enqueue(o.metadata?.namespace, o.metadata?.name);
      // The ModelServings that depend on it: their DependenciesReady follows its Ready.
      const ns = o.metadata?.namespace;
      for (const d of dependents(ms.cache.list(ns) as ModelServing[], o.metadata?.name ?? '')) this.enqueue(ns, d.metadata.name);
    });
    // An owned object's change queues its owner (found by the model label).
    for (const inf of [deployments, services, hpas, pdbs, pods] as { onChange(h: (o: KubernetesObject) => void): void }[]) {
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
    };
    for (const o of ms.cache.list()) this.enqueue(o.metadata?.namespace, o.metadata?.name);
    this.resync = setInterval(() => {
      for (const o of ms.cache.list()) this.enqueue(o.metadata?.namespace, o.metadata?.name);
    }, RESYNC_MS);
    this.resync.unref();
    for (let i = 0; i < this.config.workers; i++) this.workers.push(this.work());
    this.log.info({ workers: this.config.workers }, 'caches synced; workers started');
  }

  private enqueue(namespace: string | undefined, name: string | undefined): void {
    // Informers see only the watched namespaces; of those, a namespace claimed by another operator is skipped
    // when its key comes up (work), so that a claim's change is seen at once.
    if (!namespace || !name) return;
    this.queue.add(`${namespace}/${name}`);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const namespace = key.slice(0, key.indexOf('/'));
      if (this.claims && claimedByAnother(this.claims.get(namespace)?.metadata?.labels, this.config.name)) {
        this.log.debug(
          { key, operator: this.claims.get(namespace)?.metadata?.labels?.[OPERATOR_LABEL] },
          'namespace claimed by another operator',
        );
        this.queue.forget(key);
        this.queue.done(key);
        continue;
      }
      const end = this.metrics.reconcileDuration.startTimer();
      try {
        const result = await reconcile(key, {
          caches: this.caches as Caches,
          writer: this.writer,
          config: this.config,
          log: this.log,
          now: () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
          event: this.event,
          topics: this.topics,
          topicChecks: this.topicChecks,
          envClaims: this.envClaims,
          authAccounts: this.authAccounts,
        });
        this.queue.forget(key);
        if (result.requeueAfterMs) {
          this.queue.addAfter(key, result.requeueAfterMs);
          this.metrics.reconciles.labels('requeue').inc();
        } else this.metrics.reconciles.labels('ok').inc();
      } catch (err) {
        const delay = this.queue.addRateLimited(key);
        this.metrics.reconciles.labels('error').inc();
        this.log.warn({ key, err: apiError(err).message, retryInMs: delay }, 'reconcile failed');
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
    await this.events.flush(2000);
    await this.topics?.close();
  }
}
