// BatchPrediction → its plan Job `<name>-plan`: one pod (container `plan`, `main.ts batch-plan`) that lists the
// input, cuts it into shards, writes the plan under the output and ends with a BatchPlanReport as its termination
// message. It holds the input's and output's keys (files of their Secrets) and runs no bundle code. Pure.
import type { V1Job } from '@kubernetes/client-node';
import type { BatchPrediction } from '../../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { BATCH, ENV, PATHS } from '../../../runtime/contract.ts';
import type { OperatorConfig } from '../../config.ts';
import { POD_SECURITY_CONTEXT, SECURITY_CONTEXT } from '../desired/pod.ts';
import { batchLabels, jobMeta, planJobName } from './labels.ts';
import { batchJobSpec, storageMounts, storageVolumes } from './spec.ts';

/** Retries of the plan pod after a failure that may pass (the object store down); an input error is not retried. */
export const PLAN_BACKOFF_LIMIT = 2;
const TMP_VOLUME = 'tmp';

/** The placement of the model's pods (its ModelServing's), for every pod of the run. */
export function placement(model: ModelServing) {
  return {
    ...(model.spec.nodeSelector ? { nodeSelector: model.spec.nodeSelector } : {}),
    ...(model.spec.tolerations?.length ? { tolerations: model.spec.tolerations } : {}),
  };
}

/** What the plan and driver containers share: the batch spec, the namespace and the log level. */
export function batchEnv(bp: BatchPrediction, model: ModelServing) {
  return [
    { name: ENV.batchSpec, value: JSON.stringify(batchJobSpec(bp, model)) },
    { name: ENV.namespace, value: bp.metadata.namespace },
    ...(bp.spec.runtime?.logLevel ? [{ name: ENV.logLevel, value: bp.spec.runtime.logLevel }] : []),
  ];
}

/** An input error (the driver's or planner's BATCH.terminalExitCode) is not retried; an evicted pod is not counted. */
export function failurePolicyRules(container: string, action: 'FailJob' | 'FailIndex') {
  return [
    { action, onExitCodes: { containerName: container, operator: 'In', values: [BATCH.terminalExitCode] } },
    { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
  ];
}

export function desiredPlanJob(bp: BatchPrediction, config: OperatorConfig, model: ModelServing): V1Job {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: jobMeta(bp, planJobName(bp), 'batch-plan'),
    spec: {
      backoffLimit: PLAN_BACKOFF_LIMIT,
      ...(bp.spec.activeDeadlineSeconds ? { activeDeadlineSeconds: bp.spec.activeDeadlineSeconds } : {}),
      podFailurePolicy: { rules: failurePolicyRules(BATCH.containers.plan, 'FailJob') },
      template: {
        metadata: { labels: batchLabels(bp, 'batch-plan') },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          securityContext: POD_SECURITY_CONTEXT,
          ...placement(model),
          containers: [
            {
              name: BATCH.containers.plan,
              // The planner is JS: the runtime image, whatever the model's engine.
              image: config.runtimeImage,
              imagePullPolicy: 'IfNotPresent',
              args: ['batch-plan'],
              env: batchEnv(bp, model),
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext: SECURITY_CONTEXT,
              terminationMessagePath: PATHS.terminationLog,
              terminationMessagePolicy: 'FallbackToLogsOnError',
              volumeMounts: [{ name: TMP_VOLUME, mountPath: '/tmp' }, ...storageMounts(bp)],
            },
          ],
          volumes: [{ name: TMP_VOLUME, emptyDir: { sizeLimit: '64Mi' } }, ...storageVolumes(bp)],
        },
      },
    },
  };
}
