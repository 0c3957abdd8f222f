// `npm run bench:batch-cluster`: a BatchPrediction on the local environment's real node against the same rows sent
// as requests to the same ModelServing, side by side in the same run. For the no-code scikit-learn iris bundle
// (Python engine) and its ONNX conversion, each served by one replica (1 CPU limit, as deployed by default: no
// adaptive batching):
//   online  single-row KServe v1 requests from inside the node's network namespace (env/node-load.ts, keep-alive
//           connections) at 8, 32 and 64 concurrent loops for BENCH_SECONDS each; the best rows/s counts
//   batch   a BatchPrediction over BENCH_BATCH_ROWS Parquet rows (one file of 60% in row groups of 100,000, four of
//           10%) with parallelism 1, then 2; rows/s = rows ÷ (the last shard's end − the plan's start), the status'
//           own figure, pod starts and model loads included
// The operator is installed by its chart from the image built here, in a namespace of its own; everything is
// deleted at the end. Prints one JSON document. Needs the environment up with its real node (npm run env:up).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packBundle } from '../cli/pack.ts';
import { pushBundle } from '../cli/push.ts';
import { readEnv } from '../env/env.ts';
import { installOperator, nodeLoad, ON_REAL_NODE } from '../env/on-node.ts';
import { minioClientFor } from '../runtime/bundle/fetch.ts';
import { IRIS_COLUMNS, irisParquet } from '../test/fixtures/iris-rows.ts';
import { ratio } from './lib.ts';
import { log, root, SETOSA } from './servers.ts';

const ROWS = Number(process.env.BENCH_BATCH_ROWS ?? 1_000_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const MODELS = [
  { name: 'iris-sklearn', dir: 'examples/iris-sklearn', format: 'python' },
  { name: 'iris-onnx', dir: 'examples/iris-onnx', format: 'onnx' },
];

const info = await readEnv();
if (!info?.realNode) throw new Error('the local environment with its real node is not up: npm run env:up');
const node = info.realNode;
const kubectl = (args: string[], input?: string) =>
  execFileSync(info.binaries.kubectl, ['--kubeconfig', info.kubeconfig, ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
const apply = (ns: string, obj: unknown) => kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify(obj));
const get = (ns: string, kind: string, name: string) => JSON.parse(kubectl(['get', kind, name, '-n', ns, '-o', 'json']));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(1000);
  }
}

const suffix = randomBytes(3).toString('hex');
const ns = `bench-batch-${suffix}`;
const opNs = `bench-batch-op-${suffix}`;
const bucket = `bench-batch-${suffix}`;
const minio = minioClientFor({ ...info.s3 });
let uninstall: (() => void) | undefined;
try {
  kubectl([
    'apply',
    '--server-side',
    '--force-conflicts',
    '-f',
    join(root, 'crds/modelship.dev_modelservings.yaml'),
    '-f',
    join(root, 'crds/modelship.dev_batchpredictions.yaml'),
  ]);
  for (const n of [ns, opNs]) kubectl(['create', 'ns', n]);
  await minio.makeBucket(bucket, info.s3.region);
  const put = (key: string, body: Uint8Array) => minio.putObject(bucket, key, Buffer.from(body), body.length);
  log(`writing ${ROWS} rows of Parquet to s3://${bucket}/iris/`);
  const big = Math.round(ROWS * 0.6);
  await put('iris/a.parquet', new Uint8Array(irisParquet(0, big, 100_000)));
  for (let i = 0; i < 4; i++) {
    const first = big + Math.floor(((ROWS - big) * i) / 4);
    await put(`iris/${'bcde'[i]}.parquet`, new Uint8Array(irisParquet(first, big + Math.floor(((ROWS - big) * (i + 1)) / 4) - first)));
  }
  for (const m of MODELS) {
    const out = await mkdtemp(join(tmpdir(), 'bench-batch-'));
    const packed = await packBundle(join(root, m.dir), join(out, 'bundle.zip'));
    await pushBundle(packed.file, `s3://${bucket}/${m.name}/bundle.zip`, { ...info.s3 }, { progress: false });
  }
  apply(ns, {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: 'storage' },
    stringData: { accessKey: info.s3.accessKey, secretKey: info.s3.secretKey },
  });
  uninstall = installOperator(info, `modelship-bench-${suffix}`, opNs, [ns]);
  for (const m of MODELS) {
    apply(ns, {
      apiVersion: 'modelship.dev/v1alpha1',
      kind: 'ModelServing',
      metadata: { name: m.name },
      spec: {
        bundle: {
          uri: `s3://${bucket}/${m.name}/bundle.zip`,
          format: m.format,
          storage: { endpoint: node.s3Endpoint, secretRef: { name: 'storage' } },
        },
        replicas: 1,
        resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } },
        ...ON_REAL_NODE,
      },
    });
  }
  const results: Record<string, unknown> = {};
  for (const m of MODELS) {
    await until(`${m.name} ready`, 300_000, () => (get(ns, 'ms', m.name).status?.readyReplicas === 1 ? true : undefined));
    const ip = get(ns, 'svc', m.name).spec.clusterIP as string;
    const body = JSON.stringify({ instances: [{ input: SETOSA }] });
    const online: Record<string, number> = {};
    for (const connections of [8, 32, 64]) {
      log(`${m.name}: online, ${connections} connections, ${SECONDS} s`);
      const run = nodeLoad(info, `http://${ip}/v1/models/${m.name}:predict`, body, connections, SECONDS * 1000);
      await sleep(SECONDS * 1000 + 500);
      const counts = await run.stop();
      if (counts.failed) throw new Error(`${m.name} online: ${counts.failed} failed: ${counts.errors.join('; ')}`);
      online[`c${connections}`] = Math.round(counts.ok / SECONDS);
    }
    const best = Math.max(...Object.values(online));
    const batch: Record<string, unknown> = {};
    for (const parallelism of [1, 2]) {
      const name = `${m.name}-p${parallelism}`;
      log(`${m.name}: BatchPrediction over ${ROWS} rows, parallelism ${parallelism}`);
      const t0 = Date.now();
      apply(ns, {
        apiVersion: 'modelship.dev/v1alpha1',
        kind: 'BatchPrediction',
        metadata: { name },
        spec: {
          model: { modelServing: m.name },
          input: { uri: `s3://${bucket}/iris/`, storage: { endpoint: node.s3Endpoint, secretRef: { name: 'storage' } } },
          output: { uri: `s3://${bucket}/out/${name}/` },
          columns: { input: [...IRIS_COLUMNS] },
          keyColumns: ['id'],
          parallelism,
        },
      });
      const status = await until(`${name} finished`, 900_000, () => {
        const s = get(ns, 'bp', name).status;
        return s?.phase === 'Succeeded' || s?.phase === 'Failed' ? s : undefined;
      });
      if (status.phase !== 'Succeeded' || status.rows?.done !== ROWS) throw new Error(`${name}: ${JSON.stringify(status)}`);
      batch[`pods${parallelism}`] = {
        rowsPerSecond: status.rowsPerSecond,
        shards: status.shards?.total,
        wallSeconds: Math.round((Date.now() - t0) / 100) / 10,
        vsBestOnline: ratio(status.rowsPerSecond, best),
      };
    }
    results[m.name] = { onlineRowsPerSecond: online, bestOnline: best, batch };
  }
  console.log(JSON.stringify({ rows: ROWS, seconds: SECONDS, results }, null, 2));
} finally {
  uninstall?.();
  for (const n of [ns, opNs]) {
    try {
      kubectl(['delete', 'ns', n, '--wait=false']);
    } catch {}
  }
  const names: string[] = [];
  for await (const o of minio.listObjectsV2(bucket, '', true)) if (o.name) names.push(o.name);
  if (names.length) await minio.removeObjects(bucket, names);
  await minio.removeBucket(bucket).catch(() => {});
}
