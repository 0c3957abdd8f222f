// Batch prediction end to end on the real node: BatchPredictions over 1,000,000 iris rows in Parquet (several
// files, one of them large and cut by row groups) with the ONNX, no-code scikit-learn and JS iris bundles, run by
// the operator the chart installs as Indexed Jobs of the real runtime image. The outputs are read back from MinIO:
// every row exactly once, and a sample of 1,000 equal to the same models' online answers over REST. Also: a pod
// killed mid-shard (the shard is retried, the result still exact), CSV and JSON Lines inputs, a malformed file
// (its shard fails with a coded reason in the status), and the CLI's `modelship batch --wait --json`.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { parquetReadObjects } from 'hyparquet';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { pushBundle } from '../../cli/push.ts';
import type { BatchPrediction } from '../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { fromNode as fromNodeOf, installOperator, ON_REAL_NODE } from '../../env/on-node.ts';
import { eventually } from '../../env/wait.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { IRIS_COLUMNS, irisCsv, irisJsonl, irisParquet, irisRows } from '../fixtures/iris-rows.ts';

const execFileAsync = promisify(execFile);
const env = useTestEnv();
const core = env.kubeConfig.makeApiClient(CoreV1Api);
const REPO = join(import.meta.dirname, '..', '..');
const node = env.info.realNode;
const ROWS = 1_000_000;
let ns: string;
let opNs: string;
let bucket: string;
let uninstall: (() => void) | undefined;
const ms = env.modelServings(() => ns);
const cond = (m: { status?: { conditions?: { type: string; status: string }[] } }, type: string) =>
  m.status?.conditions?.find((c) => c.type === type);

/** The three iris bundles, their model input, and the output that names the class. */
const MODELS = {
  'iris-onnx': { dir: 'examples/iris-onnx', input: 'input', label: 'predict', format: 'onnx' },
  'iris-sklearn': { dir: 'examples/iris-sklearn', input: 'input', label: 'predict', format: 'python' },
  'iris-js': { dir: 'examples/iris/bundle', input: 'features', label: 'label', format: 'js' },
} as const;
type ModelName = keyof typeof MODELS;

const storage = () => ({ endpoint: node?.s3Endpoint, secretRef: { name: 'batch-storage' } });

async function push(dir: string, key: string): Promise<void> {
  const out = await mkdtemp(join(tmpdir(), 'e2e-batch-'));
  const packed = await packBundle(join(REPO, dir), join(out, 'bundle.zip'));
  await pushBundle(packed.file, `s3://${bucket}/${key}/bundle.zip`, { ...env.info.s3 }, { progress: false });
}

async function putObject(key: string, body: Uint8Array | string): Promise<void> {
  const data = typeof body === 'string' ? Buffer.from(body) : Buffer.from(body);
  await env.minio().putObject(bucket, key, data, data.length);
}

async function batch(name: string, spec: Record<string, unknown>): Promise<void> {
  env.kubectl(
    ['apply', '-n', ns, '-f', '-'],
    JSON.stringify({ apiVersion: 'modelship.dev/v1alpha1', kind: 'BatchPrediction', metadata: { name }, spec }),
  );
}

async function getBatch(name: string): Promise<BatchPrediction> {
  return JSON.parse(env.kubectl(['get', 'batchprediction', name, '-n', ns, '-o', 'json'])) as BatchPrediction;
}

async function finished(name: string, timeout = 600_000): Promise<BatchPrediction> {
  return eventually(
    async () => {
      const bp = await getBatch(name);
      return bp.status?.phase === 'Succeeded' || bp.status?.phase === 'Failed' ? bp : undefined;
    },
    `BatchPrediction ${name} finished`,
    timeout,
  );
}

/** Every output row of a BatchPrediction (all its Parquet parts), by id. */
async function outputRows(prefix: string): Promise<Map<number, Record<string, unknown>>> {
  const rows = new Map<number, Record<string, unknown>>();
  const keys: string[] = [];
  for await (const o of env.minio().listObjectsV2(bucket, `${prefix}/`, true)) {
    if (o.name && /\/part-\d+(-\d+)?\.parquet$/.test(o.name)) keys.push(o.name);
  }
  expect(keys.length).toBeGreaterThan(0);
  for (const key of keys) {
    const chunks: Buffer[] = [];
    for await (const c of await env.minio().getObject(bucket, key)) chunks.push(c as Buffer);
    const buf = Buffer.concat(chunks);
    const file = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    for (const row of await parquetReadObjects({ file })) {
      const id = Number(row.id);
      // No row twice, across parts and retries.
      expect(rows.has(id)).toBe(false);
      rows.set(id, row);
    }
  }
  return rows;
}

const online = async (model: ModelName, rows: number[][]) => {
  const ip = (await core.readNamespacedService({ name: model, namespace: ns })).spec?.clusterIP as string;
  const instances = rows.map((r) => ({ [MODELS[model].input]: r }));
  const r = await fromNodeOf(env.info, `http://${ip}/v1/models/${model}:predict`, JSON.stringify({ instances }));
  expect(r.status).toBe(200);
  return JSON.parse(r.body).predictions as unknown[];
};

beforeAll(async () => {
  if (!node) throw new Error('the environment has no real node (started with MODELSHIP_REAL_NODE=0?): env:down, then env:up');
  env.installCrd();
  ns = await env.namespace('batch', { nodes: 'any' });
  env.kubectl(['label', 'ns', ns, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/enforce-version=latest']);
  opNs = await env.namespace('batch-operator', { nodes: 'any' });
  bucket = await env.bucket('batch');
  for (const [name, m] of Object.entries(MODELS)) await push(m.dir, name);
  // 1,000,000 rows: one file of 600,000 in row groups of 100,000 (cut into shards), four of 100,000.
  await putObject('iris/part-a.parquet', new Uint8Array(irisParquet(0, 600_000, 100_000)));
  for (let i = 0; i < 4; i++)
    await putObject(`iris/part-${'bcde'[i]}.parquet`, new Uint8Array(irisParquet(600_000 + i * 100_000, 100_000)));
  await core.createNamespacedSecret({
    namespace: ns,
    body: {
      metadata: { name: 'minio' },
      stringData: { accessKey: env.info.s3.readOnly?.accessKey ?? '', secretKey: env.info.s3.readOnly?.secretKey ?? '' },
    },
  });
  // Batch pods write their output: keys that may (the environment's own; only their driver container sees them).
  await core.createNamespacedSecret({
    namespace: ns,
    body: { metadata: { name: 'batch-storage' }, stringData: { accessKey: env.info.s3.accessKey, secretKey: env.info.s3.secretKey } },
  });
  uninstall = installOperator(env.info, `modelship-${opNs.split('-').at(-1)}`, opNs, [ns]);
  for (const [name, m] of Object.entries(MODELS)) {
    await ms.create(name, {
      bundle: {
        uri: `s3://${bucket}/${name}/bundle.zip`,
        format: m.format,
        storage: { endpoint: node.s3Endpoint, secretRef: { name: 'minio' } },
      },
      replicas: 1,
      resources: { requests: { cpu: '100m', memory: '96Mi' }, limits: { memory: '768Mi' } },
      ...ON_REAL_NODE,
    });
  }
  await Promise.all(
    Object.keys(MODELS).map((name) =>
      eventually(async () => ((await ms.get(name)) as ModelServing).status?.readyReplicas === 1 || undefined, `${name} ready`, 180_000),
    ),
  );
}, 600_000);

afterAll(() => uninstall?.());

describe('BatchPrediction on the real node', () => {
  for (const model of Object.keys(MODELS) as ModelName[]) {
    it(`scores 1,000,000 Parquet rows with ${model}: every row once, equal to the online answers`, async () => {
      const name = `${model}-1m`;
      await batch(name, {
        model: { modelServing: model },
        input: { uri: `s3://${bucket}/iris/`, storage: storage() },
        output: { uri: `s3://${bucket}/out/${name}` },
        columns: { [MODELS[model].input]: [...IRIS_COLUMNS] },
        keyColumns: ['id'],
        parallelism: 2,
      });
      const bp = await finished(name);
      expect(bp.status?.phase, JSON.stringify(bp.status)).toBe('Succeeded');
      expect(bp.status?.rows).toMatchObject({ total: ROWS, done: ROWS, failed: 0 });
      // At least one shard per pod, each at most rowsPerShard (1,000,000): the 600,000-row file is cut by its row
      // groups (500,000 rows), its last cut packed with the four small files.
      expect(bp.status?.shards?.total).toBe(2);
      expect(cond(bp, 'Complete')?.status).toBe('True');
      const rows = await outputRows(`out/${name}`);
      expect(rows.size).toBe(ROWS);
      // A sample of 1,000 rows, asked online of the same ModelServing.
      const ids = Array.from({ length: 1000 }, (_, i) => (i * 997 + 13) % ROWS);
      for (let at = 0; at < ids.length; at += 250) {
        const slice = ids.slice(at, at + 250);
        const features = slice.map((id) => {
          const c = irisRows(id, 1);
          return IRIS_COLUMNS.map((n) => c[n][0] as number);
        });
        const answers = await online(model, features);
        slice.forEach((id, k) => {
          const out = rows.get(id) as Record<string, unknown>;
          const want = answers[k];
          const label = MODELS[model].label;
          const got = out[label];
          const expected = typeof want === 'object' && want !== null ? (want as Record<string, unknown>)[label] : want;
          expect(String(got), `row ${id}`).toBe(String(Array.isArray(expected) ? expected[0] : expected));
        });
      }
    }, 900_000);
  }

  it('retries a shard whose pod is killed mid-shard: the result is still exact', async () => {
    const name = 'killed';
    await batch(name, {
      model: { modelServing: 'iris-sklearn' },
      input: { uri: `s3://${bucket}/iris/part-a.parquet`, storage: storage() },
      output: { uri: `s3://${bucket}/out/${name}` },
      columns: { input: [...IRIS_COLUMNS] },
      keyColumns: ['id'],
      parallelism: 1,
      batchSize: 256,
      rowsPerShard: 300_000,
    });
    // A shard pod whose driver has been scoring for a while: deleted, as a node drain or an eviction would.
    const victim = await eventually(
      async () => {
        const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `modelship.dev/batch=${name}` })).items;
        const p = pods.find((x) => x.status?.containerStatuses?.find((c) => c.name === 'driver')?.state?.running);
        const since = p?.status?.containerStatuses?.find((c) => c.name === 'driver')?.state?.running?.startedAt;
        return since && Date.now() - new Date(since).getTime() > 2000 ? p : undefined;
      },
      'a shard pod scoring',
      300_000,
    );
    const index = victim.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'];
    await core.deleteNamespacedPod({ name: victim.metadata?.name as string, namespace: ns, gracePeriodSeconds: 0 });
    const bp = await finished(name);
    expect(bp.status?.phase, JSON.stringify(bp.status)).toBe('Succeeded');
    expect(bp.status?.rows).toMatchObject({ total: 600_000, done: 600_000 });
    // That index ran again in a new pod.
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `modelship.dev/batch=${name}` })).items.filter(
      (p) => p.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'] === index,
    );
    expect(pods.some((p) => p.metadata?.name !== victim.metadata?.name && p.status?.phase === 'Succeeded')).toBe(true);
    const rows = await outputRows(`out/${name}`);
    expect(rows.size).toBe(600_000);
    // Exactly the ids 0 … 599,999 (the size above, and no id outside the range).
    for (const id of rows.keys()) expect(id >= 0 && id < 600_000, `id ${id}`).toBe(true);
  }, 900_000);

  it('reads CSV and JSON Lines inputs', async () => {
    await putObject('text/rows.csv', irisCsv(0, 20_000));
    await putObject('text/rows.jsonl', irisJsonl(20_000, 20_000));
    const name = 'text';
    await batch(name, {
      model: { modelServing: 'iris-js' },
      input: { uri: `s3://${bucket}/text/`, storage: storage() },
      output: { uri: `s3://${bucket}/out/${name}`, format: 'parquet' },
      columns: { features: [...IRIS_COLUMNS] },
      keyColumns: ['id'],
      rowsPerShard: 20_000, // one shard per file (smaller files would be packed together)
    });
    const bp = await finished(name);
    expect(bp.status?.phase, JSON.stringify(bp.status)).toBe('Succeeded');
    expect(bp.status?.shards?.total).toBe(2);
    const rows = await outputRows(`out/${name}`);
    expect(rows.size).toBe(40_000);
    const ids = [0, 1, 19_999, 20_000, 39_999];
    const answers = await online(
      'iris-js',
      ids.map((id) => {
        const c = irisRows(id, 1);
        return IRIS_COLUMNS.map((n) => c[n][0] as number);
      }),
    );
    ids.forEach((id, k) => {
      expect(rows.get(id)?.label).toBe((answers[k] as { label: string }).label);
    });
  }, 600_000);

  it('fails the shard of a malformed file with a coded reason in the status (not retried); the others succeed', async () => {
    const good = new Uint8Array(irisParquet(0, 1000));
    const bad = Buffer.from(irisParquet(0, 20_000, 5000));
    // The footer stays readable (the plan succeeds); the data pages are garbage.
    for (let i = 4; i < bad.length - 2000; i++) bad[i] = ((bad[i] as number) * 7 + 13) & 255;
    await putObject('mixed/a-good.parquet', good);
    await putObject('mixed/b-bad.parquet', bad);
    const name = 'malformed';
    await batch(name, {
      model: { modelServing: 'iris-js' },
      input: { uri: `s3://${bucket}/mixed/*.parquet`, storage: storage() },
      output: { uri: `s3://${bucket}/out/${name}` },
      columns: { features: [...IRIS_COLUMNS] },
      rowsPerShard: 1000,
    });
    const bp = await finished(name);
    expect(bp.status?.phase).toBe('Failed');
    expect(bp.status?.failedShards?.[0]).toMatchObject({
      code: 'MS_ERR_BATCH_INPUT_FORMAT',
      message: expect.stringMatching(/b-bad\.parquet/),
    });
    expect(bp.status?.shards?.succeeded).toBe(1);
    expect(cond(bp, 'Failed')?.status).toBe('True');
    // Not retried: one pod for the bad file's shard.
    const index = String(bp.status?.failedShards?.[0]?.index);
    const pods = (await core.listNamespacedPod({ namespace: ns, labelSelector: `modelship.dev/batch=${name}` })).items.filter(
      (p) => p.metadata?.annotations?.['batch.kubernetes.io/job-completion-index'] === index,
    );
    expect(pods).toHaveLength(1);
  }, 600_000);

  it('modelship batch --wait --json creates one and follows it to the end', async () => {
    await putObject('cli/rows.parquet', new Uint8Array(irisParquet(0, 5000)));
    const { stdout } = await execFileAsync(
      process.execPath,
      [
        join(REPO, 'cli/modelship.ts'),
        'batch',
        'ms/iris-onnx',
        '-n',
        ns,
        '-i',
        `s3://${bucket}/cli/`,
        '-o',
        `s3://${bucket}/out/cli`,
        '--columns',
        `input=${IRIS_COLUMNS.join(',')}`,
        '--key',
        'id',
        '--storage-secret',
        'batch-storage',
        '--wait',
        '--json',
      ],
      { env: { ...process.env, KUBECONFIG: env.info.kubeconfig, MODELSHIP_S3_CLUSTER_ENDPOINT: node?.s3Endpoint ?? '' }, timeout: 600_000 },
    );
    const status = JSON.parse(stdout.trim().split('\n').at(-1) as string);
    expect(status).toMatchObject({ namespace: ns, phase: 'Succeeded', rows: { total: 5000, done: 5000 } });
    expect((await outputRows('out/cli')).size).toBe(5000);
  }, 600_000);
});
