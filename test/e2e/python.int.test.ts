// End to end with Python bundles, real everything: the operator (in-process) reconciles ModelServings of
// `bundle.format: python`, pinned to the process node, whose pods run the runtime-python image as real
// runtime processes with the environment's CPython and scikit-learn. They fetch the Hopsworks and ml-deploy
// example bundles from MinIO and log inference, feedback and event records to Kafka. Beside them, the
// same iris model converted to ONNX (`bundle.format: onnx`, the default runtime image, no Python). Traffic
// goes to the ready endpoints of the Services' EndpointSlices, as kube-proxy would send it.
import { CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { pushBundle } from '../../cli/push.ts';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG } from '../../operator/config.ts';
import { ModelServingController } from '../../operator/controller/controller.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { readyEndpointUrls } from '../../env/endpoints.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { type ConsumedRecord, readTopic } from '../../env/kafka.ts';
import { eventually } from '../../env/wait.ts';

const env = useTestEnv();
const core = env.kubeConfig.makeApiClient(CoreV1Api);
const discovery = env.kubeConfig.makeApiClient(DiscoveryV1Api);
const EXAMPLES = join(import.meta.dirname, '../../examples');
/** The topic examples/ml-deploy-iris's feedback() names for its event (fixed by the example's code). */
const EVENT_TOPIC = 'iris-feedback-events';
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];
/** Python start-up (uv, CPython, importing scikit-learn in each worker) is slow on a small machine. */
const READY_TIMEOUT = 120_000;
const run = randomBytes(3).toString('hex');
let ns: string;
let bucket: string;
const sha: Record<string, string> = {};
let controller: ModelServingController;
let eventTopicMadeHere = false;
const names = ['hopsworks-iris', 'ml-deploy-iris', 'broken-py', 'iris-onnx', 'broken-onnx'];

const ms = env.modelServings(() => ns);
const cond = (m: ModelServing, type: string) => m.status?.conditions?.find((c) => c.type === type);

/** The ready endpoints of a Service, from its EndpointSlices (what kube-proxy programs). */
async function readyEndpoints(service: string): Promise<string[]> {
  const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: `kubernetes.io/service-name=${service}` });
  return readyEndpointUrls(slices.items);
}

/** Waits for the ModelServing to be Ready with one ready replica, and returns its one ready endpoint. */
async function readyModel(name: string): Promise<{ m: ModelServing; base: string }> {
  const m = await eventually(
    async () => {
      const o = await ms.get(name);
      return cond(o, 'Ready')?.status === 'True' && o.status?.readyReplicas === 1 ? o : undefined;
    },
    `${name} Ready with 1 ready replica`,
    READY_TIMEOUT,
  );
  const [base] = await eventually(async () => {
    const e = await readyEndpoints(name);
    return e.length === 1 ? e : undefined;
  }, `one ready endpoint of ${name} in the EndpointSlice`);
  return { m, base: base as string };
}

async function call(url: string, body?: unknown, requestId?: string): Promise<{ status: number; headers: Headers; body: any }> {
  const r = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(requestId ? { 'x-request-id': requestId } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (/metrics)
  }
  return { status: r.status, headers: r.headers, body: parsed };
}

const v2Input = (...rows: number[][]) => ({ inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP64', data: rows.flat() }] });
const values = (records: ConsumedRecord[]) => records.map((r) => JSON.parse(r.value) as Record<string, any>);

/** Reads `topic` until a record with key `key` and `type` arrived; returns those. */
async function recordsOf(topic: string, key: string, type: string): Promise<Record<string, any>[]> {
  const matching = (got: ConsumedRecord[]) => values(got.filter((r) => r.key === key)).filter((v) => v.type === type);
  const got = await readTopic(env.info.kafka.bootstrapServers, topic, (got) => matching(got).length > 0, 30_000);
  return matching(got);
}

async function pushExample(dir: string, key: string): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), 'e2e-py-'));
  const packed = await packBundle(dir, join(out, 'bundle.zip'));
  await pushBundle(packed.file, `s3://${bucket}/${key}/bundle.zip`, { ...env.info.s3 }, { progress: false });
  return packed.sha256;
}

async function pushFiles(files: Record<string, string>, key: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'e2e-py-bad-'));
  for (const [f, text] of Object.entries(files)) await writeFile(join(dir, f), text);
  const packed = await packBundle(dir, join(dir, '..', `${key.replaceAll('/', '-')}-${run}.zip`));
  await pushBundle(packed.file, `s3://${bucket}/${key}/bundle.zip`, { ...env.info.s3 }, { progress: false });
}

function spec(key: string, extra: Record<string, unknown> = {}, format = 'python'): Record<string, unknown> {
  return {
    bundle: {
      uri: `s3://${bucket}/${key}/bundle.zip`,
      format,
      storage: { endpoint: env.info.s3.endpoint, secretRef: { name: 'minio' } },
      ...(sha[key] ? { sha256: sha[key] } : {}),
    },
    replicas: 1,
    nodeSelector: { type: 'process' },
    tolerations: [{ key: 'modelship.dev/process-node', operator: 'Exists', effect: 'NoSchedule' }],
    ...extra,
  };
}

beforeAll(async () => {
  env.installCrd();
  ns = await env.namespace('e2e-py', { nodes: 'any' });
  bucket = await env.bucket('e2e-py');
  sha['hopsworks-iris/1'] = await pushExample(join(EXAMPLES, 'hopsworks-iris'), 'hopsworks-iris/1');
  sha['ml-deploy-iris/1'] = await pushExample(join(EXAMPLES, 'ml-deploy-iris'), 'ml-deploy-iris/1');
  // Broken Python bundles: a syntax error (the plugin cannot load), and an init that raises.
  await pushFiles({ 'predict.py': 'def predict(x)\n    return x\n' }, 'broken/syntax');
  await pushFiles(
    { 'predict.py': 'def init(p):\n    raise RuntimeError("weights.bin is missing from the bundle")\ndef predict(x):\n    return x\n' },
    'broken/init',
  );
  sha['iris-onnx/1'] = await pushExample(join(EXAMPLES, 'iris-onnx'), 'iris-onnx/1');
  await pushFiles({ 'model.onnx': 'not a graph: a truncated upload' }, 'broken/onnx');
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'minio' }, stringData: { accessKey: env.info.s3.accessKey, secretKey: env.info.s3.secretKey } },
  });
  // The operator makes the inference topic (CREATE), not a model's event topics: those must exist.
  if (!(await env.kafkaAdmin().listTopics()).includes(EVENT_TOPIC)) {
    await env.kafkaAdmin().createTopics({ topics: [EVENT_TOPIC], partitions: 1, replicas: 1 });
    eventTopicMadeHere = true;
  }
  controller = new ModelServingController(
    env.kubeConfig,
    {
      ...DEFAULT_CONFIG,
      namespaces: [ns],
      workers: 2,
      preStopSeconds: 1,
      drainSeconds: 5,
      kafka: { bootstrapServers: env.info.kafka.bootstrapServers, tls: false, tlsCa: undefined, sasl: undefined },
      topicPartitions: 1,
    },
    pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    new OperatorMetrics({ processMetrics: false }),
  );
  await controller.start();
  // All three at once: their Python start-ups overlap.
  await ms.create('hopsworks-iris', spec('hopsworks-iris/1', { inferenceLogging: { topic: 'CREATE', deleteTopicOnDelete: true } }));
  await ms.create(
    'ml-deploy-iris',
    spec('ml-deploy-iris/1', { inferenceLogging: { topic: 'CREATE', deleteTopicOnDelete: true, eventTopics: [EVENT_TOPIC] } }),
  );
  await ms.create('broken-py', spec('broken/syntax'));
  await ms.create('iris-onnx', spec('iris-onnx/1', {}, 'onnx'));
  await ms.create('broken-onnx', spec('broken/onnx', {}, 'onnx'));
}, 180_000);

afterAll(async () => {
  for (const n of names) await ms.delete(n).catch(() => {});
  // Let the process node drain and remove the pods (and the finalizer the topics) before the namespace goes.
  await eventually(async () => (await core.listNamespacedPod({ namespace: ns })).items.length === 0, 'pods gone', 60_000).catch(() => {});
  await eventually(async () => (await Promise.all(names.map((n) => ms.gone(n)))).every(Boolean), 'ModelServings gone', 30_000).catch(
    () => {},
  );
  await controller?.stop();
  if (eventTopicMadeHere)
    await env
      .kafkaAdmin()
      .deleteTopics({ topics: [EVENT_TOPIC] })
      .catch(() => {});
}, 120_000);

describe('Python bundles end to end on the process node', () => {
  it('Hopsworks (class Predict): Ready, v1 :predict and :classify, v2 infer, the inference record in Kafka', async () => {
    const t0 = performance.now();
    const { m, base } = await readyModel('hopsworks-iris');
    process.stderr.write(`hopsworks-iris Ready after ${((performance.now() - t0) / 1000).toFixed(1)} s of this test\n`);
    expect(cond(m, 'BundleReady')).toMatchObject({ status: 'True', reason: 'Loaded' });
    expect(cond(m, 'LoggingReady')).toMatchObject({ status: 'True', reason: 'TopicReady' });
    const topic = m.status?.inferenceLogging?.topic as string;
    expect(topic).toBe(`modelship.${ns}.hopsworks-iris.inference`);
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/instance=hopsworks-iris' })).items;
    expect(pods.map((p) => p.spec?.nodeName)).toEqual([env.info.processNode]);
    expect(pods[0]?.spec?.containers[0]?.image).toMatch(/(^|\/)modelship\/runtime-python:/);

    const v1 = (verb: string, id: string) => call(`${base}/v1/models/hopsworks-iris:${verb}`, { instances: [SETOSA, VIRGINICA] }, id);
    const predicted = await v1('predict', `hw-predict-${run}`);
    expect(predicted).toMatchObject({ status: 200, body: { predictions: [0, 2] } });
    expect(predicted.headers.get('x-request-id')).toBe(`hw-predict-${run}`);
    expect(await v1('classify', `hw-classify-${run}`)).toMatchObject({
      status: 200,
      body: {
        predictions: [
          [1, 0, 0],
          [0, 0, 1],
        ],
      },
    });
    const id = `hw-infer-${run}`;
    const v2 = await call(`${base}/v2/models/hopsworks-iris/infer`, v2Input(SETOSA, VIRGINICA), id);
    expect(v2.status).toBe(200);
    expect(v2.body.outputs).toEqual([{ name: 'predictions', datatype: 'INT64', shape: [2], data: [0, 2] }]);

    const [record] = await recordsOf(topic, id, 'inference');
    expect(record).toMatchObject({
      schemaVersion: 1,
      type: 'inference',
      requestId: id,
      protocol: 'v2',
      model: 'hopsworks-iris',
      namespace: ns,
      bundleSha256: sha['hopsworks-iris/1'],
      output: [{ name: 'predictions', datatype: 'INT64', shape: [2], data: [0, 2] }],
    });
    const [v1Record] = await recordsOf(topic, `hw-predict-${run}`, 'inference');
    expect(v1Record).toMatchObject({ protocol: 'v1', input: [SETOSA, VIRGINICA], output: [0, 2] });
  });

  it('ml-deploy (class UserModel): predict, feedback joined by request id in Kafka, gauges on /metrics, the event, a custom route', async () => {
    const { m, base } = await readyModel('ml-deploy-iris');
    const topic = m.status?.inferenceLogging?.topic as string;
    expect(topic).toBe(`modelship.${ns}.ml-deploy-iris.inference`);
    const id = `mld-infer-${run}`;
    const r = await call(`${base}/v2/models/ml-deploy-iris/infer`, v2Input(SETOSA, VIRGINICA), id);
    expect(r.status).toBe(200);
    expect(r.body.outputs).toEqual([{ name: 'y_predicted', datatype: 'INT64', shape: [2], data: [0, 2] }]);

    const feedbackId = `mld-feedback-${run}`;
    const fb = await call(
      `${base}/v2/models/ml-deploy-iris/feedback`,
      { id, input: [SETOSA, VIRGINICA], y_true: [0, 2], y_predicted: [0, 1] },
      feedbackId,
    );
    expect(fb.status).toBe(200);
    expect(fb.body).toMatchObject({ id, model: 'ml-deploy-iris', logged: true, result: { y_true: [0, 2], y_predicted: [0, 1] } });

    // The inference and its feedback, joined by the inference's request id (the record key of both).
    const [inference] = await recordsOf(topic, id, 'inference');
    expect(inference).toMatchObject({ requestId: id, model: 'ml-deploy-iris', namespace: ns, bundleSha256: sha['ml-deploy-iris/1'] });
    const [feedback] = await recordsOf(topic, id, 'feedback');
    expect(feedback).toMatchObject({
      schemaVersion: 1,
      type: 'feedback',
      requestId: inference?.requestId,
      feedbackRequestId: feedbackId,
      model: 'ml-deploy-iris',
      namespace: ns,
      feedback: { input: [SETOSA, VIRGINICA], y_true: [0, 2], y_predicted: [0, 1] },
    });

    // The plugin's metrics, as Prometheus gauges of the pod.
    const metrics = await call(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.body).toContain('modelship_plugin_accuracy{model="ml-deploy-iris"} 0.5');
    expect(metrics.body).toMatch(/modelship_plugin_f1\{model="ml-deploy-iris"\} 0\.333/);
    expect(metrics.body).not.toMatch(/modelship_plugin_signals_rejected_total\{[^}]*kind="event"/);

    // The plugin's event, on the topic the ModelServing allows, keyed and joined by the inference's id.
    const [event] = await recordsOf(EVENT_TOPIC, id, 'event');
    expect(event).toMatchObject({
      schemaVersion: 1,
      type: 'event',
      requestId: id,
      model: 'ml-deploy-iris',
      namespace: ns,
      value: { input: [SETOSA, VIRGINICA], target: { y_true: [0, 2], y_predicted: [0, 1] } },
    });
    expect(metrics.body).toContain(`modelship_plugin_events_total{model="ml-deploy-iris",topic="${EVENT_TOPIC}"} 1`);

    const stats = await call(`${base}/v2/models/ml-deploy-iris/custom/stats`);
    expect(stats).toMatchObject({ status: 200, body: { feedback_count: 2 } });
  });

  it('a broken Python bundle fails Ready with the Python error; an init that raises too; kubectl get ms shows the code', async () => {
    const failsWith = (code: string) =>
      eventually(
        async () => {
          const m = await ms.get('broken-py');
          return cond(m, 'Ready')?.reason === code && m.status?.observedGeneration === m.metadata.generation ? m : undefined;
        },
        `broken-py Ready=False with ${code}`,
        90_000,
      );
    const syntax = await failsWith('MS_ERR_PLUGIN_LOAD');
    const ready = cond(syntax, 'Ready');
    expect(ready?.status).toBe('False');
    expect(ready?.message).toMatch(/loading plugin predict\.py failed: SyntaxError: .*\(predict\.py, line 1\)/);
    expect(cond(syntax, 'BundleReady')).toMatchObject({ status: 'False', reason: 'MS_ERR_PLUGIN_LOAD' });
    const row = env.kubectl(['get', 'ms', 'broken-py', '-n', ns, '-o', 'wide']);
    process.stderr.write(`kubectl get ms broken-py -o wide:\n${row}`);
    expect(row).toContain('MS_ERR_PLUGIN_LOAD');

    ms.patch('broken-py', { bundle: { uri: `s3://${bucket}/broken/init/bundle.zip` } });
    const init = await failsWith('MS_ERR_PLUGIN_INIT_FAILED');
    expect(cond(init, 'Ready')?.message).toContain('plugin init() failed: RuntimeError: weights.bin is missing from the bundle');
    const row2 = env.kubectl(['get', 'ms', 'broken-py', '-n', ns, '-o', 'wide']);
    process.stderr.write(`kubectl get ms broken-py -o wide:\n${row2}`);
    expect(row2).toContain('MS_ERR_PLUGIN_INIT_FAILED');
  });

  it('an ONNX bundle (no code, no Python) serves the same classes from the default runtime image; a corrupt graph fails Ready', async () => {
    const { base } = await readyModel('iris-onnx');
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'app.kubernetes.io/instance=iris-onnx' })).items;
    expect(pods[0]?.spec?.containers[0]?.image).toMatch(/(^|\/)modelship\/runtime:/);
    const v2 = await call(`${base}/v2/models/iris-onnx/infer`, v2Input(SETOSA, VIRGINICA));
    expect(v2).toMatchObject({
      status: 200,
      body: { outputs: [{ name: 'predict', datatype: 'INT64', data: [0, 2] }, { name: 'predict_proba' }] },
    });
    expect(await call(`${base}/v1/models/iris-onnx:predict`, { instances: [VIRGINICA] })).toMatchObject({
      status: 200,
      body: { predictions: [2] },
    });
    const bad = await call(`${base}/v2/models/iris-onnx/infer`, {
      inputs: [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }],
    });
    expect(bad).toMatchObject({ status: 400, body: { code: 'MS_ERR_INPUT_INVALID' } });
    expect(bad.body.error).toContain('input "input" (instance 0) has 3 values; the model declares 4');

    const broken = await eventually(
      async () => {
        const m = await ms.get('broken-onnx');
        return cond(m, 'Ready')?.reason === 'MS_ERR_PLUGIN_LOAD' ? m : undefined;
      },
      'broken-onnx Ready=False with MS_ERR_PLUGIN_LOAD',
      90_000,
    );
    expect(cond(broken, 'Ready')?.message).toMatch(/loading plugin model\.onnx failed: ONNX Runtime: .*protobuf parsing failed/i);
  });
});
