// Composition on the real node: Ray Serve's iris ensemble as ModelServings (examples/ensemble): two
// scikit-learn members and an ensemble that asks both at once and averages their probabilities, in JS and in
// Python, reconciled by the operator that helm installs. Answers checked against the members' own; the
// records of a whole call tree joined by request id in Kafka; a member rollout under load; a member scaled to
// zero or broken (503 naming it, DependenciesReady=False); a cycle; and all of it behind spec.auth (TokenReview and
// SubjectAccessReview for real), the ensembles calling their members with the caller's token.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { pushBundle } from '../../cli/push.ts';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { clientPod, fromNode as fromNodeOf, installOperator, nodeLoad, ON_REAL_NODE, portForward } from '../../env/on-node.ts';
import { readTopic } from '../../env/kafka.ts';
import { eventually } from '../../env/wait.ts';

const _execFileAsync = promisify(execFile);
const env = useTestEnv();
const core = env.kubeConfig.makeApiClient(CoreV1Api);
const REPO = join(import.meta.dirname, '..', '..');
const node = env.info.realNode;
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];
const VERSICOLOR = [6.0, 2.9, 4.5, 1.5];
let ns: string;
let opNs: string;
let bucket: string;
let uninstall: (() => void) | undefined;
const ms = env.modelServings(() => ns);
const cond = (m: ModelServing, type: string) => m.status?.conditions?.find((c) => c.type === type);

async function fromNode(url: string, body: unknown, requestId?: string): Promise<{ status: number; body: any }> {
  const r = await fromNodeOf(env.info, url, JSON.stringify(body), requestId);
  return { status: r.status, body: JSON.parse(r.body) };
}

const ip = async (name: string) => (await core.readNamespacedService({ name, namespace: ns })).spec?.clusterIP as string;
const predict = async (name: string, instance: unknown, requestId?: string) =>
  fromNode(`http://${await ip(name)}/v1/models/${name}:predict`, { instances: [instance] }, requestId);

const infer = async (name: string, features: number[]) =>
  fromNode(`http://${await ip(name)}/v2/models/${name}/infer`, {
    inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP64', data: features }],
  });

async function push(dir: string, key: string): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'e2e-comp-'));
  const packed = await packBundle(dir, join(out, 'bundle.zip'));
  await pushBundle(packed.file, `s3://${bucket}/${key}/bundle.zip`, { ...env.info.s3 }, { progress: false });
}

async function ready(name: string, timeout = 180_000): Promise<ModelServing> {
  return eventually(
    async () => {
      const m = await ms.get(name);
      return cond(m, 'Ready')?.status === 'True' &&
        (m.status?.readyReplicas ?? 0) >= 1 &&
        m.status?.observedGeneration === m.metadata.generation
        ? m
        : undefined;
    },
    `${name} Ready`,
    timeout,
  );
}

/** examples/ensemble/ensemble.yaml as it would be applied here: this bucket, MinIO as pods reach it, the real node. */
async function manifests(): Promise<ModelServing[]> {
  const text = await readFile(join(REPO, 'examples/ensemble/ensemble.yaml'), 'utf8');
  return parseAllDocuments(text).map((d) => {
    const m = d.toJS() as ModelServing;
    m.spec.bundle.uri = m.spec.bundle.uri.replace('s3://models/', `s3://${bucket}/`);
    if (m.spec.bundle.storage)
      m.spec.bundle.storage = { ...m.spec.bundle.storage, endpoint: node?.s3Endpoint as string, secretRef: { name: 'minio' } } as never;
    Object.assign(m.spec, ON_REAL_NODE, { inferenceLogging: { topic: 'CREATE', mode: 'all' } });
    return m;
  });
}

beforeAll(async () => {
  if (!node) throw new Error('the environment has no real node (started with MODELSHIP_REAL_NODE=0?): env:down, then env:up');
  env.installCrd();
  ns = await env.namespace('comp', { nodes: 'any' });
  env.kubectl(['label', 'ns', ns, 'pod-security.kubernetes.io/enforce=restricted']);
  opNs = await env.namespace('comp-operator', { nodes: 'any' });
  bucket = await env.bucket('comp');
  for (const b of ['logistic', 'svm', 'ensemble-js', 'ensemble-py']) await push(join(REPO, 'examples/ensemble', b), `ensemble/${b}/1`);
  await push(join(REPO, 'examples/ensemble/svm'), 'ensemble/svm/2');
  const brokenDir = await mkdtemp(join(tmpdir(), 'e2e-comp-broken-'));
  await writeFile(join(brokenDir, 'predict.py'), 'def predict(x)\n    return x\n'); // a syntax error: fails to load
  await push(brokenDir, 'broken/1');
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'minio' }, stringData: { accessKey: env.info.s3.accessKey, secretKey: env.info.s3.secretKey } },
  });
  uninstall = installOperator(env.info, `modelship-${opNs.split('-').at(-1)}`, opNs, [ns]);
  const docs = await manifests();
  const py = structuredClone(docs[2] as ModelServing);
  py.metadata.name = 'ensemble-py';
  py.spec.bundle = { ...py.spec.bundle, uri: `s3://${bucket}/ensemble/ensemble-py/1/bundle.zip`, format: 'python' };
  for (const m of [...docs, py]) await ms.create(m.metadata.name, m.spec as unknown as Record<string, unknown>);
  for (const name of ['logistic', 'svm', 'ensemble', 'ensemble-py']) await ready(name);
  // Ready in the status, and routed: kube-proxy has programmed each Service (a moment after the EndpointSlice).
  for (const name of ['logistic', 'svm', 'ensemble', 'ensemble-py']) {
    await eventually(
      async () => (await predict(name, { input: VIRGINICA })).status === 200,
      `${name} answering through its Service`,
      60_000,
    );
  }
}, 400_000);

afterAll(() => uninstall?.());

describe('composition: the iris ensemble', () => {
  it('answers with the average of both members, in JS and in Python; DependenciesReady names them', async () => {
    for (const name of ['ensemble', 'ensemble-py']) {
      const m = await ms.get(name);
      expect(cond(m, 'DependenciesReady')).toMatchObject({ status: 'True', reason: 'AllReady', message: 'logistic, svm Ready' });
      for (const features of [VIRGINICA, VERSICOLOR]) {
        const [e, l, s] = await Promise.all([predict(name, { input: features }), infer('logistic', features), infer('svm', features)]);
        expect(e.status, JSON.stringify(e.body)).toBe(200);
        const out = (a: { body: { outputs: { name: string; data: number[] }[] } }, n: string) =>
          a.body.outputs.find((o) => o.name === n)?.data as number[];
        const lp = out(l, 'predict_proba');
        const sp = out(s, 'predict_proba');
        const p = e.body.predictions[0];
        (p.probabilities as number[]).forEach((v, c) => {
          expect(v).toBeCloseTo(((lp[c] as number) + (sp[c] as number)) / 2, 12);
        });
        const classes = ['setosa', 'versicolor', 'virginica'];
        expect(p.logistic).toBe(classes[out(l, 'predict')[0] as number]);
        expect(p.svm).toBe(classes[out(s, 'predict')[0] as number]);
        expect(p.label).toBe(features === VIRGINICA ? 'virginica' : 'versicolor');
      }
    }
  });

  it("joins the records of a whole call tree by the caller's request id in Kafka", async () => {
    const id = `tree-${Date.now()}`;
    expect((await predict('ensemble', { input: VIRGINICA }, id)).status).toBe(200);
    for (const name of ['ensemble', 'logistic', 'svm']) {
      const topic = `modelship.${ns}.${name}.inference`;
      const got = await readTopic(env.info.kafka.bootstrapServers, topic, (rs) => rs.some((r) => r.key === id), 30_000);
      expect(
        got.filter((r) => r.key === id).map((r) => JSON.parse(r.value).type),
        topic,
      ).toContain('inference');
    }
  });

  it('a member rollout under load: 0 failed ensemble requests', async () => {
    const url = `http://${await ip('ensemble')}/v1/models/ensemble:predict`;
    const load = nodeLoad(env.info, url, JSON.stringify({ instances: [{ input: VIRGINICA }] }), 4, 120_000);
    await new Promise((r) => setTimeout(r, 2000));
    ms.patch('svm', { bundle: { uri: `s3://${bucket}/ensemble/svm/2/bundle.zip` } });
    await eventually(
      async () => {
        const m = await ms.get('svm');
        return m.status?.bundle?.uri === `s3://${bucket}/ensemble/svm/2/bundle.zip` && cond(m, 'Progressing')?.status === 'False';
      },
      'svm rolled out',
      180_000,
    );
    await eventually(
      async () => (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=svm' })).items.length === 1,
      'the old svm pod gone',
      90_000,
    );
    const counts = await load.stop();
    expect(counts.errors).toEqual([]);
    expect(counts.failed).toBe(0);
    expect(counts.ok).toBeGreaterThan(50);
  });

  it('a member scaled to zero: 503 naming it, and DependenciesReady=False says why', async () => {
    env.kubectl(['-n', ns, 'scale', 'ms/svm', '--replicas=0']);
    const m = await eventually(
      async () => {
        const o = await ms.get('ensemble');
        return cond(o, 'DependenciesReady')?.status === 'False' ? o : undefined;
      },
      'DependenciesReady=False',
      60_000,
    );
    expect(cond(m, 'DependenciesReady')).toMatchObject({
      reason: 'DependencyNotReady',
      message: 'svm: ModelServing svm has no replicas (scaled to zero)',
    });
    // Still Ready itself: it serves, and says what is missing.
    expect(cond(m, 'Ready')?.status).toBe('True');
    const r = await eventually(
      async () => {
        const a = await predict('ensemble', { input: VIRGINICA });
        return a.status === 503 ? a : undefined;
      },
      'a 503 from the ensemble',
      60_000,
    );
    expect(r.body.code).toBe('MS_ERR_DEPENDENCY_UNAVAILABLE');
    expect(r.body.error).toMatch(/^dependency svm \(ModelServing svm\) is unavailable: /);
    env.kubectl(['-n', ns, 'scale', 'ms/svm', '--replicas=1']);
    await ready('svm');
    await eventually(async () => (await predict('ensemble', { input: VIRGINICA })).status === 200, 'the ensemble answering again', 60_000);
  });

  it('a broken member and a cycle are named in DependenciesReady', async () => {
    await ms.create('broken', {
      bundle: {
        uri: `s3://${bucket}/broken/1/bundle.zip`,
        format: 'python',
        storage: { endpoint: node?.s3Endpoint, secretRef: { name: 'minio' } },
      },
      replicas: 1,
      ...ON_REAL_NODE,
    });
    await ms.create('uses-broken', {
      bundle: {
        uri: `s3://${bucket}/ensemble/ensemble-js/1/bundle.zip`,
        storage: { endpoint: node?.s3Endpoint, secretRef: { name: 'minio' } },
      },
      replicas: 0,
      dependencies: [{ name: 'logistic', modelServing: 'broken' }],
    });
    const u = await eventually(
      async () => {
        const o = await ms.get('uses-broken');
        const c = cond(o, 'DependenciesReady');
        return c?.status === 'False' && c.message.includes('MS_ERR_') ? c : undefined;
      },
      'DependenciesReady naming the broken member',
      120_000,
    );
    expect(u.message).toMatch(/^logistic: ModelServing broken is not Ready \(MS_ERR_[A-Z_]+: /);
    await ms.create('cyc-a', {
      bundle: { uri: `s3://${bucket}/x.zip` },
      replicas: 0,
      dependencies: [{ name: 'b', modelServing: 'cyc-b' }],
    });
    await ms.create('cyc-b', {
      bundle: { uri: `s3://${bucket}/x.zip` },
      replicas: 0,
      dependencies: [{ name: 'a', modelServing: 'cyc-a' }],
    });
    const c = await eventually(
      async () => {
        const o = cond(await ms.get('cyc-a'), 'DependenciesReady');
        return o?.reason === 'DependencyCycle' ? o : undefined;
      },
      'DependencyCycle',
      60_000,
    );
    expect(c.message).toBe('the dependencies form a cycle: cyc-a → cyc-b → cyc-a; a call would come back to this model');
  });
});

describe('spec.auth (kubernetes) on the real node', () => {
  const MEMBERS = ['logistic', 'svm', 'ensemble', 'ensemble-py'];
  /** A ServiceAccount's token, by TokenRequest (what a pod of it would have). */
  const tokenOf = async (sa: string) =>
    (await core.createNamespacedServiceAccountToken({ name: sa, namespace: ns, body: { spec: { expirationSeconds: 3600 } } })).status
      ?.token as string;
  const call = async (name: string, token?: string) =>
    fromNodeOf(
      env.info,
      `http://${await ip(name)}/v1/models/${name}:predict`,
      JSON.stringify({ instances: [{ input: VIRGINICA }] }),
      undefined,
      token,
    );

  it('401 without a token, 403 for a ServiceAccount without predict, 200 with it; an ensemble of members that require auth; tritonclient with a bearer header', async () => {
    for (const sa of ['caller', 'stranger']) await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: sa } } });
    env.kubectl(['-n', ns, 'create', 'role', 'predictor', '--verb=predict', '--resource=modelservings.modelship.dev']);
    env.kubectl(['-n', ns, 'create', 'rolebinding', 'caller-predicts', '--role=predictor', `--serviceaccount=${ns}:caller`]);
    for (const name of MEMBERS) ms.patch(name, { auth: { mode: 'kubernetes' } });
    // Rolled out with the auth sidecar: every pod of each model runs it, and only it mounts the token.
    for (const name of MEMBERS) {
      await eventually(
        async () => {
          const m = await ms.get(name);
          const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `modelship.dev/model=${name}` })).items;
          const withAuth = pods.filter((p) => p.spec?.initContainers?.some((c) => c.name === 'auth'));
          return cond(m, 'Ready')?.status === 'True' &&
            m.status?.observedGeneration === m.metadata.generation &&
            withAuth.length === pods.length &&
            pods.length >= 1 &&
            (await call(name)).status === 401
            ? m
            : undefined;
        },
        `${name} rolled out with auth`,
        240_000,
      );
    }
    const pod = (await core.listNamespacedPod({ namespace: ns, labelSelector: 'modelship.dev/model=logistic' })).items[0];
    expect(pod?.spec?.serviceAccountName).toBe('modelship-auth');
    expect(pod?.spec?.containers[0]?.volumeMounts?.some((m) => m.mountPath.startsWith('/var/run/secrets/kubernetes.io'))).toBe(false);

    const none = await call('logistic');
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body).code).toBe('MS_ERR_AUTH_UNAUTHENTICATED');
    const stranger = await call('logistic', await tokenOf('stranger'));
    expect(stranger.status).toBe(403);
    expect(JSON.parse(stranger.body)).toMatchObject({ code: 'MS_ERR_AUTH_FORBIDDEN' });
    expect(JSON.parse(stranger.body).error).toContain(`system:serviceaccount:${ns}:stranger may not predict`);
    const caller = await tokenOf('caller');
    expect((await call('logistic', caller)).status).toBe(200);
    // From a pod (restricted, no token of its own): 401; with the caller's token: 200.
    await core.createNamespacedPod({ namespace: ns, body: clientPod() as never });
    await eventually(
      async () => (await core.readNamespacedPod({ name: 'client', namespace: ns })).status?.phase === 'Running',
      'the client pod Running',
    );
    const fromPod = (token: string) => {
      const js = `fetch('http://logistic.${ns}.svc.cluster.local/v1/models/logistic:predict',{method:'POST',headers:{'content-type':'application/json',...(process.argv[1]?{authorization:'Bearer '+process.argv[1]}:{})},body:JSON.stringify({instances:[{input:[6.7,3.0,5.2,2.3]}]})}).then(async r=>console.log(JSON.stringify({status:r.status,body:await r.json()})))`;
      return JSON.parse(env.kubectl(['-n', ns, 'exec', 'client', '--', 'node', '-e', js, token]));
    };
    expect(fromPod('')).toMatchObject({ status: 401, body: { code: 'MS_ERR_AUTH_UNAUTHENTICATED' } });
    expect(fromPod(caller)).toMatchObject({ status: 200, body: { predictions: [2] } });
    // The ensembles call their members with the caller's token (the members check the caller, not the ensemble).
    for (const name of ['ensemble', 'ensemble-py']) {
      const r = await call(name, caller);
      expect(r.status, r.body).toBe(200);
      expect(JSON.parse(r.body).predictions[0].label).toBe('virginica');
      expect((await call(name, await tokenOf('stranger'))).status).toBe(403);
    }

    // tritonclient (PyPI), unmodified, over HTTP and gRPC through port-forwards, with its headers= argument.
    const forwards = await Promise.all(
      [':80', ':8081'].map((p) =>
        portForward([env.info.binaries.kubectl, '--kubeconfig', env.info.kubeconfig, '-n', ns, 'port-forward', 'svc/logistic', p]),
      ),
    );
    try {
      const script = `
import json, sys, numpy as np
import tritonclient.http as h, tritonclient.grpc as g
from tritonclient.utils import InferenceServerException
token = sys.argv[3]
out = {}
# gRPC metadata keys are lower case.
for name, mod, url, key in (("http", h, sys.argv[1], "Authorization"), ("grpc", g, sys.argv[2], "authorization")):
    c = mod.InferenceServerClient(url)
    x = np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
    i = mod.InferInput("input", list(x.shape), "FP64"); i.set_data_from_numpy(x)
    r = c.infer("logistic", [i], headers={key: "Bearer " + token})
    try:
        c.infer("logistic", [i]); refused = None
    except InferenceServerException as e:
        refused = str(e.status())
    out[name] = {"predict": r.as_numpy("predict").tolist(), "refused": refused}
print(json.dumps(out))
`;
      const { stdout } = await _execFileAsync(
        env.info.binaries.python,
        ['-c', script, `127.0.0.1:${forwards[0]?.port}`, `127.0.0.1:${forwards[1]?.port}`, caller],
        { timeout: 60_000 },
      );
      const seen = JSON.parse(stdout.trim().split('\n').at(-1) as string);
      expect(seen.http.predict).toEqual([2]);
      expect(seen.grpc.predict).toEqual([2]);
      expect(seen.http.refused).toBe('401');
      expect(seen.grpc.refused).toBe('StatusCode.UNAUTHENTICATED');
    } finally {
      for (const f of forwards) f.close();
    }
  }, 600_000);
});
