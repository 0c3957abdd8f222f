import { describe, expect, it } from 'vitest';
import { inputsToRows, outputsToJson, rowsToOutputs } from '../../runtime/protocol/tensors.ts';
import { validateOutputs } from '../../runtime/engines/outputs.ts';

describe('inputsToRows', () => {
  it('makes one input object per row of the batch, keyed by tensor name', () => {
    expect(
      inputsToRows([
        { name: 'x', shape: [2, 3], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] },
        { name: 'label', shape: [2], datatype: 'BYTES', data: ['a', 'b'] },
        { name: 'flag', shape: [2, 1], datatype: 'BOOL', data: [[true], [false]] },
      ]),
    ).toEqual([
      { x: [1, 2, 3], label: 'a', flag: [true] },
      { x: [4, 5, 6], label: 'b', flag: [false] },
    ]);
  });

  it('rebuilds nested rows for rank > 2', () => {
    const rows = inputsToRows([{ name: 'img', shape: [1, 2, 2], datatype: 'INT64', data: [1, 2, 3, 4] }]);
    expect(rows).toEqual([
      {
        img: [
          [1, 2],
          [3, 4],
        ],
      },
    ]);
  });

  it('accepts an empty batch', () => {
    expect(inputsToRows([{ name: 'x', shape: [0, 4], datatype: 'FP64', data: [] }])).toEqual([]);
  });

  it.each([
    [{ name: 'x', shape: [], datatype: 'FP64', data: [1] }, 'MS_ERR_TENSOR_SHAPE', 'at least one dimension'],
    [{ name: 'x', shape: [2, 2], datatype: 'FP64', data: [1, 2, 3] }, 'MS_ERR_TENSOR_SHAPE', 'holds 4 elements but data has 3'],
    [{ name: 'x', shape: [1], datatype: 'FP8', data: [1] }, 'MS_ERR_TENSOR_DATATYPE', 'unknown datatype "FP8"'],
    [{ name: 'x', shape: [1], datatype: 'BOOL', data: [1] }, 'MS_ERR_TENSOR_DATA', 'needs true or false'],
    [{ name: 'x', shape: [1], datatype: 'BYTES', data: [1] }, 'MS_ERR_TENSOR_DATA', 'needs a string'],
    [{ name: 'x', shape: [1], datatype: 'UINT8', data: [-1] }, 'MS_ERR_TENSOR_DATA', 'an integer in [0, 255]'],
    [{ name: 'x', shape: [1], datatype: 'INT32', data: [1.5] }, 'MS_ERR_TENSOR_DATA', 'element 0 is 1.5'],
    [{ name: 'x', shape: [1], datatype: 'FP32', data: ['1'] }, 'MS_ERR_TENSOR_DATA', 'needs a number'],
  ])('refuses %j', (input, code, text) => {
    expect(() => inputsToRows([input])).toThrow(expect.objectContaining({ code, message: expect.stringContaining(text) }));
  });

  it('refuses duplicate input names and disagreeing batch sizes', () => {
    const a = { name: 'a', shape: [1], datatype: 'FP64', data: [1] };
    expect(() => inputsToRows([a, a])).toThrow(expect.objectContaining({ code: 'MS_ERR_REQUEST_INVALID' }));
    expect(() => inputsToRows([a, { ...a, name: 'b', shape: [2], data: [1, 2] }])).toThrow(
      expect.objectContaining({ code: 'MS_ERR_TENSOR_BATCH' }),
    );
  });
});

describe('rowsToOutputs', () => {
  it('stacks rows and infers datatypes', () => {
    const out = rowsToOutputs([
      { p: [0.1, 0.9], label: 'b', ok: true, n: 3n, f: new Float32Array([1.5, 2.5]), i: new Int32Array([7]) },
      { p: [0.8, 0.2], label: 'a', ok: false, n: 4n, f: new Float32Array([3.5, 4.5]), i: new Int32Array([8]) },
    ]);
    expect(out).toEqual([
      { name: 'p', datatype: 'FP64', shape: [2, 2], data: [0.1, 0.9, 0.8, 0.2] },
      { name: 'label', datatype: 'BYTES', shape: [2], data: ['b', 'a'] },
      { name: 'ok', datatype: 'BOOL', shape: [2], data: [true, false] },
      { name: 'n', datatype: 'INT64', shape: [2], data: [3, 4] },
      { name: 'f', datatype: 'FP32', shape: [2, 2], data: [1.5, 2.5, 3.5, 4.5] },
      { name: 'i', datatype: 'INT32', shape: [2, 1], data: [7, 8] },
    ]);
  });

  it('uses declared datatypes and checks values against them', () => {
    expect(rowsToOutputs([{ c: 2 }], [{ name: 'c', datatype: 'INT64', shape: [-1] }])).toEqual([
      { name: 'c', datatype: 'INT64', shape: [1], data: [2] },
    ]);
    expect(() => rowsToOutputs([{ c: 2.5 }], [{ name: 'c', datatype: 'INT64', shape: [-1] }])).toThrow(
      'output "c" is declared INT64 but instance 0 holds 2.5',
    );
  });

  it('filters to requested outputs and names unknown ones', () => {
    expect(rowsToOutputs([{ a: 1, b: 2 }], undefined, ['b'])).toEqual([{ name: 'b', datatype: 'FP64', shape: [1], data: [2] }]);
    expect(() => rowsToOutputs([{ a: 1 }], undefined, ['zz'])).toThrow(
      'requested output "zz" is not produced by the model (it produces a)',
    );
  });

  it('refuses rows whose outputs do not stack', () => {
    expect(() => rowsToOutputs([{ a: [1, 2] }, { a: [1] }])).toThrow(expect.objectContaining({ code: 'MS_ERR_OUTPUT_INVALID' }));
    expect(() => rowsToOutputs([{ a: 1 }, { b: 1 }])).toThrow('instance 1 has no output "a"');
  });

  it('refuses integers JSON cannot carry exactly', () => {
    expect(() => rowsToOutputs([{ big: 2n ** 60n }])).toThrow(/beyond the integers JSON carries exactly/);
  });
});

describe('validateOutputs', () => {
  it('accepts the contract', () => {
    const o = { a: 1, b: 'x', c: true, d: [1, 2], e: ['a'], f: [true], g: new Float64Array(2), h: 5n, i: [] };
    expect(validateOutputs(o)).toBe(o);
  });
  it.each([
    [null, 'predict returned null; expected an object mapping output names to values'],
    [[1, 2], 'predict returned array'],
    [{}, 'predict returned an empty object'],
    [{ x: { y: 1 } }, 'output "x" is object'],
    [{ x: [1, 'a'] }, 'output "x" mixes number and string (element 1)'],
    [{ x: [1, [2]] }, 'output "x" element 1 is array'],
    [{ x: undefined }, 'output "x" is undefined'],
    [{ x: Number.POSITIVE_INFINITY }, 'output "x" is Infinity'],
    [{ x: new Date(0) }, 'output "x" is Date'],
  ])('refuses %j naming the key and type', (value, text) => {
    expect(() => validateOutputs(value)).toThrow(
      expect.objectContaining({ code: 'MS_ERR_OUTPUT_INVALID', message: expect.stringContaining(text) }),
    );
  });
});

describe('outputsToJson', () => {
  it('leaves plain outputs alone and converts typed arrays and bigints', () => {
    const plain = { a: 1, b: [1, 2] };
    expect(outputsToJson(plain)).toBe(plain);
    expect(outputsToJson({ f: new Float32Array([0.5]), n: 7n, l: [1n, 2n] })).toEqual({ f: [0.5], n: 7, l: [1, 2] });
  });
});
