// The parts of a pod that runs a model, shared by a ModelServing's Deployment and a BatchPrediction's shard Job:
// the init steps that fetch the bundle (the only place its storage keys reach) and build its Python environment,
// the model container's environment, resources and mounts, and the volumes they use. Pure.
import type { V1Container, V1EnvVar, V1PodSecurityContext, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { DEFAULTS, ENV, GRPC_PORT, HEALTH_PORT, PATHS, RUNTIME_UID } from '../../../runtime/contract.ts';
import { type OperatorConfig, quantityBytes } from '../../config.ts';
import { dependencyTargets } from '../dependencies.ts';
import { runtimeAuthEnv } from './auth.ts';
import { loggingEnv } from './logging.ts';

/** The init container that fetches and unpacks the bundle and builds its Python environment. */
export const PREPARE_CONTAINER_NAME = 'prepare';
/** The init container that installs a Python bundle's requirements.txt (no keys: build scripts run there). */
export const INSTALL_CONTAINER_NAME = 'install';
export const WORK_VOLUME = 'work';
export const TMP_VOLUME = 'tmp';
export const PYTHON_ENVS_VOLUME = 'python-envs';
/** The init steps' own /tmp: nothing the model (and bundle code) writes to its /tmp reaches them. */
const INIT_TMP_VOLUME = 'init-tmp';
const DEFAULT_REQUESTS = { cpu: '100m', memory: '128Mi' };

/** Every container of a model's pods: Pod Security `restricted`, read-only root, the runtime's uid. */
export const SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: RUNTIME_UID,
  runAsGroup: RUNTIME_UID,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export const POD_SECURITY_CONTEXT: V1PodSecurityContext = {
  runAsNonRoot: true,
  runAsUser: RUNTIME_UID,
  runAsGroup: RUNTIME_UID,
  fsGroup: RUNTIME_UID,
  seccompProfile: { type: 'RuntimeDefault' },
};

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

/** A Python bundle (so the runtime-python image, and a volume for requirements environments). */
export function isPython(ms: ModelServing): boolean {
  return ms.spec.bundle.format === 'python';
}

export function runtimeImage(ms: ModelServing, config: OperatorConfig): string {
  return ms.spec.runtime?.image ?? (isPython(ms) ? config.runtimePythonImage : config.runtimeImage);
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

/** The init steps and the model container: the model's identity, the work directory, the Python cache, the log level. */
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

/**
 * The model container's environment (named `containerName`, for its CPU limit): no storage keys, the bundle and its
 * environment come prepared. Inference logging, auth and batching only as the spec asks for them.
 */
export function runtimeEnv(ms: ModelServing, config: OperatorConfig, containerName: string): V1EnvVar[] {
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
    valueFrom: { resourceFieldRef: { containerName, resource: 'limits.cpu', divisor: '1' } },
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

function stringify(list: Record<string, string | number | undefined> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(list ?? {})) if (v !== undefined) out[k] = String(v);
  return out;
}

/** The model container's resources: the spec's, with default requests. */
export function runtimeResources(ms: ModelServing): NonNullable<V1Container['resources']> {
  const res = ms.spec.resources;
  const requests = { ...DEFAULT_REQUESTS, ...stringify(res?.requests) };
  const limits = stringify(res?.limits);
  return { requests, ...(Object.keys(limits).length ? { limits } : {}) };
}

/**
 * The model container's mounts. Read only: what bundle code runs beside cannot change the bundle, nor any
 * environment in a shared cache.
 */
export function runtimeMounts(ms: ModelServing): V1VolumeMount[] {
  return [
    { name: WORK_VOLUME, mountPath: PATHS.workDir, readOnly: true },
    { name: TMP_VOLUME, mountPath: '/tmp' },
    ...(isPython(ms) ? [{ name: PYTHON_ENVS_VOLUME, mountPath: PATHS.pythonEnvDir, readOnly: true }] : []),
  ];
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
    image: runtimeImage(ms, config),
    imagePullPolicy: 'IfNotPresent',
    args: [step],
    env: [...commonEnv(ms), ...(prepare ? fetchEnv(ms, config) : installEnv(ms, config))],
    // The same as the model container's: an init container's count only while it runs (max, not sum).
    resources,
    securityContext: SECURITY_CONTEXT,
    terminationMessagePath: PATHS.terminationLog,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [
      { name: WORK_VOLUME, mountPath: PATHS.workDir },
      { name: INIT_TMP_VOLUME, mountPath: '/tmp' },
      ...(prepare ? [] : [{ name: PYTHON_ENVS_VOLUME, mountPath: PATHS.pythonEnvDir }]),
    ],
  };
}

/** The init steps that prepare the bundle: prepare, then install for a Python bundle. */
export function initSteps(ms: ModelServing, config: OperatorConfig, resources: V1Container['resources']): V1Container[] {
  return [initStep(ms, config, 'prepare', resources), ...(isPython(ms) ? [initStep(ms, config, 'install', resources)] : [])];
}

function pythonEnvVolume(config: OperatorConfig): V1Volume {
  const cache = config.pythonEnvCache;
  return cache.kind === 'pvc'
    ? { name: PYTHON_ENVS_VOLUME, persistentVolumeClaim: { claimName: cache.claimName } }
    : { name: PYTHON_ENVS_VOLUME, emptyDir: { sizeLimit: cache.sizeLimit } };
}

/** The volumes the init steps and the model container mount. */
export function runtimeVolumes(ms: ModelServing, config: OperatorConfig): V1Volume[] {
  return [
    { name: WORK_VOLUME, emptyDir: { sizeLimit: config.bundleVolumeSize } },
    { name: TMP_VOLUME, emptyDir: { sizeLimit: '64Mi' } },
    { name: INIT_TMP_VOLUME, emptyDir: { sizeLimit: '64Mi' } },
    ...(isPython(ms) ? [pythonEnvVolume(config)] : []),
  ];
}
