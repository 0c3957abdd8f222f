// How Open Inference Protocol tensors map to plugin inputs and back. Pure.
//
// Request → plugin: the first dimension of every input tensor is the batch. Row i of the batch becomes one
// plugin input object, keyed by tensor name: a tensor of shape [B] gives each row a scalar, [B, n] a flat
// array of n, [B, n, m] nested arrays n×m. All inputs must agree on B.
//
// Plugin → response: for each output name, the rows' values are stacked along a new first dimension:
// scalars give shape [B], arrays of n give [B, n] (every row must have the same length). The datatype is
// the one declared for that output (manifest or metadata()) if any; otherwise a typed array keeps its own
// (Float32Array → FP32, Int32Array → INT32, …), booleans are BOOL, strings BYTES, bigints INT64 and plain
// numbers FP64.
import { type Datatype, DATATYPES, type TensorMetadata } from '../bundle/manifest.ts';
import { msError } from '../errors.ts';
import type { OutputValue, Outputs, TypedArray } from '../engines/outputs.ts';
import { decodeBinary } from './binary.ts';

export interface InferInput {
  name: string;
  shape: number[];
  datatype: string;
  /** Absent when the tensor travels as binary (`parameters.binary_data_size`). */
  data?: unknown[];
  parameters?: Record<string, unknown>;
}

/** Most elements one input tensor may declare: a shape beyond it is refused before anything is allocated. */
export const MAX_TENSOR_ELEMENTS = 1 << 26;

export interface InferOutput {
  name: string;
  shape: number[];
  datatype: Datatype;
  data: unknown[];
}

const DATATYPE_SET = new Set<string>(DATATYPES);

const INT_RANGE: Partial<Record<Datatype, [number, number]>> = {
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
};

function flatten(data: unknown[], name: string): unknown[] {
  if (!data.some(Array.isArray)) return data;
  const out: unknown[] = [];
  const walk = (a: unknown[], depth: number) => {
    if (depth > 32) throw msError('MS_ERR_TENSOR_DATA', { name, detail: 'data is nested more than 32 levels deep' });
    for (const v of a) {
      if (Array.isArray(v)) walk(v, depth + 1);
      else out.push(v);
    }
  };
  walk(data, 0);
  return out;
}

function checkElements(input: InferInput, datatype: Datatype, data: unknown[]): void {
  const bad = (i: number, expected: string) =>
    msError('MS_ERR_TENSOR_DATA', {
      name: input.name,
      detail: `element ${i} is ${JSON.stringify(data[i])}; datatype ${datatype} needs ${expected}`,
    });
  if (datatype === 'BOOL') {
    for (let i = 0; i < data.length; i++) if (typeof data[i] !== 'boolean') throw bad(i, 'true or false');
    return;
  }
  if (datatype === 'BYTES') {
    for (let i = 0; i < data.length; i++) if (typeof data[i] !== 'string') throw bad(i, 'a string');
    return;
  }
  const range = INT_RANGE[datatype];
  if (range) {
    const [lo, hi] = range;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw bad(i, `an integer in [${lo}, ${hi}]`);
    }
    return;
  }
  for (let i = 0; i < data.length; i++) if (typeof data[i] !== 'number') throw bad(i, 'a number');
}

/** Nested arrays of `dims` over flat data; a typed array's innermost rows are views of it, not copies. */
function reshape(flat: unknown[] | TypedArray, start: number, dims: number[]): unknown {
  if (dims.length === 1) {
    const end = start + (dims[0] ?? 0);
    return ArrayBuffer.isView(flat) ? flat.subarray(start, end) : flat.slice(start, end);
  }
  const [n = 0, ...rest] = dims;
  const stride = rest.reduce((a, b) => a * b, 1);
  const out: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = reshape(flat, start + i * stride, rest);
  return out;
}

/**
 * OIP input tensors → one plugin input object per row of the batch. `binary` holds the bytes after the
 * JSON header of a binary-extension request: each input with `parameters.binary_data_size` takes its
 * bytes from it, in order, and arrives as a typed array (numbers), booleans or strings.
 */
export function inputsToRows(inputs: InferInput[], binary?: Uint8Array): Record<string, unknown>[] {
  if (inputs.length === 0) throw msError('MS_ERR_REQUEST_INVALID', { detail: '"inputs" is empty' });
  let batch = -1;
  let batchFrom = '';
  let offset = 0;
  const prepared: { name: string; data: unknown[] | TypedArray; inner: number[]; stride: number }[] = [];
  const names = new Set<string>();
  for (const input of inputs) {
    if (names.has(input.name)) throw msError('MS_ERR_REQUEST_INVALID', { detail: `input "${input.name}" appears twice` });
    names.add(input.name);
    if (!DATATYPE_SET.has(input.datatype)) {
      throw msError('MS_ERR_TENSOR_DATATYPE', { name: input.name, datatype: JSON.stringify(input.datatype) });
    }
    const shape = input.shape;
    if (shape.length === 0) {
      throw msError('MS_ERR_TENSOR_SHAPE', { name: input.name, detail: 'shape must have at least one dimension (the batch)' });
    }
    let size = 1;
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw msError('MS_ERR_TENSOR_SHAPE', {
          name: input.name,
          detail: `shape ${JSON.stringify(shape)} has a dimension that is not a whole number ≥ 0`,
        });
      }
      size *= d;
    }
    // Rows are made per batch entry too: [1e9, 0] holds no element but would make 1e9 rows.
    const made = shape.reduce((a, d) => a * Math.max(d, 1), 1);
    if (size > MAX_TENSOR_ELEMENTS || made > MAX_TENSOR_ELEMENTS) {
      throw msError('MS_ERR_TENSOR_SHAPE', {
        name: input.name,
        detail: `shape ${JSON.stringify(shape)} declares ${Math.max(size, made)} elements; the limit is ${MAX_TENSOR_ELEMENTS}`,
      });
    }
    const binarySize = input.parameters?.binary_data_size;
    let data: unknown[] | TypedArray;
    if (binarySize !== undefined) {
      if (!Number.isSafeInteger(binarySize) || (binarySize as number) < 0) {
        throw msError('MS_ERR_TENSOR_DATA', {
          name: input.name,
          detail: `binary_data_size ${JSON.stringify(binarySize)} is not a byte count`,
        });
      }
      if (input.data !== undefined) throw msError('MS_ERR_TENSOR_DATA', { name: input.name, detail: 'has both data and binary_data_size' });
      const end = offset + (binarySize as number);
      if (!binary || end > binary.byteLength) {
        throw msError('MS_ERR_TENSOR_DATA', {
          name: input.name,
          detail: `binary data is truncated: the input needs bytes ${offset}–${end} and the body has ${binary?.byteLength ?? 0} after its JSON header`,
        });
      }
      data = decodeBinary(input.name, input.datatype, size, binary.subarray(offset, end));
      offset = end;
    } else {
      if (input.data === undefined)
        throw msError('MS_ERR_TENSOR_DATA', { name: input.name, detail: 'has neither data nor binary_data_size' });
      data = flatten(input.data, input.name);
      if (data.length !== size) {
        throw msError('MS_ERR_TENSOR_SHAPE', {
          name: input.name,
          detail: `shape ${JSON.stringify(shape)} holds ${size} elements but data has ${data.length}`,
        });
      }
      checkElements(input, input.datatype as Datatype, data);
    }
    const b = shape[0] as number;
    if (batch === -1) {
      batch = b;
      batchFrom = input.name;
    } else if (b !== batch) {
      throw msError('MS_ERR_TENSOR_BATCH', { detail: `"${batchFrom}" has ${batch}, "${input.name}" has ${b}` });
    }
    const inner = shape.slice(1);
    prepared.push({ name: input.name, data, inner, stride: inner.reduce((a, c) => a * c, 1) });
  }
  if (binary && offset !== binary.byteLength) {
    throw msError('MS_ERR_REQUEST_INVALID', {
      detail: `the body has ${binary.byteLength - offset} bytes after the last binary input (binary_data_size adds up to ${offset})`,
    });
  }
  const rows: Record<string, unknown>[] = new Array(batch);
  for (let i = 0; i < batch; i++) {
    const row: Record<string, unknown> = {};
    for (const p of prepared) {
      const d = p.data;
      row[p.name] = p.inner.length === 0 ? d[i] : reshape(d, i * p.stride, p.inner);
    }
    rows[i] = row;
  }
  return rows;
}

/** A decoded element as JSON holds it: a bigint within the safe range as a number, beyond it as a string. Pure. */
function jsonElement(v: unknown): unknown {
  if (typeof v !== 'bigint') return v;
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v.toString();
}

/**
 * The request's tensors as the inference record holds them: every tensor with its `data`, flat, whether it came
 * as JSON or as binary (the binary extension, gRPC's raw contents), so a record never depends on how the client
 * chose to send it. Call it only for a request `inputsToRows` decoded. Pure.
 */
export function inputsForRecord(inputs: readonly InferInput[], binary?: Uint8Array): InferInput[] {
  let offset = 0;
  return inputs.map((input) => {
    const size = input.parameters?.binary_data_size;
    if (size === undefined || !binary) return { name: input.name, datatype: input.datatype, shape: input.shape, data: input.data ?? [] };
    const end = offset + (size as number);
    const count = input.shape.reduce((a, d) => a * d, 1);
    const decoded = decodeBinary(input.name, input.datatype, count, binary.subarray(offset, end));
    offset = end;
    return { name: input.name, datatype: input.datatype, shape: input.shape, data: Array.from(decoded as ArrayLike<unknown>, jsonElement) };
  });
}

const TYPED_DATATYPE: Record<string, Datatype> = {
  Float32Array: 'FP32',
  Float64Array: 'FP64',
  Int8Array: 'INT8',
  Int16Array: 'INT16',
  Int32Array: 'INT32',
  Uint8Array: 'UINT8',
  Uint8ClampedArray: 'UINT8',
  Uint16Array: 'UINT16',
  Uint32Array: 'UINT32',
  BigInt64Array: 'INT64',
  BigUint64Array: 'UINT64',
};

function scalarDatatype(v: unknown): Datatype {
  switch (typeof v) {
    case 'boolean':
      return 'BOOL';
    case 'string':
      return 'BYTES';
    case 'bigint':
      return 'INT64';
    default:
      return 'FP64';
  }
}

function inferDatatype(v: OutputValue): Datatype {
  if (ArrayBuffer.isView(v)) return TYPED_DATATYPE[v.constructor.name] ?? 'FP64';
  if (Array.isArray(v)) return v.length > 0 ? scalarDatatype(v[0]) : 'FP64';
  return scalarDatatype(v);
}

function toJsonNumber(name: string, v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw msError('MS_ERR_OUTPUT_INVALID', { detail: `output "${name}" holds ${v}, beyond the integers JSON carries exactly` });
  }
  return Number(v);
}

function conforms(datatype: Datatype, v: unknown): boolean {
  if (datatype === 'BOOL') return typeof v === 'boolean';
  if (datatype === 'BYTES') return typeof v === 'string';
  if (typeof v === 'bigint') return datatype in INT_RANGE;
  if (typeof v !== 'number') return false;
  const range = INT_RANGE[datatype];
  return !range || (Number.isInteger(v) && v >= range[0] && v <= range[1]);
}

/**
 * Plugin outputs (one object per row) → OIP output tensors. `declared` gives datatypes by name; `requested`
 * limits which outputs are returned.
 */
export function rowsToOutputs(rows: Outputs[], declared?: readonly TensorMetadata[], requested?: readonly string[]): InferOutput[] {
  const first = rows[0];
  if (!first) return [];
  const names = Object.keys(first);
  if (requested && requested.length > 0) {
    for (const r of requested) {
      if (!(r in first)) {
        throw msError('MS_ERR_REQUEST_INVALID', {
          detail: `requested output "${r}" is not produced by the model (it produces ${names.join(', ')})`,
        });
      }
    }
  }
  const wanted = requested && requested.length > 0 ? requested : names;
  const out: InferOutput[] = [];
  for (const name of wanted) {
    const declaredType = declared?.find((d) => d.name === name)?.datatype;
    const firstValue = first[name] as OutputValue;
    const datatype = declaredType ?? inferDatatype(firstValue);
    const isVector = Array.isArray(firstValue) || ArrayBuffer.isView(firstValue);
    const width = isVector ? (firstValue as ArrayLike<unknown>).length : 0;
    const data: unknown[] = [];
    for (let i = 0; i < rows.length; i++) {
      const v = (rows[i] as Outputs)[name];
      if (v === undefined) {
        throw msError('MS_ERR_OUTPUT_INVALID', { detail: `instance ${i} has no output "${name}" but instance 0 has` });
      }
      const vec = Array.isArray(v) || ArrayBuffer.isView(v);
      if (vec !== isVector || (vec && (v as ArrayLike<unknown>).length !== width)) {
        throw msError('MS_ERR_OUTPUT_INVALID', {
          detail: `output "${name}" has a different shape in instance ${i} than in instance 0; outputs stack into one tensor`,
        });
      }
      const items: ArrayLike<unknown> = vec ? (v as ArrayLike<unknown>) : [v];
      for (let j = 0; j < items.length; j++) {
        let item = items[j];
        if (declaredType && !conforms(declaredType, item)) {
          throw msError('MS_ERR_OUTPUT_INVALID', {
            detail: `output "${name}" is declared ${declaredType} but instance ${i} holds ${JSON.stringify(typeof item === 'bigint' ? String(item) : item)}`,
          });
        }
        if (typeof item === 'bigint') item = toJsonNumber(name, item);
        data.push(item);
      }
    }
    out.push({ name, datatype, shape: isVector ? [rows.length, width] : [rows.length], data });
  }
  return out;
}

/** One output value, JSON-safe (typed arrays → arrays, bigints → numbers). */
export function valueToJson(name: string, v: OutputValue): unknown {
  if (typeof v === 'bigint') return toJsonNumber(name, v);
  if (ArrayBuffer.isView(v) || Array.isArray(v)) {
    return Array.from(v as ArrayLike<unknown>, (x) => (typeof x === 'bigint' ? toJsonNumber(name, x) : x));
  }
  return v;
}

/** A JSON-safe copy of plugin outputs for KServe v1 predictions. */
export function outputsToJson(o: Outputs): Record<string, unknown> {
  for (const k in o) {
    const v = o[k];
    if (typeof v === 'bigint' || ArrayBuffer.isView(v) || (Array.isArray(v) && typeof v[0] === 'bigint')) {
      const res: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(o)) res[name] = valueToJson(name, value);
      return res;
    }
  }
  return o;
}
