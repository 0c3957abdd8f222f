// ModelServing → the runtime's Deployment. Pure: the same inputs always give the same object, so a
// server-side apply of an unchanged ModelServing is a no-op.
import { dependencyTargets } from '../dependencies.ts';
import { createHash } from 'node:crypto';
import type { V1Container, V1Deployment, V1EnvVar, V1PersistentVolumeClaim, V1Volume } from '@kubernetes/client-node';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { DEFAULTS, ENV, GRPC_PORT, HEALTH_PORT, HTTP_PORT, PATHS, PROBES, RECORDER_UID, RUNTIME_UID } from '../../../runtime/contract.ts';
import { type OperatorConfig, quantityBytes } from '../../config.ts';
import { BUNDLE_HASH_ANNOTATION, commonLabels, FIELD_MANAGER, MANAGED_BY, objectMeta, selectorLabels } from './labels.ts';
import { loggingEnv, recorderEnv, wantsRecorder } from './logging.ts';
import { AUTH_SERVICE_ACCOUNT, authContainer, authVolumes, runtimeAuthEnv, wantsAuth, wantsAuthAccount } from './auth.ts';

export const CONTAINER_NAME = 'runtime';
/** The init container that fetches and unpacks the bundle and builds its Python environment. */
export const PREPARE_CONTAINER_NAME = 'prepare';
/** The init container that installs a Python bundle's requirements.txt (no keys: build scripts run there). */
export const INSTALL_CONTAINER_NAME = 'install';
/** The sidecar that produces the records and events to Kafka. */
export const RECORDER_CONTAINER_NAME = 'recorder';
const DEFAULT_REQUESTS = { cpu: '100m', memory: '128Mi' };

/** Changes whenever what the pods must load changes, so the pod template (and a rollout) follows. */
export function bundleHash(ms: ModelServing): string {
  const b = ms.spec.bundle;
  const key = JSON.stringify([b.uri, b.sha256 ?? '', b.storage?.endpoint ?? '', b.storage?.region ?? '', b.storage?.secretRef?.name ?? '']);
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/** Bytes of the work volume kept besides the bundle: prepared.json, and the blocks up to 10000 small files round up to. */
export const WORK_VOLUME_RESERVE_BYTES = 64 * 2 ** 20 + DEFAULTS.maxBundleEntries * 4096;

/**
 * The largest bundle the prepare step takes into a work volume of `volumeSize`: the archive and its unpacked files
 * are both on the volume while it unpacks (the archive is removed after), so half of what the reserve leaves. A
 * larger one is refused (MS_ERR_BUNDLE_DOWNLOAD_TOO_LARGE while it downloads, MS_ERR_BUNDLE_TOO_LARGE while it
 * unpacks) before the volume fills, which would have the kubelet evict the pod. Pure.
 */
export function maxBundleBytes(volumeSize: string): number {
  return Math.max(0, Math.floor((quantityBytes(volumeSize) - WORK_VOLUME_RESERVE_BYTES) / 2));
}

/** What the prepare init container alone needs: where the bundle is, the keys to fetch it, and what it may weigh. */
function fetchEnv(ms: ModelServing, config: OperatorConfig): V1EnvVar[] {
  const spec = ms.spec;
  const vars: V1EnvVar[] = [{ name: ENV.maxBundleBytes, value: String(maxBundleBytes(config.bundleVolumeSize)) }];
  if (spec.bundle.sha256) vars.push({ name: ENV.bundleSha256, value: spec.bundle.sha256 });
  const storage = spec.bundle.storage;
  if (storage?.endpoint) vars.push({ name: ENV.s3Endpoint, value: storage.endpoint });
  if (storage?.region) vars.push({ name: ENV.s3Region, value: storage.region });
  if (storage?.secretRef) {
    // The operator never reads the Secret: the kubelet resolves the keys into the init container only.
    const ref = storage.secretRef;
    vars.push(
      { name: ENV.s3AccessKey, valueFrom: { secretKeyRef: { name: ref.name, key: ref.accessKeyKey ?? 'accessKey' } } },
      { name: ENV.s3SecretKey, valueFrom: { secretKeyRef: { name: ref.name, key: ref.secretKeyKey ?? 'secretKey' } } },
    );
  }
  return vars;
}

/** The prepare init container of a Python bundle: where requirements come from, and what they may name. */
function installEnv(ms: ModelServing, config: OperatorConfig): V1EnvVar[] {
  if (!isPython(ms)) return [];
  const vars: V1EnvVar[] = [];
  if (config.pythonIndexUrlSecret) {
    vars.push({ name: ENV.pythonIndexUrl, valueFrom: { secretKeyRef: { name: config.pythonIndexUrlSecret, key: 'url' } } });
  } else if (config.pythonIndexUrl) {
    vars.push({ name: ENV.pythonIndexUrl, value: config.pythonIndexUrl });
  }
  if (config.pythonAllowIndexOptions) vars.push({ name: ENV.pythonAllowIndexOptions, value: 'true' });
  // A cache shared by the namespace's pods takes wheels only: no package's build script ever runs with it writable.
  if (config.pythonEnvCache.kind === 'pvc' && !config.pythonEnvCache.allowBuilds) vars.push({ name: ENV.pythonNoBuild, value: 'true' });
  return vars;
}

/** Both containers: the model's identity, the work directory, the Python cache, the log level. */
function commonEnv(ms: ModelServing): V1EnvVar[] {
  const spec = ms.spec;
  const vars: V1EnvVar[] = [
    { name: ENV.modelName, value: ms.metadata.name },
    { name: ENV.namespace, value: ms.metadata.namespace },
    { name: ENV.bundleUri, value: spec.bundle.uri },
    { name: ENV.workDir, value: PATHS.workDir },
  ];
  if (isPython(ms)) vars.push({ name: ENV.pythonEnvDir, value: PATHS.pythonEnvDir });
  if (spec.runtime?.logLevel) vars.push({ name: ENV.logLevel, value: spec.runtime.logLevel });
  return vars;
}

function userEnv(ms: ModelServing): V1EnvVar[] {
  return (ms.spec.runtime?.env ?? []).map((e) => ({ name: e.name, value: e.value }));
}

/** The serving container: no storage keys; the bundle and its environment come prepared. */
function env(ms: ModelServing, config: OperatorConfig): V1EnvVar[] {
  const spec = ms.spec;
  const vars: V1EnvVar[] = [
    ...commonEnv(ms),
    { name: ENV.bundlePrepared, value: 'true' },
    { name: ENV.grpcPort, value: String(GRPC_PORT) },
    { name: ENV.healthPort, value: String(HEALTH_PORT) },
  ];
  const targets = dependencyTargets(ms);
  if (targets) vars.push({ name: ENV.dependencies, value: targets });
  vars.push(
    { name: ENV.requestTimeoutMs, value: String((spec.runtime?.timeoutSeconds ?? 30) * 1000) },
    { name: ENV.drainTimeoutMs, value: String(config.drainSeconds * 1000) },
  );
  if (spec.runtime?.workers !== undefined) vars.push({ name: ENV.workers, value: String(spec.runtime.workers) });
  const admission = spec.runtime?.admission;
  if (admission?.maxConcurrency !== undefined) vars.push({ name: ENV.maxConcurrency, value: String(admission.maxConcurrency) });
  if (admission?.maxQueue !== undefined) vars.push({ name: ENV.maxQueue, value: String(admission.maxQueue) });
  if (admission?.maxQueueWaitMs !== undefined) vars.push({ name: ENV.maxQueueWaitMs, value: String(admission.maxQueueWaitMs) });
  if (spec.runtime?.timeoutKillsPerMinute !== undefined) {
    vars.push({ name: ENV.timeoutKillsPerMinute, value: String(spec.runtime.timeoutKillsPerMinute) });
  }
  // Whole CPUs of the limit (rounded up; the node's when there is no limit): Python's default worker count.
  vars.push({
    name: ENV.cpuLimit,
    valueFrom: { resourceFieldRef: { containerName: CONTAINER_NAME, resource: 'limits.cpu', divisor: '1' } },
  });
  if (spec.batching) {
    vars.push(
      { name: ENV.batchMaxSize, value: String(spec.batching.maxBatchSize) },
      { name: ENV.batchMaxLatencyMs, value: String(spec.batching.maxLatencyMs) },
    );
  }
  vars.push(...loggingEnv(ms, config), ...runtimeAuthEnv(ms), ...userEnv(ms));
  return vars;
}

const SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: RUNTIME_UID,
  runAsGroup: RUNTIME_UID,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

function image(ms: ModelServing, config: OperatorConfig): string {
  return ms.spec.runtime?.image ?? (isPython(ms) ? config.runtimePythonImage : config.runtimeImage);
}

/**
 * The recorder sidecar (a native sidecar: an init container that keeps running, started before the runtime and
 * stopped after it): the same image with `recorder`, under a uid of its own in the runtime's group. It alone holds
 * the Kafka credentials and takes records over a Unix socket in a volume shared with the runtime.
 */
function recorderContainer(ms: ModelServing, config: OperatorConfig): V1Container {
  return {
    name: RECORDER_CONTAINER_NAME,
    image: image(ms, config),
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

/**
 * An init step (`main.ts <step>`) in the runtime's image, writing the work volume, with its own /tmp:
 * - prepare: the only one with the storage keys (and none of the user's variables); fetches, verifies and unpacks,
 *   and runs nothing of the bundle's;
 * - install (Python): no keys, as the build scripts of the packages a requirements.txt names run there; the only one
 *   that writes the environment cache.
 */
function initStep(ms: ModelServing, config: OperatorConfig, step: 'prepare' | 'install', resources: V1Container['resources']): V1Container {
  const prepare = step === 'prepare';
  return {
    name: prepare ? PREPARE_CONTAINER_NAME : INSTALL_CONTAINER_NAME,
    image: image(ms, config),
    imagePullPolicy: 'IfNotPresent',
    args: [step],
    env: [...commonEnv(ms), ...(prepare ? fetchEnv(ms, config) : installEnv(ms, config))],
    // The same as the serving container's: an init container's count only while it runs (max, not sum).
    resources,
    securityContext: SECURITY_CONTEXT,
    terminationMessagePath: PATHS.terminationLog,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [
      { name: 'work', mountPath: PATHS.workDir },
      { name: INIT_TMP_VOLUME, mountPath: '/tmp' },
      ...(prepare ? [] : [{ name: PYTHON_ENVS_VOLUME, mountPath: PATHS.pythonEnvDir }]),
    ],
  };
}

function container(ms: ModelServing, config: OperatorConfig): V1Container {
  const res = ms.spec.resources;
  const requests = { ...DEFAULT_REQUESTS, ...stringify(res?.requests) };
  const limits = stringify(res?.limits);
  return {
    name: CONTAINER_NAME,
    image: image(ms, config),
    imagePullPolicy: 'IfNotPresent',
    ports: [
      { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' },
      { name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' },
      { name: 'health', containerPort: HEALTH_PORT, protocol: 'TCP' },
    ],
    env: env(ms, config),
    resources: { requests, ...(Object.keys(limits).length ? { limits } : {}) },
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
    // Read only: what bundle code runs beside cannot change the bundle, nor any environment in a shared cache.
    volumeMounts: [
      { name: 'work', mountPath: PATHS.workDir, readOnly: true },
      { name: 'tmp', mountPath: '/tmp' },
      ...(isPython(ms) ? [{ name: PYTHON_ENVS_VOLUME, mountPath: PATHS.pythonEnvDir, readOnly: true }] : []),
      ...(wantsSockets(ms, config) ? [{ name: RECORDER_VOLUME, mountPath: PATHS.recorderDir }] : []),
    ],
  };
}

const PYTHON_ENVS_VOLUME = 'python-envs';
/** The sidecars' sockets (recorder, auth), in a memory volume the pod's containers share. */
const RECORDER_VOLUME = 'recorder';

function wantsSockets(ms: ModelServing, config: OperatorConfig): boolean {
  return wantsRecorder(ms, config) || wantsAuth(ms);
}
const INIT_TMP_VOLUME = 'init-tmp';

/** A Python bundle (so the runtime-python image, and a volume for requirements environments). */
export function isPython(ms: ModelServing): boolean {
  return ms.spec.bundle.format === 'python';
}

function pythonEnvVolume(config: OperatorConfig): V1Volume {
  const cache = config.pythonEnvCache;
  return cache.kind === 'pvc'
    ? { name: PYTHON_ENVS_VOLUME, persistentVolumeClaim: { claimName: cache.claimName } }
    : { name: PYTHON_ENVS_VOLUME, emptyDir: { sizeLimit: cache.sizeLimit } };
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

function stringify(list: Record<string, string | number | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(list ?? {})) if (v !== undefined) out[k] = String(v);
  return out;
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
    initStep(ms, config, 'prepare', c.resources),
    ...(isPython(ms) ? [initStep(ms, config, 'install', c.resources)] : []),
    ...(wantsRecorder(ms, config) ? [recorderContainer(ms, config)] : []),
    ...(wantsAuth(ms) ? [authContainer(ms, image(ms, config), SECURITY_CONTEXT, RECORDER_VOLUME)] : []),
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
          securityContext: {
            runAsNonRoot: true,
            runAsUser: RUNTIME_UID,
            runAsGroup: RUNTIME_UID,
            fsGroup: RUNTIME_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          ...(ms.spec.nodeSelector ? { nodeSelector: ms.spec.nodeSelector } : {}),
          ...(ms.spec.tolerations?.length ? { tolerations: ms.spec.tolerations } : {}),
          initContainers,
          containers: [c],
          volumes: [
            { name: 'work', emptyDir: { sizeLimit: config.bundleVolumeSize } },
            { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
            // The init steps' own: nothing the runtime (and bundle code) writes to its /tmp reaches them.
            { name: INIT_TMP_VOLUME, emptyDir: { sizeLimit: '64Mi' } },
            ...(isPython(ms) ? [pythonEnvVolume(config)] : []),
            ...(wantsSockets(ms, config) ? [{ name: RECORDER_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } }] : []),
            ...authVolumes(ms),
          ],
        },
      },
    },
  };
}
