// The Python engine through the runtime's HTTP API, with the local environment's real CPython and
// scikit-learn (the python component: runtime/engines/python/base-stack.lock): every example bundle style,
// and each way a bundle goes wrong.
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import type { ModelshipError } from '../../runtime/errors.ts';
import { binaries } from '../../env/build.ts';
import { appFor, makeBundle } from './helpers.ts';
import { wheel } from './zip-writer.ts';

const EXAMPLES = join(import.meta.dirname, '..', '..', 'examples');
const { python, uv } = binaries();
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];

/** A pino logger whose lines (JSON objects) the test can read. */
function capturingLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}

type Loaded = Awaited<ReturnType<typeof appFor>>;
const opened: Loaded[] = [];
async function serve(dir: string, opts: Parameters<typeof appFor>[1] = {}): Promise<Loaded> {
  const t = await appFor(dir, { initTimeoutMs: 120_000, requestTimeoutMs: 30_000, ...opts, python: { python, uv, ...opts.python } });
  opened.push(t);
  return t;
}
afterAll(async () => {
  await Promise.all(
    opened.map(async (t) => {
      await t.app.close();
      await t.engine.close();
    }),
  );
});

async function loadError(files: Record<string, string>, opts: Parameters<typeof appFor>[1] = {}): Promise<ModelshipError> {
  const dir = await makeBundle(files);
  try {
    await serve(dir, opts);
  } catch (err) {
    return err as ModelshipError;
  }
  throw new Error('the bundle loaded');
}

const v2 = (name: string, input: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  method: 'POST' as const,
  url: `/v2/models/${name}/infer`,
  payload: { inputs: [input], ...extra },
});
const features = (...rows: number[][]) => ({ name: 'input', shape: [rows.length, 4], datatype: 'FP64', data: rows.flat() });

describe('Python bundles, one per style', () => {
  it('Fusion: the seed echo plugin, its ValueError a 400, its print() a log line with the request id', async () => {
    const { log, lines } = capturingLog();
    const { app } = await serve(join(EXAMPLES, 'fusion-echo'), { log });
    expect(lines.find((l) => l.msg === 'Initializing the model!')).toMatchObject({ stream: 'stdout', worker: 0 });
    const r = await app.inject(v2('fusion-echo', { name: 'input', shape: [1], datatype: 'BYTES', data: ['hello'] }));
    expect(r.statusCode).toBe(200);
    expect(r.json().outputs).toEqual([{ name: 'output', datatype: 'BYTES', shape: [1], data: ['hello'] }]);
    const bad = await app.inject({ method: 'POST', url: '/v1/models/fusion-echo:predict', payload: { instances: [{ x: 1 }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toEqual({ code: 'MS_ERR_INPUT_INVALID', error: "invalid input: Input must contain the key 'input'" });
  });

  it('Hopsworks: Predict with a joblib KNN, KServe v1 :predict, :classify and :regress, v2 infer', async () => {
    const { app, engine } = await serve(join(EXAMPLES, 'hopsworks-iris'));
    expect(engine.metadata.methods).toEqual(['predict', 'classify', 'regress']);
    const v1 = (verb: string) =>
      app.inject({ method: 'POST', url: `/v1/models/hopsworks-iris:${verb}`, payload: { instances: [SETOSA, VIRGINICA] } });
    expect((await v1('predict')).json()).toEqual({ predictions: [0, 2] });
    expect((await v1('classify')).json()).toEqual({
      predictions: [
        [1, 0, 0],
        [0, 0, 1],
      ],
    });
    expect((await v1('regress')).json()).toEqual({ predictions: [0, 2] });
    const r = await app.inject(v2('hopsworks-iris', features(SETOSA, VIRGINICA)));
    expect(r.json().outputs).toEqual([{ name: 'predictions', datatype: 'INT64', shape: [2], data: [0, 2] }]);
    // The declared input is checked before the plugin runs.
    const bad = await app.inject({ method: 'POST', url: '/v1/models/hopsworks-iris:predict', payload: { instances: [[1, 2, 3]] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toBe('invalid input: input "input" (instance 0) has 3 values; the model declares 4');
  });

  it('ml-deploy: UserModel predict, feedback gauges on /metrics and an event, a custom endpoint', async () => {
    const { app, metrics } = await serve(join(EXAMPLES, 'ml-deploy-iris'));
    const r = await app.inject(v2('ml-deploy-iris', features(SETOSA)));
    expect(r.json().outputs).toEqual([{ name: 'y_predicted', datatype: 'INT64', shape: [1], data: [0] }]);
    const fb = await app.inject({
      method: 'POST',
      url: '/v2/models/ml-deploy-iris/feedback',
      payload: { id: r.headers['x-request-id'], input: [SETOSA, VIRGINICA], y_true: [0, 2], y_predicted: [0, 1] },
    });
    expect(fb.statusCode).toBe(200);
    expect(fb.json()).toMatchObject({ logged: false, result: { y_true: [0, 2], y_predicted: [0, 1] } });
    const text = await metrics.registry.metrics();
    expect(text).toContain('modelship_plugin_accuracy{model="ml-deploy-iris"} 0.5');
    expect(text).toMatch(/modelship_plugin_f1\{model="ml-deploy-iris"\} 0\.333/);
    // The event's topic is not allowed here (no eventTopics, no Kafka): refused and counted, not lost silently.
    expect(text).toContain('modelship_plugin_signals_rejected_total{model="ml-deploy-iris",kind="event",reason="not_allowed"} 1');
    const stats = await app.inject('/v2/models/ml-deploy-iris/custom/stats');
    expect(stats.json()).toEqual({ feedback_count: 2 });
  });

  it('no code: a joblib LogisticRegression with metadata from the estimator; requested outputs only', async () => {
    const { app } = await serve(join(EXAMPLES, 'iris-sklearn'));
    const md = (await app.inject('/v2/models/iris-sklearn')).json();
    expect(md).toMatchObject({
      platform: 'modelship-python',
      inputs: [{ name: 'input', datatype: 'FP64', shape: [-1, 4] }],
      outputs: [
        { name: 'predict', datatype: 'INT64', shape: [-1] },
        { name: 'predict_proba', datatype: 'FP64', shape: [-1, 3] },
      ],
    });
    const r = await app.inject(v2('iris-sklearn', features(SETOSA, VIRGINICA)));
    const [label, proba] = r.json().outputs;
    expect(label).toEqual({ name: 'predict', datatype: 'INT64', shape: [2], data: [0, 2] });
    expect(proba.shape).toEqual([2, 3]);
    expect(proba.data[0]).toBeCloseTo(0.98156, 4);
    const only = await app.inject(v2('iris-sklearn', features(SETOSA), { outputs: [{ name: 'predict_proba' }] }));
    expect(only.json().outputs.map((o: { name: string }) => o.name)).toEqual(['predict_proba']);
    const v1 = await app.inject({ method: 'POST', url: '/v1/models/iris-sklearn:predict', payload: { instances: [SETOSA, VIRGINICA] } });
    expect(v1.json()).toEqual({ predictions: [0, 2] });
  });

  it('adaptive batching: concurrent requests to the no-code estimator share one vectorised call', async () => {
    const { app, metrics } = await serve(join(EXAMPLES, 'iris-sklearn'), { batching: { maxBatchSize: 16, maxLatencyMs: 20 } });
    const inputs = Array.from({ length: 24 }, (_, i) => (i % 2 ? VIRGINICA : SETOSA));
    const rs = await Promise.all(
      inputs.map((x) => app.inject({ method: 'POST', url: '/v1/models/iris-sklearn:predict', payload: { instances: [x] } })),
    );
    expect(rs.map((r) => r.json().predictions[0])).toEqual(inputs.map((_, i) => (i % 2 ? 2 : 0)));
    const text = await metrics.registry.metrics();
    const calls = Number(/modelship_batch_size_count\{model="iris-sklearn"\} (\d+)/.exec(text)?.[1]);
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(calls).toBeLessThan(24);
  });

  it('adaptive batching: a ValueError for one request fails that request only (the batch is run again one by one)', async () => {
    const dir = await makeBundle({
      'predict.py': [
        'def predict_batch(rows):',
        '    if any(r["x"] == 13 for r in rows):',
        '        raise ValueError("13 is not allowed")',
        '    return [{"y": r["x"] * 2} for r in rows]',
        '',
      ].join('\n'),
    });
    const { app } = await serve(dir, { batching: { maxBatchSize: 8, maxLatencyMs: 50 } });
    const rs = await Promise.all(
      [1, 13, 2].map((x) => app.inject({ method: 'POST', url: '/v1/models/model:predict', payload: { instances: [{ x }] } })),
    );
    expect(rs.map((r) => r.statusCode)).toEqual([200, 400, 200]);
    expect(rs[1]?.json().error).toBe('invalid input: 13 is not allowed');
    expect(rs[2]?.json().predictions).toEqual([{ y: 4 }]);
  });

  it('several worker processes, each with its own init, all loaded before ready', async () => {
    const dir = await makeBundle({
      'predict.py': 'import os\ndef init(p):\n    print("init", os.getpid())\ndef predict(x):\n    return {"pid": os.getpid()}\n',
    });
    const { log, lines } = capturingLog();
    const { app } = await serve(dir, { workers: 2, log });
    expect(
      lines
        .filter((l) => String(l.msg).startsWith('init '))
        .map((l) => l.worker)
        .sort(),
    ).toEqual([0, 1]);
    // Concurrent requests spread over both processes.
    const pids = new Set<number>();
    for (let round = 0; round < 5 && pids.size < 2; round++) {
      const rs = await Promise.all(
        Array.from({ length: 8 }, () => app.inject({ method: 'POST', url: '/v1/models/model:predict', payload: { instances: [{}] } })),
      );
      for (const r of rs) pids.add(r.json().predictions[0].pid);
    }
    expect(pids.size).toBe(2);
  });
});

describe('Ray Serve deployments, the tutorial code as written (examples/ray-sklearn, examples/ray-ensemble)', () => {
  const SAMPLE = { 'sepal length': 1.2, 'sepal width': 1.0, 'petal length': 1.1, 'petal width': 0.9 };
  const IRIS_VIRGINICA = { 'sepal length': 6.7, 'sepal width': 3.0, 'petal length': 5.2, 'petal width': 2.3 };
  const oip = (name: string, instance: Record<string, number>) => ({
    method: 'POST' as const,
    url: `/v2/models/${name}/infer`,
    payload: { inputs: Object.entries(instance).map(([k, v]) => ({ name: k, shape: [1], datatype: 'FP64', data: [v] })) },
  });

  it("SKLearnModel(model_path, label_path) from the manifest's parameters: a label string over KServe v1, OIP v2 and its GET route", async () => {
    const { app } = await serve(join(EXAMPLES, 'ray-sklearn', 'logistic'));
    const v1 = await app.inject({
      method: 'POST',
      url: '/v1/models/ray-logistic:predict',
      payload: { instances: [SAMPLE, IRIS_VIRGINICA] },
    });
    expect(v1.json()).toEqual({ predictions: ['setosa', 'virginica'] });
    const v2r = await app.inject(oip('ray-logistic', IRIS_VIRGINICA));
    expect(v2r.json().outputs).toEqual([{ name: 'output', datatype: 'BYTES', shape: [1], data: ['virginica'] }]);
    // requests.get(url, json=sample) as the tutorial calls it: a GET with a JSON body, answered as text.
    const get = await app.inject({ method: 'GET', url: '/v2/models/ray-logistic/custom/', payload: SAMPLE });
    expect(get.statusCode).toBe(200);
    expect(get.headers['content-type']).toMatch(/^text\/plain/);
    expect(get.body).toBe('setosa');
  });

  it('the ensemble function calls both members (spec.dependencies) at once, over KServe v1 and its /ensemble route', async () => {
    const members: Record<string, { url: string; model: string; modelServing: string }> = {};
    for (const name of ['logistic', 'svm']) {
      const { app } = await serve(join(EXAMPLES, 'ray-sklearn', name));
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      members[name] = { url, model: `ray-${name}`, modelServing: `ray-${name}` };
    }
    const { app } = await serve(join(EXAMPLES, 'ray-ensemble'), { dependencies: members });
    const v1 = await app.inject({ method: 'POST', url: '/v1/models/ray-ensemble:predict', payload: { instances: [IRIS_VIRGINICA] } });
    expect(v1.json()).toEqual({ predictions: [{ logistic: 'virginica', svm: 'virginica' }] });
    const get = await app.inject({ method: 'GET', url: '/v2/models/ray-ensemble/custom/ensemble', payload: SAMPLE });
    expect(get.json()).toEqual({ logistic: 'setosa', svm: 'setosa' });
    const v2r = await app.inject(oip('ray-ensemble', SAMPLE));
    expect(v2r.json().outputs).toEqual([
      { name: 'logistic', datatype: 'BYTES', shape: [1], data: ['setosa'] },
      { name: 'svm', datatype: 'BYTES', shape: [1], data: ['setosa'] },
    ]);
  });
});

describe('bad Python bundles', () => {
  it('a syntax error names the file and line', async () => {
    const err = await loadError({ 'predict.py': 'def predict(x)\n    return x\n' });
    expect(err.code).toBe('MS_ERR_PLUGIN_LOAD');
    expect(err.message).toMatch(/^loading plugin predict\.py failed: SyntaxError: .*\(predict\.py, line 1\)/);
  });

  it('no predict', async () => {
    const err = await loadError({ 'predict.py': 'def helper():\n    pass\n' });
    expect(err.code).toBe('MS_ERR_PLUGIN_EXPORTS');
    expect(err.message).toContain(
      'defines none of predict(model_input), predict_batch(inputs), class Predict, class UserModel, a Ray Serve deployment (found: helper)',
    );
  });

  it('init raises', async () => {
    const err = await loadError({ 'predict.py': 'def init(p):\n    raise RuntimeError("no weights")\ndef predict(x):\n    return x\n' });
    expect(err.code).toBe('MS_ERR_PLUGIN_INIT_FAILED');
    expect(err.message).toBe('plugin init() failed: RuntimeError: no weights');
  });

  it('init hangs past the init timeout', async () => {
    const err = await loadError(
      { 'predict.py': 'import time\ndef init(p):\n    time.sleep(600)\ndef predict(x):\n    return x\n' },
      { initTimeoutMs: 1500 },
    );
    expect(err.code).toBe('MS_ERR_PLUGIN_INIT_TIMEOUT');
    expect(err.message).toBe('plugin init() did not finish within 1.5 s');
  });

  it('unpickling needs a module that is not installed, and says which', async () => {
    // A pickle of a class from a module named `trainers_only` (present at training time, not here).
    const pickle = Buffer.from('80049523000000000000008c0d747261696e6572735f6f6e6c79948c0a436c61737369666965729493942981942e', 'hex');
    const dir = await makeBundle({});
    await writeFile(join(dir, 'model.pkl'), pickle);
    let err: ModelshipError | undefined;
    await serve(dir).catch((e: ModelshipError) => {
      err = e;
    });
    expect(err?.code).toBe('MS_ERR_PLUGIN_INIT_FAILED');
    expect(err?.message).toBe("plugin init() failed: loading model.pkl: ModuleNotFoundError: No module named 'trainers_only'");
  });

  it('a requirements.txt naming a package that does not exist', async () => {
    const dir = await makeBundle({
      'predict.py': 'def predict(x):\n    return {"y": 1}\n',
      'requirements.txt': 'modelship-no-such-package==1.0\n',
    });
    // wheels/ holds a wheel of another package: the install is offline, and fails naming the missing one.
    await mkdir(join(dir, 'wheels'));
    const w = wheel('msother', '1.0', '');
    await writeFile(join(dir, 'wheels', w.file), w.data);
    let err: ModelshipError | undefined;
    await serve(dir).catch((e: ModelshipError) => {
      err = e;
    });
    expect(err?.code).toBe('MS_ERR_PYTHON_DEPS_FAILED');
    expect(err?.message).toContain('modelship-no-such-package');
  });
});

describe('Python requests that go wrong', async () => {
  const dir = await makeBundle({
    'predict.py': [
      'import ctypes, os, sys, time',
      'def predict(x):',
      '    what = x.get("do")',
      '    if what == "print":',
      '        print("hello from predict")',
      '        os.write(1, b"C-level write\\n")',
      '    elif what == "exit":',
      '        os._exit(3)',
      '    elif what == "segfault":',
      '        ctypes.string_at(0)',
      '    elif what == "sleep":',
      '        time.sleep(60)',
      '    elif what == "bad":',
      '        return {"y": object()}',
      '    elif what == "raise":',
      '        raise KeyError("thing")',
      '    return {"ok": 1, "pid": os.getpid()}',
      '',
    ].join('\n'),
  });
  const { log, lines } = capturingLog();
  const fatal: ModelshipError[] = [];
  const { app } = await serve(dir, { requestTimeoutMs: 1500, log, onFatal: (e) => fatal.push(e) });
  const call = (doWhat: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/models/model:predict',
      payload: { instances: [{ do: doWhat }] },
      headers: { 'x-request-id': `req-${doWhat}` },
    });

  it('print() and C-level writes are served normally and logged with the request id', async () => {
    const r = await call('print');
    expect(r.statusCode).toBe(200);
    expect(r.json().predictions[0].ok).toBe(1);
    expect(lines.find((l) => l.msg === 'hello from predict')).toMatchObject({ stream: 'stdout', requestId: 'req-print' });
    expect(lines.find((l) => l.msg === 'C-level write')).toMatchObject({ stream: 'stdout' });
  });

  it('a value outside the contract is MS_ERR_OUTPUT_INVALID naming the key and type', async () => {
    const r = await call('bad');
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({
      code: 'MS_ERR_OUTPUT_INVALID',
      error: 'plugin returned an invalid output: output "y" is object; expected a number, str, or a list or 1-D array of numbers or of str',
    });
  });

  it('another exception is a 500 with Type: message; the traceback goes to the log only', async () => {
    const r = await call('raise');
    expect(r.json()).toEqual({ code: 'MS_ERR_PREDICT_FAILED', error: "predict failed: KeyError: 'thing'" });
    const logged = lines.find((l) => l.requestId === 'req-raise' && l.code === 'MS_ERR_PREDICT_FAILED');
    expect(String(logged?.trace)).toContain('raise KeyError("thing")');
    expect(r.body).not.toContain('Traceback');
  });

  it.each([
    ['exit', 'exit code 3'],
    ['segfault', 'signal SIGSEGV'],
  ])('a worker that dies (%s) fails only its request; the next ones succeed', async (what, how) => {
    const r = await call(what);
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({ code: 'MS_ERR_WORKER_CRASHED', error: `Python worker 0 died (${how})` });
    const next = await call('ok');
    expect(next.statusCode).toBe(200);
    expect(fatal).toEqual([]);
  });

  it('requests waiting behind one that kills its worker are not lost: they run on the new worker', async () => {
    const [dead, ...rest] = await Promise.all([call('exit'), call('ok'), call('ok'), call('ok')]);
    expect(dead?.json().code).toBe('MS_ERR_WORKER_CRASHED');
    expect(rest.map((r) => r.statusCode)).toEqual([200, 200, 200]);
  });

  it("an input holding the wire's $nd marker, or nesting past Python's limit, is a 400; the worker lives on", async () => {
    const pid = (await call('ok')).json().predictions[0].pid;
    const send = (instance: unknown) => app.inject({ method: 'POST', url: '/v1/models/model:predict', payload: { instances: [instance] } });
    // Refused before the frame is written: the worker would read the marker as an array of the frame's bytes.
    const marker = await send({ do: 'ok', x: { $nd: ['<f8', [4], 0, 32] } });
    expect(marker.statusCode).toBe(400);
    expect(marker.json()).toEqual({
      code: 'MS_ERR_REQUEST_INVALID',
      error:
        'invalid request: the key "$nd" (at rows[0].x.$nd) is reserved: it marks numeric arrays on the way to the Python workers; rename it',
    });
    // Decoded by the worker, which cannot: that request fails, the worker answers and reads the next.
    const deep = await app.inject({
      method: 'POST',
      url: '/v1/models/model:predict',
      headers: { 'content-type': 'application/json' },
      payload: `{"instances":[{"do":"ok","x":${'['.repeat(3000)}${']'.repeat(3000)}}]}`,
    });
    expect(deep.statusCode).toBe(400);
    expect(deep.json().code).toBe('MS_ERR_REQUEST_INVALID');
    expect(deep.json().error).toContain('the Python worker cannot decode it (RecursionError: maximum recursion depth exceeded');
    const after = await call('ok');
    expect(after.statusCode).toBe(200);
    expect(after.json().predictions[0].pid).toBe(pid);
    expect(fatal).toEqual([]);
  });

  it('a request past its deadline answers 504 and its worker is replaced', async () => {
    const before = (await call('ok')).json().predictions[0].pid;
    const t0 = performance.now();
    const r = await call('sleep');
    expect(r.statusCode).toBe(504);
    expect(performance.now() - t0).toBeLessThan(5000);
    const after = await call('ok');
    expect(after.statusCode).toBe(200);
    expect(after.json().predictions[0].pid).not.toBe(before);
  });
});

describe("a caller's deadline never kills a Python worker", () => {
  it('100 requests with a 5 ms deadline against a 100 ms predict: every one 504, the same worker, the next request in its usual time', async () => {
    const dir = await makeBundle({
      'predict.py': 'import os, time\ndef predict(x):\n    time.sleep(0.1)\n    return {"pid": os.getpid()}\n',
    });
    const { app, metrics, model } = await serve(dir, { requestTimeoutMs: 30_000, cpuLimit: 1 });
    const once = () => app.inject({ method: 'POST', url: '/v1/models/model:predict', payload: { instances: [{}] } });
    const t0 = performance.now();
    const first = await once();
    const usualMs = performance.now() - t0;
    const pid = first.json().predictions[0].pid;
    const hasty = await Promise.all(
      Array.from({ length: 100 }, () =>
        app.inject({
          method: 'POST',
          url: '/v1/models/model:predict',
          headers: { 'x-modelship-timeout-ms': '5' },
          payload: { instances: [{}] },
        }),
      ),
    );
    expect(hasty.map((r) => r.statusCode)).toEqual(Array(100).fill(504));
    expect(new Set(hasty.map((r) => r.json().code))).toEqual(new Set(['MS_ERR_PREDICT_TIMEOUT']));
    const t1 = performance.now();
    const next = await once();
    expect(next.statusCode).toBe(200);
    expect(next.json().predictions[0].pid).toBe(pid);
    // At most the one predict that was already running is ahead of it; the callers that left were never run.
    expect(performance.now() - t1).toBeLessThan(usualMs + 150);
    expect(model.ready).toBe(true);
    expect(await metrics.registry.metrics()).not.toMatch(/modelship_worker_restarts_total\{[^}]*\} [1-9]/);
  });

  it("the server's own timeout kills the worker, and the model is not ready until a new one is up", async () => {
    const dir = await makeBundle({
      'predict.py': 'import os, time\ndef predict(x):\n    time.sleep(x.get("s", 0))\n    return {"pid": os.getpid()}\n',
    });
    const { app, metrics, model } = await serve(dir, { requestTimeoutMs: 300, cpuLimit: 1 });
    const call = (s: number) => app.inject({ method: 'POST', url: '/v1/models/model:predict', payload: { instances: [{ s }] } });
    const pid = (await call(0)).json().predictions[0].pid;
    expect((await call(5)).statusCode).toBe(504);
    await expect.poll(() => model.ready, { interval: 10, timeout: 5000 }).toBe(false);
    await expect.poll(() => model.ready, { interval: 50, timeout: 30_000 }).toBe(true);
    expect((await call(0)).json().predictions[0].pid).not.toBe(pid);
    expect(await metrics.registry.metrics()).toContain('modelship_worker_restarts_total{model="model",reason="timeout"} 1');
  });
});

describe('Python workers that keep crashing', () => {
  it('make the model fail with the reason after 5 crashes in a row', async () => {
    const dir = await makeBundle({ 'predict.py': 'import os\ndef predict(x):\n    os._exit(7)\n' });
    const fatal: ModelshipError[] = [];
    const { app, model } = await serve(dir, { onFatal: (e) => fatal.push(e) });
    for (let i = 0; i < 5; i++) {
      const r = await app.inject({ method: 'POST', url: '/v1/models/model:predict', payload: { instances: [{}] } });
      expect(r.json().code).toBe('MS_ERR_WORKER_CRASHED');
    }
    await expect.poll(() => fatal.length, { timeout: 30_000 }).toBe(1);
    expect(fatal[0]?.message).toBe('Python worker 0 died (exit code 7); 5 crashes in a row, giving up');
    expect(model.ready).toBe(false);
  });
});

describe('requirements.txt', () => {
  it('installs from wheels/ with no index, and a second pod finds the environment in the cache', async () => {
    const envDir = await mkdtemp(join(tmpdir(), 'ms-envs-'));
    const w = wheel('msgreeting', '1.0', 'def greet(n):\n    return "hello " + n\n');
    const make = async () => {
      const dir = await makeBundle({
        'predict.py': 'from msgreeting import greet\ndef predict(x):\n    return {"text": greet(x["name"])}\n',
        'requirements.txt': 'msgreeting==1.0\n',
      });
      await mkdir(join(dir, 'wheels'));
      await writeFile(join(dir, 'wheels', w.file), w.data);
      return dir;
    };
    const first = capturingLog();
    const t0 = performance.now();
    const a = await serve(await make(), { log: first.log, python: { envDir } });
    const cold = performance.now() - t0;
    expect(first.lines.some((l) => l.msg === 'requirements.txt: installed')).toBe(true);
    const r = await a.app.inject({ method: 'POST', url: '/v1/models/model:predict', payload: { instances: [{ name: 'ms' }] } });
    expect(r.json()).toEqual({ predictions: [{ text: 'hello ms' }] });
    const second = capturingLog();
    const t1 = performance.now();
    await serve(await make(), { log: second.log, python: { envDir } });
    const warm = performance.now() - t1;
    expect(second.lines.some((l) => l.msg === 'requirements.txt: environment found in the cache')).toBe(true);
    expect(second.lines.some((l) => l.msg === 'requirements.txt: installed')).toBe(false);
    process.stderr.write(`requirements env: cold load ${cold.toFixed(0)} ms, cached ${warm.toFixed(0)} ms\n`);
  });

  it('the example with a requirements.txt runs from the wheel of its pinned package', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ms-reqdemo-'));
    await cp(join(EXAMPLES, 'requirements-demo'), dir, { recursive: true });
    const pinned = (await readFile(join(dir, 'requirements.txt'), 'utf8')).trim();
    expect(pinned).toBe('tabulate==0.9.0');
    await cp(binaries().wheels, join(dir, 'wheels'), { recursive: true });
    const { app } = await serve(dir, { python: { envDir: await mkdtemp(join(tmpdir(), 'ms-envs-')) } });
    const input = JSON.parse(await readFile(join(dir, 'test-input.json'), 'utf8'));
    const r = await app.inject({ method: 'POST', url: '/v1/models/requirements-demo:predict', payload: { instances: [input] } });
    expect(r.statusCode).toBe(200);
    expect(r.json().predictions[0].table).toContain('input  hello');
  });
});
