// End to end, real everything: the operator (in-process) reconciles a ModelServing pinned to the process
// node, whose pods are real runtime processes that fetch the iris bundle from MinIO and log to Kafka. Traffic
// goes to the ready endpoints of the Service's EndpointSlices, as kube-proxy would send it.
import { AppsV1Api, AutoscalingV2Api, CoreV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { pushBundle } from '../../cli/push.ts';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG } from '../../operator/config.ts';
import { ModelServingController } from '../../operator/controller/controller.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { readyEndpointUrls } from '../../env/endpoints.ts';
import { readTopic } from '../../env/kafka.ts';
import { eventually } from '../../env/wait.ts';

const env = useTestEnv();
const core = env.kubeConfig.makeApiClient(CoreV1Api);
const apps = env.kubeConfig.makeApiClient(AppsV1Api);
const discovery = env.kubeConfig.makeApiClient(DiscoveryV1Api);
const autoscaling = env.kubeConfig.makeApiClient(AutoscalingV2Api);
const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');
let ns: string;
let bucket: string;
let sha: string;
let controller: ModelServingController;

const ms = env.modelServings(() => ns);
const cond = (m: ModelServing, type: string) => m.status?.conditions?.find((c) => c.type === type);

/** The ready endpoints of a Service, from its EndpointSlices (what kube-proxy programs). */
async function readyEndpoints(service: string): Promise<string[]> {
  const slices = await discovery.listNamespacedEndpointSlice({ namespace: ns, labelSelector: `kubernetes.io/service-name=${service}` });
  return readyEndpointUrls(slices.items);
}

/** Waits for Ready=False with the runtime's error code as its reason. */
function failsWith(code: string): Promise<ModelServing> {
  return eventually(
    async () => {
      const m = await ms.get('iris');
      return cond(m, 'Ready')?.reason === code ? m : undefined;
    },
    `Ready=False with ${code}`,
    90_000,
  );
}

const features = (f: number[]) => ({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', data: f }] });
async function predict(base: string, requestId?: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${base}/v2/models/iris/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}) },
    body: JSON.stringify(features([5.1, 3.5, 1.4, 0.2])),
  });
  return { status: r.status, body: await r.json() };
}

beforeAll(async () => {
  env.installCrd();
  ns = await env.namespace('e2e', { nodes: 'any' });
  bucket = await env.bucket('e2e');
  const packed = await packBundle(IRIS, join(await mkdtemp(join(tmpdir(), 'e2e-')), 'iris.zip'));
  sha = packed.sha256;
  await pushBundle(packed.file, `s3://${bucket}/iris/1/bundle.zip`, { ...env.info.s3 }, { progress: false });
  await pushBundle(packed.file, `s3://${bucket}/iris/2/bundle.zip`, { ...env.info.s3 }, { progress: false });
  // A bundle whose init() throws, as a model missing a file would.
  const brokenDir = await mkdtemp(join(tmpdir(), 'e2e-broken-'));
  await writeFile(
    join(brokenDir, 'predict.mjs'),
    "export async function init() { throw new Error('weights.bin is missing from the bundle'); }\nexport function predict(x) { return x; }\n",
  );
  const broken = await packBundle(brokenDir, join(brokenDir, '..', `${basename(brokenDir)}.zip`));
  await pushBundle(broken.file, `s3://${bucket}/broken/1/bundle.zip`, { ...env.info.s3 }, { progress: false });
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'minio' }, stringData: { accessKey: env.info.s3.accessKey, secretKey: env.info.s3.secretKey } },
  });
  controller = new ModelServingController(
    env.kubeConfig,
    {
      ...DEFAULT_CONFIG,
      namespaces: [ns],
      workers: 2,
      preStopSeconds: 2,
      drainSeconds: 10,
      kafka: { bootstrapServers: env.info.kafka.bootstrapServers, tls: false, tlsCa: undefined, sasl: undefined },
      topicPartitions: 1,
    },
    pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    new OperatorMetrics({ processMetrics: false }),
  );
  await controller.start();
  await ms.create('iris', {
    bundle: {
      uri: `s3://${bucket}/iris/1/bundle.zip`,
      sha256: sha,
      storage: { endpoint: env.info.s3.endpoint, secretRef: { name: 'minio' } },
    },
    replicas: 2,
    nodeSelector: { type: 'process' },
    tolerations: [{ key: 'modelship.dev/process-node', operator: 'Exists', effect: 'NoSchedule' }],
    inferenceLogging: { topic: 'CREATE', deleteTopicOnDelete: true },
  });
}, 180_000);

afterAll(async () => {
  await ms.delete('iris').catch(() => {});
  // Let the process node drain and remove the pods (and the finalizer the topic) before the namespace goes.
  await eventually(async () => (await core.listNamespacedPod({ namespace: ns })).items.length === 0, 'pods gone', 60_000).catch(() => {});
  await controller?.stop();
});

describe('end to end on the process node', () => {
  it('real runtime processes serve the bundle from MinIO; readyReplicas follows their readiness; records reach Kafka', async () => {
    const ready = await eventually(
      async () => {
        const m = await ms.get('iris');
        return cond(m, 'Ready')?.status === 'True' && m.status?.readyReplicas === 2 ? m : undefined;
      },
      'Ready with 2 ready replicas',
      90_000,
    );
    expect(cond(ready, 'BundleReady')).toMatchObject({ status: 'True', reason: 'Loaded' });
    const pods = (await core.listNamespacedPod({ namespace: ns })).items;
    expect(pods.map((p) => p.spec?.nodeName)).toEqual([env.info.processNode, env.info.processNode]);
    for (const p of pods) expect(p.status?.podIP).toMatch(/^10\.245\.\d+\.\d+$/);
    const endpoints = await eventually(async () => {
      const e = await readyEndpoints('iris');
      return e.length === 2 ? e : undefined;
    }, 'two ready endpoints in the EndpointSlice');
    for (const [i, base] of endpoints.entries()) {
      const r = await predict(base, `e2e-${i}`);
      expect(r.status).toBe(200);
      expect(r.body.outputs[0].data).toEqual(['setosa']);
    }
    const records = await readTopic(env.info.kafka.bootstrapServers, `modelship.${ns}.iris.inference`, 2);
    expect(records.map((r) => r.key).sort()).toEqual(['e2e-0', 'e2e-1']);
    expect(JSON.parse(records[0]?.value ?? '{}')).toMatchObject({ model: 'iris', namespace: ns, bundleSha256: sha });
  });

  it('a bundle change under load rolls new pods in and drains the old ones: 0 failed requests', async () => {
    const before = new Set((await core.listNamespacedPod({ namespace: ns })).items.map((p) => p.metadata?.name));
    let endpoints = await readyEndpoints('iris');
    let running = true;
    let ok = 0;
    const failures: string[] = [];
    // Re-reads the EndpointSlices every 200 ms, as kube-proxy follows them.
    const refresher = (async () => {
      while (running) {
        endpoints = await readyEndpoints('iris').catch(() => endpoints);
        await new Promise((r) => setTimeout(r, 200));
      }
    })();
    const client = async () => {
      for (let i = 0; running; i++) {
        const list = endpoints;
        const base = list[i % list.length];
        if (!base) {
          failures.push('no ready endpoint');
          await new Promise((r) => setTimeout(r, 100));
          continue;
        }
        try {
          const r = await predict(base);
          if (r.status === 200) ok++;
          else failures.push(`${base}: ${r.status}`);
        } catch (err) {
          failures.push(`${base}: ${(err as Error).message}`);
        }
      }
    };
    const load = Promise.all([client(), client(), client()]);
    await new Promise((r) => setTimeout(r, 1000));
    ms.patch('iris', { bundle: { uri: `s3://${bucket}/iris/2/bundle.zip` } });
    await eventually(
      async () => {
        const m = await ms.get('iris');
        const pods = (await core.listNamespacedPod({ namespace: ns })).items;
        const fresh = pods.filter((p) => !before.has(p.metadata?.name)).length;
        return (
          cond(m, 'Progressing')?.reason === 'RolloutComplete' &&
          cond(m, 'Ready')?.status === 'True' &&
          m.status?.bundle?.uri.endsWith('/iris/2/bundle.zip') &&
          pods.length === 2 &&
          fresh === 2
        );
      },
      'the rollout to bundle 2 complete, old pods gone',
      120_000,
    );
    running = false;
    await Promise.all([load, refresher]);
    expect(failures).toEqual([]);
    expect(ok).toBeGreaterThan(50);
  });

  it('a bad bundle fails the pods and shows why in kubectl get ms; fixing the CR recovers', async () => {
    ms.patch('iris', { bundle: { sha256: 'f'.repeat(64) } });
    const failed = await failsWith('MS_ERR_BUNDLE_SHA256_MISMATCH');
    expect(cond(failed, 'Ready')?.status).toBe('False');
    expect(cond(failed, 'Ready')?.message).toContain('sha256 mismatch');
    const row = env.kubectl(['get', 'ms', 'iris', '-n', ns, '-o', 'wide']);
    expect(row).toContain('MS_ERR_BUNDLE_SHA256_MISMATCH');
    ms.patch('iris', { bundle: { sha256: sha } });
    await eventually(async () => cond(await ms.get('iris'), 'Ready')?.status === 'True', 'Ready again after the fix', 90_000);
  });

  it("a plugin whose init() throws fails the pods with the plugin's own message; fixing the CR recovers", async () => {
    ms.patch('iris', { bundle: { uri: `s3://${bucket}/broken/1/bundle.zip`, sha256: null } });
    const failed = await failsWith('MS_ERR_PLUGIN_INIT_FAILED');
    expect(cond(failed, 'Ready')?.message).toContain('weights.bin is missing from the bundle');
    expect(cond(failed, 'BundleReady')).toMatchObject({ status: 'False', reason: 'MS_ERR_PLUGIN_INIT_FAILED' });
    // maxUnavailable 0: the old pods kept serving while the new ones failed.
    const endpoints = await readyEndpoints('iris');
    expect(endpoints.length).toBeGreaterThan(0);
    expect((await predict(endpoints[0] as string)).status).toBe(200);
    ms.patch('iris', { bundle: { uri: `s3://${bucket}/iris/2/bundle.zip`, sha256: sha } });
    await eventually(
      async () => {
        const m = await ms.get('iris');
        return cond(m, 'Ready')?.status === 'True' && m.status?.observedGeneration === m.metadata.generation;
      },
      'Ready again after the fix',
      90_000,
    );
  });

  it('kubectl scale changes the number of real processes', async () => {
    env.kubectl(['-n', ns, 'scale', 'ms/iris', '--replicas=1']);
    await eventually(
      async () => {
        const m = await ms.get('iris');
        return m.status?.readyReplicas === 1 && (await readyEndpoints('iris')).length === 1;
      },
      'one replica',
      60_000,
    );
    const d = await apps.readNamespacedDeployment({ name: 'iris', namespace: ns });
    expect(d.spec?.replicas).toBe(1);
  });

  it('autoscaling: the HPA owns the replicas (the controller-manager brings them to minReplicas), and goes with autoscaling', async () => {
    // No metrics server here, so the HPA cannot scale on CPU; it still enforces minReplicas, which is
    // enough to show that it, not the operator, sets the Deployment's replicas.
    ms.patch('iris', { autoscaling: { minReplicas: 2, maxReplicas: 3 } });
    const hpa = await eventually(
      () => autoscaling.readNamespacedHorizontalPodAutoscaler({ name: 'iris', namespace: ns }).catch(() => undefined),
      'the HPA',
    );
    expect(hpa.spec?.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'iris' });
    expect(hpa.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'ModelServing', name: 'iris', controller: true });
    await eventually(
      async () => {
        const m = await ms.get('iris');
        return m.status?.readyReplicas === 2 && (await readyEndpoints('iris')).length === 2;
      },
      'two real processes, scaled by the HPA',
      90_000,
    );
    ms.patch('iris', { autoscaling: null });
    await eventually(
      () =>
        autoscaling.readNamespacedHorizontalPodAutoscaler({ name: 'iris', namespace: ns }).then(
          () => false,
          (err: { code?: number }) => err.code === 404,
        ),
      'the HPA deleted',
    );
    // spec.replicas (1, from kubectl scale) applies again.
    await eventually(
      async () => (await ms.get('iris')).status?.readyReplicas === 1 && (await readyEndpoints('iris')).length === 1,
      'one replica',
      60_000,
    );
  });
});

describe('the process node is not a general kubelet', () => {
  it('refuses a pod of another image with a clear message', async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'not-ours' },
        spec: {
          nodeName: env.info.processNode,
          tolerations: [{ key: 'modelship.dev/process-node', operator: 'Exists' }],
          containers: [{ name: 'web', image: 'nginx:1.27' }],
        },
      },
    });
    const pod = await eventually(async () => {
      const p = await core.readNamespacedPod({ name: 'not-ours', namespace: ns });
      return p.status?.phase === 'Failed' ? p : undefined;
    }, 'the pod refused');
    expect(pod.status?.reason).toBe('UnsupportedImage');
    expect(pod.status?.message).toContain('nginx:1.27');
    expect(pod.status?.message).toContain('modelship runtime image');
    await core.deleteNamespacedPod({ name: 'not-ours', namespace: ns, gracePeriodSeconds: 0 });
  });
});
