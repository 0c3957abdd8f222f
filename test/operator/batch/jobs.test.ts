import type { V1Container, V1EnvVar } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../../operator/config.ts';
import { desiredPlanJob } from '../../../operator/controller/batch/plan-job.ts';
import { desiredShardJob } from '../../../operator/controller/batch/shard-job.ts';
import { batchJobSpec } from '../../../operator/controller/batch/spec.ts';
import { desiredDeployment } from '../../../operator/controller/desired/deployment.ts';
import { BATCH, ENV, HEALTH_PORT, PROBES } from '../../../runtime/contract.ts';
import { batch, modelOf, modelServing } from './fixtures.ts';

const envOf = (c: V1Container | undefined) => Object.fromEntries((c?.env ?? []).map((e: V1EnvVar) => [e.name, e.value ?? e.valueFrom]));
const RESTRICTED = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};
const ms = modelServing({ nodeSelector: { type: 'real' } });
const bp = batch();
const model = modelOf(bp, ms);

describe('desiredPlanJob', () => {
  const job = desiredPlanJob(bp, DEFAULT_CONFIG, model);
  const pod = job.spec?.template.spec;
  const plan = pod?.containers[0];

  it('is <name>-plan, owned by the BatchPrediction, labelled for it, and retried twice', () => {
    expect(job.metadata).toMatchObject({
      name: 'score-plan',
      namespace: 'ml',
      labels: {
        'modelship.dev/batch': 'score',
        'app.kubernetes.io/component': 'batch-plan',
        'app.kubernetes.io/managed-by': 'modelship-operator',
      },
      ownerReferences: [{ apiVersion: 'modelship.dev/v1alpha1', kind: 'BatchPrediction', name: 'score', uid: 'bp-uid', controller: true }],
    });
    expect(job.spec?.backoffLimit).toBe(2);
    expect(job.spec?.template.metadata?.labels?.['modelship.dev/batch']).toBe('score');
    // An input error (the planner's terminal exit code) fails the Job at once; an evicted pod is not counted.
    expect(job.spec?.podFailurePolicy?.rules).toEqual([
      { action: 'FailJob', onExitCodes: { containerName: 'plan', operator: 'In', values: [BATCH.terminalExitCode] } },
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget', status: 'True' }] },
    ]);
  });

  it('runs `batch-plan` in the JS runtime image with the batch spec, under Pod Security "restricted", with no token', () => {
    expect(pod).toMatchObject({
      restartPolicy: 'Never',
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      nodeSelector: { type: 'real' },
    });
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod?.containers.map((c) => c.name)).toEqual(['plan']);
    expect(plan).toMatchObject({
      image: DEFAULT_CONFIG.runtimeImage,
      args: ['batch-plan'],
      terminationMessagePolicy: 'FallbackToLogsOnError',
    });
    expect(plan?.securityContext).toEqual(RESTRICTED);
    expect(JSON.parse(envOf(plan)[ENV.batchSpec] as string)).toEqual(batchJobSpec(bp, model));
    expect(plan?.volumeMounts).toEqual([
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'batch-input', mountPath: BATCH.inputSecretDir, readOnly: true },
      { name: 'batch-output', mountPath: BATCH.outputSecretDir, readOnly: true },
    ]);
  });

  it('holds the input and output keys as files, never as variables, and never the bundle keys', () => {
    const text = JSON.stringify(job);
    expect(text).not.toContain('bundle-keys');
    expect(plan?.env?.every((e) => e.valueFrom === undefined)).toBe(true);
    expect(pod?.volumes?.find((v) => v.name === 'batch-input')?.secret?.secretName).toBe('in-keys');
  });

  it('bounds the run by spec.activeDeadlineSeconds', () => {
    expect(desiredPlanJob(batch({ activeDeadlineSeconds: 600 }), DEFAULT_CONFIG, model).spec?.activeDeadlineSeconds).toBe(600);
    expect(job.spec).not.toHaveProperty('activeDeadlineSeconds');
  });
});

describe('desiredShardJob', () => {
  const job = desiredShardJob(bp, DEFAULT_CONFIG, model, 5);
  const pod = job.spec?.template.spec;
  const init = pod?.initContainers ?? [];
  const sidecar = init.find((c) => c.name === 'model');
  const driver = pod?.containers[0];
  const serving = desiredDeployment(ms, DEFAULT_CONFIG).spec?.template.spec;

  it("is an Indexed Job of the plan's shards, as parallel as asked and never more than it has, each shard retried", () => {
    expect(job.metadata).toMatchObject({
      name: 'score',
      labels: { 'modelship.dev/batch': 'score', 'app.kubernetes.io/component': 'batch-shard' },
    });
    expect(job.spec).toMatchObject({ completionMode: 'Indexed', completions: 5, parallelism: 2, backoffLimitPerIndex: 3 });
    expect(desiredShardJob(batch({ parallelism: 16 }), DEFAULT_CONFIG, model, 3).spec?.parallelism).toBe(3);
    expect(job.spec?.podFailurePolicy?.rules?.[0]).toEqual({
      action: 'FailIndex',
      onExitCodes: { containerName: 'driver', operator: 'In', values: [BATCH.terminalExitCode] },
    });
    expect(pod).toMatchObject({ restartPolicy: 'Never', automountServiceAccountToken: false, nodeSelector: { type: 'real' } });
  });

  it('prepares the bundle exactly as a ModelServing pod does (the bundle keys there only)', () => {
    expect(init.map((c) => c.name)).toEqual(['prepare', 'model']);
    expect(init[0]).toEqual(serving?.initContainers?.[0]);
    const withKeys = [...init, ...(pod?.containers ?? [])].filter((c) => JSON.stringify(c.env).includes('bundle-keys'));
    expect(withKeys.map((c) => c.name)).toEqual(['prepare']);
  });

  it('runs the model as a native sidecar: the serving container without ports, on the socket, started once ready', () => {
    const runtime = serving?.containers[0];
    expect(sidecar).toMatchObject({ restartPolicy: 'Always', args: ['batch-model'], image: runtime?.image, resources: runtime?.resources });
    expect(sidecar?.securityContext).toEqual(RESTRICTED);
    expect(sidecar).not.toHaveProperty('ports');
    expect(sidecar).not.toHaveProperty('readinessProbe');
    expect(sidecar?.startupProbe?.httpGet).toEqual({ path: PROBES.ready, port: HEALTH_PORT });
    const env = envOf(sidecar);
    expect(env[ENV.batchSocket]).toBe(BATCH.socket);
    // The serving container's environment, its CPU limit read from this container.
    const { [ENV.cpuLimit]: servingCpu, ...servingEnv } = envOf(runtime);
    expect(env).toMatchObject(servingEnv);
    expect(env[ENV.cpuLimit]).toEqual({ resourceFieldRef: { containerName: 'model', resource: 'limits.cpu', divisor: '1' } });
    expect(servingCpu).toBeDefined();
    expect(sidecar?.volumeMounts).toEqual([...(runtime?.volumeMounts ?? []), { name: 'batch-socket', mountPath: BATCH.socketDir }]);
  });

  it('gives the storage keys to the driver alone, with the batch spec and the socket', () => {
    expect(driver).toMatchObject({ name: 'driver', args: ['batch-run'], terminationMessagePolicy: 'FallbackToLogsOnError' });
    expect(driver?.securityContext).toEqual(RESTRICTED);
    expect(JSON.parse(envOf(driver)[ENV.batchSpec] as string)).toEqual(batchJobSpec(bp, model));
    expect(envOf(driver)[ENV.batchSocket]).toBe(BATCH.socket);
    const mounting = [...init, ...(pod?.containers ?? [])].filter((c) =>
      c.volumeMounts?.some((m) => m.mountPath === BATCH.inputSecretDir || m.mountPath === BATCH.outputSecretDir),
    );
    expect(mounting.map((c) => c.name)).toEqual(['driver']);
    expect(driver?.volumeMounts?.map((m) => m.mountPath)).toEqual([BATCH.socketDir, '/tmp', BATCH.inputSecretDir, BATCH.outputSecretDir]);
    expect(driver?.resources?.limits?.memory).toBe('1Gi');
  });

  it('has no recorder, no auth sidecar and no inference logging, whatever the ModelServing asks for', () => {
    const logged = modelServing({ inferenceLogging: { topic: 'CREATE', mode: 'all', sampleRate: 1 }, auth: { mode: 'kubernetes' } });
    const j = desiredShardJob(
      bp,
      { ...DEFAULT_CONFIG, kafka: { bootstrapServers: ['k:9092'], tls: false, tlsCa: undefined, sasl: undefined } },
      modelOf(bp, logged),
      1,
    );
    const spec = j.spec?.template.spec;
    expect([...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c) => c.name)).toEqual(['prepare', 'model', 'driver']);
    expect(JSON.stringify(spec)).not.toMatch(/INFERENCE_LOG|RECORDER|AUTH_MODE|serviceAccount/);
  });

  it("installs a Python model's requirements as a ModelServing pod does, in the runtime-python image", () => {
    const py = modelOf(batch({ model: { bundle: { uri: 's3://m/p.zip', format: 'python' } } }), undefined);
    const spec = desiredShardJob(bp, DEFAULT_CONFIG, py, 1).spec?.template.spec;
    expect(spec?.initContainers?.map((c) => c.name)).toEqual(['prepare', 'install', 'model']);
    expect(spec?.initContainers?.find((c) => c.name === 'model')?.image).toBe(DEFAULT_CONFIG.runtimePythonImage);
    expect(spec?.volumes?.map((v) => v.name)).toContain('python-envs');
  });

  it('takes what the plan left of the deadline', () => {
    expect(desiredShardJob(bp, DEFAULT_CONFIG, model, 2, 99.6).spec?.activeDeadlineSeconds).toBe(99);
    expect(desiredShardJob(bp, DEFAULT_CONFIG, model, 2, -5).spec?.activeDeadlineSeconds).toBe(1);
    expect(job.spec).not.toHaveProperty('activeDeadlineSeconds');
  });
});
