// One reconcile: key → read the caches → build the desired objects → apply what differs → write the status
// if it changed. Level-based: it looks only at the current state, never at the event that queued it.
import { isDeepStrictEqual } from 'node:util';
import type {
  KubernetesObject,
  ObjectCache,
  V1Deployment,
  V1Pod,
  V1PodDisruptionBudget,
  V1Service,
  V1ClusterRoleBinding,
  V2HorizontalPodAutoscaler,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { ModelServing, ModelServingStatus } from '../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../config.ts';
import type { TopicAdmin } from '../kafka.ts';
import { type Writer, needsApply, withHash } from '../kube/apply.ts';
import { apiError, isNamespaceTerminating, TerminalError } from '../kube/errors.ts';
import type { ReconcileResult } from '../kube/worker.ts';
import { desiredHpa, desiredPdb } from './desired/autoscaling.ts';
import { authServiceAccount, bindingWithSubject, wantsAuthAccount } from './desired/auth.ts';
import { desiredDeployment, desiredEnvClaim } from './desired/deployment.ts';
import { MODEL_LABEL } from './desired/labels.ts';
import { TOPIC_FINALIZER, wantsTopicFinalizer } from './desired/logging.ts';
import { desiredService } from './desired/service.ts';
import { dependenciesCondition } from './dependencies.ts';
import { computeStatus } from './status.ts';
import { checkLogging, finalizeTopic, type Note, type TopicChecks } from './topics.ts';

export interface Caches {
  modelServings: ObjectCache<ModelServing & KubernetesObject>;
  deployments: ObjectCache<V1Deployment>;
  services: ObjectCache<V1Service>;
  hpas: ObjectCache<V2HorizontalPodAutoscaler>;
  pdbs: ObjectCache<V1PodDisruptionBudget>;
  pods: ObjectCache<V1Pod>;
}

export { TerminalError } from '../kube/errors.ts';
export type { ReconcileResult } from '../kube/worker.ts';

export interface ReconcileDeps {
  caches: Caches;
  writer: Writer<ModelServingStatus>;
  config: OperatorConfig;
  log: Logger;
  now: () => string;
  /** Records an Event about the ModelServing (best effort: queued, never awaited). */
  note?: (ms: ModelServing, type: 'Normal' | 'Warning', reason: string, message: string) => void;
  /** Kafka topic management; absent when the operator has no Kafka configured. */
  topics?: TopicAdmin | undefined;
  /** Successful topic checks, so an idle resync does not ask Kafka again for every ModelServing. */
  topicChecks?: TopicChecks;
  /**
   * ModelServings (by uid) whose namespace's environment cache claim this process has made sure of: a namespace
   * deleted and made again under its name holds new ModelServings, so its claim is made again.
   */
  envClaims?: Set<string>;
  /**
   * ModelServings (by uid) whose namespace's auth ServiceAccount and binding subject were made sure of, and when:
   * checked again after AUTH_RECHECK_MS, so a subject someone removed from the binding comes back.
   */
  authAccounts?: Map<string, number>;
}

function ownedBy(obj: KubernetesObject | undefined, ms: ModelServing): boolean {
  return !!obj?.metadata?.ownerReferences?.some((r) => r.uid === ms.metadata.uid && r.controller);
}

/**
 * Creates the namespace's environment cache claim if the operator is to and it is missing. Without force: a claim
 * someone else made under that name is theirs and is used as it is (409 only says so).
 */
async function ensureEnvClaim(ms: ModelServing, deps: ReconcileDeps, changed: string[]): Promise<void> {
  const claim = desiredEnvClaim(ms, deps.config);
  const uid = ms.metadata.uid as string;
  if (!claim || deps.envClaims?.has(uid)) return;
  await createIfMissing(claim, deps, changed);
  deps.envClaims?.add(uid);
}

/**
 * Creates a namespace's shared object (owned by no ModelServing) if it is missing. Without force: one someone else
 * made under that name is theirs and is used as it is (409 only says so).
 */
export async function createIfMissing(obj: KubernetesObject, deps: { writer: Writer }, changed: string[]): Promise<void> {
  try {
    if (!(await deps.writer.read(obj))) {
      await deps.writer.apply(obj, { force: false });
      changed.push(`created ${obj.kind} ${obj.metadata?.name}`);
    }
  } catch (err) {
    if (apiError(err).code !== 409) throw err;
  }
}

/**
 * spec.auth mode kubernetes: the namespace's auth ServiceAccount (made where missing; one someone made is used as
 * it is) and its place among the subjects of the operator's binding to system:auth-delegator.
 */
const AUTH_RECHECK_MS = 5 * 60_000;

async function ensureAuthAccount(ms: ModelServing, deps: ReconcileDeps, changed: string[]): Promise<void> {
  const uid = ms.metadata.uid as string;
  if (!wantsAuthAccount(ms)) return;
  const checked = deps.authAccounts?.get(uid);
  if (checked !== undefined && Date.now() - checked < AUTH_RECHECK_MS) return;
  const bindingName = deps.config.authBinding;
  if (!bindingName) {
    throw new TerminalError(
      "spec.auth.mode kubernetes needs the operator to bind auth ServiceAccounts (the chart's auth.kubernetes is false); use mode apiKeys, or enable it",
      'AuthUnavailable',
    );
  }
  const account = authServiceAccount(ms);
  await createIfMissing(account, deps, changed);
  const binding = (await deps.writer.read({
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name: bindingName },
  })) as V1ClusterRoleBinding | undefined;
  if (!binding) throw new TerminalError(`ClusterRoleBinding ${bindingName} (the chart's, for spec.auth) does not exist`, 'AuthUnavailable');
  const wanted = bindingWithSubject(binding, ms.metadata.namespace as string);
  if (wanted) {
    // The subjects list is replaced whole: with the version read, so two namespaces added at once cannot drop each
    // other's (the second gets a conflict, and its reconcile is retried on the new list).
    wanted.metadata = { ...wanted.metadata, resourceVersion: binding.metadata?.resourceVersion as string };
    await deps.writer.apply(wanted);
    changed.push(`bound ServiceAccount ${account.metadata?.name} to system:auth-delegator`);
  }
  deps.authAccounts?.set(uid, Date.now());
}

export async function reconcile(key: string, deps: ReconcileDeps): Promise<ReconcileResult> {
  const [namespace = '', name = ''] = key.split('/');
  const { caches, writer, config } = deps;
  const found = caches.modelServings.get(name, namespace) as ModelServing | undefined;
  if (!found) return {};
  const ms = found;
  const note: Note = (type, reason, message) => {
    // Events are best effort and never hold up a reconcile (the recorder queues them).
    deps.note?.(ms, type, reason, message);
  };
  // Being deleted: the garbage collector removes what it owned (owner references); the topic is ours to do.
  if (ms.metadata.deletionTimestamp) return finalizeTopic(ms, deps, note);

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
    await ensureEnvClaim(ms, deps, changed);
    await ensureAuthAccount(ms, deps, changed);
    // The objects are independent: apply them concurrently.
    await Promise.all(
      plan.map(async (item) => {
        const { desired } = item;
        const stranger = () => new TerminalError(`${desired.kind} ${namespace}/${name} exists and is not owned by this ModelServing`);
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
          if (apiError(err).code !== 409) throw err;
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
    applyError = { reason: err instanceof TerminalError ? err.reason : 'ApplyFailed', message };
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
  // The status says why; the worker decides whether to retry (a TerminalError is not retried).
  if (failure) throw failure;
  return logging && logging.status !== 'True' && logging.reason !== 'KafkaNotConfigured'
    ? { requeueAfterMs: config.loggingRecheckSeconds * 1000 }
    : {};
}
