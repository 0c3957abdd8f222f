// Batch formats: written then read back (Parquet, CSV, JSON Lines), blocks and row ranges, and malformed files.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import {
  type Block,
  columnKind,
  countJsonl,
  formatOfName,
  joinRange,
  readCsv,
  readJsonl,
  readParquet,
  readParquetFooter,
  scanCsv,
  type TableColumn,
  writeTable,
} from '../../../runtime/batch/formats.ts';
import type { RandomAccess } from '../../../runtime/batch/store.ts';
import { isModelshipError } from '../../../runtime/errors.ts';

/** Random access over bytes in memory, counting the bytes each slice asks for. */
function memory(bytes: Uint8Array | ArrayBuffer): RandomAccess & { read: number } {
  const buf = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const file = {
    byteLength: buf.byteLength,
    read: 0,
    async slice(start: number, end = buf.byteLength) {
      file.read += end - start;
      return buf.slice(start, end).buffer;
    },
  };
  return file;
}

const streamOf = (text: string | Uint8Array) => Readable.from([Buffer.from(text)]);

async function all(blocks: AsyncGenerator<Block>): Promise<Block[]> {
  const out: Block[] = [];
  for await (const b of blocks) out.push(b);
  return out;
}

/** The rows of blocks as objects (for comparing). */
function rowsOf(blocks: Block[]): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  for (const b of blocks) {
    for (let r = 0; r < b.rows; r++) rows.push(Object.fromEntries(Object.entries(b.columns).map(([k, v]) => [k, v[r]])));
  }
  return rows;
}

async function codeOf(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (err) {
    if (isModelshipError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected a coded error');
}

const table: TableColumn[] = [
  { name: 'id', values: [1, 2, 3, 4] },
  { name: 'x', values: new Float64Array([0.5, 1, 1.5, -2]) },
  { name: 'label', values: ['setosa', null, 'virginica', 'x,"y"'] },
  { name: 'proba', values: [[0.1, 0.9], [1, 0], null, [0.25, 0.75]] },
  { name: 'big', values: [2n ** 60n, 1n, null, 3n] },
  { name: 'ok', values: [true, false, null, true] },
  { name: 'meta', values: [{ a: 1 }, null, { b: [1, 2] }, 'text'] },
];

describe('Parquet', () => {
  it('round trips a table: INT32 integers, doubles, strings, vectors as LIST, INT64 bigints, booleans, JSON', async () => {
    const bytes = writeTable('parquet', table, 4);
    const blocks = await all(readParquet(memory(bytes), { name: 't.parquet' }));
    expect(blocks.map((b) => [b.rows, b.firstRow])).toEqual([[4, 0]]);
    expect(rowsOf(blocks)).toEqual([
      { id: 1, x: 0.5, label: 'setosa', proba: [0.1, 0.9], big: 2n ** 60n, ok: true, meta: { a: 1 } },
      { id: 2, x: 1, label: null, proba: [1, 0], big: 1n, ok: false, meta: null },
      { id: 3, x: 1.5, label: 'virginica', proba: undefined, big: null, ok: null, meta: { b: [1, 2] } },
      { id: 4, x: -2, label: 'x,"y"', proba: [0.25, 0.75], big: 3n, ok: true, meta: 'text' },
    ]);
  });

  it('reads blocks of at most blockRows within row groups, a row range, and only the columns asked for', async () => {
    const n = 1000;
    const bytes = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: Int32Array.from({ length: n }, (_, i) => i), type: 'INT32', nullable: false },
        { name: 'v', data: Float64Array.from({ length: n }, (_, i) => i / 2), type: 'DOUBLE', nullable: false },
        { name: 's', data: Array.from({ length: n }, (_, i) => `row ${i}`), type: 'STRING' },
      ],
      rowGroupSize: 300,
      pageSize: 256,
    });
    const file = memory(bytes);
    const footer = await readParquetFooter(file, 'big.parquet');
    expect(footer).toMatchObject({ rows: 1000, rowGroups: [300, 300, 300, 100], columns: ['id', 'v', 's'] });

    const whole = await all(readParquet(file, { name: 'big.parquet', footer, blockRows: 128 }));
    // a 300-row group in three equal parts of 100; the last group whole
    expect(whole.map((b) => [b.firstRow, b.rows])).toEqual([
      [0, 100],
      [100, 100],
      [200, 100],
      [300, 100],
      [400, 100],
      [500, 100],
      [600, 100],
      [700, 100],
      [800, 100],
      [900, 100],
    ]);
    expect(rowsOf(whole).map((r) => r.id)).toEqual(Array.from({ length: n }, (_, i) => i));

    file.read = 0;
    const range = await all(readParquet(file, { name: 'big.parquet', footer, rowStart: 300, rowEnd: 600, columns: ['v'] }));
    expect(range.map((b) => [b.firstRow, b.rows, Object.keys(b.columns)])).toEqual([[300, 300, ['v']]]);
    expect(Array.from(range[0]?.columns.v ?? [])).toEqual(Array.from({ length: 300 }, (_, i) => (300 + i) / 2));
    // one row group of one column: a small share of the file
    expect(file.read).toBeLessThan(bytes.byteLength / 4);
  });

  it('a row group without an offset index is read once and cut into blocks', async () => {
    const n = 600;
    const bytes = parquetWriteBuffer({
      columnData: [
        { name: 'id', data: Int32Array.from({ length: n }, (_, i) => i), type: 'INT32', nullable: false, offsetIndex: false },
        { name: 's', data: Array.from({ length: n }, (_, i) => `r${i}`), type: 'STRING', offsetIndex: false },
      ],
      rowGroupSize: 300,
      pageSize: 256,
    });
    const file = memory(bytes);
    const footer = await readParquetFooter(file, 'old.parquet');
    file.read = 0;
    const blocks = await all(readParquet(file, { name: 'old.parquet', footer, blockRows: 100 }));
    expect(blocks.map((b) => [b.firstRow, b.rows])).toEqual([0, 100, 200, 300, 400, 500].map((f) => [f, 100]));
    expect(rowsOf(blocks)).toEqual(Array.from({ length: n }, (_, i) => ({ id: i, s: `r${i}` })));
    // each group's bytes once: no more than the file
    expect(file.read).toBeLessThanOrEqual(bytes.byteLength);
  });

  it('reads the codecs other writers use (gzip here) through hyparquet-compressors', async () => {
    const bytes = parquetWriteBuffer({
      columnData: [{ name: 'v', data: Float64Array.from({ length: 300 }, (_, i) => i / 4), type: 'DOUBLE', nullable: false }],
      codec: 'GZIP',
      compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gzipSync(input)) },
    });
    const rows = rowsOf(await all(readParquet(memory(bytes), { name: 'g.parquet' })));
    expect(rows.map((r) => r.v)).toEqual(Array.from({ length: 300 }, (_, i) => i / 4));
  });

  it('refuses a column the file lacks, naming the file and its columns', async () => {
    const bytes = writeTable('parquet', table, 4);
    expect(await codeOf(all(readParquet(memory(bytes), { name: 'in/t.parquet', columns: ['id', 'petal'] })))).toEqual({
      code: 'MS_ERR_BATCH_COLUMN_MISSING',
      message: 'input file in/t.parquet has no column "petal" (columns: id, x, label, proba, big, ok, meta)',
    });
  });

  it('a malformed file → MS_ERR_BATCH_INPUT_FORMAT naming it', async () => {
    const notParquet = await codeOf(readParquetFooter(memory(Buffer.from('id,x\n1,2\n')), 'in/a.parquet'));
    expect(notParquet.code).toBe('MS_ERR_BATCH_INPUT_FORMAT');
    expect(notParquet.message).toMatch(/^input file in\/a\.parquet cannot be read as Parquet: /);

    // a footer intact but a page corrupted: found when the rows are read
    const bytes = new Uint8Array(writeTable('parquet', [{ name: 's', values: Array.from({ length: 500 }, (_, i) => `value ${i}`) }], 500));
    for (let i = 8; i < 200; i++) bytes[i] = 0xff;
    const corrupt = await codeOf(all(readParquet(memory(bytes), { name: 'in/b.parquet' })));
    expect(corrupt.code).toBe('MS_ERR_BATCH_INPUT_FORMAT');
    expect(corrupt.message).toContain('in/b.parquet');
  });
});

describe('CSV', () => {
  it('round trips a table; a vector is one cell of JSON text', async () => {
    const bytes = writeTable('csv', table.slice(0, 4), 4);
    expect(Buffer.from(bytes).toString()).toBe(
      'id,x,label,proba\n1,0.5,setosa,"[0.1,0.9]"\n2,1,,"[1,0]"\n3,1.5,virginica,\n4,-2,"x,""y""","[0.25,0.75]"\n',
    );
    const scan = await scanCsv(streamOf(bytes), 'a.csv');
    expect(scan).toEqual({ rows: 4, columns: ['id', 'x', 'label', 'proba'], numericColumns: ['id', 'x'] });
    const rows = rowsOf(await all(readCsv(streamOf(bytes), { name: 'a.csv', numericColumns: scan.numericColumns })));
    expect(rows).toEqual([
      { id: 1, x: 0.5, label: 'setosa', proba: '[0.1,0.9]' },
      { id: 2, x: 1, label: null, proba: '[1,0]' },
      { id: 3, x: 1.5, label: 'virginica', proba: null },
      { id: 4, x: -2, label: 'x,"y"', proba: '[0.25,0.75]' },
    ]);
  });

  it('a column is numeric only when every cell of the whole file is a number; blocks and projection', async () => {
    const text = 'code,v,e\n007,1e3,\n12,.5,\n\nA1,-2,\n';
    const scan = await scanCsv(streamOf(text), 'b.csv');
    expect(scan).toEqual({ rows: 3, columns: ['code', 'v', 'e'], numericColumns: ['v'] });
    const blocks = await all(
      readCsv(streamOf(text), { name: 'b.csv', numericColumns: scan.numericColumns, columns: ['v', 'code'], blockRows: 2 }),
    );
    expect(blocks).toEqual([
      { columns: { v: [1000, 0.5], code: ['007', '12'] }, rows: 2, firstRow: 0 },
      { columns: { v: [-2], code: ['A1'] }, rows: 1, firstRow: 2 },
    ]);
    expect(await codeOf(all(readCsv(streamOf(text), { name: 'b.csv', numericColumns: [], columns: ['w'] })))).toEqual({
      code: 'MS_ERR_BATCH_COLUMN_MISSING',
      message: 'input file b.csv has no column "w" (columns: code, v, e)',
    });
  });

  it('a malformed file → MS_ERR_BATCH_INPUT_FORMAT naming the file and the line', async () => {
    const unclosed = await codeOf(scanCsv(streamOf('a,b\n1,2\n3,"4\n'), 'in/u.csv'));
    expect(unclosed.code).toBe('MS_ERR_BATCH_INPUT_FORMAT');
    expect(unclosed.message).toMatch(/^input file in\/u\.csv cannot be read as CSV: .*line 3/);

    const ragged = await codeOf(all(readCsv(streamOf('a,b\n1,2\n3,4,5\n'), { name: 'in/r.csv', numericColumns: [] })));
    expect(ragged.code).toBe('MS_ERR_BATCH_INPUT_FORMAT');
    expect(ragged.message).toMatch(/^input file in\/r\.csv cannot be read as CSV: .*line 3/);

    expect(await codeOf(scanCsv(streamOf('a,a\n1,2\n'), 'in/d.csv'))).toEqual({
      code: 'MS_ERR_BATCH_INPUT_FORMAT',
      message: 'input file in/d.csv cannot be read as CSV: line 1: column "a" appears twice',
    });
  });
});

describe('JSON Lines', () => {
  it('round trips a table: bigints as numbers (text past 2^53), vectors and objects as JSON', async () => {
    const bytes = writeTable('jsonl', table, 4);
    const text = Buffer.from(bytes).toString();
    expect(text.split('\n')[0]).toBe(
      '{"id":1,"x":0.5,"label":"setosa","proba":[0.1,0.9],"big":"1152921504606846976","ok":true,"meta":{"a":1}}',
    );
    expect(await countJsonl(streamOf(`${text}\n  \n`))).toBe(4);
    const rows = rowsOf(await all(readJsonl(streamOf(bytes), { name: 'a.jsonl' })));
    expect(rows[1]).toEqual({ id: 2, x: 1, label: null, proba: [1, 0], big: 1, ok: false, meta: null });
  });

  it('a key some rows lack is null there; blank lines are no rows; blocks and projection', async () => {
    const text = '{"a":1,"b":"x"}\n\n{"a":2}\r\n{"b":"z","c":3}\n';
    expect(await countJsonl(streamOf(text))).toBe(3);
    const blocks = await all(readJsonl(streamOf(text), { name: 'c.jsonl', columns: ['a', 'b'], blockRows: 2 }));
    expect(blocks).toEqual([
      { columns: { a: [1, 2], b: ['x', null] }, rows: 2, firstRow: 0 },
      { columns: { b: ['z'], a: [null] }, rows: 1, firstRow: 2 },
    ]);
    expect(await codeOf(all(readJsonl(streamOf(text), { name: 'c.jsonl', columns: ['d'] })))).toEqual({
      code: 'MS_ERR_BATCH_COLUMN_MISSING',
      message: 'input file c.jsonl has no column "d" (columns: a, b, c)',
    });
  });

  it('a malformed file → MS_ERR_BATCH_INPUT_FORMAT naming the file and the line', async () => {
    const bad = await codeOf(all(readJsonl(streamOf('{"a":1}\n\n{"a":2,}\n'), { name: 'in/x.jsonl' })));
    expect(bad.code).toBe('MS_ERR_BATCH_INPUT_FORMAT');
    expect(bad.message).toMatch(/^input file in\/x\.jsonl cannot be read as JSON Lines: line 3: /);
    expect(await codeOf(all(readJsonl(streamOf('{"a":1}\n[1,2]\n'), { name: 'in/y.jsonl' })))).toEqual({
      code: 'MS_ERR_BATCH_INPUT_FORMAT',
      message: 'input file in/y.jsonl cannot be read as JSON Lines: line 2: not a JSON object',
    });
  });
});

describe('helpers', () => {
  it('tells the format by extension', () => {
    expect(['a.parquet', 'b.CSV', 'c.jsonl', 'd.ndjson', 'e.json', 'f.txt', 'noext'].map(formatOfName)).toEqual([
      'parquet',
      'csv',
      'jsonl',
      'jsonl',
      'jsonl',
      undefined,
      undefined,
    ]);
  });

  it('picks a column kind from all its values', () => {
    expect(columnKind([1, 2, null])).toBe('int32');
    expect(columnKind([1, 2 ** 31])).toBe('int64');
    expect(columnKind([1, 2 ** 60])).toBe('double');
    expect(columnKind([1, 2.5])).toBe('double');
    expect(columnKind([1n, 2])).toBe('int64');
    expect(columnKind(['a', null])).toBe('string');
    expect(columnKind([true, false])).toBe('boolean');
    expect(columnKind([null, undefined])).toBe('null');
    expect(columnKind([[1, 2], null, [0.5]])).toEqual({ list: 'double' });
    expect(columnKind([[1, 2], [3]])).toEqual({ list: 'int32' });
    expect(columnKind([['a'], []])).toEqual({ list: 'string' });
    expect(columnKind([[1], 2])).toBe('json');
    expect(columnKind([2, [1]])).toBe('json');
    expect(columnKind([[[1]]])).toBe('json');
    expect(columnKind([1, 'a'])).toBe('json');
    expect(columnKind([{ a: 1 }])).toBe('json');
    expect(columnKind(new Float64Array(2))).toBe('double');
    expect(columnKind(new Int32Array(2))).toBe('int32');
    expect(columnKind(new BigInt64Array(2))).toBe('int64');
  });

  it('joins the chunks of a range, cutting what lies outside', () => {
    const parts = [
      { data: new Int32Array([5, 6, 7]), rowStart: 5 },
      { data: new Int32Array([0, 1, 2, 3, 4]), rowStart: 0 },
    ];
    expect(joinRange(parts, 2, 7)).toEqual(new Int32Array([2, 3, 4, 5, 6]));
    expect(
      joinRange(
        [
          { data: ['a', 'b'], rowStart: 0 },
          { data: new Int32Array([1]), rowStart: 2 },
        ],
        1,
        3,
      ),
    ).toEqual(['b', 1]);
  });
});
