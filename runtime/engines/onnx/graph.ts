// What the ONNX engine knows of a graph, and the two conversions around session.run(): the rows of a
// request (or of a whole adaptive batch) stacked into one tensor per input, and the output tensors split
// back into one output object per row. Pure: no onnxruntime here, so it is unit-tested without a model.
import type { Datatype, TensorMetadata } from '../../bundle/manifest.ts';
import { msError } from '../../errors.ts';
import type { Outputs, TypedArray } from '../outputs.ts';

/** The element types of ONNX Runtime's tensors that the engine feeds and reads. */
export type ElementType =
  | 'float32'
  | 'float64'
  | 'int8'
  | 'uint8'
  | 'int16'
  | 'uint16'
  | 'int32'
  | 'uint32'
  | 'int64'
  | 'uint64'
  | 'bool'
  | 'string';

const DATATYPE_OF: Record<ElementType, Datatype> = {
  float32: 'FP32',
  float64: 'FP64',
  int8: 'INT8',
  uint8: 'UINT8',
  int16: 'INT16',
  uint16: 'UINT16',
  int32: 'INT32',
  uint32: 'UINT32',
  int64: 'INT64',
  uint64: 'UINT64',
  bool: 'BOOL',
  string: 'BYTES',
};

/** One input or output of the graph as the session reports it (`session.inputMetadata`). */
export interface GraphValue {
  name: string;
  isTensor: boolean;
  type?: string;
  /** A number per fixed dimension, a string (often empty) per symbolic one. */
  shape?: readonly (number | string)[];
}

/** A tensor the engine feeds or fetches: its element type, the fixed batch size if the graph has one. */
export interface TensorSpec {
  name: string;
  type: ElementType;
  /** The graph's first dimension when it is a number (1 for many exported image models), else undefined. */
  fixedBatch: number | undefined;
  /** The graph's own dimensions after the batch: a number where fixed, a name (or '') where symbolic. */
  graphDims: readonly (number | string)[];
  /** What the model declares in metadata and what requests are checked against. */
  meta: TensorMetadata;
}

export interface GraphSpec {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** Non-tensor outputs (a ZipMap's list of maps): not fetched, named in the load log. */
  skipped: string[];
}

const dim = (d: number | string) => (typeof d === 'number' && d >= 0 ? d : -1);

type Fail = (detail: string) => Error;

function tensorSpec(v: GraphValue, side: 'input' | 'output', fail: Fail): TensorSpec {
  const type = v.type as ElementType;
  if (!(type in DATATYPE_OF)) {
    throw fail(
      `${side} "${v.name}" has element type ${v.type}, which the ONNX engine does not serve (it serves ${Object.keys(DATATYPE_OF).join(', ')})`,
    );
  }
  const shape = v.shape ?? [];
  if (shape.length === 0) {
    throw fail(
      `${side} "${v.name}" has no batch dimension (a scalar, or a shape the graph does not declare); export it with a leading batch dimension`,
    );
  }
  const first = shape[0] as number | string;
  const inner = shape.slice(1).map(dim);
  // An output of rank > 2 reaches clients flattened per row (the output contract carries one flat array per row).
  const declared = side === 'output' && inner.length > 1 ? [inner.every((d) => d >= 0) ? inner.reduce((a, b) => a * b, 1) : -1] : inner;
  return {
    name: v.name,
    type,
    fixedBatch: typeof first === 'number' && first > 0 ? first : undefined,
    graphDims: shape.slice(1),
    meta: { name: v.name, datatype: DATATYPE_OF[type], shape: [-1, ...declared] },
  };
}

/**
 * The graph's inputs and outputs as the engine serves them, with the manifest's `inputs`/`outputs` laid
 * over them by name (a manifest entry may narrow a shape or set a datatype; one naming no tensor of the
 * graph is refused, so a typo cannot go unnoticed).
 */
export function graphSpec(
  inputs: readonly GraphValue[],
  outputs: readonly GraphValue[],
  overrides: { inputs?: readonly TensorMetadata[] | undefined; outputs?: readonly TensorMetadata[] | undefined } = {},
  entrypoint = 'model.onnx',
): GraphSpec {
  const fail: Fail = (detail) => msError('MS_ERR_PLUGIN_LOAD', { entrypoint, detail });
  for (const v of inputs) {
    if (!v.isTensor) throw fail(`input "${v.name}" is not a tensor (a sequence or map); export the model with tensor inputs`);
  }
  const tensorOutputs = outputs.filter((v) => v.isTensor);
  if (tensorOutputs.length === 0) {
    throw fail(
      `the graph has no tensor output (${outputs.map((v) => v.name).join(', ')}); for a scikit-learn classifier, convert with the option zipmap=False`,
    );
  }
  const lay = (specs: TensorSpec[], over: readonly TensorMetadata[] | undefined, side: string) => {
    for (const o of over ?? []) {
      const spec = specs.find((s) => s.name === o.name);
      if (!spec)
        throw fail(
          `modelship.yaml declares ${side} "${o.name}", which the graph does not have (it has ${specs.map((s) => s.name).join(', ')})`,
        );
      spec.meta = { ...o };
    }
    return specs;
  };
  return {
    inputs: lay(
      inputs.map((v) => tensorSpec(v, 'input', fail)),
      overrides.inputs,
      'input',
    ),
    outputs: lay(
      tensorOutputs.map((v) => tensorSpec(v, 'output', fail)),
      overrides.outputs,
      'output',
    ),
    skipped: outputs.filter((v) => !v.isTensor).map((v) => v.name),
  };
}

/** A tensor as it crosses into or out of session.run(): element type, flat data, dimensions. */
export interface FlatTensor {
  type: ElementType;
  data: TypedArray | string[];
  dims: number[];
}

type Flat = TypedArray | string[];

/** A flat array of `n` elements for a tensor of `type`: a typed array, or strings. */
export function allocate(type: ElementType, n: number): Flat {
  switch (type) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int8':
      return new Int8Array(n);
    case 'uint8':
    case 'bool':
      return new Uint8Array(n);
    case 'int16':
      return new Int16Array(n);
    case 'uint16':
      return new Uint16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint32':
      return new Uint32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'uint64':
      return new BigUint64Array(n);
    case 'string':
      return new Array<string>(n);
  }
}

const isTyped = (v: unknown): v is TypedArray => ArrayBuffer.isView(v) && !(v instanceof DataView);

/** The values each integer element type holds (64-bit ones as bigints). */
const INT_RANGE: Partial<Record<ElementType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int16: [-32768, 32767],
  uint16: [0, 65535],
  int32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
};
const BIG_RANGE: Partial<Record<ElementType, [bigint, bigint]>> = {
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
};
const FLOAT_TYPES = new Set<ElementType>(['float32', 'float64']);

/** The shape of one row's value: [] for a scalar, the lengths along its nesting for arrays. */
function shapeOf(v: unknown): number[] {
  const shape: number[] = [];
  let cur = v;
  while (Array.isArray(cur) || isTyped(cur)) {
    shape.push(cur.length);
    if (isTyped(cur) || cur.length === 0) break;
    cur = cur[0];
  }
  return shape;
}

/**
 * The rows' values of one input stacked into one tensor [rows, ...row shape] of the graph's element type.
 * Every row must have the shape of the first (the declared-input check has already held them to the
 * model's declared dimensions). Numbers of any kind feed float inputs; integer inputs take only whole
 * numbers within their type's range (bigints for 64-bit), bool inputs booleans, string inputs strings: any
 * other element is a 400 naming the input, the instance and the value, never a wrapped or truncated one.
 */
export function stackInput(rows: readonly Record<string, unknown>[], spec: TensorSpec): FlatTensor {
  const name = spec.name;
  const type = spec.type;
  const rowShape = shapeOf(rows[0]?.[name]);
  const per = rowShape.reduce((a, b) => a * b, 1);
  const data = allocate(type, rows.length * per);
  const float = FLOAT_TYPES.has(type);
  const range = INT_RANGE[type];
  const bigRange = BIG_RANGE[type];
  const bad = (r: number, detail: string) => msError('MS_ERR_INPUT_INVALID', { detail: `input "${name}" (instance ${r}) ${detail}` });
  const show = (v: unknown) => (typeof v === 'bigint' ? `${v}` : JSON.stringify(v));
  const put = (r: number, at: number, v: unknown) => {
    if (type === 'string') {
      if (typeof v !== 'string') throw bad(r, `holds ${typeof v} where the model takes strings`);
      (data as string[])[at] = v;
    } else if (type === 'bool') {
      if (typeof v !== 'boolean') throw bad(r, `holds ${typeof v} where the model takes booleans`);
      (data as Uint8Array)[at] = v ? 1 : 0;
    } else if (bigRange) {
      const b = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : undefined;
      if (b === undefined || b < bigRange[0] || b > bigRange[1]) {
        throw bad(r, `holds ${show(v)} where the model takes ${type} integers in [${bigRange[0]}, ${bigRange[1]}]`);
      }
      (data as BigInt64Array)[at] = b;
    } else if (range) {
      const n = typeof v === 'bigint' ? Number(v) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < range[0] || n > range[1]) {
        throw bad(r, `holds ${show(v)} where the model takes ${type} integers in [${range[0]}, ${range[1]}]`);
      }
      (data as Int32Array)[at] = n;
    } else {
      if (typeof v !== 'number' && typeof v !== 'bigint') throw bad(r, `holds ${typeof v} where the model takes numbers`);
      (data as Float64Array)[at] = Number(v);
    }
  };
  const walk = (r: number, v: unknown, depth: number, at: number): void => {
    if (depth === rowShape.length) {
      put(r, at, v);
      return;
    }
    const want = rowShape[depth] as number;
    if (!Array.isArray(v) && !isTyped(v)) throw bad(r, `is not an array at depth ${depth + 1} (instance 0 is)`);
    if (v.length !== want) {
      throw bad(
        r,
        `has ${v.length} values${depth ? ` at depth ${depth + 1}` : ''} where instance 0 has ${want}; stacked rows need one shape`,
      );
    }
    const stride = rowShape.slice(depth + 1).reduce((a, b) => a * b, 1);
    if (isTyped(v)) {
      if (depth !== rowShape.length - 1) throw bad(r, `is flat where instance 0 has ${rowShape.length - depth} dimensions`);
      // One copy where no element can be refused: numbers into a float input, or the input's own element type.
      const bigSource = v instanceof BigInt64Array || v instanceof BigUint64Array;
      if ((float && !bigSource) || v.constructor === data.constructor) {
        (data as Float64Array).set(v as Float64Array, at);
        return;
      }
      for (let i = 0; i < v.length; i++) put(r, at + i, v[i]);
      return;
    }
    for (let i = 0; i < want; i++) walk(r, v[i], depth + 1, at + i * stride);
  };
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as Record<string, unknown>;
    if (!(name in row)) throw bad(r, 'is missing');
    walk(r, row[name], 0, r * per);
  }
  return { type, data, dims: [rows.length, ...rowShape] };
}

/**
 * Stacked inputs held to the graph's own dimensions, which a manifest may have declared more loosely: a
 * fixed dimension must match, and a named symbolic one (the same "seq" in two inputs) must agree across
 * inputs. A 400 naming the input, before ONNX Runtime would refuse the run as a failure of its own.
 */
export function checkGraphDims(specs: readonly TensorSpec[], feeds: Readonly<Record<string, FlatTensor>>): void {
  const seen = new Map<string, { size: number; input: string }>();
  for (const s of specs) {
    const dims = (feeds[s.name] as FlatTensor).dims;
    const fail = (detail: string) => msError('MS_ERR_INPUT_INVALID', { detail: `input "${s.name}" ${detail}` });
    if (dims.length !== s.graphDims.length + 1) {
      throw fail(`has ${dims.length - 1} dimension(s) per instance; the model's graph takes ${s.graphDims.length}`);
    }
    s.graphDims.forEach((g, i) => {
      const size = dims[i + 1] as number;
      if (typeof g === 'number' && g >= 0 && size !== g)
        throw fail(`has ${size} values along dimension ${i + 2}; the model's graph fixes it at ${g}`);
      if (typeof g === 'string' && g !== '') {
        const before = seen.get(g);
        if (before && before.size !== size) {
          throw fail(
            `has ${size} values along dimension "${g}", where input "${before.input}" has ${before.size}; the graph makes them equal`,
          );
        }
        seen.set(g, { size, input: s.name });
      }
    });
  }
}

/** Tensors that each hold `rows` along their first dimension, joined end to end (runs of a fixed-batch graph). */
export function concatTensors(parts: readonly FlatTensor[]): FlatTensor {
  const first = parts[0] as FlatTensor;
  if (parts.length === 1) return first;
  const rows = parts.reduce((a, p) => a + (p.dims[0] as number), 0);
  const total = parts.reduce((a, p) => a + p.data.length, 0);
  const data = allocate(first.type, total);
  let at = 0;
  for (const p of parts) {
    if (Array.isArray(data)) for (let i = 0; i < p.data.length; i++) data[at + i] = p.data[i] as string;
    else (data as Float64Array).set(p.data as Float64Array, at);
    at += p.data.length;
  }
  return { type: first.type, data, dims: [rows, ...first.dims.slice(1)] };
}

/**
 * Output tensors → one output object per row: a tensor [n] gives each row a scalar (a bigint for 64-bit
 * integers, so INT64 stays INT64), [n, ...] a flat view of the row's values (rank > 2 is flattened per row).
 */
export function splitOutputs(tensors: Readonly<Record<string, FlatTensor>>, n: number): Outputs[] {
  const rows: Outputs[] = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = {};
  for (const name in tensors) {
    const t = tensors[name] as FlatTensor;
    if (t.dims[0] !== n || t.dims.length === 0) {
      throw msError('MS_ERR_OUTPUT_INVALID', {
        detail: `output "${name}" has shape ${JSON.stringify(t.dims)} for ${n} rows; its first dimension must be the batch`,
      });
    }
    const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
    const bool = t.type === 'bool';
    for (let i = 0; i < n; i++) {
      const row = rows[i] as Outputs;
      if (t.dims.length === 1) {
        row[name] = bool ? t.data[i] !== 0 : (t.data[i] as number);
      } else if (Array.isArray(t.data)) {
        row[name] = t.data.slice(i * per, (i + 1) * per);
      } else if (bool) {
        row[name] = Array.from((t.data as Uint8Array).subarray(i * per, (i + 1) * per), (b) => b !== 0);
      } else {
        row[name] = t.data.subarray(i * per, (i + 1) * per);
      }
    }
  }
  return rows;
}
