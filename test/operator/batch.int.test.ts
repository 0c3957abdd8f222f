// The BatchPrediction controller against the real API server and kube-controller-manager (its Job controller makes
// the pods). The namespace's pods are sent to no node (a node selector nothing matches), so nothing runs them: the
// test ends them as a kubelet would, writing their status with the report the plan or driver container would have
// left. The plan, shard and model containers themselves run on the real node in the lead's e2e test.
import { BatchV1Api, CoreV1Api, type V1Job, type V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BatchPrediction } from '../../crds/batchprediction.schema.ts';
import { eventually } from '../../env/wait.ts';
import { DEFAULT_CONFIG } from '../../operator/config.ts';
import { BatchPredictionController } from '../../operator/controller/batch/controller.ts';
import { ModelServingController } from '../../operator/controller/controller.ts';
import { Shared } from '../../operator/controller/shared.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { BATCH, ENV } from '../../runtime/contract.ts';
import { useTestEnv } from '../env/fixtures.ts';

const env = useTestEnv();
const jobsApi = env.kubeConfig.makeApiClient(BatchV1Api);
const core = env.kubeConfig.makeApiClient(CoreV1Api);
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const kubectl = (...args: string[]) => env.kubectl(args);
let ns: string;
let shared: Shared;
let controllers: { stop(): Promise<void> }[] = [];
const models = env.modelServings(() => ns);

beforeAll(async () => {
  env.installCrd();
  ns = await env.namespace('batch-op', { nodes: 'any' });
  // No node has this label: the pods stay unscheduled, and this test plays their kubelet.
  kubectl('annotate', 'namespace', ns, 'scheduler.alpha.kubernetes.io/node-selector=modelship.dev/test-node=none');
  const config = { ...DEFAULT_CONFIG, namespaces: [ns], workers: 2 };
  const metrics = new OperatorMetrics({ processMetrics: false });
  shared = new Shared(env.kubeConfig, config, log, metrics);
  const ms = new ModelServingController(env.kubeConfig, config, log, metrics, shared);
  const bp = new BatchPredictionController(env.kubeConfig, config, log, metrics, shared);
  controllers = [ms, bp];
  await Promise.all([ms.start(), bp.start()]);
});
afterAll(async () => {
  await Promise.all(controllers.map((c) => c.stop()));
  await shared?.stop();
});

function createBatch(name: string, spec: Record<string, unknown>): void {
  env.kubectl(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'modelship.dev/v1alpha1', kind: 'BatchPrediction', metadata: { name }, spec }),
  );
}

const getBatch = (name: string) => JSON.parse(kubectl('-n', ns, 'get', 'bp', name, '-o', 'json')) as BatchPrediction;
const cond = (bp: BatchPrediction, type: string) => bp.status?.conditions?.find((c) => c.type === type);
const job = (name: string) => eventually(() => jobsApi.readNamespacedJob({ name, namespace: ns }), `Job ${name}`);
const podsOf = async (jobName: string) =>
  (await core.listNamespacedPod({ namespace: ns, labelSelector: `batch.kubernetes.io/job-name=${jobName}` })).items;
const indexOf = (pod: V1Pod) => Number(pod.metadata?.annotations?.['batch.kubernetes.io/job-completion-index']);

/** Ends a pod as its kubelet would: its phase, and `container` terminated with `exitCode` and `message`. */
function end(pod: V1Pod, container: string, exitCode: number, message: string): void {
  const now = new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
  const status = {
    phase: exitCode === 0 ? 'Succeeded' : 'Failed',
    containerStatuses: [
      {
        name: container,
        image: 'x',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', message, startedAt: now, finishedAt: now } },
      },
    ],
  };
  kubectl('-n', ns, 'patch', 'pod', pod.metadata?.name ?? '', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status }));
}

/** Waits for the pod of a shard index the Job has not seen end yet, and ends it. */
async function endShard(jobName: string, index: number, exitCode: number, report: Record<string, unknown>): Promise<void> {
  const pod = await eventually(
    async () => (await podsOf(jobName)).find((p) => indexOf(p) === index && !['Succeeded', 'Failed'].includes(p.status?.phase ?? '')),
    `a pod of shard ${index}`,
  );
  end(pod, BATCH.containers.driver, exitCode, `${JSON.stringify({ shard: index, seconds: 1, ...report })}\n`);
}

const input = (bucket: string) => ({
  uri: `s3://${bucket}/in/`,
  storage: { endpoint: 'http://minio.minio:9000', secretRef: { name: 'keys' } },
});

describe('BatchPrediction controller', () => {
  it('waits for its ModelServing (Pending, ModelServingNotFound), and plans once it exists', async () => {
    createBatch('waits', { model: { modelServing: 'iris' }, input: input('data'), output: { uri: 's3://out/waits' } });
    const waiting = await eventually(async () => {
      const bp = getBatch('waits');
      return cond(bp, 'Complete')?.reason === 'ModelServingNotFound' ? bp : undefined;
    }, 'ModelServingNotFound');
    expect(waiting.status).toMatchObject({ phase: 'Pending', outputUri: 's3://out/waits' });
    expect(waiting.status?.completionTime).toBeUndefined();
    await expect(jobsApi.readNamespacedJob({ name: 'waits-plan', namespace: ns })).rejects.toMatchObject({ code: 404 });

    await models.create('iris', {
      bundle: { uri: 's3://models/iris.zip', storage: { endpoint: 'http://minio.minio:9000', secretRef: { name: 'bundle-keys' } } },
      replicas: 0,
    });
    const plan = await job('waits-plan');
    expect(plan.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'BatchPrediction', name: 'waits', uid: waiting.metadata.uid });
    await eventually(async () => getBatch('waits').status?.phase === 'Planning', 'Planning');
  });

  it('runs the plan pod as specified: batch-plan, the batch spec, the storage keys as files, restricted, no token', async () => {
    const [pod] = await eventually(async () => {
      const pods = await podsOf('waits-plan');
      return pods.length ? pods : undefined;
    }, 'the plan pod');
    const spec = pod?.spec;
    expect(spec?.restartPolicy).toBe('Never');
    expect(spec?.automountServiceAccountToken).toBe(false);
    expect(spec?.volumes?.some((v) => v.projected)).toBe(false);
    const plan = spec?.containers[0];
    expect(plan).toMatchObject({ name: 'plan', args: ['batch-plan'], terminationMessagePolicy: 'FallbackToLogsOnError' });
    expect(plan?.securityContext).toMatchObject({ runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    const batchSpec = JSON.parse(plan?.env?.find((e) => e.name === ENV.batchSpec)?.value ?? '{}');
    expect(batchSpec).toMatchObject({
      input: { uri: 's3://data/in/', storage: { endpoint: 'http://minio.minio:9000', credentialsDir: BATCH.inputSecretDir } },
      output: { uri: 's3://out/waits', storage: { credentialsDir: BATCH.outputSecretDir } },
      batchSize: 1024,
    });
    expect(spec?.volumes?.find((v) => v.name === 'batch-input')?.secret).toMatchObject({ secretName: 'keys' });
  });

  it("creates the shard Job from the plan's report and reports a run that succeeds: rows, shards, skipped ones, rows/s", async () => {
    const [planPod] = await podsOf('waits-plan');
    end(planPod as V1Pod, BATCH.containers.plan, 0, `${JSON.stringify({ shards: 3, rows: 900, files: 2 })}\n`);
    const shards: V1Job = await job('waits');
    expect(shards.spec).toMatchObject({ completionMode: 'Indexed', completions: 3, parallelism: 2, backoffLimitPerIndex: 3 });
    const running = await eventually(async () => {
      const bp = getBatch('waits');
      return bp.status?.phase === 'Running' && bp.status.shards?.running === 2 ? bp : undefined;
    }, 'Running with two shards');
    expect(running.status?.rows).toEqual({ total: 900, done: 0, failed: 0 });
    expect(cond(running, 'Planned')).toMatchObject({ status: 'True', message: '900 rows in 2 files: 3 shards' });

    // The shard pods the Job controller made: the bundle prepared, the model beside, the keys with the driver only.
    const pod = (await podsOf('waits'))[0] as V1Pod;
    expect(pod.spec?.initContainers?.map((c) => [c.name, c.restartPolicy ?? ''])).toEqual([
      ['prepare', ''],
      ['model', 'Always'],
    ]);
    expect(pod.spec?.containers.map((c) => c.name)).toEqual(['driver']);
    expect(pod.metadata?.labels?.['modelship.dev/batch']).toBe('waits');

    await endShard('waits', 0, 0, { rows: 300, errorRows: 2 });
    await endShard('waits', 1, 0, { rows: 300, errorRows: 0, skipped: true });
    await endShard('waits', 2, 0, { rows: 300, errorRows: 0 });
    const done = await eventually(async () => {
      const bp = getBatch('waits');
      return bp.status?.phase === 'Succeeded' ? bp : undefined;
    }, 'Succeeded');
    expect(done.status).toMatchObject({
      rows: { total: 900, done: 900, failed: 2 },
      shards: { total: 3, succeeded: 3, failed: 0, running: 0, skipped: 1 },
      errorsUri: 's3://out/waits/errors/',
    });
    expect(done.status?.rowsPerSecond).toBeGreaterThan(0);
    expect(done.status?.completionTime).toBeDefined();
    expect(cond(done, 'Complete')).toMatchObject({ status: 'True', reason: 'Succeeded' });
    expect(kubectl('-n', ns, 'get', 'bp', 'waits', '--no-headers')).toMatch(/^waits\s+Succeeded\s+900\s+900\s+3\s+\d+\s/);
  });

  it('fails a shard whose input is malformed at once (no retry), goes on with the others, and says why', async () => {
    createBatch('broken', { model: { modelServing: 'iris' }, input: input('data'), output: { uri: 's3://out/broken' }, parallelism: 3 });
    const [planPod] = await eventually(async () => {
      const pods = await podsOf('broken-plan');
      return pods.length ? pods : undefined;
    }, 'the plan pod');
    end(planPod as V1Pod, BATCH.containers.plan, 0, `${JSON.stringify({ shards: 3, rows: 30, files: 3 })}\n`);
    await job('broken');
    const code = 'MS_ERR_BATCH_INPUT_FORMAT';
    const message = 'input file s3://data/in/b.csv cannot be read as csv: line 3: 2 fields, 5 expected';
    await endShard('broken', 1, BATCH.terminalExitCode, { rows: 0, errorRows: 0, code, message });
    await endShard('broken', 0, 0, { rows: 10, errorRows: 0 });
    await endShard('broken', 2, 0, { rows: 10, errorRows: 0 });
    const failed = await eventually(async () => {
      const bp = getBatch('broken');
      return bp.status?.phase === 'Failed' ? bp : undefined;
    }, 'Failed');
    expect(failed.status).toMatchObject({
      rows: { total: 30, done: 20 },
      shards: { total: 3, succeeded: 2, failed: 1 },
      failedShards: [{ index: 1, code, message }],
    });
    expect(cond(failed, 'Failed')).toMatchObject({ status: 'True', reason: code });
    // The failed index ran once: the pod failure policy did not retry an input error.
    expect((await podsOf('broken')).filter((p) => indexOf(p) === 1)).toHaveLength(1);
    const events = JSON.parse(kubectl('-n', ns, 'get', 'events', '--field-selector', 'involvedObject.name=broken', '-o', 'json')).items.map(
      (e: { reason: string }) => e.reason,
    );
    expect(events).toEqual(expect.arrayContaining(['Created', code]));
  });

  it("fails for good when the plan fails on its input, with the plan report's code", async () => {
    createBatch('empty', {
      model: { bundle: { uri: 's3://models/iris.zip' } },
      input: input('nothing'),
      output: { uri: 's3://out/empty' },
    });
    const [planPod] = await eventually(async () => {
      const pods = await podsOf('empty-plan');
      return pods.length ? pods : undefined;
    }, 'the plan pod');
    const report = {
      shards: 0,
      rows: 0,
      files: 0,
      code: 'MS_ERR_BATCH_INPUT_NOT_FOUND',
      message: 'no input file matches s3://nothing/in/',
    };
    end(planPod as V1Pod, BATCH.containers.plan, BATCH.terminalExitCode, `${JSON.stringify(report)}\n`);
    const failed = await eventually(async () => {
      const bp = getBatch('empty');
      return bp.status?.phase === 'Failed' ? bp : undefined;
    }, 'Failed');
    expect(cond(failed, 'Planned')).toMatchObject({ status: 'False', reason: 'MS_ERR_BATCH_INPUT_NOT_FOUND' });
    expect(cond(failed, 'Failed')?.message).toContain('no input file matches s3://nothing/in/');
    expect(failed.status?.completionTime).toBeDefined();
    // Not retried: one plan pod, and no shard Job.
    expect(await podsOf('empty-plan')).toHaveLength(1);
    await expect(jobsApi.readNamespacedJob({ name: 'empty', namespace: ns })).rejects.toMatchObject({ code: 404 });
  });
});
