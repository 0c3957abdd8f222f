// Adaptive batching through the runtime: concurrent requests share one predictBatch call, each gets its own
// rows, a failing batch fails only its own requests, a request whose deadline passes while waiting answers
// 504 and never runs, and requests that ask for different things are not mixed.
import { afterEach, describe, expect, it } from 'vitest';
import { batchKey } from '../../runtime/batching.ts';
import { appFor, makeBundle } from './helpers.ts';

// Records each call's size on globalThis (the plugin runs in-process); `x < 0` fails the whole batch.
const PLUGIN = `
globalThis.__calls ??= [];
export async function predictBatch(rows) {
  globalThis.__calls.push(rows.length);
  await new Promise((r) => setTimeout(r, 2));
  if (rows.some((r) => r.x < 0)) throw new Error('negative x in the batch');
  return rows.map((r) => ({ y: r.x * 2 }));
}
`;
const calls = () => (globalThis as { __calls?: number[] }).__calls ?? [];
afterEach(() => {
  (globalThis as { __calls?: number[] }).__calls = [];
});

const infer = (app: Awaited<ReturnType<typeof appFor>>['app'], x: number, extra: Record<string, unknown> = {}) =>
  app.inject({
    method: 'POST',
    url: '/v2/models/m/infer',
    payload: { inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [x] }], ...extra },
  });

describe('adaptive batching', () => {
  it('gathers concurrent requests into calls of at most maxBatchSize, each answered with its own rows', async () => {
    const { app, metrics } = await appFor(await makeBundle({ 'predict.mjs': PLUGIN }), {
      name: 'm',
      batching: { maxBatchSize: 8, maxLatencyMs: 50 },
    });
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => infer(app, i)));
    expect(rs.map((r) => r.json().outputs[0].data[0])).toEqual(Array.from({ length: 20 }, (_, i) => i * 2));
    expect(calls().reduce((a, b) => a + b, 0)).toBe(20);
    expect(Math.max(...calls())).toBe(8);
    expect(calls().length).toBeLessThanOrEqual(4);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/modelship_batch_size_count\{model="m"\} [1-4]\n/);
    expect(text).toContain('modelship_batch_queue_seconds_count{model="m"} 20');
  });

  it('never overflows a batch or runs a request twice when multi-row requests arrive', async () => {
    const { app } = await appFor(await makeBundle({ 'predict.mjs': PLUGIN }), {
      name: 'm',
      batching: { maxBatchSize: 8, maxLatencyMs: 50 },
    });
    const rows = (base: number) => ({ inputs: [{ name: 'x', shape: [5], datatype: 'FP64', data: [0, 1, 2, 3, 4].map((i) => base + i) }] });
    const rs = await Promise.all([0, 10, 20].map((b) => app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: rows(b) })));
    expect(rs.map((r) => r.json().outputs[0].data)).toEqual([0, 10, 20].map((b) => [0, 1, 2, 3, 4].map((i) => (b + i) * 2)));
    expect(calls().reduce((a, b) => a + b, 0)).toBe(15);
    expect(Math.max(...calls())).toBeLessThanOrEqual(8);
  });

  it('a request refused by the input checks never joins a batch', async () => {
    const { app } = await appFor(await makeBundle({ 'predict.mjs': PLUGIN }), {
      name: 'm',
      batching: { maxBatchSize: 8, maxLatencyMs: 30 },
    });
    const bad = { inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: ['a'] }] };
    const rs = await Promise.all([infer(app, 1), app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: bad })]);
    expect(rs.map((r) => r.statusCode)).toEqual([200, 400]);
    expect(calls()).toEqual([1]);
  });

  it('fails only the requests of the batch that failed', async () => {
    const { app } = await appFor(await makeBundle({ 'predict.mjs': PLUGIN }), {
      name: 'm',
      batching: { maxBatchSize: 3, maxLatencyMs: 50 },
    });
    const rs = await Promise.all([1, -1, 2, 3, 4, 5].map((x) => infer(app, x)));
    expect(rs.map((r) => r.statusCode)).toEqual([500, 500, 500, 200, 200, 200]);
    expect(rs[0]?.json().error).toBe('predict failed: negative x in the batch');
  });

  it('answers 504 without running a request whose deadline passes while it waits', async () => {
    const { app } = await appFor(await makeBundle({ 'predict.mjs': PLUGIN }), {
      name: 'm',
      requestTimeoutMs: 100,
      batching: { maxBatchSize: 64, maxLatencyMs: 1000 },
    });
    const t0 = performance.now();
    const r = await infer(app, 1);
    expect(r.statusCode).toBe(504);
    expect(performance.now() - t0).toBeLessThan(900);
    expect(calls()).toEqual([]);
  });

  it('does not mix requests that ask for other outputs or carry parameters', async () => {
    expect(batchKey(undefined)).toBe(batchKey({}));
    expect(batchKey({ outputs: ['a'] })).not.toBe(batchKey({}));
    expect(batchKey({ method: 'classify' })).not.toBe(batchKey({}));
    expect(batchKey({ parameters: { t: 1 } })).toBeUndefined();
    const { app } = await appFor(await makeBundle({ 'predict.mjs': PLUGIN }), {
      name: 'm',
      batching: { maxBatchSize: 8, maxLatencyMs: 30 },
    });
    await Promise.all([infer(app, 1), infer(app, 2), infer(app, 3, { outputs: [{ name: 'y' }] }), infer(app, 4, { parameters: { t: 1 } })]);
    expect([...calls()].sort()).toEqual([1, 1, 2]);
  });

  it('is off unless configured, and the manifest can ask for it', async () => {
    const off = await appFor(await makeBundle({ 'predict.mjs': PLUGIN }), { name: 'm' });
    await Promise.all(Array.from({ length: 4 }, (_, i) => infer(off.app, i)));
    expect(calls()).toEqual([1, 1, 1, 1]);
    (globalThis as { __calls?: number[] }).__calls = [];
    const manifest = 'name: m\nbatching: {maxBatchSize: 4, maxLatencyMs: 50}\n';
    const on = await appFor(await makeBundle({ 'predict.mjs': PLUGIN, 'modelship.yaml': manifest }), {});
    await Promise.all(Array.from({ length: 4 }, (_, i) => infer(on.app, i)));
    expect(calls()).toEqual([4]);
  });
});
