// The batch driver end to end over local directories: plan, shards with an in-test model (a plain rule that refuses
// some rows), exact outputs and keys, the errors part, the row-error threshold, skipping done shards, atomic names,
// plan reuse and a changed plan.
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { markerName, runShard, type Scorer, type ScoreResult } from '../../../runtime/batch/driver.ts';
import { type Block, readCsv, readJsonl, readParquet, writeTable } from '../../../runtime/batch/formats.ts';
import { PLAN_FILE, planBatch } from '../../../runtime/batch/plan.ts';
import { storeFor } from '../../../runtime/batch/store.ts';
import type { BatchJobSpec } from '../../../runtime/contract.ts';
import { isModelshipError } from '../../../runtime/errors.ts';

const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];

/** Row i of the test data (the same in every format). */
function row(i: number) {
  return {
    id: i,
    sepal_length: 4 + (i % 30) / 10,
    sepal_width: 2 + (i % 17) / 10,
    petal_length: 1 + (i % 60) / 10,
    petal_width: (i % 25) / 10,
  };
}

function columnsOf(first: number, count: number) {
  const rows = Array.from({ length: count }, (_, k) => row(first + k));
  return ['id', ...FEATURES].map((name) => ({ name, values: rows.map((r) => r[name as keyof typeof r]) }));
}

/** The model: an iris-like rule on the features vector; it refuses rows whose petal is 1.0 long. */
function predict(features: number[]): ScoreResult {
  const [, , petal, width] = features as [number, number, number, number];
  if (petal === 1) return { error: 'petal_length 1.0 is too short to judge', code: 'MS_ERR_INPUT_INVALID' };
  const label = petal < 2.5 ? 'setosa' : petal < 4.9 ? 'versicolor' : 'virginica';
  const p = Math.min(1, width / 2.5);
  return { outputs: { label, proba: [1 - p, p] } };
}

/** A Scorer over `predict`, answering batches after random delays (so they finish out of order). */
function ruleScorer(opts: { inputs?: string[]; concurrency?: number } = {}) {
  const calls: number[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const scorer: Scorer & { calls: number[]; maxInFlight: () => number } = {
    concurrency: opts.concurrency ?? 3,
    calls,
    maxInFlight: () => maxInFlight,
    inputs: async () => opts.inputs ?? ['features'],
    async score(rows) {
      calls.push(rows.length);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await delay(Math.random() * 4);
      inFlight--;
      return rows.map((r) =>
        r.features ? predict(r.features as number[]) : { outputs: { sum: Object.values(r).reduce((a: number, b) => a + Number(b), 0) } },
      );
    },
    close: async () => {},
  };
  return scorer;
}

async function all(blocks: AsyncGenerator<Block>): Promise<Record<string, unknown>[]> {
  const rows: Record<string, unknown>[] = [];
  for await (const b of blocks) {
    for (let r = 0; r < b.rows; r++) rows.push(Object.fromEntries(Object.entries(b.columns).map(([k, v]) => [k, v[r]])));
  }
  return rows;
}

async function readOutput(dir: string, name: string): Promise<Record<string, unknown>[]> {
  const store = await storeFor({ uri: dir }, { directory: true });
  if (name.endsWith('.parquet')) return all(readParquet(await store.reader(name), { name }));
  if (name.endsWith('.csv')) return all(readCsv(await store.stream(name), { name, numericColumns: ['_row'] }));
  return all(readJsonl(await store.stream(name), { name }));
}

async function coded(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (isModelshipError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a coded error');
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

let root: string;
let input: string;
let output: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ms-batch-'));
  input = join(root, 'in');
  output = join(root, 'out');
  await mkdir(input);
  // a.parquet: rows 0-299 in row groups of 100; b.csv: rows 300-349; c.jsonl: rows 350-399; notes.txt is no input
  await writeFile(join(input, 'a.parquet'), writeParquetRows(0, 300, 100));
  await writeFile(join(input, 'b.csv'), writeTable('csv', columnsOf(300, 50), 50));
  await writeFile(join(input, 'c.jsonl'), writeTable('jsonl', columnsOf(350, 50), 50));
  await writeFile(join(input, 'notes.txt'), 'not data');
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Rows `first` … as Parquet in row groups of `rowGroupSize` (writeTable's groups are 100,000 rows). */
function writeParquetRows(first: number, count: number, rowGroupSize: number): Uint8Array {
  return new Uint8Array(
    parquetWriteBuffer({
      columnData: columnsOf(first, count).map((c) => ({
        name: c.name,
        data: c.name === 'id' ? Int32Array.from(c.values as number[]) : Float64Array.from(c.values as number[]),
        type: c.name === 'id' ? ('INT32' as const) : ('DOUBLE' as const),
        nullable: false,
      })),
      rowGroupSize,
    }),
  );
}

const baseSpec = (): BatchJobSpec => ({
  input: { uri: input },
  output: { uri: output, format: 'parquet' },
  columns: { features: FEATURES },
  batchSize: 16,
  maxRowErrors: 100,
  rowsPerShard: 150,
});

/** The row's expected output, or its refusal. */
const expected = (i: number) => predict(FEATURES.map((f) => row(i)[f as keyof ReturnType<typeof row>]));
const fileOf = (i: number) => (i < 300 ? 'a.parquet' : i < 350 ? 'b.csv' : 'c.jsonl');
const rowInFile = (i: number) => (i < 300 ? i : i < 350 ? i - 300 : i - 350);

describe('runShard over local files', () => {
  it('plans, scores every row once in order with exact outputs and keys, and writes the refused rows apart', async () => {
    const spec = baseSpec();
    const plan = await planBatch(spec);
    // a.parquet (300 rows, groups of 100) cut into 3, its last cut packed with b.csv; c.jsonl alone
    expect(plan).toEqual({ shards: 4, rows: 400, files: 3 });

    const scorer = ruleScorer();
    const reports = [];
    for (let i = 0; i < plan.shards; i++) reports.push(await runShard(spec, i, scorer));
    const refused = Array.from({ length: 400 }, (_, i) => i).filter((i) => 'error' in expected(i));
    expect(refused.length).toBeGreaterThan(0);
    expect(reports.map((r) => r.rows + r.errorRows)).toEqual([100, 100, 150, 50]);
    expect(reports.reduce((n, r) => n + r.errorRows, 0)).toBe(refused.length);
    // fixed-size batches (the last of a shard smaller), at most `concurrency` in flight
    expect(scorer.calls.every((n) => n === 16 || n === 100 % 16 || n === 150 % 16 || n === 50 % 16)).toBe(true);
    expect(scorer.maxInFlight()).toBe(3);

    const got: Record<string, unknown>[] = [];
    for (let i = 0; i < 4; i++) got.push(...(await readOutput(output, `part-0000${i}.parquet`)));
    const want = Array.from({ length: 400 }, (_, i) => i)
      .filter((i) => !('error' in expected(i)))
      .map((i) => ({ _file: fileOf(i), _row: rowInFile(i), ...(expected(i) as { outputs: object }).outputs }));
    expect(got).toEqual(want);

    const errors: Record<string, unknown>[] = [];
    for (let i = 0; i < 4; i++) {
      const name = `errors/part-0000${i}.jsonl`;
      if (reports[i]?.errorRows) errors.push(...(await readOutput(output, name)));
      else await expect(stat(join(output, name))).rejects.toThrow();
    }
    expect(errors).toEqual(
      refused.map((i) => ({
        _file: fileOf(i),
        _row: rowInFile(i),
        error: 'petal_length 1.0 is too short to judge',
        code: 'MS_ERR_INPUT_INVALID',
      })),
    );

    // the names a run leaves: parts, errors parts, the plan and a marker per shard; nothing temporary
    expect(await filesUnder(output)).toEqual([
      '_modelship/plan.json',
      '_modelship/shard-00000.json',
      '_modelship/shard-00001.json',
      '_modelship/shard-00002.json',
      '_modelship/shard-00003.json',
      ...reports.flatMap((r, i) => (r.errorRows ? [`errors/part-0000${i}.jsonl`] : [])),
      'part-00000.parquet',
      'part-00001.parquet',
      'part-00002.parquet',
      'part-00003.parquet',
    ]);
    expect(JSON.parse(await readFile(join(output, markerName(2)), 'utf8'))).toMatchObject({
      shard: 2,
      rows: reports[2]?.rows,
      parts: ['part-00002.parquet'],
    });

    // a re-run skips every shard: the model is not called, the report is the marker's
    const again = ruleScorer();
    for (let i = 0; i < 4; i++) {
      const r = await runShard(spec, i, again);
      expect(r).toEqual({
        shard: i,
        rows: reports[i]?.rows,
        errorRows: reports[i]?.errorRows,
        seconds: reports[i]?.seconds,
        skipped: true,
      });
    }
    expect(again.calls).toEqual([]);
  });

  it('writes a large shard a part at a time, at fixed input-row counts, and a retry writes the same parts', async () => {
    const spec = { ...baseSpec(), rowsPerShard: 1000 };
    const plan = await planBatch(spec);
    expect(plan.shards).toBe(1);
    const scorer = ruleScorer();
    // Parts of 70 input rows; batches of 16 are cut at each boundary.
    const report = await runShard(spec, 0, scorer, { rowsPerPart: 70 });
    const names = ['part-00000.parquet', ...[1, 2, 3, 4, 5].map((k) => `part-00000-${k}.parquet`)];
    const marker = JSON.parse(await readFile(join(output, markerName(0)), 'utf8'));
    expect(marker.parts).toEqual(names);
    const got: Record<string, unknown>[] = [];
    for (const name of names) got.push(...(await readOutput(output, name)));
    expect(got).toHaveLength(report.rows);
    expect(got.map((r) => r._row)).toEqual(
      Array.from({ length: 400 }, (_, i) => i)
        .filter((i) => 'outputs' in expected(i))
        .map((i) => (i < 300 ? i : i < 350 ? i - 300 : i - 350)),
    );
    // The batch sizes: 16s, cut where a part ends (70 = 4 × 16 + 6).
    expect(scorer.calls.slice(0, 5)).toEqual([16, 16, 16, 16, 6]);
    // A retry (the marker gone, as when a pod dies before it): the same names, nothing else.
    await rm(join(output, markerName(0)));
    await runShard(spec, 0, ruleScorer(), { rowsPerPart: 70 });
    expect((await filesUnder(output)).filter((f) => f.startsWith('part-'))).toEqual([...names].sort());
  });

  it('CSV key columns keep their text (a numeric-looking id joins back to its input row)', async () => {
    const dir = join(root, 'keys');
    await mkdir(dir);
    await writeFile(
      join(dir, 'k.csv'),
      'id,sepal_length,sepal_width,petal_length,petal_width\n007,5,3,1.5,0.2\n12345678901234567890,6,3,5,2\n',
    );
    const spec: BatchJobSpec = {
      ...baseSpec(),
      input: { uri: dir },
      output: { uri: join(root, 'keys-out'), format: 'jsonl' },
      keyColumns: ['id'],
    };
    await planBatch(spec);
    await runShard(spec, 0, ruleScorer());
    const rows = await readOutput(join(root, 'keys-out'), 'part-00000.jsonl');
    expect(rows.map((r) => r.id)).toEqual(['007', '12345678901234567890']);
    expect(rows.map((r) => r.label)).toEqual(['setosa', 'virginica']);
  });

  it('keyColumns instead of the row index; JSON Lines and CSV outputs; model inputs named as columns', async () => {
    const spec: BatchJobSpec = { ...baseSpec(), output: { uri: output, format: 'jsonl' }, keyColumns: ['id'], rowsPerShard: 1000 };
    expect(await planBatch(spec)).toEqual({ shards: 1, rows: 400, files: 3 });
    const r = await runShard(spec, 0, ruleScorer());
    const rows = await readOutput(output, 'part-00000.jsonl');
    expect(rows.length).toBe(r.rows);
    expect(rows.find((x) => x.id === 1)).toEqual({ id: 1, ...(expected(1) as { outputs: object }).outputs });
    const errors = await readOutput(output, 'errors/part-00000.jsonl');
    expect(errors[0]).toEqual({ id: 0, error: 'petal_length 1.0 is too short to judge', code: 'MS_ERR_INPUT_INVALID' });

    // a list of one column is that column's value, as a plain string is
    const oneOut = join(root, 'one-out');
    const one: BatchJobSpec = {
      ...baseSpec(),
      output: { uri: oneOut, format: 'jsonl' },
      columns: { petal_length: ['petal_length'], w: 'petal_width' },
    };
    await planBatch(one);
    await runShard(one, 0, ruleScorer());
    expect((await readOutput(oneOut, 'part-00000.jsonl'))[1]).toEqual({
      _file: 'a.parquet',
      _row: 1,
      sum: row(1).petal_length + row(1).petal_width,
    });

    const csvOut = join(root, 'csv-out');
    const byName: BatchJobSpec = {
      ...baseSpec(),
      input: { uri: join(input, '*.csv') },
      output: { uri: csvOut, format: 'csv' },
      columns: undefined,
    };
    expect(await planBatch(byName)).toEqual({ shards: 1, rows: 50, files: 1 });
    await runShard(byName, 0, ruleScorer({ inputs: ['petal_length', 'petal_width'] }));
    const csvRows = await readOutput(csvOut, 'part-00000.csv');
    expect(csvRows[0]).toEqual({ _file: 'b.csv', _row: 0, sum: String(row(300).petal_length + row(300).petal_width) });
    expect(csvRows.length).toBe(50);
  });

  it('more refused rows than maxRowErrors fail the shard, with the refused rows written and no part or marker', async () => {
    const spec = { ...baseSpec(), maxRowErrors: 1 };
    await planBatch(spec);
    const err = await coded(runShard(spec, 0, ruleScorer()));
    expect(err).toEqual({
      code: 'MS_ERR_BATCH_TOO_MANY_ROW_ERRORS',
      message: 'shard 0: the model refused 2 rows, more than maxRowErrors (1); first: petal_length 1.0 is too short to judge',
    });
    expect(await filesUnder(output)).toEqual(['_modelship/plan.json', 'errors/part-00000.jsonl']);
    expect((await readOutput(output, 'errors/part-00000.jsonl')).map((e) => e._row)).toEqual([0, 60]);
  });

  it('reuses the plan for the same input and spec; other input or spec → MS_ERR_BATCH_PLAN_CHANGED', async () => {
    const spec = baseSpec();
    const first = await planBatch(spec);
    const text = await readFile(join(output, PLAN_FILE), 'utf8');
    expect(await planBatch({ ...spec, batchSize: 99, maxRowErrors: 0 })).toEqual(first);
    expect(await readFile(join(output, PLAN_FILE), 'utf8')).toBe(text);

    const changedSpec = await coded(planBatch({ ...spec, rowsPerShard: 10 }));
    expect(changedSpec.code).toBe('MS_ERR_BATCH_PLAN_CHANGED');
    expect(changedSpec.message).toContain('rowsPerShard 150 → 10');
    // the driver checks its spec against the plan too
    expect((await coded(runShard({ ...spec, keyColumns: ['id'] }, 0, ruleScorer()))).code).toBe('MS_ERR_BATCH_PLAN_CHANGED');

    await appendFile(join(input, 'b.csv'), '999,1,1,1,1\n');
    const changedInput = await coded(planBatch(spec));
    expect(changedInput.code).toBe('MS_ERR_BATCH_PLAN_CHANGED');
    expect(changedInput.message).toContain('files changed b.csv');
    // a shard reading the changed file fails the same way
    expect((await coded(runShard(spec, 2, ruleScorer()))).message).toContain('input file b.csv changed since the plan');
  });

  it('coded failures: no input, a missing column, a malformed file, a shard not in the plan', async () => {
    expect(await coded(planBatch({ ...baseSpec(), input: { uri: join(root, 'nothing') } }))).toEqual({
      code: 'MS_ERR_BATCH_INPUT_NOT_FOUND',
      message: `no input file matches ${join(root, 'nothing')}`,
    });
    expect((await coded(planBatch({ ...baseSpec(), input: { uri: join(input, '*.txt') } }))).message).toContain('set input.format');

    const spec = { ...baseSpec(), columns: { features: ['sepal_length', 'petal'] } };
    await planBatch(spec);
    expect(await coded(runShard(spec, 0, ruleScorer()))).toEqual({
      code: 'MS_ERR_BATCH_COLUMN_MISSING',
      message: `input file ${input}/a.parquet has no column "petal" (columns: id, sepal_length, sepal_width, petal_length, petal_width)`,
    });
    expect((await coded(runShard(spec, 4, ruleScorer()))).code).toBe('MS_ERR_BATCH_SPEC_INVALID');

    const bad = join(root, 'bad');
    await mkdir(bad);
    await writeFile(join(bad, 'x.jsonl'), '{"a": 1}\n{"a": \n');
    const badSpec = { ...baseSpec(), input: { uri: bad }, output: { uri: join(root, 'bad-out') }, columns: { a: 'a' } };
    expect(await planBatch(badSpec)).toEqual({ shards: 1, rows: 2, files: 1 });
    expect(await coded(runShard(badSpec, 0, ruleScorer()))).toMatchObject({
      code: 'MS_ERR_BATCH_INPUT_FORMAT',
      message: expect.stringMatching(/^input file \/.*\/bad\/x\.jsonl cannot be read as JSON Lines: line 2: /),
    });
  });

  it('an output inside the input directory is not read as input', async () => {
    const spec = { ...baseSpec(), output: { uri: join(input, 'scored'), format: 'parquet' as const } };
    const plan = await planBatch(spec);
    for (let i = 0; i < plan.shards; i++) await runShard(spec, i, ruleScorer());
    // another plan of the same input finds the same files (the parts under scored/ are not among them)
    await rm(join(input, 'scored', PLAN_FILE));
    expect(await planBatch(spec)).toEqual(plan);
  });
});
