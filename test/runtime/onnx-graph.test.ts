// The ONNX engine's pure parts: graph metadata → declared tensors, rows → stacked tensors, outputs → rows.
import { describe, expect, it } from 'vitest';
import { checkGraphDims, concatTensors, graphSpec, splitOutputs, stackInput, type TensorSpec } from '../../runtime/engines/onnx/graph.ts';
import { firstRows, runsOf, warmupFeeds } from '../../runtime/engines/onnx/index.ts';

const IRIS_IN = [{ name: 'input', isTensor: true, type: 'float32', shape: ['', 4] }];
const IRIS_OUT = [
  { name: 'predict', isTensor: true, type: 'int64', shape: [''] },
  { name: 'predict_proba', isTensor: true, type: 'float32', shape: ['', 3] },
];
const spec = (type: TensorSpec['type'], inner: (number | string)[], name = 'x'): TensorSpec => ({
  name,
  type,
  fixedBatch: undefined,
  graphDims: inner,
  meta: { name, datatype: 'FP32', shape: [-1, ...inner.map((d) => (typeof d === 'number' ? d : -1))] },
});

describe('graphSpec', () => {
  it('declares the graph: symbolic dimensions are -1, element types become OIP datatypes', () => {
    const g = graphSpec(IRIS_IN, IRIS_OUT);
    expect(g.inputs.map((s) => s.meta)).toEqual([{ name: 'input', datatype: 'FP32', shape: [-1, 4] }]);
    expect(g.outputs.map((s) => s.meta)).toEqual([
      { name: 'predict', datatype: 'INT64', shape: [-1] },
      { name: 'predict_proba', datatype: 'FP32', shape: [-1, 3] },
    ]);
    expect(g.inputs[0]?.fixedBatch).toBeUndefined();
  });

  it('keeps a fixed batch dimension, flattens outputs of rank > 2 per row, skips non-tensor outputs', () => {
    const g = graphSpec(
      [{ name: 'x', isTensor: true, type: 'uint8', shape: [1, 2, 2] }],
      [
        { name: 'y', isTensor: true, type: 'float32', shape: [1, 2, 3] },
        { name: 'z', isTensor: true, type: 'float32', shape: ['N', 'H', 3] },
        { name: 'zipmap', isTensor: false },
      ],
    );
    expect(g.inputs[0]).toMatchObject({ fixedBatch: 1, meta: { datatype: 'UINT8', shape: [-1, 2, 2] } });
    expect(g.outputs.map((s) => s.meta.shape)).toEqual([
      [-1, 6],
      [-1, -1],
    ]);
    expect(g.skipped).toEqual(['zipmap']);
  });

  it('lays the manifest over the graph by name and refuses a name the graph lacks', () => {
    const g = graphSpec(IRIS_IN, IRIS_OUT, { outputs: [{ name: 'predict', datatype: 'INT32', shape: [-1] }] });
    expect(g.outputs[0]?.meta.datatype).toBe('INT32');
    expect(g.outputs[0]?.type).toBe('int64');
    expect(() => graphSpec(IRIS_IN, IRIS_OUT, { inputs: [{ name: 'features', datatype: 'FP32', shape: [-1, 4] }] })).toThrow(
      /declares input "features", which the graph does not have \(it has input\)/,
    );
  });

  it.each([
    [[{ name: 'm', isTensor: false }], IRIS_OUT, /input "m" is not a tensor/],
    [IRIS_IN, [{ name: 'zipmap', isTensor: false }], /no tensor output \(zipmap\).*zipmap=False/],
    [[{ name: 'h', isTensor: true, type: 'float16', shape: ['', 2] }], IRIS_OUT, /input "h" has element type float16/],
    [[{ name: 's', isTensor: true, type: 'float32', shape: [] }], IRIS_OUT, /input "s" has no batch dimension/],
  ])('refuses a graph it cannot serve, as MS_ERR_PLUGIN_LOAD', (inputs, outputs, message) => {
    let err: unknown;
    try {
      graphSpec(inputs, outputs, {}, 'net.onnx');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'MS_ERR_PLUGIN_LOAD' });
    expect((err as Error).message).toMatch(/^loading plugin net\.onnx failed: /);
    expect((err as Error).message).toMatch(message);
  });
});

describe('stackInput', () => {
  it('stacks plain arrays and typed views into one tensor of the graph type', () => {
    const t = stackInput([{ x: [1, 2] }, { x: Float64Array.from([3, 4]) }, { x: [5.5, 6] }], spec('float32', [2]));
    expect(t.dims).toEqual([3, 2]);
    expect(t.data).toEqual(Float32Array.from([1, 2, 3, 4, 5.5, 6]));
  });

  it('makes bigints for int64, 0/1 for bool, strings for string, and nests deeper shapes', () => {
    expect(stackInput([{ x: [1, -2] }, { x: [3n, 4] }], spec('int64', [2])).data).toEqual(BigInt64Array.from([1n, -2n, 3n, 4n]));
    expect(stackInput([{ x: true }, { x: false }], spec('bool', [])).data).toEqual(Uint8Array.from([1, 0]));
    expect(stackInput([{ x: ['a', 'b'] }], spec('string', [2])).data).toEqual(['a', 'b']);
    const m = stackInput(
      [
        { x: [Float32Array.from([1, 2]), [3, 4]] },
        {
          x: [
            [5, 6],
            [7, 8],
          ],
        },
      ],
      spec('float32', [2, 2]),
    );
    expect(m.dims).toEqual([2, 2, 2]);
    expect(Array.from(m.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  it('refuses integers a type cannot hold instead of wrapping or truncating them', () => {
    const refuse = (type: TensorSpec['type'], v: unknown, message: RegExp) =>
      expect(() => stackInput([{ x: v }], spec(type, [1]))).toThrow(message);
    refuse('uint8', [300], /holds 300 where the model takes uint8 integers in \[0, 255\]/);
    refuse('uint8', [-1], /holds -1 where the model takes uint8 integers/);
    refuse('int32', [1e10], /holds 10000000000 where the model takes int32 integers/);
    refuse('int32', Float32Array.from([1.7]), /holds 1\.7[0-9]* where the model takes int32 integers/);
    refuse('uint64', BigInt64Array.from([-1n]), /holds -1 where the model takes uint64 integers in \[0, 18446744073709551615\]/);
    refuse('int64', [2 ** 60], /holds 1152921504606847000 where the model takes int64 integers/);
    // What fits goes through, typed or not.
    expect(stackInput([{ x: Int32Array.from([7]) }, { x: [255] }], spec('uint8', [1])).data).toEqual(Uint8Array.from([7, 255]));
    expect(stackInput([{ x: BigInt64Array.from([5n]) }], spec('uint64', [1])).data).toEqual(BigUint64Array.from([5n]));
  });

  it('holds stacked inputs to the graph: fixed dimensions, and named dimensions equal across inputs', () => {
    const feeds = (a: number[], b: number[]) => ({
      a: { type: 'float32' as const, data: new Float32Array(0), dims: a },
      b: { type: 'float32' as const, data: new Float32Array(0), dims: b },
    });
    const specs = [spec('float32', ['seq', 4], 'a'), spec('float32', ['seq'], 'b')];
    expect(() => checkGraphDims(specs, feeds([1, 5, 4], [1, 5]))).not.toThrow();
    expect(() => checkGraphDims(specs, feeds([1, 5, 3], [1, 5]))).toThrow(
      /input "a" has 3 values along dimension 3; the model's graph fixes it at 4/,
    );
    expect(() => checkGraphDims(specs, feeds([1, 5, 4], [1, 6]))).toThrow(
      /input "b" has 6 values along dimension "seq", where input "a" has 5; the graph makes them equal/,
    );
    expect(() => checkGraphDims(specs, feeds([1, 5], [1, 5]))).toThrow(
      /input "a" has 1 dimension\(s\) per instance; the model's graph takes 2/,
    );
  });

  it('warms up on zeros of one instance, symbolic dimensions 1', () => {
    const feeds = warmupFeeds([spec('float32', ['n', 4], 'a'), { ...spec('string', [], 's'), fixedBatch: 2 }]);
    expect(feeds.a).toEqual({ type: 'float32', dims: [1, 1, 4], data: new Float32Array(4) });
    expect(feeds.s).toEqual({ type: 'string', dims: [2], data: ['', ''] });
  });

  it.each([
    [[{ x: [1, 2] }, { x: [1, 2, 3] }], 'float32', /input "x" \(instance 1\) has 3 values where instance 0 has 2/],
    [[{ x: [1.5] }], 'int64', /input "x" \(instance 0\) holds 1.5 where the model takes int64 integers/],
    [[{ x: [1] }], 'bool', /holds number where the model takes booleans/],
    [[{ x: ['a'] }], 'float32', /holds string where the model takes numbers/],
    [[{ x: [1] }, { y: [1] }], 'float32', /input "x" \(instance 1\) is missing/],
    [[{ x: [[1], [2]] }, { x: [3, 4] }], 'float32', /instance 1\) is not an array at depth 2/],
  ])('refuses rows that do not stack (%j) with a 400 naming input and instance', (rows, type, message) => {
    expect(() => stackInput(rows as Record<string, unknown>[], spec(type as TensorSpec['type'], [1]))).toThrow(message);
    try {
      stackInput(rows as Record<string, unknown>[], spec(type as TensorSpec['type'], [1]));
    } catch (e) {
      expect(e).toMatchObject({ code: 'MS_ERR_INPUT_INVALID', statusCode: 400 });
    }
  });
});

describe('outputs', () => {
  it('splits tensors into one object per row: scalars for [n], views for [n, k], booleans for bool', () => {
    const rows = splitOutputs(
      {
        label: { type: 'int64', data: BigInt64Array.from([0n, 2n]), dims: [2] },
        proba: { type: 'float32', data: Float32Array.from([0.9, 0.1, 0.2, 0.8]), dims: [2, 2] },
        flag: { type: 'bool', data: Uint8Array.from([1, 0, 0, 1]), dims: [2, 1, 2] },
      },
      2,
    );
    expect(rows[1]).toEqual({ label: 2n, proba: Float32Array.from([0.2, 0.8]), flag: [false, true] });
    expect(() => splitOutputs({ y: { type: 'float32', data: new Float32Array(3), dims: [3] } }, 2)).toThrow(
      /output "y" has shape \[3\] for 2 rows/,
    );
  });

  it('joins the runs of a fixed-batch graph; the last run is padded and its padding dropped', () => {
    const a = { type: 'float32' as const, data: Float32Array.from([1, 2]), dims: [1, 2] };
    const b = { type: 'float32' as const, data: Float32Array.from([3, 4]), dims: [1, 2] };
    expect(concatTensors([a, b])).toEqual({ type: 'float32', data: Float32Array.from([1, 2, 3, 4]), dims: [2, 2] });
    expect(runsOf(3, 1).map((r) => r.count)).toEqual([1, 1, 1]);
    expect(runsOf(5, undefined)).toEqual([{ start: 0, count: 5, pad: 0 }]);
    // Five rows through a graph of batch 2: runs of 2, 2 and 1 padded to 2 (its padding row's answer dropped).
    expect(runsOf(5, 2)).toEqual([
      { start: 0, count: 2, pad: 0 },
      { start: 2, count: 2, pad: 0 },
      { start: 4, count: 1, pad: 1 },
    ]);
    expect(firstRows({ type: 'float32', data: Float32Array.from([1, 2, 3, 4]), dims: [2, 2] }, 1)).toEqual({
      type: 'float32',
      data: Float32Array.from([1, 2]),
      dims: [1, 2],
    });
  });
});
