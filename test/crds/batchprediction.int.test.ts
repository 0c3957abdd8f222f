// The BatchPrediction CRD on the real API server: defaults, kubectl's view of it, and the rules it refuses with a
// readable message (schema and CEL), the immutable spec among them.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import type { BatchPrediction } from '../../crds/batchprediction.schema.ts';
import { useTestEnv } from '../env/fixtures.ts';

const env = useTestEnv();
const custom = env.kubeConfig.makeApiClient(CustomObjectsApi);
let ns: string;

const kubectl = (...args: string[]) => env.kubectl(args);
const at = (name?: string) => ({
  group: 'modelship.dev',
  version: 'v1alpha1',
  namespace: ns,
  plural: 'batchpredictions',
  ...(name ? { name } : {}),
});

function bp(name: string, spec: Record<string, unknown>) {
  return { apiVersion: 'modelship.dev/v1alpha1', kind: 'BatchPrediction', metadata: { name }, spec };
}

async function create(body: Record<string, unknown>) {
  return custom.createNamespacedCustomObject({ ...at(), body }) as Promise<BatchPrediction>;
}

async function refusal(promise: Promise<unknown>): Promise<{ code: number; message: string }> {
  const err = (await promise.then(
    () => ({ code: 0, body: '{"message":"accepted"}' }),
    (e: unknown) => e,
  )) as { code: number; body: string };
  return { code: err.code, message: JSON.parse(err.body).message };
}

beforeAll(async () => {
  env.installCrd();
  ns = await env.namespace('crd-bp');
});

const good = {
  model: { modelServing: 'iris' },
  input: { uri: 's3://data/iris/' },
  output: { uri: 's3://out/scored' },
};
const fresh = () => `bad-${Math.random().toString(36).slice(2, 8)}`;

describe('BatchPrediction CRD on the API server', () => {
  it('accepts a minimal spec and fills in the defaults', async () => {
    const created = await create(
      bp('minimal', { ...good, input: { ...good.input, storage: { endpoint: 'http://minio:9000', secretRef: { name: 'k' } } } }),
    );
    expect(created.spec).toMatchObject({
      parallelism: 2,
      batchSize: 1024,
      maxRowErrors: 100,
      rowsPerShard: 1_000_000,
      backoffLimitPerIndex: 3,
      input: { storage: { secretRef: { name: 'k', accessKeyKey: 'accessKey', secretKeyKey: 'secretKey' } } },
    });
    expect(created.spec).not.toHaveProperty('activeDeadlineSeconds');
  });

  it('accepts a bundle of its own, a glob in the last part, columns and keys', async () => {
    const created = await create(
      bp('full', {
        model: { bundle: { uri: 's3://models/iris.zip', format: 'onnx' } },
        input: { uri: 's3://data/iris/part-*.parquet', format: 'parquet' },
        output: { uri: 's3://out/iris', format: 'jsonl', storage: { endpoint: 'https://s3.example', region: 'eu-west-1' } },
        columns: { input: ['sl', 'sw', 'pl', 'pw'] },
        keyColumns: ['id'],
        parallelism: 8,
        activeDeadlineSeconds: 3600,
        runtime: { workers: 2, timeoutSeconds: 120, env: [{ name: 'X', value: '1' }] },
        resources: { limits: { memory: '1Gi' } },
      }),
    );
    expect(created.spec.columns).toEqual({ input: ['sl', 'sw', 'pl', 'pw'] });
  });

  it('answers kubectl explain, the short name, the category and the progress columns', () => {
    expect(kubectl('explain', 'batchprediction.spec.model')).toContain('The model: a ModelServing, or a bundle');
    expect(kubectl('explain', 'bp.spec.rowsPerShard')).toContain('cut by whole row groups');
    expect(kubectl('-n', ns, 'get', 'modelship')).toContain('batchprediction.modelship.dev/minimal');
    expect(kubectl('-n', ns, 'get', 'bp')).toMatch(/NAME\s+PHASE\s+DONE\s+TOTAL\s+SHARDS\s+ROWS\/S\s+AGE/);
  });

  it('takes a status through the status subresource only', async () => {
    kubectl(
      '-n',
      ns,
      'patch',
      'bp',
      'minimal',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: { phase: 'Running', rows: { total: 10, done: 4, failed: 0 }, shards: { succeeded: 1 }, rowsPerSecond: 7 } }),
    );
    expect(kubectl('-n', ns, 'get', 'bp', 'minimal', '--no-headers')).toMatch(/^minimal\s+Running\s+4\s+10\s+1\s+7\s/);
  });

  it.each([
    ['a model with neither', { ...good, model: {} }, 'model needs exactly one of modelServing'],
    [
      'a model with both',
      { ...good, model: { modelServing: 'iris', bundle: { uri: 's3://m/b.zip' } } },
      'model needs exactly one of modelServing',
    ],
    ['an input that is not s3://', { ...good, input: { uri: 'https://h/data.csv' } }, 'input uri must be s3://<bucket>/<prefix>'],
    ['a glob before the last part', { ...good, input: { uri: 's3://data/*/x.csv' } }, 'a glob (* and ?) allowed in its last part only'],
    ['a glob in the output', { ...good, output: { uri: 's3://out/*.csv' } }, 'output uri must be s3://<bucket>/<prefix>, without a glob'],
    ['an output under the input', { ...good, output: { uri: 's3://data/iris/scored' } }, 'output must not be under the input prefix'],
    ['an unknown format', { ...good, input: { uri: 's3://data/x', format: 'xlsx' } }, 'spec.input.format: Unsupported value: "xlsx"'],
    [
      'a storage endpoint without scheme',
      { ...good, input: { uri: 's3://data/x', storage: { endpoint: 'minio:9000' } } },
      'endpoint must be an http:// or https:// URL',
    ],
    [
      'storage without an endpoint',
      { ...good, input: { uri: 's3://data/x', storage: { region: 'x' } } },
      'spec.input.storage.endpoint: Required value',
    ],
    ['no output', { model: good.model, input: good.input }, 'spec.output: Required value'],
    ['parallelism 0', { ...good, parallelism: 0 }, 'spec.parallelism: Invalid value: 0'],
    ['parallelism 300', { ...good, parallelism: 300 }, 'spec.parallelism: Invalid value: 300'],
    ['a batch size of 100000', { ...good, batchSize: 100_000 }, 'spec.batchSize: Invalid value: 100000'],
    ['a column mapped to no column', { ...good, columns: { input: [] } }, 'spec.columns.input: Invalid value'],
    [
      'a reserved env var',
      { ...good, runtime: { env: [{ name: 'MODELSHIP_BATCH_SPEC', value: 'x' }] } },
      'MODELSHIP_* variables are set by the operator',
    ],
  ])('refuses %s with a readable message', async (_what, spec, message) => {
    const r = await refusal(create(bp(fresh(), spec)));
    expect(r.code).toBe(422);
    expect(r.message).toContain(message);
  });

  it.each([
    ['a name too long for its pods', 'a'.repeat(53)],
    ['a name that cannot name a pod', '1batch'],
  ])('refuses %s', async (_what, name) => {
    const r = await refusal(create(bp(name, good)));
    expect(r.code).toBe(422);
    expect(r.message).toContain('metadata.name must be a DNS-1035 label of at most 52');
  });

  it('refuses any change to the spec: a BatchPrediction is one run', async () => {
    await create(bp('once', good));
    let message = '';
    try {
      kubectl('-n', ns, 'patch', 'bp', 'once', '--type=merge', '-p', JSON.stringify({ spec: { parallelism: 4 } }));
    } catch (err) {
      message = String((err as { stderr?: string }).stderr);
    }
    expect(message).toContain('spec is immutable: a BatchPrediction is one run; to run again, create another BatchPrediction');
    // Labels and annotations stay editable.
    kubectl('-n', ns, 'label', 'bp', 'once', 'team=ml');
  });
});
