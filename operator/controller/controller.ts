// The ModelServing controller: watches on ModelServings and on what they own (shared with the other controllers),
// a work queue of keys, and workers that run reconcile. Workers start only after every cache has synced.
import type {
  KubeConfig,
  KubernetesObject,
  V1Deployment,
  V1PodDisruptionBudget,
  V1Pod,
  V1Service,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, KIND, type ModelServing, type ModelServingStatus, PLURAL, VERSION } from '../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../config.ts';
import { TopicAdmin } from '../kafka.ts';
import { makeWriter, type Writer } from '../kube/apply.ts';
import { customResource, RESOURCES } from '../kube/watch.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { dependents } from './dependencies.ts';
import { FIELD_MANAGER, MANAGED_BY, MODEL_LABEL } from './desired/labels.ts';
import { type Caches, reconcile } from './reconcile.ts';
import { ControllerLoop } from './loop.ts';
import { Shared } from './shared.ts';
import type { TopicChecks } from './topics.ts';

/** What the operator made (labelled as managed by it): its informers see nothing else. */
export const OWNED = `${MANAGED_BY}=${FIELD_MANAGER}`;
export const MODEL_SERVINGS = customResource(GROUP, VERSION, KIND, PLURAL);
const NAME = 'modelserving';

/** The time as conditions carry it: whole seconds (RFC 3339). */
export const conditionTime = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

export class ModelServingController {
  private readonly loop: ControllerLoop;
  private readonly writer: Writer<ModelServingStatus>;
  private readonly config: OperatorConfig;
  private readonly log: Logger;
  private readonly shared: Shared;
  /** Made here when not given: then stopped here too. */
  private readonly ownsShared: boolean;
  private readonly topics: TopicAdmin | undefined;
  private readonly topicChecks: TopicChecks = new Map();
  private readonly envClaims = new Set<string>();
  private readonly authAccounts = new Map<string, number>();

  constructor(kc: KubeConfig, config: OperatorConfig, log: Logger, metrics: OperatorMetrics, shared?: Shared) {
    this.config = config;
    this.log = log;
    this.shared = shared ?? new Shared(kc, config, log, metrics);
    this.ownsShared = !shared;
    this.loop = new ControllerLoop(NAME, this.shared, metrics, log);
    this.writer = makeWriter(kc, {
      fieldManager: FIELD_MANAGER,
      resource: MODEL_SERVINGS,
      onWrite: (verb, kind) => metrics.writes.labels(verb, kind).inc(),
    });
    this.topics = config.kafka ? new TopicAdmin(config.kafka) : undefined;
  }

  async start(): Promise<void> {
    const { watches } = this.shared;
    const enqueue = (namespace: string | undefined, name: string | undefined) => this.loop.enqueue(namespace, name);
    const ms = watches.watch<ModelServing & KubernetesObject>(MODEL_SERVINGS);
    const deployments = watches.watch<V1Deployment>(RESOURCES.deployments, OWNED);
    const services = watches.watch<V1Service>(RESOURCES.services, OWNED);
    const hpas = watches.watch<V2HorizontalPodAutoscaler>(RESOURCES.hpas, OWNED);
    const pdbs = watches.watch<V1PodDisruptionBudget>(RESOURCES.pdbs, OWNED);
    const pods = watches.watch<V1Pod>(RESOURCES.pods, OWNED);
    const claims = this.shared.watchClaims();
    // A claim made, changed or dropped re-queues the namespace's ModelServings: the new owner takes them.
    claims?.onChange((namespace) => {
      for (const obj of ms.cache.list(namespace.metadata?.name)) enqueue(obj.metadata?.namespace, obj.metadata?.name);
    });
    ms.onChange((obj) => {
      enqueue(obj.metadata?.namespace, obj.metadata?.name);
      // The ModelServings that depend on it: their DependenciesReady follows its Ready.
      const namespace = obj.metadata?.namespace;
      for (const d of dependents(ms.cache.list(namespace) as ModelServing[], obj.metadata?.name ?? '')) enqueue(namespace, d.metadata.name);
    });
    // An owned object's change queues its owner (found by the model label; other controllers' objects have none).
    for (const watched of [deployments, services, hpas, pdbs, pods] as { onChange(h: (obj: KubernetesObject) => void): void }[]) {
      watched.onChange((obj) => enqueue(obj.metadata?.namespace, obj.metadata?.labels?.[MODEL_LABEL]));
    }
    await Promise.all([ms, deployments, services, hpas, pdbs, pods, ...(claims ? [claims] : [])].map((w) => w.synced));
    const caches: Caches = {
      modelServings: ms.cache,
      deployments: deployments.cache,
      services: services.cache,
      hpas: hpas.cache,
      pdbs: pdbs.cache,
      pods: pods.cache,
    };
    this.loop.start(
      this.config.workers,
      () => ms.cache.list(),
      (key) =>
        reconcile(key, {
          caches,
          writer: this.writer,
          config: this.config,
          log: this.log,
          now: conditionTime,
          note: (obj, type, reason, message) =>
            this.shared.note({ ...obj.metadata, apiVersion: obj.apiVersion, kind: KIND }, type, reason, message),
          topics: this.topics,
          topicChecks: this.topicChecks,
          envClaims: this.envClaims,
          authAccounts: this.authAccounts,
        }),
    );
  }

  async stop(): Promise<void> {
    await this.loop.stop();
    if (this.ownsShared) await this.shared.stop();
    await this.topics?.close();
  }
}
