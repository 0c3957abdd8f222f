// The runtime as a server and as a process: real sockets, real signals, file:// bundles.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../runtime/config.ts';
import { start } from '../../runtime/server.ts';
import { appFor, makeBundle, silent } from './helpers.ts';

const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');
const NODE = process.execPath;
const MAIN = join(import.meta.dirname, '../../runtime/main.ts');

async function runtimeFor(bundleUri: string, extra: Record<string, string> = {}) {
  const workDir = await mkdtemp(join(tmpdir(), 'ms-work-'));
  const config = loadConfig({
    MODELSHIP_BUNDLE_URI: bundleUri,
    MODELSHIP_HOST: '127.0.0.1',
    MODELSHIP_PORT: '0',
    MODELSHIP_WORK_DIR: workDir,
    ...extra,
  });
  return start(config, silent);
}

const infer = (url: string, model: string, input: Record<string, unknown>) =>
  fetch(`${url}/v2/models/${model}/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      inputs: Object.entries(input).map(([name, v]) => ({
        name,
        shape: Array.isArray(v) ? [1, v.length] : [1],
        datatype: typeof v === 'string' ? 'BYTES' : 'FP64',
        data: Array.isArray(v) ? v : [v],
      })),
    }),
  });

describe('runtime server', () => {
  it('listens at once, becomes ready after loading, and serves over HTTP', async () => {
    const rt = await runtimeFor(IRIS, { MODELSHIP_MODEL_NAME: 'iris' });
    try {
      await rt.loaded;
      expect((await fetch(`${rt.url}/v2/health/ready`)).status).toBe(200);
      const r = await infer(rt.url, 'iris', { features: [5.1, 3.5, 1.4, 0.2] });
      expect(r.status).toBe(200);
      expect(((await r.json()) as any).outputs[0].data).toEqual(['setosa']);
      const metrics = await (await fetch(`${rt.url}/metrics`)).text();
      expect(metrics).toContain('modelship_model_ready{model="iris"} 1');
      expect(metrics).toMatch(/modelship_model_load_seconds \d/);
      expect(metrics).toContain('process_cpu_seconds_total');
    } finally {
      await rt.shutdown();
    }
  });

  it('drains in-flight requests on shutdown: none fails', async () => {
    const dir = await makeBundle({
      'predict.mjs': 'export async function predict(i) { await new Promise((r) => setTimeout(r, 300)); return { v: i.v }; }',
    });
    const rt = await runtimeFor(dir, { MODELSHIP_MODEL_NAME: 'slow' });
    await rt.loaded;
    const inflight = Array.from({ length: 30 }, (_, i) => infer(rt.url, 'slow', { v: i }));
    await new Promise((r) => setTimeout(r, 100));
    const closing = rt.shutdown();
    expect(rt.model.ready).toBe(false);
    const responses = await Promise.all(inflight);
    expect(responses.map((r) => r.status)).toEqual(new Array(30).fill(200));
    const values = await Promise.all(responses.map(async (r) => ((await r.json()) as any).outputs[0].data[0]));
    expect(values).toEqual(Array.from({ length: 30 }, (_, i) => i));
    await closing;
    await expect(fetch(`${rt.url}/v2/health/live`)).rejects.toThrow();
  });
});

describe('worker pool', () => {
  const cpuBound = `
    export async function init(bundlePath, ctx) { ctx.log.info('worker init'); }
    export async function predict(input) {
      const end = Date.now() + input.ms;
      while (Date.now() < end) {}
      return { ms: input.ms };
    }`;

  it('keeps fast requests fast while a CPU-heavy one runs', async () => {
    const { app } = await appFor(await makeBundle({ 'predict.mjs': cpuBound }), { name: 'cpu', workers: 2 });
    const call = (ms: number) =>
      app.inject({
        method: 'POST',
        url: '/v2/models/cpu/infer',
        payload: { inputs: [{ name: 'ms', shape: [1], datatype: 'INT32', data: [ms] }] },
      });
    const t0 = performance.now();
    const slow = call(1500).then(() => performance.now() - t0);
    await new Promise((r) => setTimeout(r, 50));
    const fast = await call(1);
    const fastDone = performance.now() - t0;
    expect(fast.statusCode).toBe(200);
    expect(fastDone).toBeLessThan(1000);
    expect(await slow).toBeGreaterThan(1400);
    await app.close();
  });

  it('times out a runaway request, replaces its worker and keeps serving', async () => {
    const { app, engine } = await appFor(await makeBundle({ 'predict.mjs': cpuBound }), { name: 'cpu', workers: 1, requestTimeoutMs: 300 });
    const call = (ms: number) =>
      app.inject({
        method: 'POST',
        url: '/v2/models/cpu/infer',
        payload: { inputs: [{ name: 'ms', shape: [1], datatype: 'INT32', data: [ms] }] },
      });
    const runaway = await call(60_000);
    expect(runaway.statusCode).toBe(504);
    const after = await call(1);
    expect(after.statusCode).toBe(200);
    expect(after.json().outputs[0].data).toEqual([1]);
    await app.close();
    await engine.close();
  });
});

function runProcess(env: Record<string, string>, timeoutMs = 20_000) {
  return new Promise<{ code: number | null; stdout: string }>((resolve, reject) => {
    const child = spawn(NODE, [MAIN], { env: { ...process.env, MODELSHIP_HOST: '127.0.0.1', MODELSHIP_PORT: '0', ...env } });
    let stdout = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stdout += c));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`runtime did not exit within ${timeoutMs} ms:\n${stdout}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout });
    });
  });
}

describe('runtime process', () => {
  it.each([
    [
      'init throws',
      'export async function init() { throw new Error("weights missing"); }\nexport const predict = (x) => x;',
      {},
      'MS_ERR_PLUGIN_INIT_FAILED: plugin init() failed: weights missing',
    ],
    [
      'init hangs',
      'export async function init() { await new Promise(() => {}); }\nexport const predict = (x) => x;',
      { MODELSHIP_INIT_TIMEOUT_MS: '300' },
      'MS_ERR_PLUGIN_INIT_TIMEOUT: plugin init() did not finish within 0.3 s',
    ],
    [
      'no predict export',
      'export const nothing = 1;',
      {},
      'MS_ERR_PLUGIN_EXPORTS: plugin predict.mjs exports neither predict(input, ctx) nor predictBatch(inputs, ctx) (found: nothing)',
    ],
  ])('exits non-zero when %s, with the reason in the termination log and the log', async (_what, code, env, message) => {
    const dir = await makeBundle({ 'predict.mjs': code });
    const work = await mkdtemp(join(tmpdir(), 'ms-proc-'));
    const terminationLog = join(work, 'termination-log');
    const result = await runProcess({
      MODELSHIP_BUNDLE_URI: dir,
      MODELSHIP_WORK_DIR: work,
      MODELSHIP_TERMINATION_LOG: terminationLog,
      ...env,
    });
    expect(result.code).toBe(1);
    expect(await readFile(terminationLog, 'utf8')).toBe(message);
    const fatal = result.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .find((l) => l.level === 'fatal');
    expect(fatal).toMatchObject({ code: message.split(':')[0] });
  });

  it('never logs credentials, even at trace level and on failure', async () => {
    const work = await mkdtemp(join(tmpdir(), 'ms-proc-'));
    const result = await runProcess({
      MODELSHIP_BUNDLE_URI: 's3://bucket/missing.zip',
      MODELSHIP_S3_ENDPOINT: 'http://127.0.0.1:9',
      MODELSHIP_S3_ACCESS_KEY: 'AKIAVERYSECRETACCESS',
      MODELSHIP_S3_SECRET_KEY: 'very-secret-secret-key',
      MODELSHIP_FETCH_TIMEOUT_MS: '1500',
      MODELSHIP_LOG_LEVEL: 'trace',
      MODELSHIP_WORK_DIR: work,
      MODELSHIP_TERMINATION_LOG: join(work, 'tl'),
    });
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/MS_ERR_BUNDLE_FETCH_(FAILED|TIMEOUT)/);
    expect(result.stdout).not.toContain('very-secret-secret-key');
    expect(result.stdout).not.toContain('AKIAVERYSECRETACCESS');
    expect(await readFile(join(work, 'tl'), 'utf8')).not.toContain('very-secret');
  });

  it('exits 2 with a clear message when the configuration is invalid', async () => {
    const work = await mkdtemp(join(tmpdir(), 'ms-proc-'));
    const result = await runProcess({ MODELSHIP_BUNDLE_URI: '', MODELSHIP_TERMINATION_LOG: join(work, 'tl') });
    expect(result.code).toBe(2);
    expect(await readFile(join(work, 'tl'), 'utf8')).toBe('MS_ERR_CONFIG_INVALID: invalid configuration: MODELSHIP_BUNDLE_URI is not set');
  });

  it('on SIGTERM finishes the request in flight, then exits 0', async () => {
    const dir = await makeBundle({
      'predict.mjs': 'export async function predict(i) { await new Promise((r) => setTimeout(r, 500)); return { ok: true }; }',
    });
    const child = spawn(NODE, [MAIN], {
      env: {
        ...process.env,
        MODELSHIP_BUNDLE_URI: dir,
        MODELSHIP_HOST: '127.0.0.1',
        MODELSHIP_PORT: '0',
        MODELSHIP_MODEL_NAME: 'm',
        MODELSHIP_WORK_DIR: await mkdtemp(join(tmpdir(), 'ms-')),
      },
    });
    let out = '';
    const url = await new Promise<string>((resolve) => {
      child.stdout.on('data', (c) => {
        out += c;
        const m = out.match(/"url":"(http:\/\/[^"]+)"/);
        if (m && out.includes('model ready')) resolve(m[1] as string);
      });
    });
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    const pending = infer(url, 'm', { x: 1 });
    await new Promise((r) => setTimeout(r, 100));
    child.kill('SIGTERM');
    const res = await pending;
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).outputs[0]).toEqual({ name: 'ok', datatype: 'BOOL', shape: [1], data: [true] });
    expect(await exited).toBe(0);
    expect(out).toContain('draining in-flight requests');
  });
});
