// ModelServing → the runtime's Deployment. Pure: the same inputs always give the same object, so a
// server-side apply of an unchanged ModelServing is a no-op. The model's pod parts are in pod.ts (a BatchPrediction's
// shard pods use them too).
import { createHash } from 'node:crypto';
import type { V1Container, V1Deployment, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { DEFAULTS, ENV, GRPC_PORT, HEALTH_PORT, HTTP_PORT, PATHS, PROBES, RECORDER_UID } from '../../../runtime/contract.ts';
import type { OperatorConfig } from '../../config.ts';
import { AUTH_SERVICE_ACCOUNT, authContainer, authVolumes, wantsAuth, wantsAuthAccount } from './auth.ts';
import { BUNDLE_HASH_ANNOTATION, commonLabels, FIELD_MANAGER, MANAGED_BY, objectMeta, selectorLabels } from './labels.ts';
import { recorderEnv, wantsRecorder } from './logging.ts';
import {
  INSTALL_CONTAINER_NAME,
  initSteps,
  isPython,
  POD_SECURITY_CONTEXT,
  PREPARE_CONTAINER_NAME,
  runtimeEnv,
  runtimeImage,
  runtimeMounts,
  runtimeResources,
  runtimeVolumes,
  SECURITY_CONTEXT,
} from './pod.ts';

export {
  INSTALL_CONTAINER_NAME,
  isPython,
  maxBundleBytes,
  PREPARE_CONTAINER_NAME,
  WORK_VOLUME_RESERVE_BYTES,
} from './pod.ts';
export const CONTAINER_NAME = 'runtime';
/** The sidecar that produces the records and events to Kafka. */
export const RECORDER_CONTAINER_NAME = 'recorder';
/** The sidecars' sockets (recorder, auth), in a memory volume the pod's containers share. */
const RECORDER_VOLUME = 'recorder';

function wantsSockets(ms: ModelServing, config: OperatorConfig): boolean {
  return wantsRecorder(ms, config) || wantsAuth(ms);
}

/** Changes whenever what the pods must load changes, so the pod template (and a rollout) follows. */
export function bundleHash(ms: ModelServing): string {
  const b = ms.spec.bundle;
  const key = JSON.stringify([b.uri, b.sha256 ?? '', b.storage?.endpoint ?? '', b.storage?.region ?? '', b.storage?.secretRef?.name ?? '']);
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * The recorder sidecar (a native sidecar: an init container that keeps running, started before the runtime and
 * stopped after it): the same image with `recorder`, under a uid of its own in the runtime's group. It alone holds
 * the Kafka credentials and takes records over a Unix socket in a volume shared with the runtime.
 */
function recorderContainer(ms: ModelServing, config: OperatorConfig): V1Container {
  return {
    name: RECORDER_CONTAINER_NAME,
    image: runtimeImage(ms, config),
    imagePullPolicy: 'IfNotPresent',
    args: ['recorder'],
    restartPolicy: 'Always',
    env: [
      { name: ENV.modelName, value: ms.metadata.name },
      ...(ms.spec.runtime?.logLevel ? [{ name: ENV.logLevel, value: ms.spec.runtime.logLevel }] : []),
      ...recorderEnv(ms, config),
    ],
    resources: { requests: { cpu: '20m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    securityContext: { ...SECURITY_CONTEXT, runAsUser: RECORDER_UID },
    volumeMounts: [{ name: RECORDER_VOLUME, mountPath: PATHS.recorderDir }],
  };
}

function container(ms: ModelServing, config: OperatorConfig): V1Container {
  return {
    name: CONTAINER_NAME,
    image: runtimeImage(ms, config),
    imagePullPolicy: 'IfNotPresent',
    ports: [
      { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' },
      { name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' },
      { name: 'health', containerPort: HEALTH_PORT, protocol: 'TCP' },
    ],
    env: runtimeEnv(ms, config, CONTAINER_NAME),
    resources: runtimeResources(ms),
    securityContext: SECURITY_CONTEXT,
    // Live as soon as it listens; ready only with the model loaded. The startup probe gives a slow
    // process start room without weakening liveness later. The probes ask the health listener, which inference
    // traffic (and its authentication) never stands in front of.
    startupProbe: { httpGet: { path: PROBES.live, port: 'health' }, periodSeconds: 2, failureThreshold: 60, timeoutSeconds: 2 },
    livenessProbe: { httpGet: { path: PROBES.live, port: 'health' }, periodSeconds: 10, failureThreshold: 3, timeoutSeconds: 2 },
    readinessProbe: { httpGet: { path: PROBES.ready, port: 'health' }, periodSeconds: 2, failureThreshold: 2, timeoutSeconds: 2 },
    // Endpoints controllers and proxies need a moment to stop sending traffic before the drain starts.
    lifecycle: config.preStopSeconds > 0 ? { preStop: { sleep: { seconds: config.preStopSeconds } } } : undefined,
    terminationMessagePath: PATHS.terminationLog,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [...runtimeMounts(ms), ...(wantsSockets(ms, config) ? [{ name: RECORDER_VOLUME, mountPath: PATHS.recorderDir }] : [])],
  };
}

/**
 * The shared environment cache's claim in a Python model's namespace, when the operator is configured to create
 * it: shared by every model there, so owned by none (deleting a model keeps the cache; deleting the namespace
 * removes it). ReadWriteMany, so pods on any node share it.
 */
export function desiredEnvClaim(ms: ModelServing, config: OperatorConfig): V1PersistentVolumeClaim | undefined {
  const cache = config.pythonEnvCache;
  if (!isPython(ms) || cache.kind !== 'pvc' || !cache.create) return undefined;
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: cache.claimName,
      namespace: ms.metadata.namespace as string,
      labels: { [MANAGED_BY]: FIELD_MANAGER, 'app.kubernetes.io/component': 'python-env-cache' },
    },
    spec: {
      accessModes: ['ReadWriteMany'],
      storageClassName: cache.create.storageClassName,
      resources: { requests: { storage: cache.create.size } },
    },
  };
}

/** What no timeout of the runtime bounds: scheduling, pulling the image, unpacking, starting the processes. */
export const START_MARGIN_SECONDS = 180;

/** A whole number of milliseconds a container's variable sets, else the runtime's default for it. */
function envMs(c: V1Container | undefined, name: string, fallback: number): number {
  const raw = c?.env?.find((e) => e.name === name)?.value;
  const ms = raw === undefined || raw === '' ? Number.NaN : Number(raw);
  return Number.isInteger(ms) && ms > 0 ? ms : fallback;
}

/**
 * How long a new pod may take to become ready before the Deployment counts its rollout as stalled
 * (ProgressDeadlineExceeded): the bound of each step, as the container that runs it is configured (else the runtime's
 * defaults), plus START_MARGIN_SECONDS. The prepare container's fetch; the install container's requirements (the
 * runtime gives its helper twice the install timeout and 30 s: a wait for another pod's install of the same
 * environment, then its own); the plugin's init in the serving container. So a slow but healthy first start is never
 * marked failed; a failing one says why sooner, in its pod's status. Pure.
 */
export function progressDeadlineSeconds(initContainers: V1Container[], serving: V1Container): number {
  const prepare = initContainers.find((c) => c.name === PREPARE_CONTAINER_NAME);
  const install = initContainers.find((c) => c.name === INSTALL_CONTAINER_NAME);
  const fetchMs = envMs(prepare, ENV.fetchTimeoutMs, DEFAULTS.fetchTimeoutMs);
  const installMs = install ? 2 * envMs(install, ENV.pythonInstallTimeoutMs, DEFAULTS.pythonInstallTimeoutMs) + 30_000 : 0;
  const initMs = envMs(serving, ENV.initTimeoutMs, DEFAULTS.initTimeoutMs);
  return Math.ceil((fetchMs + installMs + initMs) / 1000) + START_MARGIN_SECONDS;
}

export function desiredDeployment(ms: ModelServing, config: OperatorConfig): V1Deployment {
  const c = container(ms, config);
  if (!c.lifecycle) delete c.lifecycle;
  const initContainers = [
    ...initSteps(ms, config, c.resources),
    ...(wantsRecorder(ms, config) ? [recorderContainer(ms, config)] : []),
    ...(wantsAuth(ms) ? [authContainer(ms, runtimeImage(ms, config), SECURITY_CONTEXT, RECORDER_VOLUME)] : []),
  ];
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: objectMeta(ms),
    spec: {
      // With autoscaling the HPA owns replicas: leaving the field out of the apply means we never fight it.
      ...(ms.spec.autoscaling ? {} : { replicas: ms.spec.replicas ?? 1 }),
      selector: { matchLabels: selectorLabels(ms) },
      revisionHistoryLimit: 3,
      progressDeadlineSeconds: progressDeadlineSeconds(initContainers, c),
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: '25%' } },
      template: {
        metadata: { labels: commonLabels(ms), annotations: { [BUNDLE_HASH_ANNOTATION]: bundleHash(ms) } },
        spec: {
          automountServiceAccountToken: false,
          // spec.auth kubernetes: the auth sidecar's projected token is this ServiceAccount's (no other container has it).
          ...(wantsAuthAccount(ms) ? { serviceAccountName: AUTH_SERVICE_ACCOUNT } : {}),
          enableServiceLinks: false,
          terminationGracePeriodSeconds: config.preStopSeconds + config.drainSeconds + 5,
          securityContext: POD_SECURITY_CONTEXT,
          ...(ms.spec.nodeSelector ? { nodeSelector: ms.spec.nodeSelector } : {}),
          ...(ms.spec.tolerations?.length ? { tolerations: ms.spec.tolerations } : {}),
          initContainers,
          containers: [c],
          volumes: [
            ...runtimeVolumes(ms, config),
            ...(wantsSockets(ms, config) ? [{ name: RECORDER_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }] : []),
            ...authVolumes(ms),
          ],
        },
      },
    },
  };
}
