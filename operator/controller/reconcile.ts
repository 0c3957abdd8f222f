// One reconcile: key → read the caches → build the desired objects → apply what differs → write the status
// if it changed. Level-based: it looks only at the current state, never at the event that queued it.
import { dependenciesCondition } from './dependencies.ts';
import { isDeepStrictEqual } from 'node:util';
import type {
  KubernetesObject,
  ObjectCache,
  V1Deployment,
  V1Pod,
  V1PodDisruptionBudget,
  V1Service,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../config.ts';
import { kafkaErrorMessage, type TopicAdmin } from '../kafka.ts';
import { type Writer, needsApply, withHash } from '../kube/apply.ts';
import { apiError, isNamespaceTerminating } from '../kube/errors.ts';
import { desiredHpa, desiredPdb } from './desired/autoscaling.ts';
import { desiredDeployment } from './desired/deployment.ts';
import { MODEL_LABEL } from './desired/labels.ts';
import { createdTopicName, inferenceTopic, TOPIC_FINALIZER, wantsTopicFinalizer } from './desired/logging.ts';
import { desiredService } from './desired/service.ts';
import { computeStatus, type LoggingObserved } from './status.ts';

export interface Caches {
  modelServings: ObjectCache<ModelServing & KubernetesObject>;
  deployments: ObjectCache<V1Deployment>;
  services: ObjectCache<V1Service>;
  hpas: ObjectCache<V2HorizontalPodAutoscaler>;
  pdbs: ObjectCache<V1PodDisruptionBudget>;
  pods: ObjectCache<V1Pod>;
}

export interface ReconcileDeps {
  caches: Caches;
  writer: Writer;
  config: OperatorConfig;
  log: Logger;
  now: () => string;
  event?: (ms: ModelServing, type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** Kafka topic management; absent when the operator has no Kafka configured. */
  topics?: TopicAdmin | undefined;
  /** Successful topic checks, so an idle resync does not ask Kafka again for every ModelServing. */
  topicChecks?: Map<string, { topic: string; at: number; result: LoggingObserved }>;
}

/** How long a successful topic check is trusted; failures are checked again on every requeue. */
const TOPIC_CHECK_TTL_MS = 10 * 60 * 1000;

export interface ReconcileResult {
  requeueAfterMs?: number;
}

function ownedBy(obj: KubernetesObject | undefined, ms: ModelServing): boolean {
  return !!obj?.metadata?.ownerReferences?.some((r) => r.uid === ms.metadata.uid && r.controller);
}

type Note = (type: 'Normal' | 'Warning', reason: string, message: string) => void;

/** Resolves and checks the inference-logging topic: the LoggingReady condition and status topic. */
async function checkLogging(ms: ModelServing, deps: ReconcileDeps, note: Note): Promise<LoggingObserved | undefined> {
  const topic = inferenceTopic(ms);
  if (topic === undefined) return undefined;
  const { config, topics } = deps;
  if (!config.kafka || !topics) {
    return {
      topic,
      status: 'False',
      reason: 'KafkaNotConfigured',
      message: 'the operator has no Kafka bootstrap servers (Helm value kafka.bootstrapServers); no records are written',
    };
  }
  const key = `${ms.metadata.namespace}/${ms.metadata.name}`;
  const cached = deps.topicChecks?.get(key);
  if (cached && cached.topic === topic && Date.now() - cached.at < TOPIC_CHECK_TTL_MS) return cached.result;
  let result: LoggingObserved;
  try {
    if (ms.spec.inferenceLogging?.topic === 'CREATE') {
      const made = await topics.ensure(topic, config.topicPartitions, config.topicReplicationFactor);
      if (made === 'created') {
        note(
          'Normal',
          'TopicCreated',
          `created Kafka topic ${topic} (${config.topicPartitions} partitions, replication ${config.topicReplicationFactor})`,
        );
      }
      result = { topic, status: 'True', reason: 'TopicReady', message: `inference records go to topic ${topic}` };
    } else if (await topics.describe(topic)) {
      result = { topic, status: 'True', reason: 'TopicReady', message: `inference records go to topic ${topic}` };
    } else {
      result = {
        topic,
        status: 'False',
        reason: 'TopicNotFound',
        message: `Kafka topic ${topic} does not exist; the model serves, but its records are dropped until the topic is created`,
      };
    }
  } catch (err) {
    result = { topic, status: 'False', reason: 'KafkaUnavailable', message: `cannot check topic ${topic}: ${kafkaErrorMessage(err)}` };
  }
  if (result.status === 'True') deps.topicChecks?.set(key, { topic, at: Date.now(), result });
  else deps.topicChecks?.delete(key);
  return result;
}

/** A ModelServing being deleted: delete its created topic if asked (bounded), then release the finalizer. */
async function finalize(ms: ModelServing, deps: ReconcileDeps, note: Note): Promise<ReconcileResult> {
  if (!ms.metadata.finalizers?.includes(TOPIC_FINALIZER)) return {};
  const { namespace, name } = ms.metadata;
  const topic = createdTopicName(namespace, name);
  const deadline = Date.parse(ms.metadata.deletionTimestamp ?? '') + deps.config.topicDeleteTimeoutSeconds * 1000;
  let failure: string;
  if (!deps.topics) {
    failure = 'the operator has no Kafka configured';
  } else {
    try {
      const r = await deps.topics.delete(topic);
      note('Normal', 'TopicDeleted', r === 'deleted' ? `deleted Kafka topic ${topic}` : `Kafka topic ${topic} was already gone`);
      await deps.writer.applyFinalizers(namespace, name, []);
      deps.topicChecks?.delete(`${namespace}/${name}`);
      return {};
    } catch (err) {
      failure = kafkaErrorMessage(err);
    }
  }
  const left = deadline - Date.now();
  if (left > 0 && deps.topics) {
    deps.log.info({ topic, err: failure, giveUpInMs: left }, 'deleting the inference topic failed; retrying');
    return { requeueAfterMs: Math.min(5000, left) };
  }
  // Never hold a deletion forever: say so, and let go.
  note(
    'Warning',
    'TopicNotDeleted',
    `gave up deleting Kafka topic ${topic} after ${deps.config.topicDeleteTimeoutSeconds} s (${failure}); delete it by hand`,
  );
  await deps.writer.applyFinalizers(namespace, name, []);
  deps.topicChecks?.delete(`${namespace}/${name}`);
  return {};
}

export async function reconcile(key: string, deps: ReconcileDeps): Promise<ReconcileResult> {
  const [namespace = '', name = ''] = key.split('/');
  const { caches, writer, config } = deps;
  const found = caches.modelServings.get(name, namespace) as ModelServing | undefined;
  if (!found) return {};
  const ms = found;
  const note: Note = (type, reason, message) => {
    // Events are best effort and never hold up a reconcile (the recorder queues them).
    deps.event?.(ms, type, reason, message);
  };
  // Being deleted: the garbage collector removes what it owned (owner references); the topic is ours to do.
  if (ms.metadata.deletionTimestamp) return finalize(ms, deps, note);

  const hasFinalizer = ms.metadata.finalizers?.includes(TOPIC_FINALIZER) ?? false;
  if (wantsTopicFinalizer(ms) !== hasFinalizer) {
    // Before the topic exists, so a ModelServing deleted right after it was made still cleans up.
    await writer.applyFinalizers(namespace, name, hasFinalizer ? [] : [TOPIC_FINALIZER]);
  }
  const logging = await checkLogging(ms, deps, note);

  const plan: { desired: KubernetesObject; observed: KubernetesObject | undefined }[] = [
    { desired: withHash(desiredDeployment(ms, config)), observed: caches.deployments.get(name, namespace) },
    { desired: withHash(desiredService(ms)), observed: caches.services.get(name, namespace) },
  ];
  const hpa = desiredHpa(ms);
  const observedHpa = caches.hpas.get(name, namespace);
  if (hpa) plan.push({ desired: withHash(hpa), observed: observedHpa });
  const pdb = desiredPdb(ms);
  const observedPdb = caches.pdbs.get(name, namespace);
  if (pdb) plan.push({ desired: withHash(pdb), observed: observedPdb });

  let applyError: { reason: string; message: string } | undefined;
  let failure: unknown;
  const changed: string[] = [];
  try {
    // The objects are independent: apply them concurrently.
    await Promise.all(
      plan.map(async (item) => {
        const { desired } = item;
        const stranger = () =>
          Object.assign(new Error(`${desired.kind} ${namespace}/${name} exists and is not owned by this ModelServing`), { terminal: true });
        if (item.observed) {
          if (!ownedBy(item.observed, ms)) throw stranger();
          if (needsApply(desired, item.observed)) {
            await writer.apply(desired);
            changed.push(`updated ${desired.kind} ${name}`);
          }
          return;
        }
        // Not in the cache, which sees only objects labelled as ours. Apply without force: on a new name that
        // creates the object (no read first); on a stranger's object the API server refuses (409) because
        // its manager holds the fields we set, and only then do we read it to tell a stranger from one of
        // ours the cache has not seen yet (a hand edit took our label off, or the informer lags).
        try {
          await writer.apply(desired, { force: false });
          changed.push(`created ${desired.kind} ${name}`);
        } catch (err) {
          if ((err as { code?: number }).code !== 409) throw err;
          const observed = await writer.read(desired);
          if (observed && !ownedBy(observed, ms)) throw stranger();
          await writer.apply(desired);
          changed.push(`updated ${desired.kind} ${name}`);
        }
      }),
    );
    if (changed.length) note('Normal', changed.every((c) => c.startsWith('created')) ? 'Created' : 'Updated', changed.join(', '));
    if (!hpa && observedHpa && ownedBy(observedHpa, ms)) {
      await writer.remove(observedHpa);
      note('Normal', 'Deleted', `deleted HorizontalPodAutoscaler ${name}: autoscaling is off`);
    }
    if (!pdb && observedPdb && ownedBy(observedPdb, ms)) await writer.remove(observedPdb);
  } catch (err) {
    // The namespace is being deleted, this ModelServing with it: recreating what the namespace controller
    // removed first is refused, and neither a retry, a status nor an event would tell anyone anything.
    if (isNamespaceTerminating(err)) {
      deps.log.debug({ key }, 'namespace is being deleted; not recreating its objects');
      return {};
    }
    failure = err;
    const { message } = apiError(err);
    applyError = { reason: (err as { terminal?: boolean }).terminal ? 'Conflict' : 'ApplyFailed', message };
    note('Warning', applyError.reason, message);
  }

  // Objects just created are not in the caches yet; their informer events queue this key again, and that
  // pass writes a status from what the API server actually holds: one status write instead of two.
  // (Only creations: an update that changes nothing on the server raises no event.)
  if (changed.some((c) => c.startsWith('created')) && !applyError) return { requeueAfterMs: 5000 };

  const pods = caches.pods.list(namespace).filter((p) => p.metadata?.labels?.[MODEL_LABEL] === name);
  const dependencies = dependenciesCondition(ms, (n) => caches.modelServings.get(n, namespace) as ModelServing | undefined);
  const status = computeStatus({
    ms,
    deployment: caches.deployments.get(name, namespace),
    pods,
    now: deps.now(),
    applyError,
    logging,
    dependencies,
  });
  if (!isDeepStrictEqual(JSON.parse(JSON.stringify(status)), JSON.parse(JSON.stringify(ms.status ?? {})))) {
    await writer.applyStatus(namespace, name, status);
  }
  if (failure && !(failure as { terminal?: boolean }).terminal) throw failure;
  return logging && logging.status !== 'True' && logging.reason !== 'KafkaNotConfigured'
    ? { requeueAfterMs: config.loggingRecheckSeconds * 1000 }
    : {};
}
