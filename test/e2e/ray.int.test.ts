// Ray Serve's scikit-learn tutorial on the real node, its code as the tutorial writes it: SKLearnModel twice (a
// logistic regression and an SVM, examples/ray-sklearn) and the ensemble function (examples/ray-ensemble) that asks
// both through serve.get_handle and ray.get, as three ModelServings of examples/ray-serve.yaml reconciled by the
// operator that helm installs. Their answers are compared with the same model files' scikit-learn predictions,
// computed here; the tutorial's own client call, `requests.get(url, json=sample_input).text`, runs as written from
// the node's network namespace.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { packBundle } from '../../cli/pack.ts';
import { pushBundle } from '../../cli/push.ts';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { binaries } from '../../env/build.ts';
import { fromNode, installOperator, ON_REAL_NODE } from '../../env/on-node.ts';
import { eventually } from '../../env/wait.ts';
import { useTestEnv } from '../env/fixtures.ts';

const execFileAsync = promisify(execFile);
const env = useTestEnv();
const core = env.kubeConfig.makeApiClient(CoreV1Api);
const REPO = join(import.meta.dirname, '..', '..');
const EXAMPLES = join(REPO, 'examples');
const node = env.info.realNode;
/** The environment's Python as built now (its test tools include requests, which the tutorial's client uses). */
const { python } = binaries();
const FEATURES = ['sepal length', 'sepal width', 'petal length', 'petal width'] as const;
/** The tutorial's sample_input. */
const SAMPLE = { 'sepal length': 1.2, 'sepal width': 1.0, 'petal length': 1.1, 'petal width': 0.9 };
let ns: string;
let opNs: string;
let bucket: string;
let uninstall: (() => void) | undefined;
const ms = env.modelServings(() => ns);
const cond = (m: ModelServing, type: string) => m.status?.conditions?.find((c) => c.type === type);

/** The 150 iris rows as the tutorial's payloads, and each model file's labels for them, by scikit-learn here. */
interface Reference {
  rows: Record<string, number>[];
  logistic: string[];
  svm: string[];
  sample: { logistic: string; svm: string };
}

const REFERENCE_SCRIPT = `
import json, os, pickle, sys
from sklearn.datasets import load_iris
examples = sys.argv[1]
X = load_iris().data.tolist()
names = ${JSON.stringify(FEATURES)}
sample = ${JSON.stringify(Object.values(SAMPLE))}
out = {"rows": [dict(zip(names, x)) for x in X], "sample": {}}
for member, file in (("logistic", "iris_logistic_regression.pkl"), ("svm", "iris_svm_classifier.pkl")):
    base = os.path.join(examples, "ray-sklearn", member)
    model = pickle.load(open(os.path.join(base, file), "rb"))
    labels = json.load(open(os.path.join(base, "iris_labels.json")))
    out[member] = [labels[i] for i in model.predict(X)]
    out["sample"][member] = labels[model.predict([sample])[0]]
print(json.dumps(out))
`;

async function reference(): Promise<Reference> {
  const { stdout } = await execFileAsync(python, ['-c', REFERENCE_SCRIPT, EXAMPLES], { timeout: 60_000 });
  return JSON.parse(stdout) as Reference;
}

/** The tutorial's client code, as written, run by the environment's Python inside the node's network namespace. */
async function tutorialGet(url: string, payload: unknown): Promise<string> {
  const script = [
    'import json, sys',
    'import requests',
    'sample_input = json.loads(sys.argv[2])',
    'print(requests.get(sys.argv[1], json=sample_input).text, end="")',
  ].join('\n');
  const { stdout } = await execFileAsync(
    'nsenter',
    [`--net=/run/netns/${node?.netns}`, '--', python, '-c', script, url, JSON.stringify(payload)],
    { timeout: 30_000 },
  );
  return stdout;
}

const ip = async (name: string) => (await core.readNamespacedService({ name, namespace: ns })).spec?.clusterIP as string;

async function post(name: string, path: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fromNode(env.info, `http://${await ip(name)}${path}`, JSON.stringify(body));
  return { status: r.status, body: JSON.parse(r.body) };
}

async function push(dir: string, key: string): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'e2e-ray-'));
  const packed = await packBundle(dir, join(out, 'bundle.zip'));
  await pushBundle(packed.file, `s3://${bucket}/${key}/bundle.zip`, { ...env.info.s3 }, { progress: false });
}

/** examples/ray-serve.yaml as it would be applied here: this bucket, MinIO as pods reach it, the real node. */
async function manifests(): Promise<ModelServing[]> {
  const text = await readFile(join(EXAMPLES, 'ray-serve.yaml'), 'utf8');
  return parseAllDocuments(text).map((d) => {
    const m = d.toJS() as ModelServing;
    m.spec.bundle.uri = m.spec.bundle.uri.replace('s3://models/', `s3://${bucket}/`);
    if (m.spec.bundle.storage)
      m.spec.bundle.storage = { ...m.spec.bundle.storage, endpoint: node?.s3Endpoint as string, secretRef: { name: 'minio' } } as never;
    Object.assign(m.spec, ON_REAL_NODE);
    return m;
  });
}

const NAMES = ['ray-logistic', 'ray-svm', 'ray-ensemble'];
let ref: Reference;

beforeAll(async () => {
  if (!node) throw new Error('the environment has no real node (started with MODELSHIP_REAL_NODE=0?): env:down, then env:up');
  env.installCrd();
  ns = await env.namespace('ray', { nodes: 'any' });
  opNs = await env.namespace('ray-operator', { nodes: 'any' });
  bucket = await env.bucket('ray');
  ref = await reference();
  await push(join(EXAMPLES, 'ray-sklearn', 'logistic'), 'ray/logistic/1');
  await push(join(EXAMPLES, 'ray-sklearn', 'svm'), 'ray/svm/1');
  await push(join(EXAMPLES, 'ray-ensemble'), 'ray/ensemble/1');
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'minio' }, stringData: { accessKey: env.info.s3.accessKey, secretKey: env.info.s3.secretKey } },
  });
  uninstall = installOperator(env.info, `modelship-${opNs.split('-').at(-1)}`, opNs, [ns]);
  for (const m of await manifests()) await ms.create(m.metadata.name, m.spec as unknown as Record<string, unknown>);
  for (const name of NAMES) {
    await eventually(
      async () => {
        const m = await ms.get(name);
        return cond(m, 'Ready')?.status === 'True' && (m.status?.readyReplicas ?? 0) >= 1 ? m : undefined;
      },
      `${name} Ready`,
      240_000,
    );
  }
  // Ready, and routed: kube-proxy has programmed each Service (a moment after the EndpointSlice).
  for (const name of NAMES) {
    await eventually(
      async () => (await post(name, `/v1/models/${name}:predict`, { instances: [SAMPLE] })).status === 200,
      `${name} answering through its Service`,
      60_000,
    );
  }
}, 480_000);

afterAll(() => uninstall?.());

describe("Ray Serve's scikit-learn tutorial on the real node, its code as written", () => {
  it('the two SKLearnModel members answer the labels scikit-learn gives for all 150 iris rows (KServe v1 and OIP v2)', async () => {
    for (const [name, member] of [
      ['ray-logistic', 'logistic'],
      ['ray-svm', 'svm'],
    ] as const) {
      const v1 = await post(name, `/v1/models/${name}:predict`, { instances: ref.rows });
      expect(v1.status, JSON.stringify(v1.body)).toBe(200);
      expect(v1.body.predictions).toEqual(ref[member]);
      const v2 = await post(name, `/v2/models/${name}/infer`, {
        inputs: FEATURES.map((f) => ({ name: f, shape: [ref.rows.length], datatype: 'FP64', data: ref.rows.map((r) => r[f]) })),
      });
      expect(v2.status, JSON.stringify(v2.body)).toBe(200);
      expect(v2.body.outputs).toEqual([{ name: 'output', datatype: 'BYTES', shape: [ref.rows.length], data: ref[member] }]);
    }
  });

  it("the tutorial's requests.get(url, json=sample_input).text answers the label, as 'setosa' in the tutorial", async () => {
    for (const [name, member] of [
      ['ray-logistic', 'logistic'],
      ['ray-svm', 'svm'],
    ] as const) {
      const text = await tutorialGet(`http://${await ip(name)}/v2/models/${name}/custom`, SAMPLE);
      expect(text).toBe(ref.sample[member]);
    }
    expect(ref.sample.logistic).toBe('setosa');
  });

  it('the ensemble function calls both members and answers {"logistic": …, "svm": …} for every row', async () => {
    const v1 = await post('ray-ensemble', '/v1/models/ray-ensemble:predict', { instances: ref.rows });
    expect(v1.status, JSON.stringify(v1.body)).toBe(200);
    expect(v1.body.predictions).toEqual(ref.rows.map((_, i) => ({ logistic: ref.logistic[i], svm: ref.svm[i] })));
    const m = await ms.get('ray-ensemble');
    expect(cond(m, 'DependenciesReady')).toMatchObject({ status: 'True' });
  });

  it("the tutorial's print(requests.get('…/ensemble', json=sample_input).text) gives both members' labels", async () => {
    const text = await tutorialGet(`http://${await ip('ray-ensemble')}/v2/models/ray-ensemble/custom/ensemble`, SAMPLE);
    expect(JSON.parse(text)).toEqual({ logistic: ref.sample.logistic, svm: ref.sample.svm });
  });
});
