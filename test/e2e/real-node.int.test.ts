// End to end on the real node (kubelet + containerd + runc, CNI, kube-proxy, CoreDNS, metrics-server): the
// chart installs the operator from the image built here; ModelServings in a namespace that enforces Pod
// Security `restricted` run the real runtime image, fetch their bundle from MinIO and answer through their
// Service's cluster IP (from the node, as on any node), through its DNS name from another pod, through
// `kubectl port-forward` from the host; `kubectl logs`, `modelship logs`, a failed load's termination message,
// a rollout under load and an HPA driven by metrics-server, all for real.
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, AutoscalingV2Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { pushBundle } from '../../cli/push.ts';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { SERVER_VERSION } from '../../common/version.ts';
import { useTestEnv } from '../env/fixtures.ts';
import {
  clientPod,
  fromNode as fromNodeOf,
  installOperator,
  type LoadCounts,
  nodeLoad,
  ON_REAL_NODE,
  portForward,
} from '../../env/on-node.ts';
import { eventually } from '../../env/wait.ts';
import { readTopic } from '../../env/kafka.ts';
import { wheel } from '../runtime/zip-writer.ts';

const execFileAsync = promisify(execFile);
const env = useTestEnv();
const core = env.kubeConfig.makeApiClient(CoreV1Api);
const apps = env.kubeConfig.makeApiClient(AppsV1Api);
const hpas = env.kubeConfig.makeApiClient(AutoscalingV2Api);
const REPO = join(import.meta.dirname, '..', '..');
const node = env.info.realNode;
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const infer = (...rows: number[][]) =>
  JSON.stringify({ inputs: [{ name: 'features', shape: [rows.length, 4], datatype: 'FP64', data: rows.flat() }] });
let ns: string;
let opNs: string;
let bucket: string;
let uninstall: (() => void) | undefined;
const ms = env.modelServings(() => ns);
const cond = (m: ModelServing, type: string) => m.status?.conditions?.find((c) => c.type === type);

const fromNode = (url: string, body?: string) => fromNodeOf(env.info, url, body);

async function clusterIp(name: string): Promise<string> {
  return (await core.readNamespacedService({ name, namespace: ns })).spec?.clusterIP as string;
}

async function push(dir: string, key: string): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'e2e-real-'));
  const packed = await packBundle(dir, join(out, 'bundle.zip'));
  await pushBundle(packed.file, `s3://${bucket}/${key}/bundle.zip`, { ...env.info.s3 }, { progress: false });
}

function spec(key: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    bundle: { uri: `s3://${bucket}/${key}/bundle.zip`, storage: { endpoint: node?.s3Endpoint, secretRef: { name: 'minio' } } },
    replicas: 1,
    resources: { requests: { cpu: '100m', memory: '96Mi' }, limits: { memory: '512Mi' } },
    ...ON_REAL_NODE,
    ...extra,
  };
}

async function ready(name: string, replicas = 1, timeout = 120_000): Promise<ModelServing> {
  return eventually(
    async () => {
      const m = await ms.get(name);
      return cond(m, 'Ready')?.status === 'True' &&
        m.status?.readyReplicas === replicas &&
        m.status.observedGeneration === m.metadata.generation
        ? m
        : undefined;
    },
    `${name} Ready with ${replicas} replicas`,
    timeout,
  );
}

beforeAll(async () => {
  if (!node) throw new Error('the environment has no real node (started with MODELSHIP_REAL_NODE=0?): env:down, then env:up');
  env.installCrd();
  ns = await env.namespace('real', { nodes: 'any' });
  // Pod Security `restricted`, enforced: a pod that is not gets refused by the API server.
  env.kubectl(['label', 'ns', ns, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
  opNs = await env.namespace('real-operator', { nodes: 'any' });
  bucket = await env.bucket('real');
  await push(join(REPO, 'examples/iris/bundle'), 'iris/1');
  await push(join(REPO, 'examples/echo'), 'echo/1');
  await push(join(REPO, 'examples/iris-onnx'), 'iris-onnx/1');
  await push(join(REPO, 'examples/hopsworks-iris'), 'hopsworks-iris/1');
  await core.createNamespacedSecret({
    namespace: ns,
    // The environment's read-only user: pods read bundles, and could write nothing even with the keys in hand.
    body: {
      metadata: { name: 'minio' },
      stringData: { accessKey: env.info.s3.readOnly?.accessKey ?? '', secretKey: env.info.s3.readOnly?.secretKey ?? '' },
    },
  });
  // With the shared Python environment cache on the environment's volumes: the operator makes the claim.
  uninstall = installOperator(env.info, `modelship-${opNs.split('-').at(-1)}`, opNs, [ns], {
    python: { envCache: { claimName: 'python-envs', storageClassName: node?.storageClass ?? 'modelship-local' } },
  });
}, 240_000);

afterAll(() => uninstall?.());

describe('the real node', () => {
  it('runs the operator that helm installs, from the image built here', async () => {
    const pods = (await core.listNamespacedPod({ namespace: opNs })).items;
    expect(pods).toHaveLength(1);
    const [pod] = pods;
    expect(pod?.spec?.nodeName).toBe(node?.name);
    expect(pod?.spec?.containers[0]?.image).toBe(`modelship/operator:${SERVER_VERSION}`);
    expect(pod?.status?.containerStatuses?.[0]?.ready).toBe(true);
    expect(pod?.status?.containerStatuses?.[0]?.imageID).toContain('sha256:');
  });

  it('runs a ModelServing in a restricted namespace: the runtime image loads the bundle from MinIO into its emptyDir', async () => {
    await ms.create('iris', spec('iris/1', { replicas: 2 }));
    const m = await ready('iris', 2);
    expect(m.status?.bundle?.uri).toBe(`s3://${bucket}/iris/1/bundle.zip`);
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=iris' })).items;
    expect(pods).toHaveLength(2);
    for (const p of pods) {
      expect(p.spec?.nodeName).toBe(node?.name);
      expect(p.spec?.containers[0]?.image).toBe(`modelship/runtime:${SERVER_VERSION}`);
      expect(p.spec?.automountServiceAccountToken).toBe(false);
      expect(p.spec?.containers[0]?.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
      expect(p.status?.podIP).toMatch(/^10\.246\.0\./);
    }
    // The root file system is read-only for real: a write there fails, the emptyDir takes the bundle.
    const pod = pods[0]?.metadata?.name as string;
    const probe =
      "const fs=require('fs');let ro='';try{fs.writeFileSync('/app/x','1')}catch(e){ro=e.code};console.log(JSON.stringify({ro,work:fs.readdirSync(process.env.MODELSHIP_WORK_DIR)}))";
    const seen = JSON.parse(env.kubectl(['-n', ns, 'exec', pod, '-c', 'runtime', '--', 'node', '-e', probe]));
    expect(seen.ro).toBe('EROFS');
    expect(seen.work.length).toBeGreaterThan(0);
    // And the namespace refuses what `restricted` forbids.
    expect(() =>
      env.kubectl([
        '-n',
        ns,
        'run',
        'rooty',
        `--image=modelship/runtime:${SERVER_VERSION}`,
        '--image-pull-policy=Never',
        '--restart=Never',
      ]),
    ).toThrow(/violates PodSecurity "restricted/);
  });

  it('answers through the cluster IP from the node and through the DNS name from another pod', async () => {
    const ip = await clusterIp('iris');
    const r = await fromNode(`http://${ip}/v2/models/iris/infer`, infer(SETOSA));
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).outputs[0].data).toEqual(['setosa']);
    // A client pod in the same namespace, also `restricted`; it resolves the Service's name through CoreDNS.
    await core.createNamespacedPod({ namespace: ns, body: clientPod() as never });
    await eventually(
      async () => (await core.readNamespacedPod({ name: 'client', namespace: ns })).status?.phase === 'Running',
      'the client pod Running',
    );
    const call = `fetch('http://iris.${ns}.svc.cluster.local/v2/models/iris/infer',{method:'POST',headers:{'content-type':'application/json'},body:process.argv[1]}).then(async r=>console.log(JSON.stringify({status:r.status,body:await r.json()})))`;
    const out = JSON.parse(env.kubectl(['-n', ns, 'exec', 'client', '--', 'node', '-e', call, infer(SETOSA)]));
    expect(out.status).toBe(200);
    expect(out.body.outputs[0].data).toEqual(['setosa']);
  });

  it('serves `kubectl port-forward svc/iris` on the host', async () => {
    const { port, close } = await portForward([
      env.info.binaries.kubectl,
      '--kubeconfig',
      env.info.kubeconfig,
      '-n',
      ns,
      'port-forward',
      'svc/iris',
      ':80',
    ]);
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v2/models/iris/infer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: infer(SETOSA),
      });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { outputs: { data: string[] }[] }).outputs[0]?.data).toEqual(['setosa']);
    } finally {
      close();
    }
  });

  it('shows the runtime JSON lines in `kubectl logs` and in `modelship logs`', async () => {
    const lines = env
      .kubectl(['-n', ns, 'logs', 'deploy/iris', '-c', 'runtime'])
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg?: string; level?: number });
    expect(lines.some((l) => l.msg === 'iris model loaded')).toBe(true);
    const { stdout } = await execFileAsync(process.execPath, [join(REPO, 'cli/modelship.ts'), 'logs', 'iris', '-n', ns, '--tail', '50'], {
      env: { ...process.env, KUBECONFIG: env.info.kubeconfig, MODELSHIP_CONFIG: '/nonexistent/modelship-config.yaml' },
      timeout: 30_000,
    });
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=iris' })).items.map(
      (p) => p.metadata?.name,
    );
    for (const pod of pods) expect(stdout).toMatch(new RegExp(`^${pod} \\{.*"msg":"iris model loaded"`, 'm'));
  });

  it("reports a failed load's termination message in the ModelServing's status", async () => {
    await ms.create('missing', spec('no-such-bundle/1'));
    const m = await eventually(
      async () => {
        const o = await ms.get('missing');
        return cond(o, 'BundleReady')?.status === 'False' ? o : undefined;
      },
      'BundleReady=False',
      120_000,
    );
    // The prepare init container's termination log (`MS_ERR_…: message`), as the kubelet reports it: the code
    // becomes the reason.
    expect(cond(m, 'BundleReady')?.reason).toBe('MS_ERR_BUNDLE_NOT_FOUND');
    expect(cond(m, 'BundleReady')?.message).toBe(`bundle s3://${bucket}/no-such-bundle/1/bundle.zip not found (NoSuchKey)`);
    const pod = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=missing' })).items[0];
    const prepare = pod?.status?.initContainerStatuses?.find((c) => c.name === 'prepare');
    expect(prepare?.lastState?.terminated?.message ?? prepare?.state?.terminated?.message).toMatch(/^MS_ERR_BUNDLE_NOT_FOUND: bundle s3:/);
    // The runtime never started: it would have had nothing to load.
    expect(pod?.status?.containerStatuses?.[0]?.state?.running).toBeUndefined();
    await ms.delete('missing');
  });

  it('rolls a bundle change out under load through the Service with 0 failed requests', async () => {
    await push(join(REPO, 'examples/iris/bundle'), 'iris/2');
    const ip = await clusterIp('iris');
    const load = nodeLoad(env.info, `http://${ip}/v2/models/iris/infer`, infer(SETOSA), 4, 90000);
    await new Promise((r) => setTimeout(r, 2000));
    ms.patch('iris', { bundle: { uri: `s3://${bucket}/iris/2/bundle.zip` } });
    await eventually(
      async () => {
        const m = await ms.get('iris');
        return m.status?.bundle?.uri === `s3://${bucket}/iris/2/bundle.zip` && cond(m, 'Progressing')?.status === 'False' ? m : undefined;
      },
      'the new bundle rolled out',
      120_000,
    );
    // Old pods gone, not just replaced in the EndpointSlice: their drain is part of what is tested.
    await eventually(
      async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=iris' })).items.length === 2,
      'the old pods gone',
      90_000,
    );
    const counts = await load.stop();
    if (counts.errors.length)
      console.log(
        env.kubectl([
          '-n',
          ns,
          'get',
          'events',
          '--sort-by=.lastTimestamp',
          '-o',
          'custom-columns=T:.lastTimestamp,R:.reason,O:.involvedObject.name,M:.message',
        ]),
      );
    expect(counts.errors).toEqual([]);
    expect(counts.failed).toBe(0);
    expect(counts.ok).toBeGreaterThan(100);
  });

  it("serves ONNX from the runtime image (Linux x64's native library only) and Python from runtime-python", async () => {
    await ms.create('iris-onnx', spec('iris-onnx/1', { bundle: { ...(spec('iris-onnx/1').bundle as object), format: 'onnx' } }));
    await ms.create(
      'hopsworks-iris',
      spec('hopsworks-iris/1', {
        bundle: { ...(spec('hopsworks-iris/1').bundle as object), format: 'python' },
        resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
      }),
    );
    await ready('iris-onnx', 1);
    const onnx = await fromNode(
      `http://${await clusterIp('iris-onnx')}/v2/models/iris-onnx/infer`,
      JSON.stringify({ inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: [...SETOSA, 6.7, 3.0, 5.2, 2.3] }] }),
    );
    expect(onnx.status).toBe(200);
    expect(JSON.parse(onnx.body).outputs[0]).toMatchObject({ name: 'predict', data: [0, 2] });
    const [pod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=iris-onnx' })).items;
    const ls = (dir: string) =>
      env
        .kubectl(['-n', ns, 'exec', pod?.metadata?.name as string, '--', 'ls', dir])
        .trim()
        .split('\n');
    expect(ls('/app/node_modules/onnxruntime-node/bin/napi-v6')).toEqual(['linux']);
    expect(ls('/app/node_modules/onnxruntime-node/bin/napi-v6/linux')).toEqual(['x64']);

    await ready('hopsworks-iris', 1, 180_000);
    const [py] = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=hopsworks-iris' })).items;
    expect(py?.spec?.containers[0]?.image).toBe(`modelship/runtime-python:${SERVER_VERSION}`);
    const r = await fromNode(
      `http://${await clusterIp('hopsworks-iris')}/v2/models/hopsworks-iris/infer`,
      JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP64', data: SETOSA }] }),
    );
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).outputs[0].data).toEqual([0]);
    await Promise.all([ms.delete('iris-onnx'), ms.delete('hopsworks-iris')]);
  });

  it('keeps every credential out of reach of bundle code: storage keys only in prepare, Kafka ones only in the recorder', async () => {
    // Two hostile bundles (test/e2e/fixtures): they return the environment of every process they can read, and the
    // Python one every readable file under the secrets paths and its volumes, and tries to plant code; the JS one
    // logs its inferences (so its pod has a recorder sidecar with the Kafka credentials) and tries to write to a
    // topic it may not, straight to Kafka and through the recorder's socket.
    const forbidden = await env.topic('snoop-forbidden');
    const py = await mkdtemp(join(tmpdir(), 'snoop-py-'));
    await cp(join(import.meta.dirname, 'fixtures/snoop-py'), py, { recursive: true });
    await mkdir(join(py, 'wheels'));
    const w = wheel('msgreet', '1.0', "GREETING = 'hello'\n");
    await writeFile(join(py, 'wheels', w.file), w.data);
    await push(join(import.meta.dirname, 'fixtures/snoop-js'), 'snoop-js/1');
    await push(py, 'snoop-py/1');
    await ms.create('snoop-js', spec('snoop-js/1', { inferenceLogging: { topic: 'CREATE' } }));
    await ms.create(
      'snoop-py',
      spec('snoop-py/1', {
        bundle: { ...(spec('snoop-py/1').bundle as object), format: 'python' },
        resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '1Gi' } },
      }),
    );
    await Promise.all([ready('snoop-js', 1), ready('snoop-py', 1, 180_000)]);
    // Its topic made (by the operator, logged in to Kafka), so no record is dropped for want of it.
    await eventually(async () => cond(await ms.get('snoop-js'), 'LoggingReady')?.status === 'True', 'snoop-js LoggingReady', 60_000);
    const ask = async (name: string, publishTo?: string) => {
      const inputs = [{ name: 'input', shape: [1], datatype: 'BYTES', data: ['x'] }];
      if (publishTo) inputs.push({ name: 'publishTo', shape: [1], datatype: 'BYTES', data: [publishTo] });
      const r = await fromNode(`http://${await clusterIp(name)}/v2/models/${name}/infer`, JSON.stringify({ inputs }));
      expect(r.status, r.body).toBe(200);
      return JSON.parse(JSON.parse(r.body).outputs.find((o: { name: string }) => o.name === 'output').data[0]);
    };
    // Neither the keys in the pods' Secret (the read-only user's) nor the root keys, nor Kafka's password.
    const keys = [env.info.s3.secretKey, env.info.s3.accessKey, env.info.s3.readOnly?.secretKey as string];
    if (env.info.realNode?.kafkaSasl) keys.push(env.info.realNode.kafkaSasl.password);
    for (const name of ['snoop-js', 'snoop-py']) {
      const found = await ask(name);
      expect(Object.keys(found.proc).length, `${name} read /proc`).toBeGreaterThan(0); // it did look
      const text = JSON.stringify(found);
      for (const key of keys) expect(text, name).not.toContain(key);
      expect(text, name).not.toMatch(/MODELSHIP_S3_(ACCESS|SECRET)_KEY/);
    }
    // Its own attempts to write where it may not: Kafka refuses it (no credentials), the recorder refuses the topic.
    const js = await ask('snoop-js', forbidden);
    expect(js.attempts.kafka).toMatch(/^refused: /);
    expect(JSON.parse(js.attempts.recorder)).toMatchObject({ ok: true, refused: 1, refusedTopics: [forbidden] });
    expect(await readTopic(env.info.kafka.bootstrapServers, forbidden, 1, 5000)).toEqual([]);
    // Its inference records still flow, through the recorder (the topic CREATE made, with the operator's SASL login).
    const records = await readTopic(env.info.kafka.bootstrapServers, `modelship.${ns}.snoop-js.inference`, 2, 30_000);
    expect(records.length).toBe(2); // its two requests
    const [jsPod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=snoop-js' })).items;
    expect(JSON.stringify(jsPod?.spec?.initContainers?.find((c) => c.name === 'recorder')?.env)).toContain('MODELSHIP_KAFKA_SASL_PASSWORD');
    expect(JSON.stringify(jsPod?.spec?.containers)).not.toContain('KAFKA');
    const py0 = await ask('snoop-py');
    expect(py0.greeting).toBe('hello'); // its requirements.txt environment, imported
    expect(Object.keys(py0.files).some((f) => f.startsWith('/var/lib/modelship/bundle/'))).toBe(true); // it did look
    // Nothing it can write: the bundle, the shared environment cache (the namespace's claim), uv's configuration
    // (all read-only mounts).
    const [pyPod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=snoop-py' })).items;
    expect(pyPod?.spec?.volumes?.find((v) => v.name === 'python-envs')?.persistentVolumeClaim?.claimName).toBe('python-envs');
    expect(Object.keys(py0.writes).some((t) => t.endsWith('msgreet/__init__.py'))).toBe(true);
    for (const [target, outcome] of Object.entries(py0.writes)) expect(outcome, target).toBe('EROFS');
    // The keys are where they belong: the prepare init container's env, by reference to the Secret.
    const [pod] = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=snoop-py' })).items;
    expect(JSON.stringify(pod?.spec?.initContainers?.[0]?.env)).toContain('MODELSHIP_S3_SECRET_KEY');
    expect(JSON.stringify(pod?.spec?.containers)).not.toContain('secretKeyRef');
    await Promise.all([ms.delete('snoop-js'), ms.delete('snoop-py')]);
  });

  it('refuses a requirements.txt that names its own index: the install container fails, naming the line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'extra-index-'));
    await writeFile(join(dir, 'predict.py'), 'def predict(x):\n    return x\n');
    await writeFile(join(dir, 'requirements.txt'), 'six==1.16.0\n--extra-index-url https://pypi.example.invalid/simple\n');
    await push(dir, 'extra-index/1');
    await ms.create('extra-index', spec('extra-index/1', { bundle: { ...(spec('extra-index/1').bundle as object), format: 'python' } }));
    const m = await eventually(
      async () => {
        const o = await ms.get('extra-index');
        return cond(o, 'BundleReady')?.reason === 'MS_ERR_PYTHON_DEPS_FAILED' ? o : undefined;
      },
      'BundleReady=False MS_ERR_PYTHON_DEPS_FAILED',
      120_000,
    );
    expect(cond(m, 'BundleReady')?.message).toContain(
      'requirements.txt line 2 (--extra-index-url https://pypi.example.invalid/simple): --extra-index-url names a package index',
    );
    await ms.delete('extra-index');
  });

  it('replaces a deleted operator pod; the new one leads at once (the old one released its lease on SIGTERM)', async () => {
    const [old] = (await core.listNamespacedPod({ namespace: opNs })).items;
    await core.deleteNamespacedPod({ name: old?.metadata?.name as string, namespace: opNs });
    await eventually(
      async () => {
        const pods = (await core.listNamespacedPod({ namespace: opNs })).items;
        return pods.length === 1 && pods[0]?.metadata?.name !== old?.metadata?.name && pods[0]?.status?.containerStatuses?.[0]?.ready;
      },
      'a new operator pod ready',
      90_000,
    );
    const started = Date.now();
    ms.patch('iris', { replicas: 1 });
    await ready('iris', 1);
    // A lease left to expire would hold the new pod back for its whole duration (15 s) first.
    expect(Date.now() - started).toBeLessThan(12_000);
    ms.patch('iris', { replicas: 2 });
    await ready('iris', 2);
  });

  it('scales up through metrics-server and the HPA under CPU load, and back down when it stops', async () => {
    // The echo bundle, with a low CPU request so a modest load is well over the target.
    await ms.create(
      'busy',
      spec('echo/1', {
        resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
        autoscaling: { minReplicas: 1, maxReplicas: 2, target: 50, scaleDownStabilizationSeconds: 10 },
      }),
    );
    await ready('busy', 1);
    const ip = await clusterIp('busy');
    const body = JSON.stringify({
      inputs: [{ name: 'x', shape: [1, 256], datatype: 'FP32', data: Array.from({ length: 256 }, (_, i) => i) }],
    });
    const load = nodeLoad(env.info, `http://${ip}/v2/models/busy/infer`, body, 2, 120000);
    let counts: LoadCounts | undefined;
    try {
      const up = await eventually(
        async () => {
          const h = await hpas.readNamespacedHorizontalPodAutoscaler({ name: 'busy', namespace: ns });
          return (h.status?.desiredReplicas ?? 0) >= 2 ? h : undefined;
        },
        'the HPA to want 2 replicas',
        100_000,
      );
      expect(up.status?.currentMetrics?.[0]?.resource?.current.averageUtilization).toBeGreaterThan(50);
      await eventually(
        async () => (await apps.readNamespacedDeployment({ name: 'busy', namespace: ns })).status?.readyReplicas === 2,
        'two ready replicas',
        90_000,
      );
    } finally {
      counts = await load.stop();
    }
    expect(counts?.ok).toBeGreaterThan(0);
    await eventually(
      async () => (await apps.readNamespacedDeployment({ name: 'busy', namespace: ns })).spec?.replicas === 1,
      'the Deployment back at 1 replica',
      120_000,
    );
  });
});
