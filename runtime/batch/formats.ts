// Batch input and output formats: Parquet, CSV and JSON Lines, read in column-major blocks of a bounded number of
// rows (a 600k-row file is never held as row objects) and written from a table of columns.
//
// Libraries (exact versions in package.json), all pure JavaScript (no native binary in the image, nothing built at
// install):
// - hyparquet 1.31.5 reads Parquet through an AsyncBuffer (byteLength + slice), so a footer, a row group or a
//   page range of a file in S3 is a ranged GET, never the whole object; it takes row ranges and column projection
//   and uses the offset index to read only the pages of a range. 1.31.5 is the version hyparquet-writer pins (one
//   copy in the image). hyparquet-compressors 1.1.2 adds gzip, zstd, brotli and lz4 (snappy is built in).
// - hyparquet-writer 0.17.0 writes Parquet (snappy), including LIST columns for vector outputs, given a schema.
// - csv-parse 7.0.3 / csv-stringify 6.9.0: streaming RFC 4180 CSV with line numbers in their errors.
// - JSON Lines: one JSON.parse / JSON.stringify per line.
//
// CSV types: a CSV cell is text. A column is numeric when every non-empty cell of the WHOLE file is a decimal
// number (`-1`, `2.5`, `.5`, `1e-3`); the plan scans each CSV file once (it counts the rows anyway) and records
// its numeric columns, so every shard reads a column the same way. Numeric cells become numbers, the others stay
// strings; an empty cell is null. (The model input's datatype is not used: the driver cannot see it, and a key
// column has none.)
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { stringify as stringifyCsv } from 'csv-stringify/sync';
import { type FileMetaData, parquetMetadataAsync, parquetRead, parquetSchema, type SchemaElement } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { ByteWriter, parquetWrite } from 'hyparquet-writer';
import type { BatchFormat } from '../contract.ts';
import { describe, isModelshipError, msError } from '../errors.ts';
import type { RandomAccess } from './store.ts';

/** A column's values: a typed array (Parquet numbers) or an array. */
export type Column = ArrayLike<unknown>;

/** Rows `firstRow` … `firstRow + rows - 1` of a file (its own row numbers), column-major. */
export interface Block {
  columns: Record<string, Column>;
  rows: number;
  firstRow: number;
}

export const DEFAULT_BLOCK_ROWS = 65_536;

const FORMAT_NAMES: Record<BatchFormat, string> = { parquet: 'Parquet', csv: 'CSV', jsonl: 'JSON Lines' };
export const EXTENSIONS: Record<BatchFormat, string> = { parquet: 'parquet', csv: 'csv', jsonl: 'jsonl' };

/** The format a file's name says (pure). */
export function formatOfName(name: string): BatchFormat | undefined {
  const ext = name.slice(name.lastIndexOf('.') + 1).toLowerCase();
  if (ext === 'parquet' || ext === 'parq' || ext === 'pq') return 'parquet';
  if (ext === 'csv') return 'csv';
  if (ext === 'jsonl' || ext === 'ndjson' || ext === 'json') return 'jsonl';
  return undefined;
}

function malformed(file: string, format: BatchFormat, detail: string, cause?: unknown) {
  return msError('MS_ERR_BATCH_INPUT_FORMAT', { file, format: FORMAT_NAMES[format], detail }, cause);
}

function columnMissing(file: string, column: string, columns: readonly string[]) {
  return msError('MS_ERR_BATCH_COLUMN_MISSING', { file, column, columns: columns.join(', ') || '(none)' });
}

/** Fails when `wanted` names a column `present` lacks. */
function requireColumns(file: string, wanted: readonly string[] | undefined, present: readonly string[]): void {
  const have = new Set(present);
  for (const c of wanted ?? []) if (!have.has(c)) throw columnMissing(file, c, present);
}

// ---- Parquet ----------------------------------------------------------------------------------------------------

export interface ParquetFooter {
  rows: number;
  /** Rows of each row group, in order. */
  rowGroups: number[];
  columns: string[];
  metadata: FileMetaData;
}

/** The file's footer (a ranged read of its tail): rows, row groups and top-level columns. */
export async function readParquetFooter(file: RandomAccess, name: string): Promise<ParquetFooter> {
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (err) {
    if (isModelshipError(err)) throw err;
    throw malformed(name, 'parquet', describe(err), err);
  }
  return {
    rows: Number(metadata.num_rows),
    rowGroups: metadata.row_groups.map((g) => Number(g.num_rows)),
    columns: parquetSchema(metadata).children.map((c) => c.element.name),
    metadata,
  };
}

export interface ParquetReadOptions {
  name: string;
  /** A footer already read (saves the ranged read of the tail). */
  footer?: ParquetFooter;
  rowStart?: number;
  rowEnd?: number;
  /** The columns to read (projection); each must exist. Unset: all. */
  columns?: readonly string[];
  blockRows?: number;
}

/**
 * Blocks of rows `rowStart` … `rowEnd - 1`, in equal parts of a row group of at most `blockRows` rows. A part of a
 * group whose columns have an offset index reads only its pages; a group without one (older writers) is read
 * once and cut here, rather than read again for each part.
 */
export async function* readParquet(file: RandomAccess, o: ParquetReadOptions): AsyncGenerator<Block> {
  const footer = o.footer ?? (await readParquetFooter(file, o.name));
  requireColumns(o.name, o.columns, footer.columns);
  const columns = o.columns ? [...o.columns] : footer.columns;
  const blockRows = o.blockRows ?? DEFAULT_BLOCK_ROWS;
  const rowStart = o.rowStart ?? 0;
  const rowEnd = Math.min(o.rowEnd ?? footer.rows, footer.rows);
  let groupStart = 0;
  for (const [g, groupRows] of footer.rowGroups.entries()) {
    const from = Math.max(groupStart, rowStart);
    const to = Math.min(groupStart + groupRows, rowEnd);
    groupStart += groupRows;
    if (from >= to) continue;
    const parts = Math.ceil((to - from) / blockRows);
    const step = Math.ceil((to - from) / parts);
    const indexed = footer.metadata.row_groups[g]?.columns.every(
      (c) => !columns.includes(c.meta_data?.path_in_schema[0] ?? '') || (c.offset_index_offset !== undefined && c.offset_index_length),
    );
    const whole = parts > 1 && !indexed ? await readParquetRange(file, o.name, footer.metadata, columns, from, to) : undefined;
    for (let a = from; a < to; a += step) {
      const b = Math.min(a + step, to);
      const cut = whole && Object.fromEntries(Object.entries(whole).map(([k, v]) => [k, sliceColumn(v, a - from, b - from)]));
      yield { columns: cut || (await readParquetRange(file, o.name, footer.metadata, columns, a, b)), rows: b - a, firstRow: a };
    }
  }
}

/** Rows `start` … `end - 1` of a column: a view of a typed array, a copy of an array. */
function sliceColumn(c: Column, start: number, end: number): Column {
  if (ArrayBuffer.isView(c)) return (c as unknown as { subarray(a: number, b: number): Column }).subarray(start, end);
  return Array.prototype.slice.call(c, start, end);
}

async function readParquetRange(
  file: RandomAccess,
  name: string,
  metadata: FileMetaData,
  columns: string[],
  rowStart: number,
  rowEnd: number,
): Promise<Record<string, Column>> {
  const chunks = new Map<string, { data: Column; rowStart: number }[]>(columns.map((c) => [c, []]));
  try {
    await parquetRead({
      file,
      metadata,
      columns,
      rowStart,
      rowEnd,
      compressors,
      useOffsetIndex: true,
      // A chunk may hold rows outside the range (whole pages): cut below.
      onChunk: (c) => chunks.get(c.columnName)?.push({ data: c.columnData, rowStart: c.rowStart }),
    });
  } catch (err) {
    if (isModelshipError(err)) throw err;
    throw malformed(name, 'parquet', `rows ${rowStart}-${rowEnd - 1}: ${describe(err)}`, err);
  }
  const out: Record<string, Column> = {};
  for (const [column, parts] of chunks) {
    const data = joinRange(parts, rowStart, rowEnd);
    if (data.length !== rowEnd - rowStart) {
      throw malformed(name, 'parquet', `column ${column}: ${data.length} values for rows ${rowStart}-${rowEnd - 1}`);
    }
    out[column] = data;
  }
  return out;
}

type Sliceable = Column & { slice(start: number, end: number): Column };

/** Rows `rowStart` … `rowEnd - 1` out of chunks that may overlap the range (pure). A typed array stays one. */
export function joinRange(parts: { data: Column; rowStart: number }[], rowStart: number, rowEnd: number): Column {
  const pieces: Column[] = [];
  for (const p of [...parts].sort((x, y) => x.rowStart - y.rowStart)) {
    const a = Math.max(rowStart, p.rowStart) - p.rowStart;
    const b = Math.min(rowEnd, p.rowStart + p.data.length) - p.rowStart;
    if (a < b) pieces.push(a === 0 && b === p.data.length ? p.data : (p.data as Sliceable).slice(a, b));
  }
  if (pieces.length === 1) return pieces[0] as Column;
  const first = pieces[0];
  if (first && ArrayBuffer.isView(first) && pieces.every((p) => p.constructor === first.constructor)) {
    const Typed = first.constructor as new (n: number) => { set(a: Column, at: number): void } & Column;
    const joined = new Typed(pieces.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of pieces) {
      joined.set(p, at);
      at += p.length;
    }
    return joined;
  }
  const joined: unknown[] = [];
  for (const p of pieces) for (let i = 0; i < p.length; i++) joined.push(p[i]);
  return joined;
}

// ---- CSV --------------------------------------------------------------------------------------------------------

const NUMBER = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;

export interface CsvScan {
  rows: number;
  columns: string[];
  /** Columns whose every non-empty cell is a number (and that have at least one). */
  numericColumns: string[];
}

function csvParser(input: Readable, name: string) {
  const parser = parseCsv({ bom: true, skip_empty_lines: true });
  input.on('error', (err) => parser.destroy(err));
  input.pipe(parser);
  const fail = (err: unknown) => {
    if (isModelshipError(err)) return err;
    const e = err as { code?: string; lines?: number };
    if (typeof e.code === 'string' && e.code.startsWith('CSV_')) return malformed(name, 'csv', describe(err), err);
    return err;
  };
  return { parser, fail };
}

function csvHeader(record: unknown, name: string): string[] {
  const header = (record as string[]).map((h) => h.trim());
  const seen = new Set<string>();
  header.forEach((h, i) => {
    if (h === '') throw malformed(name, 'csv', `line 1: column ${i + 1} has no name`);
    if (seen.has(h)) throw malformed(name, 'csv', `line 1: column "${h}" appears twice`);
    seen.add(h);
  });
  return header;
}

/** One pass over a CSV file: its rows (the header excluded), columns and numeric columns; a malformed file fails. */
export async function scanCsv(input: Readable, name: string): Promise<CsvScan> {
  const { parser, fail } = csvParser(input, name);
  let header: string[] | undefined;
  let numeric: boolean[] = [];
  let seen: boolean[] = [];
  let rows = 0;
  try {
    for await (const record of parser as AsyncIterable<string[]>) {
      if (!header) {
        header = csvHeader(record, name);
        numeric = header.map(() => true);
        seen = header.map(() => false);
        continue;
      }
      rows++;
      for (let c = 0; c < record.length; c++) {
        const cell = record[c] as string;
        if (cell === '' || !numeric[c]) continue;
        seen[c] = true;
        if (!NUMBER.test(cell)) numeric[c] = false;
      }
    }
  } catch (err) {
    throw fail(err);
  } finally {
    input.destroy();
  }
  const columns = header ?? [];
  return { rows, columns, numericColumns: columns.filter((_, c) => numeric[c] && seen[c]) };
}

export interface CsvReadOptions {
  name: string;
  /** From scanCsv over the whole file (the plan's). */
  numericColumns: readonly string[];
  columns?: readonly string[];
  blockRows?: number;
}

/** Blocks of a CSV file with a header row; rows are numbered from 0 after the header. */
export async function* readCsv(input: Readable, o: CsvReadOptions): AsyncGenerator<Block> {
  const { parser, fail } = csvParser(input, o.name);
  const blockRows = o.blockRows ?? DEFAULT_BLOCK_ROWS;
  const numeric = new Set(o.numericColumns);
  let header: string[] | undefined;
  let picked: { name: string; at: number; numeric: boolean }[] = [];
  let values: unknown[][] = [];
  let rows = 0;
  let firstRow = 0;
  const take = (): Block => {
    const block = { columns: Object.fromEntries(picked.map((p, k) => [p.name, values[k] as unknown[]])), rows, firstRow };
    firstRow += rows;
    rows = 0;
    values = picked.map(() => []);
    return block;
  };
  const iterator = (parser as AsyncIterable<string[]>)[Symbol.asyncIterator]();
  // Closed however the reading ends (a consumer that stops early included): no S3 response is left open.
  try {
    yield* csvBlocks();
  } finally {
    input.destroy();
    parser.destroy();
  }

  async function* csvBlocks(): AsyncGenerator<Block> {
    for (;;) {
      let next: IteratorResult<string[]>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw fail(err);
      }
      if (next.done) break;
      const record = next.value;
      if (!header) {
        header = csvHeader(record, o.name);
        requireColumns(o.name, o.columns, header);
        const wanted = o.columns ?? header;
        picked = wanted.map((name) => ({ name, at: header?.indexOf(name) ?? -1, numeric: numeric.has(name) }));
        values = picked.map(() => []);
        continue;
      }
      for (let k = 0; k < picked.length; k++) {
        const p = picked[k] as (typeof picked)[number];
        const cell = record[p.at] as string;
        (values[k] as unknown[]).push(cell === '' ? null : p.numeric ? Number(cell) : cell);
      }
      rows++;
      if (rows === blockRows) yield take();
    }
    if (rows > 0) yield take();
  }
}

// ---- JSON Lines -------------------------------------------------------------------------------------------------

/** Rows of a JSON Lines file: its lines that are not blank (a byte scan; the lines are parsed when read). */
export async function countJsonl(input: Readable): Promise<number> {
  let rows = 0;
  let content = false;
  try {
    for await (const chunk of input as AsyncIterable<Buffer>) {
      for (let i = 0; i < chunk.length; i++) {
        const b = chunk[i] as number;
        if (b === 10) {
          if (content) rows++;
          content = false;
        } else if (b !== 32 && b !== 9 && b !== 13) content = true;
      }
    }
  } finally {
    input.destroy();
  }
  return content ? rows + 1 : rows;
}

export interface JsonlReadOptions {
  name: string;
  columns?: readonly string[];
  blockRows?: number;
}

/**
 * Blocks of a JSON Lines file (one object a line; blank lines skipped). A key some rows lack is null there; a
 * wanted column that no row of the first block has is missing.
 */
export async function* readJsonl(input: Readable, o: JsonlReadOptions): AsyncGenerator<Block> {
  const blockRows = o.blockRows ?? DEFAULT_BLOCK_ROWS;
  const wanted = o.columns ? new Set(o.columns) : undefined;
  let cols = new Map<string, unknown[]>();
  const seen = new Set<string>();
  let rows = 0;
  let firstRow = 0;
  let line = 0;
  const take = (): Block => {
    // The file's first block decides whether a column is there; later blocks may lack it in every row (null).
    if (firstRow === 0) requireColumns(o.name, o.columns, [...seen]);
    for (const c of o.columns ?? []) if (!cols.has(c)) cols.set(c, []);
    for (const v of cols.values()) while (v.length < rows) v.push(null);
    const block = { columns: Object.fromEntries(cols), rows, firstRow };
    firstRow += rows;
    rows = 0;
    cols = new Map();
    return block;
  };
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  try {
    yield* jsonlBlocks();
  } finally {
    lines.close();
    input.destroy();
  }

  async function* jsonlBlocks(): AsyncGenerator<Block> {
    for await (const text of lines) {
      line++;
      if (text.trim() === '') continue;
      let row: unknown;
      try {
        row = JSON.parse(text);
      } catch (err) {
        throw malformed(o.name, 'jsonl', `line ${line}: ${describe(err)}`);
      }
      if (row === null || typeof row !== 'object' || Array.isArray(row)) {
        throw malformed(o.name, 'jsonl', `line ${line}: not a JSON object`);
      }
      for (const [key, value] of Object.entries(row)) {
        if (firstRow === 0) seen.add(key);
        if (wanted && !wanted.has(key)) continue;
        let col = cols.get(key);
        if (!col) {
          col = new Array(rows).fill(null);
          cols.set(key, col);
        }
        while (col.length < rows) col.push(null);
        col.push(value);
      }
      rows++;
      if (rows === blockRows) yield take();
    }
    if (rows > 0) yield take();
  }
}

// ---- writing ----------------------------------------------------------------------------------------------------

export interface TableColumn {
  name: string;
  values: Column;
}

/** A table (columns of equal length) as the bytes of a file in `format`. */
export function writeTable(format: BatchFormat, columns: readonly TableColumn[], rows: number): Uint8Array {
  if (format === 'parquet') return writeParquet(columns);
  if (format === 'csv') return writeCsv(columns, rows);
  return writeJsonl(columns, rows);
}

/** A JSON-safe value: a bigint becomes a number (a string past 2^53), a typed array an array, a Date ISO text. */
export function jsonValue(v: unknown): unknown {
  if (v === undefined) return null;
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  if (v instanceof Date) return v.toISOString();
  if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<unknown>, jsonValue);
  if (Array.isArray(v)) return v.some((x) => typeof x === 'bigint' || (typeof x === 'object' && x !== null)) ? v.map(jsonValue) : v;
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  }
  return v;
}

function writeJsonl(columns: readonly TableColumn[], rows: number): Uint8Array {
  const lines: string[] = new Array(rows);
  for (let r = 0; r < rows; r++) {
    const row: Record<string, unknown> = {};
    for (const c of columns) row[c.name] = jsonValue(c.values[r]);
    lines[r] = JSON.stringify(row);
  }
  return Buffer.from(rows ? `${lines.join('\n')}\n` : '');
}

function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return String(v);
  if (v instanceof Date) return v.toISOString();
  // A vector or an object stays one cell, as JSON text ("[0.1,0.2,0.7]").
  return JSON.stringify(jsonValue(v));
}

function writeCsv(columns: readonly TableColumn[], rows: number): Uint8Array {
  const records: string[][] = new Array(rows);
  for (let r = 0; r < rows; r++) records[r] = columns.map((c) => csvCell(c.values[r]));
  return Buffer.from(stringifyCsv(records, { header: true, columns: columns.map((c) => c.name) }));
}

type Scalar = 'boolean' | 'int32' | 'int64' | 'double' | 'string' | 'date';
/** What a column holds, from all its values: the Parquet type it is written as. */
export type Kind = 'null' | Scalar | 'json' | { list: Exclude<Scalar, 'date'> };

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

function scalarKind(v: unknown): Scalar | undefined {
  switch (typeof v) {
    case 'number':
      if (!Number.isInteger(v)) return 'double';
      return v >= INT32_MIN && v <= INT32_MAX ? 'int32' : Number.isSafeInteger(v) ? 'int64' : 'double';
    case 'bigint':
      return 'int64';
    case 'boolean':
      return 'boolean';
    case 'string':
      return 'string';
    default:
      return v instanceof Date ? 'date' : undefined;
  }
}

const NUMERIC: Record<string, number> = { int32: 0, int64: 1, double: 2 };

/** Integers widen to int64, numbers to double; other kinds do not meet (pure). */
function meet(a: Scalar | undefined, b: Scalar): Scalar | 'mixed' {
  if (a === undefined || a === b) return b;
  const x = NUMERIC[a];
  const y = NUMERIC[b];
  if (x === undefined || y === undefined) return 'mixed';
  return x > y ? a : b;
}

const isVector = (v: unknown): v is ArrayLike<unknown> => Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView));

/**
 * The kind of a column, from all its values (pure). Integers are INT32 while every value fits (a label stays 2,
 * not 2.0; a row number), else INT64; other numbers DOUBLE; flat arrays of one scalar kind a LIST (predict_proba's
 * vector); anything else JSON text. Decided per part: a column whose integers pass 2^31 in one part only is INT64
 * there.
 */
export function columnKind(values: Column): Kind {
  if (values instanceof Float64Array || values instanceof Float32Array) return 'double';
  if (values instanceof Int32Array || values instanceof Int16Array || values instanceof Int8Array || values instanceof Uint16Array)
    return 'int32';
  if (values instanceof BigInt64Array || values instanceof Uint32Array) return 'int64';
  let scalar: Scalar | undefined;
  let element: Scalar | undefined;
  let lists = false;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) continue;
    if (isVector(v)) {
      if (scalar !== undefined) return 'json';
      lists = true;
      for (let j = 0; j < v.length; j++) {
        const e = v[j];
        if (e === null || e === undefined) continue;
        const k = scalarKind(e);
        if (k === undefined || k === 'date') return 'json';
        const m = meet(element, k);
        if (m === 'mixed') return 'json';
        element = m;
      }
      continue;
    }
    if (lists) return 'json';
    const k = scalarKind(v);
    if (k === undefined) return 'json';
    const m = meet(scalar, k);
    if (m === 'mixed') return 'json';
    scalar = m;
  }
  if (lists) return { list: (element ?? 'double') as Exclude<Scalar, 'date'> };
  return scalar ?? 'null';
}

function leafType(kind: Exclude<Scalar, 'date'>): Pick<SchemaElement, 'type' | 'converted_type'> {
  if (kind === 'boolean') return { type: 'BOOLEAN' };
  if (kind === 'int32') return { type: 'INT32' };
  if (kind === 'int64') return { type: 'INT64' };
  if (kind === 'double') return { type: 'DOUBLE' };
  return { type: 'BYTE_ARRAY', converted_type: 'UTF8' };
}

const toBigInt = (v: unknown): bigint | null => (v === null || v === undefined ? null : typeof v === 'bigint' ? v : BigInt(v as number));
const toDouble = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const orNull = (v: unknown) => v ?? null;

function hasNull(values: Column): boolean {
  for (let i = 0; i < values.length; i++) if (values[i] === null || values[i] === undefined) return true;
  return false;
}

/** The values as hyparquet-writer takes them for `kind`: typed arrays where there is no null, no copy where none is needed. */
function columnData(kind: Kind, values: Column): ArrayLike<unknown> {
  if (typeof kind === 'object') {
    // A vector is copied only when its elements need converting (bigints among doubles, numbers for INT64).
    const convert: ((v: unknown) => unknown) | undefined = kind.list === 'int64' ? toBigInt : kind.list === 'double' ? toDouble : undefined;
    const needs = (arr: ArrayLike<unknown>) => {
      for (let j = 0; j < arr.length; j++) if (typeof arr[j] === (kind.list === 'int64' ? 'number' : 'bigint')) return true;
      return false;
    };
    return Array.from(values, (v) => {
      if (v === null || v === undefined) return null;
      const arr = v as ArrayLike<unknown>;
      if (convert && needs(arr)) return Array.from(arr, convert);
      return Array.isArray(arr) ? arr : Array.from(arr);
    });
  }
  switch (kind) {
    case 'int32':
      if (values instanceof Int32Array) return values;
      return hasNull(values) ? Array.from(values, orNull) : Int32Array.from(values as ArrayLike<number>);
    case 'int64':
      return values instanceof BigInt64Array ? values : Array.from(values, toBigInt);
    case 'double':
      if (values instanceof Float64Array) return values;
      return hasNull(values) ? Array.from(values, toDouble) : Float64Array.from(values as ArrayLike<number>, Number);
    case 'json':
      return Array.from(values, (v) => (v === null || v === undefined ? null : jsonValue(v)));
    case 'null':
      return new Array(values.length).fill(null);
    default:
      return Array.from(values, orNull);
  }
}

/** The column's schema elements (every column OPTIONAL, so the parts of one output agree) and its data. */
function parquetColumn(c: TableColumn): { schema: SchemaElement[]; data: ArrayLike<unknown>; statistics?: boolean } {
  const kind = columnKind(c.values);
  const name = c.name;
  const data = columnData(kind, c.values);
  if (typeof kind === 'object') {
    return {
      schema: [
        { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', repetition_type: 'OPTIONAL', ...leafType(kind.list) },
      ],
      data,
      // min/max over a vector's elements help no query, and cost a fifth of writing it
      statistics: false,
    };
  }
  if (kind === 'date') return { schema: [{ name, repetition_type: 'OPTIONAL', type: 'INT64', converted_type: 'TIMESTAMP_MILLIS' }], data };
  if (kind === 'json') return { schema: [{ name, repetition_type: 'OPTIONAL', type: 'BYTE_ARRAY', converted_type: 'JSON' }], data };
  return { schema: [{ name, repetition_type: 'OPTIONAL', ...leafType(kind === 'null' ? 'string' : kind) }], data };
}

function writeParquet(columns: readonly TableColumn[]): Uint8Array {
  const built = columns.map(parquetColumn);
  const writer = new ByteWriter();
  parquetWrite({
    writer,
    schema: [{ name: 'root', num_children: columns.length }, ...built.flatMap((b) => b.schema)],
    columnData: columns.map((c, i) => ({
      name: c.name,
      data: (built[i]?.data ?? []) as unknown[],
      ...(built[i]?.statistics === false ? { statistics: false } : {}),
    })),
    rowGroupSize: 100_000,
    createdBy: 'modelship batch',
  });
  return writer.getBytes();
}
