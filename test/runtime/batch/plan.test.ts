// The pure parts of batch planning: the cut into shards, the shape and what changed, and the store's name rules.
import { describe, expect, it } from 'vitest';
import type { BatchJobSpec } from '../../../runtime/contract.ts';
import { fingerprint, type PlanUnit, planShape, planShards, shapeChanges, shardTarget } from '../../../runtime/batch/plan.ts';
import { globMatcher, isHiddenName, selectNames, splitSelector } from '../../../runtime/batch/store.ts';

const s = (file: string, rowStart: number, rowEnd: number) => ({ file, rowStart, rowEnd });

describe('planShards', () => {
  const cases: { name: string; files: PlanUnit[]; rowsPerShard: number; shards: { rows: number; slices: ReturnType<typeof s>[] }[] }[] = [
    { name: 'no files', files: [], rowsPerShard: 100, shards: [] },
    { name: 'empty files get no shard', files: [{ name: 'a.csv', rows: 0 }], rowsPerShard: 100, shards: [] },
    {
      name: 'one small file',
      files: [{ name: 'a.parquet', rows: 40, rowGroups: [40] }],
      rowsPerShard: 100,
      shards: [{ rows: 40, slices: [s('a.parquet', 0, 40)] }],
    },
    {
      name: 'small files packed up to rowsPerShard, in name order',
      files: [
        { name: 'c.csv', rows: 30 },
        { name: 'a.csv', rows: 60 },
        { name: 'b.jsonl', rows: 40 },
        { name: 'd.parquet', rows: 70, rowGroups: [70] },
        { name: 'e.csv', rows: 1 },
      ],
      rowsPerShard: 100,
      shards: [
        { rows: 100, slices: [s('a.csv', 0, 60), s('b.jsonl', 0, 40)] },
        { rows: 100, slices: [s('c.csv', 0, 30), s('d.parquet', 0, 70)] },
        { rows: 1, slices: [s('e.csv', 0, 1)] },
      ],
    },
    {
      name: 'a file of exactly rowsPerShard fills a shard',
      files: [
        { name: 'a.csv', rows: 100 },
        { name: 'b.csv', rows: 1 },
      ],
      rowsPerShard: 100,
      shards: [
        { rows: 100, slices: [s('a.csv', 0, 100)] },
        { rows: 1, slices: [s('b.csv', 0, 1)] },
      ],
    },
    {
      name: 'a large Parquet file is cut between row groups, never passing rowsPerShard',
      files: [{ name: 'big.parquet', rows: 250, rowGroups: [40, 40, 40, 40, 40, 50] }],
      rowsPerShard: 100,
      shards: [
        { rows: 80, slices: [s('big.parquet', 0, 80)] },
        { rows: 80, slices: [s('big.parquet', 80, 160)] },
        { rows: 90, slices: [s('big.parquet', 160, 250)] },
      ],
    },
    {
      name: 'a row group larger than rowsPerShard is a shard alone',
      files: [{ name: 'big.parquet', rows: 330, rowGroups: [30, 200, 50, 50] }],
      rowsPerShard: 100,
      shards: [
        { rows: 30, slices: [s('big.parquet', 0, 30)] },
        { rows: 200, slices: [s('big.parquet', 30, 230)] },
        { rows: 100, slices: [s('big.parquet', 230, 330)] },
      ],
    },
    {
      name: 'empty row groups keep the row numbers',
      files: [{ name: 'big.parquet', rows: 200, rowGroups: [100, 0, 100] }],
      rowsPerShard: 100,
      shards: [
        { rows: 100, slices: [s('big.parquet', 0, 100)] },
        { rows: 100, slices: [s('big.parquet', 100, 200)] },
      ],
    },
    {
      name: 'a large CSV file is never cut; small files around it keep their order',
      files: [
        { name: 'a.csv', rows: 10 },
        { name: 'b.csv', rows: 500 },
        { name: 'c.csv', rows: 10 },
        { name: 'd.csv', rows: 10 },
      ],
      rowsPerShard: 100,
      shards: [
        { rows: 10, slices: [s('a.csv', 0, 10)] },
        { rows: 500, slices: [s('b.csv', 0, 500)] },
        { rows: 20, slices: [s('c.csv', 0, 10), s('d.csv', 0, 10)] },
      ],
    },
    {
      name: 'a large Parquet file between small ones: its last cut packed with the next',
      files: [
        { name: 'a.parquet', rows: 50, rowGroups: [50] },
        { name: 'b.parquet', rows: 150, rowGroups: [50, 50, 50] },
        { name: 'c.parquet', rows: 50, rowGroups: [50] },
      ],
      rowsPerShard: 100,
      shards: [
        { rows: 50, slices: [s('a.parquet', 0, 50)] },
        { rows: 100, slices: [s('b.parquet', 0, 100)] },
        // the large file's last cut is packed with the small file after it
        { rows: 100, slices: [s('b.parquet', 100, 150), s('c.parquet', 0, 50)] },
      ],
    },
    {
      name: 'rowsPerShard 1: one row a shard, files never packed',
      files: [
        { name: 'a.csv', rows: 1 },
        { name: 'b.csv', rows: 1 },
      ],
      rowsPerShard: 1,
      shards: [
        { rows: 1, slices: [s('a.csv', 0, 1)] },
        { rows: 1, slices: [s('b.csv', 0, 1)] },
      ],
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      expect(planShards(c.files, c.rowsPerShard)).toEqual(c.shards);
    });
  }

  it('is deterministic: the same files in any order give the same shards, covering every row once', () => {
    const files: PlanUnit[] = Array.from({ length: 40 }, (_, i) => ({
      name: `f-${String(i).padStart(2, '0')}.parquet`,
      rows: (i * 37) % 300,
      rowGroups: [((i * 37) % 300) - Math.floor(((i * 37) % 300) / 2), Math.floor(((i * 37) % 300) / 2)],
    }));
    const a = planShards(files, 120);
    const b = planShards([...files].reverse(), 120);
    expect(b).toEqual(a);
    for (const f of files) {
      const covered = a.flatMap((sh) => sh.slices.filter((x) => x.file === f.name)).sort((x, y) => x.rowStart - y.rowStart);
      let next = 0;
      for (const x of covered) {
        expect(x.rowStart).toBe(next);
        next = x.rowEnd;
      }
      expect(next).toBe(f.rows);
    }
    expect(a.reduce((n, sh) => n + sh.rows, 0)).toBe(files.reduce((n, f) => n + f.rows, 0));
  });
});

describe('plan shape', () => {
  const spec: BatchJobSpec = {
    input: { uri: 's3://data/iris/' },
    output: { uri: 's3://out/iris/' },
    batchSize: 100,
    maxRowErrors: 0,
    rowsPerShard: 1000,
  };
  const files = [
    { name: 'a.parquet', size: 10, version: 'e1' },
    { name: 'b.parquet', size: 20, version: 'e2' },
  ];

  it('the fingerprint follows the input and the parts of the spec that shape the output, not the batch size', () => {
    const base = fingerprint(planShape(spec, 'parquet', files));
    expect(fingerprint(planShape({ ...spec, batchSize: 7, maxRowErrors: 9 }, 'parquet', files))).toBe(base);
    expect(fingerprint(planShape({ ...spec, rowsPerShard: 10 }, 'parquet', files))).not.toBe(base);
    expect(fingerprint(planShape({ ...spec, keyColumns: ['id'] }, 'parquet', files))).not.toBe(base);
    expect(fingerprint(planShape({ ...spec, columns: { x: ['a', 'b'] } }, 'parquet', files))).not.toBe(base);
    expect(fingerprint(planShape({ ...spec, columns: { x: ['a', 'b'] } }, 'parquet', files))).not.toBe(
      fingerprint(planShape({ ...spec, columns: { x: ['b', 'a'] } }, 'parquet', files)),
    );
    expect(fingerprint(planShape({ ...spec, columns: { x: 'a', y: 'b' } }, 'parquet', files))).toBe(
      fingerprint(planShape({ ...spec, columns: { y: 'b', x: 'a' } }, 'parquet', files)),
    );
    expect(fingerprint(planShape(spec, 'csv', files))).not.toBe(base);
    expect(fingerprint(planShape(spec, 'parquet', [files[0] as (typeof files)[0]]))).not.toBe(base);
    // Another model's finished shards are never this run's.
    expect(fingerprint(planShape({ ...spec, model: 's3://m/a.zip@sha256:aa' }, 'parquet', files))).not.toBe(
      fingerprint(planShape({ ...spec, model: 's3://m/b.zip@sha256:bb' }, 'parquet', files)),
    );
  });

  it('says a model changed', () => {
    const was = planShape({ ...spec, model: 'a@sha256:1' }, 'parquet', files);
    expect(shapeChanges(was, planShape({ ...spec, model: 'b@sha256:2' }, 'parquet', files))).toBe('model a@sha256:1 → b@sha256:2');
  });

  it('says what changed', () => {
    const was = planShape(spec, 'parquet', files);
    const now = planShape({ ...spec, rowsPerShard: 5 }, 'parquet', [
      { name: 'a.parquet', size: 11, version: 'e9' },
      { name: 'c.parquet', size: 5, version: 'e3' },
    ]);
    expect(shapeChanges(was, now)).toBe('rowsPerShard 1000 → 5; new files c.parquet; files gone b.parquet; files changed a.parquet');
  });
});

describe('shardTarget', () => {
  it.each([
    // rows, rowsPerShard, parallelism → rows a shard aims at
    [1_000_000, 1_000_000, 2, 500_000],
    [1_000_000, 250_000, 2, 250_000],
    [1_000_001, 1_000_000, 2, 500_001],
    [10, 1_000_000, 4, 3],
    [3, 1_000_000, 8, 1],
    [0, 1_000_000, 2, 1_000_000],
    [1_000_000, 1_000_000, undefined, 1_000_000],
  ])('%d rows, at most %d a shard, %s at once → %d', (rows, perShard, parallelism, want) => {
    expect(shardTarget(rows, perShard, parallelism)).toBe(want);
  });
});

describe('store names', () => {
  it('splits a URI path into its directory and selector', () => {
    expect(splitSelector('iris/*.parquet', false)).toEqual({ dir: 'iris/', selector: '*.parquet' });
    expect(splitSelector('iris/', false)).toEqual({ dir: 'iris/', selector: '' });
    expect(splitSelector('iris', false)).toEqual({ dir: '', selector: 'iris' });
    expect(splitSelector('out/run', true)).toEqual({ dir: 'out/run/', selector: '' });
    expect(splitSelector('', true)).toEqual({ dir: '', selector: '' });
  });

  it('globs match within one path part', () => {
    const m = globMatcher('part-?.p*');
    expect(m('part-1.parquet')).toBe(true);
    expect(m('part-12.parquet')).toBe(false);
    expect(m('x/part-1.parquet')).toBe(false);
    expect(globMatcher('a.b')('axb')).toBe(false);
  });

  it('hides meta, hidden and directory names', () => {
    expect(isHiddenName('_modelship/plan.json')).toBe(true);
    expect(isHiddenName('day=1/_SUCCESS')).toBe(true);
    expect(isHiddenName('.part-0.crc')).toBe(true);
    expect(isHiddenName('dir/')).toBe(true);
    expect(isHiddenName('day=1/part-0.parquet')).toBe(false);
  });

  it('selects, filters and sorts', () => {
    const items = ['b.csv', 'a.csv', 'sub/c.csv', 'iris', 'iris/x.csv', 'iris2/y.csv', '_modelship/plan.json'].map((name) => ({ name }));
    expect(selectNames(items, '').map((i) => i.name)).toEqual(['a.csv', 'b.csv', 'iris', 'iris/x.csv', 'iris2/y.csv', 'sub/c.csv']);
    expect(selectNames(items, '*.csv').map((i) => i.name)).toEqual(['a.csv', 'b.csv']);
    expect(selectNames(items, 'iris').map((i) => i.name)).toEqual(['iris', 'iris/x.csv']);
  });
});
