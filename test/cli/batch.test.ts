// `modelship batch`: the flags' pure parts, and a local run (no cluster) over Parquet, CSV and JSON Lines with the
// JS iris bundle, whose outputs must equal the same rows predicted one by one by `modelship test`'s loader.
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { batchLocal, localBatchSpec } from '../../cli/batch-local.ts';
import { batchWhere, describeBatch, desiredBatchPrediction, parseColumns } from '../../cli/batch.ts';
import { run } from '../../cli/modelship.ts';
import { runBundle } from '../../cli/runner.ts';
import type { BatchPrediction } from '../../crds/batchprediction.schema.ts';
import { IRIS_COLUMNS, irisCsv, irisJsonl, irisParquet, irisRows } from '../fixtures/iris-rows.ts';
import { captureConsole } from './console.ts';

const { out, err } = captureConsole();
const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');
const FEATURES = `features=${IRIS_COLUMNS.join(',')}`;

describe('modelship batch: flags', () => {
  it('maps --columns onto model inputs and refuses a malformed one', () => {
    expect(parseColumns(['features=a, b,c', 'x=y'])).toEqual({ features: ['a', 'b', 'c'], x: ['y'] });
    expect(parseColumns(undefined)).toBeUndefined();
    expect(() => parseColumns(['features'])).toThrow('--columns expects input=column[,column…], got "features"');
    expect(() => parseColumns(['=a'])).toThrow(/--columns expects/);
  });

  it('runs paths here and s3:// in a cluster, and refuses a mix or another scheme', () => {
    expect(batchWhere('data/iris.parquet', 'out/')).toBe('local');
    expect(batchWhere('file:///data/iris/', '/tmp/out')).toBe('local');
    expect(batchWhere('s3://data/iris/', 's3://data/out/')).toBe('cluster');
    expect(() => batchWhere('data/iris.parquet', 's3://b/out/')).toThrow(
      'a local input is scored here and written to a local --output, not s3://b/out/',
    );
    expect(() => batchWhere('s3://data/iris/', 'out/')).toThrow(/whose --output is s3:\/\/ too/);
    expect(() => batchWhere('gs://data/iris/', 'gs://data/out/')).toThrow(
      '--input gs://data/iris/: use a local path or an s3://bucket/prefix URI',
    );
  });

  it('creates a BatchPrediction with only what the flags set', () => {
    const bp = desiredBatchPrediction({
      input: 's3://data/iris/',
      output: 's3://data/out/',
      namespace: 'ml',
      model: { modelServing: 'iris' },
      storage: { endpoint: 'http://minio:9000', secret: 'creds' },
      keyColumns: ['id'],
      parallelism: 4,
    });
    expect(bp).toEqual({
      apiVersion: 'modelship.dev/v1alpha1',
      kind: 'BatchPrediction',
      metadata: { namespace: 'ml', generateName: 'iris-batch-' },
      spec: {
        model: { modelServing: 'iris' },
        input: { uri: 's3://data/iris/', storage: { endpoint: 'http://minio:9000', secretRef: { name: 'creds' } } },
        output: { uri: 's3://data/out/' },
        keyColumns: ['id'],
        parallelism: 4,
      },
    });
  });

  it('describes progress in one line', () => {
    const bp = { status: { phase: 'Running', rows: { done: 500, total: 1000 }, shards: { succeeded: 1, total: 2 }, rowsPerSecond: 99.6 } };
    expect(describeBatch(bp as BatchPrediction)).toBe('Running, 500/1000 rows, 1/2 shards, 100 rows/s');
    expect(describeBatch({} as BatchPrediction)).toBe('pending');
  });

  it('names the bundle as the model of a local run', () => {
    expect(localBatchSpec('/b/iris', { input: '/in', output: '/out' })).toMatchObject({
      model: 'file:///b/iris',
      input: { uri: '/in' },
      output: { uri: '/out' },
      batchSize: 1024,
    });
  });
});

describe('modelship batch: a local run', () => {
  const expected = async (first: number, count: number) => {
    const c = irisRows(first, count);
    const inputs = Array.from({ length: count }, (_, r) => ({ features: IRIS_COLUMNS.map((n) => c[n][r] as number) }));
    return (await runBundle(IRIS, inputs, { logLevel: 'warn' })).outputs.map((o) => o.label);
  };

  it('scores Parquet, CSV and JSON Lines files: every row once, as predicted one by one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-batch-'));
    const input = join(dir, 'in');
    await mkdir(input);
    await writeFile(join(input, 'a.parquet'), new Uint8Array(irisParquet(0, 3000, 1000)));
    await writeFile(join(input, 'b.csv'), irisCsv(3000, 500));
    await writeFile(join(input, 'c.jsonl'), irisJsonl(3500, 500));
    const opts = {
      input,
      output: join(dir, 'out'),
      outputFormat: 'jsonl' as const,
      columns: { features: [...IRIS_COLUMNS] },
      keyColumns: ['id'],
      batchSize: 256,
      rowsPerShard: 1000,
    };
    const r = await batchLocal(IRIS, opts);
    expect(r).toMatchObject({ rows: 4000, errorRows: 0, skipped: 0 });
    expect(r.shards).toBeGreaterThanOrEqual(4); // the Parquet file was cut by its row groups
    const labels = new Map<number, string>();
    for (const name of (await readdir(join(dir, 'out'))).filter((n) => n.endsWith('.jsonl'))) {
      for (const line of (await readFile(join(dir, 'out', name), 'utf8')).trim().split('\n')) {
        const row = JSON.parse(line) as { id: number; label: string; probabilities: number[] };
        expect(labels.has(row.id)).toBe(false);
        expect(row.probabilities).toHaveLength(3);
        labels.set(row.id, row.label);
      }
    }
    expect(labels.size).toBe(4000);
    const want = await expected(0, 4000);
    expect([...labels.keys()].sort((a, b) => a - b).map((id) => labels.get(id))).toEqual(want);

    // Run again: every shard is already done, nothing is scored twice.
    const again = await batchLocal(IRIS, opts);
    expect(again.skipped).toBe(again.shards);
  });

  it('the CLI prints the result as JSON, and refused rows go to the errors part', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-batch-'));
    // Row 2 lacks a measurement: the model refuses it; the others are scored.
    await writeFile(join(dir, 'rows.jsonl'), `${irisJsonl(0, 2)}{"id":2,"sepal_length":5}\n${irisJsonl(3, 1)}`);
    expect(
      await run(['batch', IRIS, '-i', join(dir, 'rows.jsonl'), '-o', join(dir, 'out'), '--columns', FEATURES, '--key', 'id', '--json']),
    ).toBe(0);
    expect(JSON.parse(out.at(-1) as string)).toMatchObject({ rows: 3, errorRows: 1, shards: 1 });
    const errors = (await readFile(join(dir, 'out', 'errors', 'part-00000.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(errors).toEqual([{ id: 2, error: expect.stringMatching(/features/), code: expect.stringMatching(/^MS_ERR_/) }]);
    // The output takes the input's format (JSON Lines): the three scored rows, keyed by id.
    const scored = (await readFile(join(dir, 'out', 'part-00000.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).id);
    expect(scored).toEqual([0, 1, 3]);
  });

  it('a ModelServing needs the cluster: a local input is refused with a clear message', async () => {
    expect(await run(['batch', 'ms/iris', '-i', '/tmp/x.parquet', '-o', '/tmp/out'])).toBe(1);
    expect(err.at(-1)).toBe('modelship: a ModelServing (ms/NAME) runs batches in its cluster: give an s3:// --input');
  });
});
