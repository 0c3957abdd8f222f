// The ONNX engine through the runtime's app: real onnxruntime-node, the committed iris model converted from
// scikit-learn, and the fixtures of test/fixtures/onnx (made by make_fixtures.py).
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appFor, makeBundle, withApp } from './helpers.ts';

const IRIS_ONNX = join(import.meta.dirname, '../../examples/iris-onnx');
const FIXTURES = join(import.meta.dirname, '../fixtures/onnx');
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];

const v2 = (model: string, inputs: unknown[], extra: Record<string, unknown> = {}) => ({
  method: 'POST' as const,
  url: `/v2/models/${model}/infer`,
  payload: { inputs, ...extra },
});

/** A bundle holding one fixture graph as model.onnx (and a manifest, if given). */
async function fixtureBundle(file: string, manifest = '') {
  const dir = await makeBundle(manifest ? { 'modelship.yaml': manifest } : {});
  await copyFile(join(FIXTURES, file), join(dir, 'model.onnx'));
  return dir;
}

describe('ONNX engine: iris converted from scikit-learn', () => {
  let t: Awaited<ReturnType<typeof appFor>>;
  beforeAll(async () => {
    t = await appFor(IRIS_ONNX);
  });
  afterAll(async () => {
    await t.app.close();
    await t.engine.close();
  });

  it('declares inputs and outputs read from the graph', async () => {
    const r = await t.app.inject({ method: 'GET', url: '/v2/models/iris-onnx' });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toMatchObject({
      name: 'iris-onnx',
      platform: expect.stringContaining('onnx'),
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
      outputs: [
        { name: 'predict', datatype: 'INT64', shape: [-1] },
        { name: 'predict_proba', datatype: 'FP32', shape: [-1, 3] },
      ],
    });
  });

  it('predicts the classes scikit-learn predicts, rows stacked into one tensor (OIP v2 JSON)', async () => {
    const r = await t.app.inject(v2('iris-onnx', [{ name: 'input', shape: [2, 4], datatype: 'FP64', data: [...SETOSA, ...VIRGINICA] }]));
    expect(r.statusCode).toBe(200);
    const body = r.json();
    expect(body.outputs[0]).toEqual({ name: 'predict', shape: [2], datatype: 'INT64', data: [0, 2] });
    expect(body.outputs[1]).toMatchObject({ name: 'predict_proba', shape: [2, 3], datatype: 'FP32' });
    const [s0 = 0, s1 = 0, s2 = 0, , , v2p = 0] = body.outputs[1].data as number[];
    expect(s0).toBeGreaterThan(0.97);
    expect(v2p).toBeGreaterThan(0.9);
    expect(s0 + s1 + s2).toBeCloseTo(1, 5);
  });

  it('answers KServe v1 with the first output (the label), and honours the outputs a v2 client asks for', async () => {
    const v1 = await t.app.inject({ method: 'POST', url: '/v1/models/iris-onnx:predict', payload: { instances: [SETOSA, VIRGINICA] } });
    expect(v1.statusCode).toBe(200);
    expect(v1.json()).toEqual({ predictions: [0, 2] });
    const only = await t.app.inject(
      v2('iris-onnx', [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: SETOSA }], { outputs: [{ name: 'predict_proba' }] }),
    );
    expect(only.json().outputs.map((o: { name: string }) => o.name)).toEqual(['predict_proba']);
  });

  it('takes binary FP32 tensors (the binary extension) and answers the same', async () => {
    const header = Buffer.from(
      JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }] }),
    );
    const r = await t.app.inject({
      method: 'POST',
      url: '/v2/models/iris-onnx/infer',
      payload: Buffer.concat([header, Buffer.from(Float32Array.from(VIRGINICA).buffer)]),
      headers: { 'inference-header-content-length': String(header.length), 'content-type': 'application/octet-stream' },
    });
    expect(r.statusCode).toBe(200);
    expect(r.json().outputs[0].data).toEqual([2]);
  });

  it.each([
    [
      [{ name: 'features', shape: [1, 4], datatype: 'FP32', data: SETOSA }],
      /input "features" \(instance 0\) is not one of the model's inputs \(input\)/,
    ],
    [
      [{ name: 'input', shape: [1, 3], datatype: 'FP32', data: [1, 2, 3] }],
      /input "input" \(instance 0\) has 3 values; the model declares 4/,
    ],
    [
      [{ name: 'input', shape: [1, 4], datatype: 'BYTES', data: ['a', 'b', 'c', 'd'] }],
      /input "input" \(instance 0\) holds "a" where the model declares a number/,
    ],
  ])('refuses bad input with a 400 naming it (%j)', async (inputs, message) => {
    const r = await t.app.inject(v2('iris-onnx', inputs));
    expect(r.statusCode).toBe(400);
    expect(r.json()).toMatchObject({ code: 'MS_ERR_INPUT_INVALID', error: expect.stringMatching(message) });
  });
});

describe('ONNX engine: graphs of other kinds', () => {
  it('stacks int64 and rank-3 inputs, and returns rank-3 outputs flattened per row', async () => {
    await withApp(appFor(await fixtureBundle('types.onnx')), async (t) => {
      const r = await t.app.inject(
        v2('model', [
          { name: 'ids', shape: [2, 3], datatype: 'INT64', data: [1, 2, 3, 10, 20, 30] },
          { name: 'm', shape: [2, 2, 2], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6, 7, 8] },
        ]),
      );
      expect(r.statusCode).toBe(200);
      expect(r.json().outputs).toEqual([
        { name: 'total', shape: [2], datatype: 'INT64', data: [6, 60] },
        { name: 'm2', shape: [2, 4], datatype: 'FP32', data: [2, 4, 6, 8, 10, 12, 14, 16] },
      ]);
      const frac = await t.app.inject(
        v2('model', [
          { name: 'ids', shape: [1, 3], datatype: 'FP64', data: [1.5, 2, 3] },
          { name: 'm', shape: [1, 2, 2], datatype: 'FP32', data: [1, 2, 3, 4] },
        ]),
      );
      expect(frac.statusCode).toBe(400);
      expect(frac.json().error).toMatch(/input "ids" \(instance 0\) holds 1\.5 where the model declares an integer/);
    });
  });

  it('runs a graph whose batch dimension is fixed at 1 once per row', async () => {
    await withApp(appFor(await fixtureBundle('batch1.onnx')), async (t) => {
      const r = await t.app.inject(v2('model', [{ name: 'x', shape: [3, 2], datatype: 'FP32', data: [0, 1, 2, 3, 4, 5] }]));
      expect(r.statusCode).toBe(200);
      expect(r.json().outputs).toEqual([{ name: 'y', shape: [3, 2], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }]);
    });
  });

  it('pads the last run of a graph whose batch is fixed at 2, and drops the padding', async () => {
    await withApp(appFor(await fixtureBundle('batch2.onnx')), async (t) => {
      const r = await t.app.inject(v2('model', [{ name: 'x', shape: [3, 2], datatype: 'FP32', data: [0, 1, 2, 3, 4, 5] }]));
      expect(r.statusCode).toBe(200);
      expect(r.json().outputs).toEqual([{ name: 'y', shape: [3, 2], datatype: 'FP32', data: [1, 2, 3, 4, 5, 6] }]);
    });
  });

  it('takes and returns BOOL and UINT8, and refuses a value a uint8 cannot hold with a 400', async () => {
    await withApp(appFor(await fixtureBundle('flags.onnx')), async (t) => {
      const r = await t.app.inject(
        v2('model', [
          { name: 'flag', shape: [2], datatype: 'BOOL', data: [true, false] },
          { name: 'u', shape: [2, 2], datatype: 'UINT8', data: [0, 255, 7, 8] },
        ]),
      );
      expect(r.statusCode).toBe(200);
      expect(r.json().outputs).toEqual([
        { name: 'not_flag', shape: [2], datatype: 'BOOL', data: [false, true] },
        { name: 'u_out', shape: [2, 2], datatype: 'UINT8', data: [0, 255, 7, 8] },
      ]);
      const wide = await t.app.inject(
        v2('model', [
          { name: 'flag', shape: [1], datatype: 'BOOL', data: [true] },
          { name: 'u', shape: [1, 2], datatype: 'INT32', data: [300, 1] },
        ]),
      );
      expect(wide.statusCode).toBe(400);
      expect(wide.json().error).toMatch(/input "u" \(instance 0\) holds 300 where the model takes uint8 integers in \[0, 255\]/);
    });
  });

  it('takes the manifest over the graph: a datatype for an output, refused when it names no tensor', async () => {
    await withApp(
      appFor(await fixtureBundle('types.onnx', 'name: typed\noutputs:\n  - {name: total, datatype: INT32, shape: [-1]}\n')),
      async (t) => {
        const meta = await t.app.inject({ method: 'GET', url: '/v2/models/typed' });
        expect(meta.json().outputs[0]).toEqual({ name: 'total', datatype: 'INT32', shape: [-1] });
      },
    );
    const wrong = await fixtureBundle('types.onnx', 'outputs:\n  - {name: sum, datatype: INT64, shape: [-1]}\n');
    await expect(appFor(wrong)).rejects.toMatchObject({
      code: 'MS_ERR_PLUGIN_LOAD',
      message: expect.stringMatching(/modelship.yaml declares output "sum", which the graph does not have \(it has total, m2\)/),
    });
  });

  it('refuses a corrupt model file as MS_ERR_PLUGIN_LOAD with ONNX Runtime reason', async () => {
    const dir = await makeBundle({});
    await writeFile(join(dir, 'model.onnx'), 'this is not a protobuf');
    await expect(appFor(dir)).rejects.toMatchObject({
      code: 'MS_ERR_PLUGIN_LOAD',
      message: expect.stringMatching(/^loading plugin model\.onnx failed: ONNX Runtime: .*protobuf parsing failed/i),
    });
  });
});

describe('ONNX engine: adaptive batching', () => {
  it('stacks the rows of concurrent requests into one run, each answered with its own rows', async () => {
    await withApp(appFor(IRIS_ONNX, { batching: { maxBatchSize: 64, maxLatencyMs: 50 } }), async (t) => {
      const flowers = Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? VIRGINICA : SETOSA));
      const rs = await Promise.all(
        flowers.map((x) => t.app.inject(v2('iris-onnx', [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: x }]))),
      );
      expect(rs.map((r) => r.json().outputs[0].data[0])).toEqual(flowers.map((x) => (x === VIRGINICA ? 2 : 0)));
      const text = await t.metrics.registry.metrics();
      // 12 requests, far fewer runs: the first waits up to 50 ms for the others.
      expect(text).toMatch(/modelship_batch_size_count\{model="iris-onnx"\} [1-3]\n/);
      expect(text).toMatch(/modelship_batch_size_sum\{model="iris-onnx"\} 12\n/);
    });
  });
});

describe('ONNX engine: worker threads', () => {
  const slow = (side: number) =>
    v2('model', [
      { name: 'k', shape: [1], datatype: 'FP32', data: [0.001] },
      { name: 'side', shape: [1], datatype: 'INT64', data: [side] },
    ]);

  it('a request past its deadline answers 504; its run finishes on its thread (never terminated: that aborts onnxruntime); the server thread stays free', async () => {
    await withApp(appFor(await fixtureBundle('slow.onnx'), { workers: 1, requestTimeoutMs: 300 }), async (t) => {
      let started = Date.now();
      const timedOut = await t.app.inject(slow(1536));
      expect(timedOut.statusCode).toBe(504);
      expect(timedOut.json().code).toBe('MS_ERR_PREDICT_TIMEOUT');
      expect(Date.now() - started).toBeLessThan(1000);
      // While the thread computes, the server's own thread answers at once.
      started = Date.now();
      const live = await t.app.inject({ method: 'GET', url: '/v2/health/live' });
      expect(live.statusCode).toBe(200);
      // A blocked server thread would hold it for the rest of the run (about a second).
      expect(Date.now() - started).toBeLessThan(400);
      // The same thread serves the next request once its run is done (a few hundred ms of its 1.4 s left, or the
      // next request's own 504 meanwhile): the process and the thread live on.
      await expect.poll(async () => (await t.app.inject(slow(8))).statusCode, { interval: 100, timeout: 10_000 }).toBe(200);
    });
  }, 20_000);

  it('serves the same answers from a pool of threads', async () => {
    await withApp(appFor(IRIS_ONNX, { workers: 2 }), async (iris) => {
      const answers = await Promise.all(
        [SETOSA, VIRGINICA, SETOSA].map((x) =>
          iris.app.inject(v2('iris-onnx', [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: x }])),
        ),
      );
      expect(answers.map((a) => a.json().outputs[0].data[0])).toEqual([0, 2, 0]);
    });
  });
});
