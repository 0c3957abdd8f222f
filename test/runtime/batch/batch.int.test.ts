// Batch prediction's data path against the real MinIO of the local environment: a plan and every shard over an S3
// glob of Parquet files (one cut between its row groups), ranged reads, CSV and JSON Lines streamed from S3, the
// parts, errors parts and markers written in MinIO, and storage failures.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { beforeAll, describe, expect, it } from 'vitest';
import { runShard, type Scorer, type ScoreResult } from '../../../runtime/batch/driver.ts';
import { readJsonl, readParquet, readParquetFooter, writeTable } from '../../../runtime/batch/formats.ts';
import { planBatch } from '../../../runtime/batch/plan.ts';
import { storeFor } from '../../../runtime/batch/store.ts';
import type { BatchJobSpec, BatchLocation } from '../../../runtime/contract.ts';
import { isModelshipError } from '../../../runtime/errors.ts';
import { useTestEnv } from '../../env/fixtures.ts';

const env = useTestEnv();
const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];
let inBucket: string;
let outBucket: string;
let credentialsDir: string;

/** Row `id` of the data set, the same wherever it is written. */
const row = (id: number) => [4 + (id % 37) / 10, 2 + (id % 23) / 10, 1 + (id % 61) / 10, (id % 26) / 10];

function irisParquet(first: number, count: number, rowGroupSize: number): Buffer {
  const ids = Int32Array.from({ length: count }, (_, k) => first + k);
  return Buffer.from(
    parquetWriteBuffer({
      columnData: [
        { name: 'id', data: ids, type: 'INT32', nullable: false },
        ...FEATURES.map((name, f) => ({
          name,
          data: Float64Array.from(ids, (id) => row(id)[f] as number),
          type: 'DOUBLE' as const,
          nullable: false,
        })),
      ],
      rowGroupSize,
    }),
  );
}

function irisColumns(first: number, count: number) {
  const ids = Array.from({ length: count }, (_, k) => first + k);
  return [{ name: 'id', values: ids }, ...FEATURES.map((name, f) => ({ name, values: ids.map((id) => row(id)[f]) }))];
}

/** The model: a rule on petal length; it refuses rows whose id ends in 99. */
function rule(r: Record<string, unknown>): ScoreResult {
  const [, , petal] = r.features as number[];
  if (Number(r.id) % 100 === 99) return { error: 'refused by the rule', code: 'MS_ERR_INPUT_INVALID' };
  return { outputs: { label: (petal as number) < 2.5 ? 0 : (petal as number) < 4.9 ? 1 : 2 } };
}

const scorer: Scorer = {
  concurrency: 4,
  inputs: async () => ['features', 'id'],
  score: async (rows) => rows.map(rule),
  close: async () => {},
};

const loc = (uri: string, format?: BatchLocation['format']): BatchLocation => ({
  uri,
  ...(format ? { format } : {}),
  storage: { endpoint: env.info.s3.endpoint, region: env.info.s3.region, credentialsDir },
});

async function objects(bucket: string, prefix = ''): Promise<{ name: string; size: number }[]> {
  const found: { name: string; size: number }[] = [];
  for await (const o of env.minio().listObjectsV2(bucket, prefix, true)) if (o.name) found.push({ name: o.name, size: o.size });
  return found.sort((a, b) => (a.name < b.name ? -1 : 1));
}

async function coded(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isModelshipError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a coded error');
}

beforeAll(async () => {
  inBucket = await env.bucket('batch-in');
  outBucket = await env.bucket('batch-out');
  credentialsDir = await mkdtemp(join(tmpdir(), 'ms-batch-keys-'));
  await writeFile(join(credentialsDir, 'accessKey'), `${env.info.s3.accessKey}\n`);
  await writeFile(join(credentialsDir, 'secretKey'), env.info.s3.secretKey);
  const minio = env.minio();
  await minio.putObject(inBucket, 'iris/a.parquet', irisParquet(0, 1000, 1000));
  await minio.putObject(inBucket, 'iris/b.parquet', irisParquet(1000, 5000, 1000));
  await minio.putObject(inBucket, 'iris/c.parquet', irisParquet(6000, 500, 250));
  await minio.putObject(inBucket, 'iris/_SUCCESS', Buffer.alloc(0));
  await minio.putObject(inBucket, 'iris/notes.txt', Buffer.from('not data'));
  await minio.putObject(inBucket, 'tables/x.csv', Buffer.from(writeTable('csv', irisColumns(0, 300), 300)));
  await minio.putObject(inBucket, 'tables/y.jsonl', Buffer.from(writeTable('jsonl', irisColumns(300, 200), 200)));
});

describe('batch over MinIO', () => {
  it('plans a glob of Parquet files (the large one cut between row groups) and runs every shard into the output prefix', async () => {
    const spec: BatchJobSpec = {
      input: loc(`s3://${inBucket}/iris/*.parquet`),
      output: loc(`s3://${outBucket}/run1`),
      columns: { features: FEATURES, id: 'id' },
      keyColumns: ['id'],
      batchSize: 128,
      maxRowErrors: 100,
      rowsPerShard: 2000,
    };
    // a.parquet alone (b is large: no packing into a's shard), b in 2000 + 2000 + 1000, its last cut packed with c
    expect(await planBatch(spec)).toEqual({ shards: 4, rows: 6500, files: 3 });
    const plan = JSON.parse(
      Buffer.concat(await (await env.minio().getObject(outBucket, 'run1/_modelship/plan.json')).toArray()).toString(),
    ) as {
      shards: { slices: unknown[] }[];
    };
    expect(plan.shards.map((s) => s.slices)).toEqual([
      [{ file: 'a.parquet', rowStart: 0, rowEnd: 1000 }],
      [{ file: 'b.parquet', rowStart: 0, rowEnd: 2000 }],
      [{ file: 'b.parquet', rowStart: 2000, rowEnd: 4000 }],
      [
        { file: 'b.parquet', rowStart: 4000, rowEnd: 5000 },
        { file: 'c.parquet', rowStart: 0, rowEnd: 500 },
      ],
    ]);

    const reports = [];
    for (let i = 0; i < 4; i++) reports.push(await runShard(spec, i, scorer));
    expect(reports.map((r) => [r.rows, r.errorRows])).toEqual([
      [990, 10],
      [1980, 20],
      [1980, 20],
      [1485, 15],
    ]);

    // every row once: the parts, read back from MinIO, hold ids 0-6499 less the refused, with the rule's label
    const out = await storeFor(loc(`s3://${outBucket}/run1`), { directory: true });
    const ids: number[] = [];
    for (let i = 0; i < 4; i++) {
      const name = `part-0000${i}.parquet`;
      for await (const b of readParquet(await out.reader(name), { name })) {
        for (let r = 0; r < b.rows; r++) {
          const id = Number(b.columns.id?.[r]);
          ids.push(id);
          expect(b.columns.label?.[r]).toBe((rule({ id, features: row(id) }) as { outputs: { label: number } }).outputs.label);
        }
      }
    }
    expect(ids).toEqual(Array.from({ length: 6500 }, (_, i) => i).filter((i) => i % 100 !== 99));
    const refused: unknown[] = [];
    for await (const b of readJsonl(await out.stream('errors/part-00002.jsonl'), { name: 'errors' }))
      refused.push(...Array.from(b.columns.id ?? []));
    expect(refused).toEqual(Array.from({ length: 20 }, (_, k) => 3099 + 100 * k));

    // what the run left in the bucket: no temporary object
    expect((await objects(outBucket, 'run1/')).map((o) => o.name)).toEqual([
      'run1/_modelship/plan.json',
      ...[0, 1, 2, 3].map((i) => `run1/_modelship/shard-0000${i}.json`),
      ...[0, 1, 2, 3].map((i) => `run1/errors/part-0000${i}.jsonl`),
      ...[0, 1, 2, 3].map((i) => `run1/part-0000${i}.parquet`),
    ]);

    // a re-run: the same plan, every shard skipped
    expect(await planBatch(spec)).toEqual({ shards: 4, rows: 6500, files: 3 });
    expect((await runShard(spec, 3, scorer)).skipped).toBe(true);
  });

  it('reads a row range of an object with ranged GETs: a share of its bytes, not the whole object', async () => {
    const input = await storeFor(loc(`s3://${inBucket}/iris/`));
    expect((await input.list()).map((f) => f.name)).toEqual(['a.parquet', 'b.parquet', 'c.parquet', 'notes.txt']);
    const reader = await input.reader('b.parquet');
    let bytes = 0;
    let gets = 0;
    const counted = {
      byteLength: reader.byteLength,
      slice: (start: number, end?: number) => {
        gets++;
        bytes += (end ?? reader.byteLength) - start;
        return reader.slice(start, end);
      },
    };
    const footer = await readParquetFooter(counted, 'b.parquet');
    expect(footer.rowGroups).toEqual([1000, 1000, 1000, 1000, 1000]);
    // the footer's read takes the tail (hyparquet asks for up to 512 KiB); the rows are what is counted
    bytes = 0;
    gets = 0;
    const ids: number[] = [];
    for await (const b of readParquet(counted, { name: 'b.parquet', footer, rowStart: 2000, rowEnd: 3000, columns: ['id'] })) {
      ids.push(...Array.from(b.columns.id as Int32Array));
    }
    expect(ids).toEqual(Array.from({ length: 1000 }, (_, i) => 3000 + i));
    expect(gets).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(reader.byteLength / 3);
  });

  it('streams CSV and JSON Lines from S3 into a CSV output', async () => {
    const spec: BatchJobSpec = {
      input: loc(`s3://${inBucket}/tables`),
      output: loc(`s3://${outBucket}/run2/`, 'csv'),
      columns: { features: FEATURES, id: 'id' },
      batchSize: 64,
      maxRowErrors: 10,
      rowsPerShard: 1000,
    };
    expect(await planBatch(spec)).toEqual({ shards: 1, rows: 500, files: 2 });
    expect(await runShard(spec, 0, scorer)).toMatchObject({ shard: 0, rows: 495, errorRows: 5 });
    const csv = await (await env.minio().getObject(outBucket, 'run2/part-00000.csv')).toArray().then((c) => Buffer.concat(c).toString());
    const lines = csv.trim().split('\n');
    expect(lines[0]).toBe('_file,_row,label');
    expect(lines.length).toBe(496);
    expect(lines[1]).toBe(`x.csv,0,${(rule({ id: 0, features: row(0) }) as { outputs: { label: number } }).outputs.label}`);
    expect(lines.at(-1)).toBe(`y.jsonl,198,${(rule({ id: 498, features: row(498) }) as { outputs: { label: number } }).outputs.label}`);
  });

  it('storage failures are MS_ERR_BATCH_STORAGE; nothing under a prefix is MS_ERR_BATCH_INPUT_NOT_FOUND', async () => {
    const base: BatchJobSpec = {
      input: loc(`s3://${inBucket}/iris/`),
      output: loc(`s3://${outBucket}/run3/`),
      batchSize: 1,
      maxRowErrors: 0,
      rowsPerShard: 1,
    };
    expect(await coded(planBatch({ ...base, input: loc(`s3://${inBucket}/nothing-here/`) }))).toBe('MS_ERR_BATCH_INPUT_NOT_FOUND');
    expect(await coded(planBatch({ ...base, input: loc('s3://no-such-bucket-ms/iris/') }))).toBe('MS_ERR_BATCH_STORAGE');
    const wrongKeys = await mkdtemp(join(tmpdir(), 'ms-batch-keys-'));
    await writeFile(join(wrongKeys, 'accessKey'), 'nobody');
    await writeFile(join(wrongKeys, 'secretKey'), 'wrong-secret-key');
    const denied = {
      ...base,
      input: { uri: `s3://${inBucket}/iris/`, storage: { endpoint: env.info.s3.endpoint, credentialsDir: wrongKeys } },
    };
    expect(await coded(planBatch(denied))).toBe('MS_ERR_BATCH_STORAGE');
  });
});
