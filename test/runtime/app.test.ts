import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { build } from '../../runtime/app.ts';
import { ServedModel } from '../../runtime/model.ts';
import { RuntimeMetrics } from '../../runtime/observability/metrics.ts';
import { localRecorder } from '../../runtime/inference-log/recorder.ts';
import { appFor, makeBundle, silent } from './helpers.ts';

const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');

describe('runtime HTTP API (iris bundle)', () => {
  let t: Awaited<ReturnType<typeof appFor>>;
  beforeAll(async () => {
    t = await appFor(IRIS);
  });
  afterAll(() => t.app.close());

  const infer = (body: unknown, url = '/v2/models/iris/infer', headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'POST', url, payload: body as object, headers });

  it('reports live and ready', async () => {
    expect((await t.app.inject('/v2/health/live')).json()).toEqual({ live: true });
    const r = await t.app.inject('/v2/health/ready');
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual({ ready: true });
  });

  it('serves server and model metadata from the manifest', async () => {
    expect((await t.app.inject('/v2')).json()).toMatchObject({ name: 'modelship' });
    const md = (await t.app.inject('/v2/models/iris')).json();
    expect(md).toMatchObject({
      name: 'iris',
      versions: ['1'],
      platform: 'modelship-js',
      inputs: [{ name: 'features', datatype: 'FP64', shape: [-1, 4] }],
    });
    expect(md.outputs.map((o: { name: string }) => o.name)).toEqual(['label', 'probabilities']);
    expect((await t.app.inject('/v2/models/iris/versions/1')).statusCode).toBe(200);
    expect((await t.app.inject('/v2/models/iris/ready')).json()).toEqual({ name: 'iris', ready: true });
  });

  it('infers a batch: each row of the tensor is one plugin input, outputs stack into tensors', async () => {
    const r = await infer({
      id: 'req-1',
      inputs: [{ name: 'features', shape: [2, 4], datatype: 'FP64', data: [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3] }],
    });
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body).toMatchObject({ model_name: 'iris', model_version: '1', id: 'req-1' });
    const [label, probs] = body.outputs;
    expect(label).toEqual({ name: 'label', datatype: 'BYTES', shape: [2], data: ['setosa', 'virginica'] });
    expect(probs).toMatchObject({ name: 'probabilities', datatype: 'FP64', shape: [2, 3] });
    expect(probs.data).toHaveLength(6);
    expect(probs.data.slice(0, 3).reduce((a: number, b: number) => a + b, 0)).toBeCloseTo(1, 10);
  });

  it('accepts nested data, a version path and an outputs filter', async () => {
    const r = await infer(
      {
        inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', data: [[6.0, 2.9, 4.5, 1.5]] }],
        outputs: [{ name: 'label' }],
      },
      '/v2/models/iris/versions/1/infer',
    );
    expect(r.statusCode).toBe(200);
    expect(r.json().outputs).toEqual([{ name: 'label', datatype: 'BYTES', shape: [1], data: ['versicolor'] }]);
  });

  it('serves KServe v1 predict', async () => {
    const r = await t.app.inject({
      method: 'POST',
      url: '/v1/models/iris:predict',
      payload: { instances: [[5.1, 3.5, 1.4, 0.2], { features: [6.7, 3.0, 5.2, 2.3] }] },
    });
    expect(r.statusCode).toBe(200);
    const { predictions } = r.json();
    expect(predictions.map((p: { label: string }) => p.label)).toEqual(['setosa', 'virginica']);
  });

  it.each([
    ['an instance of the wrong length', [[5.1, 3.5, 1.4]], 'input "features" (instance 0) has 3 values; the model declares 4'],
    ['a string among the features', [[5.1, 3.5, 'x', 0.2]], 'input "features" (instance 0) holds "x" where the model declares a number'],
    [
      'an undeclared input',
      [{ features: [1, 2, 3, 4], color: 'red' }],
      'input "color" (instance 0) is not one of the model\'s inputs (features)',
    ],
    ['a missing input', [{ sepal_length: 6.7 }], 'input "sepal_length" (instance 0) is not one of the model\'s inputs (features)'],
  ])('refuses a v1 instance against the declared inputs before the plugin runs: %s', async (_what, instances, text) => {
    const r = await t.app.inject({ method: 'POST', url: '/v1/models/iris:predict', payload: { instances } });
    expect(r.statusCode).toBe(400);
    expect(r.json()).toEqual({ code: 'MS_ERR_INPUT_INVALID', error: `invalid input: ${text}` });
    expect((await t.app.inject('/v1/models/iris')).json()).toEqual({ name: 'iris', ready: true });
  });

  it('honours a valid x-request-id and generates one otherwise', async () => {
    const body = { inputs: [{ name: 'features', shape: [1, 4], datatype: 'FP64', data: [5, 3, 1, 0.2] }] };
    const given = await infer(body, undefined, { 'x-request-id': 'abc-123' });
    expect(given.headers['x-request-id']).toBe('abc-123');
    expect(given.json().id).toBe('abc-123');
    const generated = await infer(body, undefined, { 'x-request-id': 'bad id with spaces' });
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it.each([
    [
      'shape vs data length',
      { inputs: [{ name: 'features', shape: [2, 4], datatype: 'FP64', data: [1, 2, 3] }] },
      400,
      'MS_ERR_TENSOR_SHAPE',
      'shape [2,4] holds 8 elements but data has 3',
    ],
    [
      'unknown datatype',
      { inputs: [{ name: 'features', shape: [1, 4], datatype: 'FLOAT', data: [1, 2, 3, 4] }] },
      400,
      'MS_ERR_TENSOR_DATATYPE',
      'unknown datatype "FLOAT"',
    ],
    [
      'data that does not fit the datatype',
      { inputs: [{ name: 'features', shape: [1, 4], datatype: 'INT8', data: [1, 2, 300, 4] }] },
      400,
      'MS_ERR_TENSOR_DATA',
      'element 2 is 300',
    ],
    [
      'inputs disagreeing on the batch',
      {
        inputs: [
          { name: 'a', shape: [2], datatype: 'FP64', data: [1, 2] },
          { name: 'b', shape: [3], datatype: 'FP64', data: [1, 2, 3] },
        ],
      },
      400,
      'MS_ERR_TENSOR_BATCH',
      '"a" has 2, "b" has 3',
    ],
    ['no inputs field', { foo: 1 }, 400, 'MS_ERR_REQUEST_INVALID', '/body'],
    [
      'features of the wrong width (checked against the declared inputs)',
      { inputs: [{ name: 'features', shape: [1, 3], datatype: 'FP64', data: [1, 2, 3] }] },
      400,
      'MS_ERR_INPUT_INVALID',
      'input "features" (instance 0) has 3 values; the model declares 4',
    ],
  ])('rejects %s with a precise error', async (_what, body, status, code, text) => {
    const r = await infer(body);
    expect(r.statusCode).toBe(status);
    expect(r.json().code).toBe(code);
    expect(r.json().error).toContain(text);
  });

  it('rejects bad JSON, oversized bodies and other content types', async () => {
    const bad = await t.app.inject({
      method: 'POST',
      url: '/v2/models/iris/infer',
      payload: '{"inputs": [',
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().code).toBe('MS_ERR_REQUEST_BAD_JSON');
    const big = await t.app.inject({
      method: 'POST',
      url: '/v2/models/iris/infer',
      payload: JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'BYTES', data: ['x'.repeat(2 * 1024 * 1024)] }] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(big.statusCode).toBe(413);
    expect(big.json()).toEqual({ code: 'MS_ERR_REQUEST_TOO_LARGE', error: 'request body exceeds the limit of 1048576 bytes' });
    const text = await t.app.inject({
      method: 'POST',
      url: '/v2/models/iris/infer',
      payload: 'hi',
      headers: { 'content-type': 'text/plain' },
    });
    expect(text.statusCode).toBe(415);
    expect(text.json().code).toBe('MS_ERR_REQUEST_CONTENT_TYPE');
  });

  it('answers unknown models, versions and routes with 404 and a JSON body', async () => {
    const m = await t.app.inject({ method: 'POST', url: '/v2/models/other/infer', payload: { inputs: [] } });
    expect(m.statusCode).toBe(404);
    expect(m.json()).toMatchObject({ code: 'MS_ERR_MODEL_NOT_FOUND' });
    expect((await t.app.inject('/v2/models/iris/versions/9')).json()).toMatchObject({ code: 'MS_ERR_MODEL_VERSION_NOT_FOUND' });
    const nf = await t.app.inject('/nope');
    expect(nf.statusCode).toBe(404);
    expect(nf.json()).toEqual({ code: 'MS_ERR_HTTP_NOT_FOUND', error: 'no route GET /nope' });
  });

  it('counts requests and latency on /metrics', async () => {
    const text = (await t.app.inject('/metrics')).body;
    expect(text).toMatch(/modelship_requests_total\{model="iris",protocol="v2",status="200"\} [1-9]/);
    expect(text).toMatch(/modelship_requests_total\{model="iris",protocol="v2",status="400"\} [1-9]/);
    expect(text).toMatch(/modelship_request_duration_seconds_count\{model="iris",protocol="v1"\} [1-9]/);
    expect(text).toContain('modelship_requests_in_flight{model="iris"} 0');
  });
});

describe('runtime before the model is ready', () => {
  it('is live but not ready, says why, and refuses inference with 503', async () => {
    const model = new ServedModel('m');
    model.setLoading('fetching s3://b/k');
    const metrics = new RuntimeMetrics({ processMetrics: false });
    const app = build({ model, metrics, log: silent, recorder: localRecorder(model, metrics, silent) });
    expect((await app.inject('/v2/health/live')).statusCode).toBe(200);
    const ready = await app.inject('/v2/health/ready');
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ ready: false, status: 'loading', reason: 'fetching s3://b/k' });
    const r = await app.inject({
      method: 'POST',
      url: '/v2/models/m/infer',
      payload: { inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [1] }] },
    });
    expect(r.statusCode).toBe(503);
    expect(r.json()).toEqual({ code: 'MS_ERR_MODEL_NOT_READY', error: 'model "m" is not ready: fetching s3://b/k' });
    await app.close();
  });
});

describe('plugin failures', () => {
  it('a throwing predict is a 500, a slow one a 504, a bad output names its key; the server keeps serving', async () => {
    const dir = await makeBundle({
      'predict.mjs': `
        export async function predict(input) {
          if (input.mode === 'throw') throw new Error('model exploded');
          if (input.mode === 'slow') await new Promise((r) => setTimeout(r, 2000));
          if (input.mode === 'bad') return { ok: 1, score: { nested: true } };
          if (input.mode === 'nan') return { score: NaN };
          return { echo: input.mode };
        }`,
    });
    const { app } = await appFor(dir, { name: 'm', requestTimeoutMs: 200 });
    const call = (mode: string) =>
      app.inject({
        method: 'POST',
        url: '/v2/models/m/infer',
        payload: { inputs: [{ name: 'mode', shape: [1], datatype: 'BYTES', data: [mode] }] },
      });
    const thrown = await call('throw');
    expect(thrown.statusCode).toBe(500);
    expect(thrown.json()).toEqual({ code: 'MS_ERR_PREDICT_FAILED', error: 'predict failed: model exploded' });
    const slow = await call('slow');
    expect(slow.statusCode).toBe(504);
    expect(slow.json()).toEqual({ code: 'MS_ERR_PREDICT_TIMEOUT', error: 'predict did not finish within 200 ms' });
    const bad = await call('bad');
    expect(bad.statusCode).toBe(500);
    expect(bad.json().error).toBe(
      'plugin returned an invalid output: output "score" is object; expected number, string, boolean, or an array or typed array of them',
    );
    expect((await call('nan')).json().error).toContain('output "score" is NaN');
    const ok = await call('fine');
    expect(ok.statusCode).toBe(200);
    expect(ok.json().outputs).toEqual([{ name: 'echo', datatype: 'BYTES', shape: [1], data: ['fine'] }]);
    await app.close();
  });

  it('mounts custom routes under the model path and supports predictBatch and CommonJS', async () => {
    const dir = await makeBundle({
      'predict.js': `
        let calls = 0;
        module.exports = {
          async predictBatch(inputs) { calls++; return inputs.map((i) => ({ doubled: i.x * 2 })); },
          routes(register) {
            register('GET', '/stats', () => ({ calls }));
            register('POST', '/items/:id', (req) => ({ status: 201, body: { id: req.params.id, got: req.body } }));
          },
        };`,
    });
    const { app } = await appFor(dir, { name: 'm' });
    const r = await app.inject({
      method: 'POST',
      url: '/v2/models/m/infer',
      payload: { inputs: [{ name: 'x', shape: [3], datatype: 'INT32', data: [1, 2, 3] }] },
    });
    expect(r.json().outputs).toEqual([{ name: 'doubled', datatype: 'FP64', shape: [3], data: [2, 4, 6] }]);
    expect((await app.inject('/v2/models/m/custom/stats')).json()).toEqual({ calls: 1 });
    const created = await app.inject({ method: 'POST', url: '/v2/models/m/custom/items/42', payload: { a: 1 } });
    expect(created.statusCode).toBe(201);
    expect(created.json()).toEqual({ id: '42', got: { a: 1 } });
    expect((await app.inject({ method: 'DELETE', url: '/v2/models/m/custom/stats' })).statusCode).toBe(405);
    expect((await app.inject('/v2/models/m/custom/missing')).json().code).toBe('MS_ERR_HTTP_NOT_FOUND');
    await app.close();
  });
});
