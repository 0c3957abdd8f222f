// The binary tensor data extension and bodies without a Content-Type, as tritonclient sends them.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeBinary, encodeBinary } from '../../runtime/protocol/binary.ts';
import { appFor, makeBundle } from './helpers.ts';

const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');

/** A binary-extension body: the JSON header, then the tensors' bytes. */
function binaryBody(header: unknown, ...parts: Uint8Array[]) {
  const json = Buffer.from(JSON.stringify(header));
  return {
    payload: Buffer.concat([json, ...parts]),
    headers: { 'inference-header-content-length': String(json.length), 'content-type': 'application/octet-stream' },
  };
}

const f64 = (...v: number[]) => new Uint8Array(Float64Array.from(v).buffer);

/** Splits a binary-extension response into its JSON header and bytes. */
function splitResponse(r: { headers: Record<string, unknown>; rawPayload: Buffer }) {
  const n = Number(r.headers['inference-header-content-length']);
  return { json: JSON.parse(r.rawPayload.subarray(0, n).toString()), bytes: r.rawPayload.subarray(n) };
}

describe('binary tensor encoding (pure)', () => {
  it('round-trips every fixed-size datatype, BOOL and BYTES', () => {
    expect(Array.from(decodeBinary('x', 'FP32', 2, encodeBinary('x', 'FP32', [1.5, -2])) as Float32Array)).toEqual([1.5, -2]);
    expect(decodeBinary('x', 'INT64', 2, encodeBinary('x', 'INT64', [3, -4]))).toEqual(BigInt64Array.from([3n, -4n]));
    expect(decodeBinary('x', 'BOOL', 3, encodeBinary('x', 'BOOL', [true, false, true]))).toEqual([true, false, true]);
    expect(decodeBinary('x', 'BYTES', 2, encodeBinary('x', 'BYTES', ['héllo', '']))).toEqual(['héllo', '']);
  });

  it.each([
    ['FP32', 3, new Uint8Array(8), 'binary_data_size is 8 bytes; the shape needs 3 × 4 = 12'],
    ['BYTES', 1, Uint8Array.from([5, 0, 0, 0, 65]), 'binary element 0 declares 5 bytes; only 1 remain'],
    ['BYTES', 2, Uint8Array.from([1, 0, 0, 0, 65]), 'binary data ends inside element 1 of 2'],
    ['BYTES', 1, Uint8Array.from([2, 0, 0, 0, 0xc3, 0x28]), 'binary element 0 is not valid UTF-8'],
    ['FP16', 1, new Uint8Array(2), 'FP16 is not supported; send FP32'],
  ])('refuses %s data that disagrees with itself', (dt, n, bytes, message) => {
    expect(() => decodeBinary('x', dt, n, bytes)).toThrow(`input "x": ${message}`);
  });

  it('refuses an unknown datatype', () => {
    expect(() => decodeBinary('x', 'FP128', 1, new Uint8Array(16))).toThrow('input "x": unknown datatype "FP128"');
  });
});

describe('binary tensors over REST', () => {
  let t: Awaited<ReturnType<typeof appFor>>;
  beforeAll(async () => {
    t = await appFor(IRIS);
  });
  afterAll(() => t.engine.close());
  const url = '/v2/models/iris/infer';

  it('takes binary inputs and answers binary outputs when asked (binary_data_output)', async () => {
    const header = {
      id: 'b1',
      parameters: { binary_data_output: true },
      inputs: [{ name: 'features', shape: [2, 4], datatype: 'FP64', parameters: { binary_data_size: 64 } }],
    };
    const r = await t.app.inject({ method: 'POST', url, ...binaryBody(header, f64(5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3)) });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('application/octet-stream');
    const { json, bytes } = splitResponse(r);
    expect(json.id).toBe('b1');
    const [label, probs] = json.outputs;
    expect(label).toEqual({
      name: 'label',
      datatype: 'BYTES',
      shape: [2],
      parameters: { binary_data_size: label.parameters.binary_data_size },
    });
    expect(decodeBinary('label', 'BYTES', 2, bytes.subarray(0, label.parameters.binary_data_size))).toEqual(['setosa', 'virginica']);
    const p = decodeBinary('p', 'FP64', 6, bytes.subarray(label.parameters.binary_data_size)) as Float64Array;
    expect(p[0]).toBeGreaterThan(0.9);
    expect(probs.parameters.binary_data_size).toBe(48);
  });

  it('returns only the requested outputs, binary or JSON per output', async () => {
    const header = {
      inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', parameters: { binary_data_size: 32 } }],
      outputs: [
        { name: 'probabilities', parameters: { binary_data: true } },
        { name: 'label', parameters: { binary_data: false } },
      ],
    };
    const r = await t.app.inject({ method: 'POST', url, ...binaryBody(header, f64(5.1, 3.5, 1.4, 0.2)) });
    const { json, bytes } = splitResponse(r);
    expect(json.outputs.map((o: { name: string }) => o.name)).toEqual(['probabilities', 'label']);
    expect(json.outputs[1].data).toEqual(['setosa']);
    expect(bytes.length).toBe(24);
  });

  it('reads a body without a Content-Type as JSON', async () => {
    const r = await t.app.inject({
      method: 'POST',
      url,
      payload: JSON.stringify({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', data: [5.1, 3.5, 1.4, 0.2] }] }),
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().outputs[0].data).toEqual(['setosa']);
  });

  it.each([
    [
      'a truncated binary section',
      binaryBody({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', parameters: { binary_data_size: 32 } }] }, f64(1, 2)),
      'MS_ERR_TENSOR_DATA',
      'input "features": binary data is truncated: the input needs bytes 0–32 and the body has 16 after its JSON header',
    ],
    [
      'a size that disagrees with the shape',
      binaryBody({ inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', parameters: { binary_data_size: 16 } }] }, f64(1, 2)),
      'MS_ERR_TENSOR_DATA',
      'input "features": binary_data_size is 16 bytes; the shape needs 4 × 8 = 32',
    ],
    [
      'bytes left over',
      binaryBody(
        { inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', parameters: { binary_data_size: 32 } }] },
        f64(1, 2, 3, 4, 5),
      ),
      'MS_ERR_REQUEST_INVALID',
      'the body has 8 bytes after the last binary input (binary_data_size adds up to 32)',
    ],
    [
      'a huge declared shape',
      binaryBody(
        { inputs: [{ name: 'features', shape: [100000, 100000], datatype: 'FP64', parameters: { binary_data_size: 8 } }] },
        f64(1),
      ),
      'MS_ERR_TENSOR_SHAPE',
      'declares 10000000000 elements; the limit is 67108864',
    ],
    [
      'a batch of a billion empty rows',
      {
        payload: JSON.stringify({ inputs: [{ name: 'features', shape: [1000000000, 0], datatype: 'FP64', data: [] }] }),
        headers: { 'content-type': 'application/json' },
      },
      'MS_ERR_TENSOR_SHAPE',
      'declares 1000000000 elements; the limit is 67108864',
    ],
    [
      'a header length beyond the body',
      { payload: Buffer.from('{}'), headers: { 'inference-header-content-length': '99', 'content-type': 'application/octet-stream' } },
      'MS_ERR_REQUEST_INVALID',
      'inference-header-content-length is "99"; it must be the JSON header\'s length, at most the body\'s 2 bytes',
    ],
    [
      'a wrong tensor name',
      binaryBody({ inputs: [{ name: 'petals', shape: [1, 4], datatype: 'FP64', parameters: { binary_data_size: 32 } }] }, f64(1, 2, 3, 4)),
      'MS_ERR_INPUT_INVALID',
      'input "petals" (instance 0) is not one of the model\'s inputs (features)',
    ],
  ])('refuses %s with a 400 and our code', async (_what, body, code, message) => {
    const r = await t.app.inject({ method: 'POST', url, ...body });
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe(code);
    expect(r.json().error).toContain(message);
  });

  it('lists the model in the repository index, and the binary extension in the server metadata', async () => {
    expect((await t.app.inject({ method: 'POST', url: '/v2/repository/index', payload: {} })).json()).toEqual([
      { name: 'iris', version: '1', state: 'READY' },
    ]);
    expect((await t.app.inject('/v2')).json().extensions).toEqual(['binary_tensor_data', 'model_repository']);
    expect((await t.app.inject('/v1/models')).json()).toEqual({ models: ['iris'] });
  });

  it('passes the request parameters to the plugin context', async () => {
    const dir = await makeBundle({ 'predict.mjs': 'export function predict(x, ctx) { return { t: ctx.parameters?.threshold ?? -1 }; }' });
    const { app, engine } = await appFor(dir, { name: 'p' });
    const r = await app.inject({
      method: 'POST',
      url: '/v2/models/p/infer',
      payload: { parameters: { threshold: 0.7 }, inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [1] }] },
    });
    expect(r.json().outputs[0].data).toEqual([0.7]);
    await engine.close();
  });
});
