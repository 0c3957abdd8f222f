// BatchPrediction → its shard Job `<name>`: an Indexed Job, one index per shard of the plan. Each pod fetches the
// bundle in the `prepare` init container (the bundle's keys only, as a ModelServing's pod does), runs the model as a
// native sidecar `model` (`main.ts batch-model`: the serving container's settings, no port, listening on
// BATCH.socket, started once its startup probe finds it ready) and the driver `driver` (`main.ts batch-run`), which
// alone holds the input's and output's keys, reads its shard, calls the model and writes the parts. A shard that
// fails is retried (backoffLimitPerIndex) unless its driver says the input is at fault (BATCH.terminalExitCode). Pure.
import type { V1Container, V1Job } from '@kubernetes/client-node';
import type { BatchPrediction } from '../../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { BATCH, DEFAULTS, ENV, HEALTH_PORT, PATHS, PROBES } from '../../../runtime/contract.ts';
import type { OperatorConfig } from '../../config.ts';
import {
  initSteps,
  POD_SECURITY_CONTEXT,
  runtimeEnv,
  runtimeImage,
  runtimeMounts,
  runtimeResources,
  runtimeVolumes,
  SECURITY_CONTEXT,
} from '../desired/pod.ts';
import { batchLabels, jobMeta, shardJobName } from './labels.ts';
import { batchEnv, failurePolicyRules, placement } from './plan-job.ts';
import { storageMounts, storageVolumes } from './spec.ts';

const SOCKET_VOLUME = 'batch-socket';
const DRIVER_TMP_VOLUME = 'driver-tmp';
const PROBE_PERIOD_SECONDS = 2;
/** The driver reads a shard and writes its parts; the model does the heavy work. */
export const DRIVER_RESOURCES = { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } };

/**
 * The model: the serving container as a native sidecar (an init container that keeps running: started before the
 * driver, stopped after it), without ports. Its startup probe holds the driver back until the model is loaded
 * (the runtime's init bound, with a minute to spare).
 */
function modelContainer(model: ModelServing, config: OperatorConfig): V1Container {
  return {
    name: BATCH.containers.model,
    image: runtimeImage(model, config),
    imagePullPolicy: 'IfNotPresent',
    args: ['batch-model'],
    restartPolicy: 'Always',
    env: [...runtimeEnv(model, config, BATCH.containers.model), { name: ENV.batchSocket, value: BATCH.socket }],
    resources: runtimeResources(model),
    securityContext: SECURITY_CONTEXT,
    startupProbe: {
      httpGet: { path: PROBES.ready, port: HEALTH_PORT },
      periodSeconds: PROBE_PERIOD_SECONDS,
      timeoutSeconds: 2,
      failureThreshold: Math.ceil(DEFAULTS.initTimeoutMs / 1000 / PROBE_PERIOD_SECONDS) + 30,
    },
    terminationMessagePath: PATHS.terminationLog,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [...runtimeMounts(model), { name: SOCKET_VOLUME, mountPath: BATCH.socketDir }],
  };
}

function driverContainer(bp: BatchPrediction, model: ModelServing, config: OperatorConfig): V1Container {
  return {
    name: BATCH.containers.driver,
    // The operator's image, never one the spec names: this container alone holds the input and output keys.
    image: config.runtimeImage,
    imagePullPolicy: 'IfNotPresent',
    args: ['batch-run'],
    env: [...batchEnv(bp, model), { name: ENV.batchSocket, value: BATCH.socket }],
    resources: DRIVER_RESOURCES,
    securityContext: SECURITY_CONTEXT,
    terminationMessagePath: PATHS.terminationLog,
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [
      { name: SOCKET_VOLUME, mountPath: BATCH.socketDir },
      { name: DRIVER_TMP_VOLUME, mountPath: '/tmp' },
      ...storageMounts(bp),
    ],
  };
}

/**
 * The shard Job for a plan of `shards` shards. `deadlineSeconds`: what is left of spec.activeDeadlineSeconds
 * after the plan (the deadline bounds the whole run).
 */
export function desiredShardJob(
  bp: BatchPrediction,
  config: OperatorConfig,
  model: ModelServing,
  shards: number,
  deadlineSeconds?: number,
): V1Job {
  const sidecar = modelContainer(model, config);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: jobMeta(bp, shardJobName(bp), 'batch-shard'),
    spec: {
      completionMode: 'Indexed',
      completions: shards,
      parallelism: Math.min(bp.spec.parallelism, shards),
      backoffLimitPerIndex: bp.spec.backoffLimitPerIndex,
      ...(deadlineSeconds !== undefined ? { activeDeadlineSeconds: Math.max(1, Math.floor(deadlineSeconds)) } : {}),
      podFailurePolicy: { rules: failurePolicyRules(BATCH.containers.driver, 'FailIndex') },
      template: {
        metadata: { labels: batchLabels(bp, 'batch-shard') },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: POD_SECURITY_CONTEXT,
          ...placement(model),
          initContainers: [...initSteps(model, config, sidecar.resources), sidecar],
          containers: [driverContainer(bp, model, config)],
          volumes: [
            ...runtimeVolumes(model, config),
            { name: SOCKET_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
            { name: DRIVER_TMP_VOLUME, emptyDir: { sizeLimit: '256Mi' } },
            ...storageVolumes(bp),
          ],
        },
      },
    },
  };
}
