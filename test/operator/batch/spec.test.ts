import { describe, expect, it } from 'vitest';
import { batchJobSpec, batchModel, storageMounts, storageVolumes } from '../../../operator/controller/batch/spec.ts';
import { BATCH } from '../../../runtime/contract.ts';
import { batch, modelOf, modelServing } from './fixtures.ts';

describe('batchJobSpec', () => {
  it.each([
    [
      'the input, the output on the input store, the sizes',
      batch(),
      {
        model: 's3://models/iris.zip',
        input: { uri: 's3://data/iris/', storage: { endpoint: 'http://minio:9000', credentialsDir: BATCH.inputSecretDir } },
        output: { uri: 's3://out/scored', storage: { endpoint: 'http://minio:9000', credentialsDir: BATCH.outputSecretDir } },
        batchSize: 1024,
        maxRowErrors: 100,
        rowsPerShard: 250_000,
        parallelism: 2,
      },
    ],
    [
      "the output's format defaults to the input's; its own store and region stay its own",
      batch({
        input: { uri: 's3://data/x.csv', format: 'csv' },
        output: { uri: 's3://out/y', storage: { endpoint: 'https://s3.example', region: 'eu-west-1' } },
      }),
      {
        model: 's3://models/iris.zip',
        input: { uri: 's3://data/x.csv', format: 'csv' },
        output: { uri: 's3://out/y', format: 'csv', storage: { endpoint: 'https://s3.example', region: 'eu-west-1' } },
        batchSize: 1024,
        maxRowErrors: 100,
        rowsPerShard: 250_000,
        parallelism: 2,
      },
    ],
    [
      'one column gives its value, several a vector in order; key columns as given',
      batch({
        input: { uri: 's3://data/x', format: 'parquet' },
        output: { uri: 's3://out/y', format: 'jsonl' },
        columns: { features: ['sl', 'sw', 'pl', 'pw'], id: ['key'] },
        keyColumns: ['key'],
        batchSize: 7,
        maxRowErrors: 0,
        rowsPerShard: 10,
      }),
      {
        model: 's3://models/iris.zip',
        input: { uri: 's3://data/x', format: 'parquet' },
        output: { uri: 's3://out/y', format: 'jsonl' },
        columns: { features: ['sl', 'sw', 'pl', 'pw'], id: 'key' },
        keyColumns: ['key'],
        batchSize: 7,
        maxRowErrors: 0,
        rowsPerShard: 10,
        parallelism: 2,
      },
    ],
  ])('%s', (_what, bp, want) => {
    expect(batchJobSpec(bp, modelOf(bp, modelServing()))).toEqual(want);
  });

  it("names the model by its bundle: the ModelServing's, or its own, with the sha256 it pins", () => {
    expect(batchJobSpec(batch(), modelOf(batch(), modelServing())).model).toBe('s3://models/iris.zip');
    const own = batch({ model: { bundle: { uri: 's3://m/b.zip', sha256: 'a'.repeat(64) } } });
    expect(batchJobSpec(own, modelOf(own, undefined)).model).toBe(`s3://m/b.zip@sha256:${'a'.repeat(64)}`);
  });

  it('never carries a credential, only where the Secret is mounted', () => {
    const text = JSON.stringify(batchJobSpec(batch(), modelOf(batch(), modelServing())));
    expect(text).not.toContain('in-keys');
    expect(text).not.toMatch(/accessKey|secretKey/);
  });
});

describe('storage Secrets', () => {
  it("mounts the input's Secret twice (input and output) when the output has no store of its own, its two keys only", () => {
    const bp = batch({
      input: { uri: 's3://d/x', storage: { endpoint: 'http://m', secretRef: { name: 'k', accessKeyKey: 'id', secretKeyKey: 'pw' } } },
    });
    expect(storageVolumes(bp)).toEqual([
      {
        name: 'batch-input',
        secret: {
          secretName: 'k',
          defaultMode: 0o440,
          items: [
            { key: 'id', path: 'accessKey' },
            { key: 'pw', path: 'secretKey' },
          ],
        },
      },
      {
        name: 'batch-output',
        secret: {
          secretName: 'k',
          defaultMode: 0o440,
          items: [
            { key: 'id', path: 'accessKey' },
            { key: 'pw', path: 'secretKey' },
          ],
        },
      },
    ]);
    expect(storageMounts(bp)).toEqual([
      { name: 'batch-input', mountPath: BATCH.inputSecretDir, readOnly: true },
      { name: 'batch-output', mountPath: BATCH.outputSecretDir, readOnly: true },
    ]);
  });

  it('mounts nothing for a store without a Secret', () => {
    const bp = batch({ input: { uri: 's3://d/x', storage: { endpoint: 'http://m' } } });
    expect(storageVolumes(bp)).toEqual([]);
    expect(storageMounts(bp)).toEqual([]);
  });
});

describe('batchModel', () => {
  it("takes the ModelServing's bundle, runtime, resources, dependencies and placement, under its name", () => {
    const ms = modelServing({
      runtime: { timeoutSeconds: 30, workers: 2, env: [{ name: 'A', value: '1' }], admission: { maxQueue: 3 } },
      resources: { limits: { memory: '1Gi' } },
      dependencies: [{ name: 'svm', modelServing: 'svm' }],
      nodeSelector: { type: 'real' },
      inferenceLogging: { topic: 'CREATE', mode: 'all', sampleRate: 1 },
      auth: { mode: 'kubernetes' },
      batching: { maxBatchSize: 8, maxLatencyMs: 5 },
    });
    const model = modelOf(batch(), ms);
    expect(model.metadata).toEqual({ name: 'iris', namespace: 'ml' });
    expect(model.spec).toEqual({
      bundle: ms.spec.bundle,
      replicas: 1,
      // Admission control sheds callers online; the driver is one caller that waits.
      runtime: { timeoutSeconds: 30, workers: 2, env: [{ name: 'A', value: '1' }] },
      resources: { limits: { memory: '1Gi' } },
      dependencies: [{ name: 'svm', modelServing: 'svm' }],
      nodeSelector: { type: 'real' },
    });
  });

  it("lays the BatchPrediction's runtime and resources over the ModelServing's (env by name)", () => {
    const ms = modelServing({
      runtime: {
        timeoutSeconds: 30,
        workers: 2,
        image: 'a',
        env: [
          { name: 'A', value: '1' },
          { name: 'B', value: '2' },
        ],
      },
      resources: { limits: { memory: '1Gi' } },
    });
    const model = modelOf(
      batch({
        runtime: {
          timeoutSeconds: 120,
          env: [
            { name: 'B', value: 'x' },
            { name: 'C', value: '3' },
          ],
        },
        resources: { requests: { cpu: 4 } },
      }),
      ms,
    );
    expect(model.spec.runtime).toEqual({
      timeoutSeconds: 120,
      workers: 2,
      image: 'a',
      env: [
        { name: 'A', value: '1' },
        { name: 'B', value: 'x' },
        { name: 'C', value: '3' },
      ],
    });
    expect(model.spec.resources).toEqual({ requests: { cpu: 4 } });
  });

  it('runs a bundle of its own under the BatchPrediction name', () => {
    const bundle = { uri: 's3://models/x.zip', format: 'python' as const };
    const model = batchModel(batch({ model: { bundle }, runtime: { workers: 1 } }), undefined);
    expect(model).toMatchObject({ metadata: { name: 'score', namespace: 'ml' }, spec: { bundle, runtime: { workers: 1 } } });
  });

  it('is not there while the ModelServing it names is missing', () => {
    expect(batchModel(batch(), undefined)).toBeUndefined();
  });
});
