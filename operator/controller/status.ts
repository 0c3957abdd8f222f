// PURE: the observed objects → the ModelServing's status. No clock reads: the caller passes `now`, used
// only for conditions whose status changes, so an unchanged world gives an identical status (no hot loops).
import type { DependencyState } from './dependencies.ts';
import type { V1ContainerStatus, V1Deployment, V1Pod } from '@kubernetes/client-node';
import type { ModelServing, ModelServingCondition, ModelServingStatus } from '../../crds/modelserving.schema.ts';
import {
  CONTAINER_NAME,
  INSTALL_CONTAINER_NAME,
  PREPARE_CONTAINER_NAME,
  RECORDER_CONTAINER_NAME,
  bundleHash,
} from './desired/deployment.ts';
import { BUNDLE_HASH_ANNOTATION, MODEL_LABEL } from './desired/labels.ts';
import { serviceUrl } from './desired/service.ts';
import { codedMessage } from './termination.ts';

export interface Observed {
  ms: ModelServing;
  deployment: V1Deployment | undefined;
  pods: V1Pod[];
  now: string;
  /** Set when applying the desired objects failed. */
  applyError?: { reason: string; message: string } | undefined;
  /** The inference-logging topic and how it stands; absent when logging is off. */
  logging?: LoggingObserved | undefined;
  /** DependenciesReady from the dependencies' own Ready; absent without spec.dependencies. */
  dependencies?: DependencyState | undefined;
}

export interface LoggingObserved {
  topic: string;
  status: 'True' | 'False';
  reason: string;
  message: string;
}

export interface PodFailure {
  pod: string;
  reason: string;
  message: string;
}

const WAITING_FAILURES = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
]);

/** A container's failure from its status: its termination message (`MS_ERR_…: message`), or a waiting reason. */
/** How long after a crash a container that is not ready is still taken to fail for that crash. */
const RECENT_CRASH_MS = 10 * 60_000;

function containerFailure(name: string, cs: V1ContainerStatus | undefined, now: string | undefined): PodFailure | undefined {
  if (!cs) return undefined;
  // Between crashes (waiting out its back-off, or started again and not ready yet) the last crash is still why: the
  // reason holds instead of flapping to "not ready" at every restart. A crash long before a container that has run
  // since (ready, then not for a while) is history, not the reason.
  const last = cs.lastState?.terminated;
  const recent = last && (now === undefined || !last.finishedAt || Date.parse(now) - new Date(last.finishedAt).getTime() < RECENT_CRASH_MS);
  const terminated = cs.state?.terminated ?? (!cs.ready && recent ? last : undefined);
  if (terminated && terminated.exitCode !== 0) {
    const text = (terminated.message ?? '').trim();
    const coded = codedMessage(text);
    if (coded) return { pod: name, reason: coded.code, message: coded.message };
    return {
      pod: name,
      reason: terminated.reason ?? 'Error',
      message: text || `${cs.name === CONTAINER_NAME ? 'the runtime' : `the ${cs.name} container`} exited with code ${terminated.exitCode}`,
    };
  }
  const waiting = cs.state?.waiting;
  if (waiting?.reason && WAITING_FAILURES.has(waiting.reason)) {
    return { pod: name, reason: waiting.reason, message: waiting.message ?? waiting.reason };
  }
  return undefined;
}

/**
 * Why a pod's runtime is failing, if it is: the prepare init container (fetching, verifying, unpacking the bundle,
 * installing its requirements) or the runtime writes `MS_ERR_…: message` to its termination log, which the
 * kubelet reports in the container's terminated state.
 */
export function podFailure(pod: V1Pod, now?: string): PodFailure | undefined {
  const name = pod.metadata?.name ?? '';
  // Not placed on any node: the scheduler says why (resources, taints, affinity).
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    return { pod: name, reason: 'Unschedulable', message: scheduled.message || 'no node can run the pod' };
  }
  const init = (n: string) => pod.status?.initContainerStatuses?.find((c) => c.name === n);
  return (
    containerFailure(name, init(PREPARE_CONTAINER_NAME), now) ??
    containerFailure(name, init(INSTALL_CONTAINER_NAME), now) ??
    containerFailure(name, init(RECORDER_CONTAINER_NAME), now) ??
    containerFailure(
      name,
      pod.status?.containerStatuses?.find((c) => c.name === CONTAINER_NAME),
      now,
    )
  );
}

/**
 * Why the Deployment cannot go on, if it cannot: pods it may not create (a ResourceQuota, an admission
 * policy: condition ReplicaFailure) or a rollout past its progress deadline.
 */
export function deploymentFailure(deployment: V1Deployment | undefined): { reason: string; message: string } | undefined {
  const refused = deployment?.status?.conditions?.find((c) => c.type === 'ReplicaFailure' && c.status === 'True');
  if (refused) return { reason: refused.reason || 'FailedCreate', message: refused.message || 'the Deployment cannot create its pods' };
  return stalledRollout(deployment);
}

/** The Deployment's rollout is past its progress deadline (its own Progressing condition says so). */
function stalledRollout(deployment: V1Deployment | undefined): { reason: string; message: string } | undefined {
  // Only about the current spec: right after a change the old verdict stands until the controller looks again.
  if ((deployment?.status?.observedGeneration ?? 0) < (deployment?.metadata?.generation ?? 0)) return undefined;
  const stalled = deployment?.status?.conditions?.find(
    (c) => c.type === 'Progressing' && c.status === 'False' && c.reason === 'ProgressDeadlineExceeded',
  );
  return stalled ? { reason: 'ProgressDeadlineExceeded', message: stalled.message || 'the rollout made no progress in time' } : undefined;
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

/** A condition; its transition time moves only when its status changes (so an unchanged world writes nothing). */
export function condition(
  previous: ModelServingCondition[] | undefined,
  type: string,
  status: 'True' | 'False' | 'Unknown',
  reason: string,
  message: string,
  now: string,
  generation: number | undefined,
): ModelServingCondition {
  const prev = previous?.find((c) => c.type === type);
  return {
    type,
    status,
    reason,
    message: message.slice(0, 4096),
    lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : now,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
  };
}

export function desiredReplicas(ms: ModelServing, deployment: V1Deployment | undefined): number {
  if (ms.spec.autoscaling) return deployment?.spec?.replicas ?? ms.spec.autoscaling.minReplicas ?? 1;
  return ms.spec.replicas ?? 1;
}

export function computeStatus(observed: Observed): ModelServingStatus {
  const { ms, deployment, now } = observed;
  const gen = ms.metadata.generation;
  const prev = ms.status?.conditions;
  const hash = bundleHash(ms);
  const pods = [...observed.pods]
    .filter((p) => p.metadata?.labels?.[MODEL_LABEL] === ms.metadata.name && !p.metadata?.deletionTimestamp)
    .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  const current = pods.filter((p) => p.metadata?.annotations?.[BUNDLE_HASH_ANNOTATION] === hash);
  const podFailures = current.map((p) => podFailure(p, now)).filter((f) => f !== undefined);
  // A runtime's error (its code, from the termination log) says more than a pod waiting for a node.
  const podFailed = podFailures.find((f) => f.reason !== 'Unschedulable') ?? podFailures[0];
  const deploymentFailed = deploymentFailure(deployment);
  // A pod's own failure says most (its runtime's error code); else the Deployment's.
  const failure = podFailed ? { reason: podFailed.reason, message: `${podFailed.message} (pod ${podFailed.pod})` } : deploymentFailed;
  const desired = desiredReplicas(ms, deployment);
  const ds = deployment?.status;
  const readyReplicas = ds?.readyReplicas ?? 0;
  const currentReady = current.filter(isReady).length;
  const rolledOut =
    !!deployment &&
    (ds?.observedGeneration ?? 0) >= (deployment.metadata?.generation ?? 0) &&
    (ds?.updatedReplicas ?? 0) >= desired &&
    (ds?.replicas ?? 0) <= (ds?.updatedReplicas ?? 0);

  const conditions: ModelServingCondition[] = [];
  // Ready: the model serves with as many ready replicas as wanted.
  if (observed.applyError) {
    conditions.push(condition(prev, 'Ready', 'False', observed.applyError.reason, observed.applyError.message, now, gen));
  } else if (!deployment) {
    conditions.push(condition(prev, 'Ready', 'False', 'Creating', 'creating the Deployment', now, gen));
  } else if (desired === 0) {
    conditions.push(condition(prev, 'Ready', 'True', 'ScaledToZero', 'scaled to zero replicas', now, gen));
  } else if (readyReplicas >= desired && currentReady > 0) {
    conditions.push(condition(prev, 'Ready', 'True', 'Available', `${readyReplicas}/${desired} replicas ready`, now, gen));
  } else if (failure) {
    conditions.push(condition(prev, 'Ready', 'False', failure.reason, failure.message, now, gen));
  } else {
    conditions.push(
      condition(
        prev,
        'Ready',
        'False',
        'PodsNotReady',
        `${readyReplicas}/${desired} replicas ready; waiting for the model to load`,
        now,
        gen,
      ),
    );
  }
  // BundleReady: at least one pod loaded the current bundle.
  if (currentReady > 0) {
    conditions.push(condition(prev, 'BundleReady', 'True', 'Loaded', `${ms.spec.bundle.uri} is loaded`, now, gen));
  } else if (podFailed && podFailed.reason !== 'Unschedulable') {
    conditions.push(condition(prev, 'BundleReady', 'False', podFailed.reason, podFailed.message, now, gen));
  } else {
    conditions.push(condition(prev, 'BundleReady', 'Unknown', 'Loading', `waiting for a pod to load ${ms.spec.bundle.uri}`, now, gen));
  }
  // Progressing: a rollout is under way.
  const stalled = stalledRollout(deployment);
  conditions.push(
    rolledOut
      ? condition(prev, 'Progressing', 'False', 'RolloutComplete', 'all replicas run the current spec', now, gen)
      : stalled
        ? condition(prev, 'Progressing', 'False', stalled.reason, stalled.message, now, gen)
        : condition(prev, 'Progressing', 'True', 'RollingOut', `${ds?.updatedReplicas ?? 0}/${desired} replicas updated`, now, gen),
  );
  // Degraded: something is failing, whether or not the model still serves.
  conditions.push(
    failure
      ? condition(prev, 'Degraded', 'True', failure.reason, failure.message, now, gen)
      : condition(prev, 'Degraded', 'False', 'AsExpected', 'no failing pods', now, gen),
  );
  // LoggingReady: only when inference logging is on. It never makes the model not Ready.
  if (observed.logging)
    conditions.push(condition(prev, 'LoggingReady', observed.logging.status, observed.logging.reason, observed.logging.message, now, gen));
  // DependenciesReady: only with spec.dependencies. The model still starts and serves what it can; a call to
  // a member that is down answers 503 naming it.
  if (observed.dependencies) {
    const d = observed.dependencies;
    conditions.push(condition(prev, 'DependenciesReady', d.status, d.reason, d.message, now, gen));
  }

  const served =
    currentReady > 0 ? { uri: ms.spec.bundle.uri, ...(ms.spec.bundle.sha256 ? { sha256: ms.spec.bundle.sha256 } : {}) } : ms.status?.bundle;
  const topic = observed.logging ? { topic: observed.logging.topic } : undefined;
  return {
    ...(gen !== undefined ? { observedGeneration: gen } : {}),
    replicas: ds?.replicas ?? 0,
    readyReplicas,
    selector: `${MODEL_LABEL}=${ms.metadata.name}`,
    url: serviceUrl(ms),
    ...(served ? { bundle: served } : {}),
    ...(topic ? { inferenceLogging: topic } : {}),
    conditions,
  };
}
