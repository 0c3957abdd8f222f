// The data plane through the REST app: admission control (503 with Retry-After, queue bounds, metrics), the two
// deadlines (a caller's ends the wait and never kills a worker; the server's kills within its budget), batched
// requests keeping their own deadline, the health listener, and the record form of binary inputs.
import { describe, expect, it } from 'vitest';
import { startHealth } from '../../runtime/health.ts';
import { inputsForRecord } from '../../runtime/protocol/tensors.ts';
import { appFor, makeBundle, withApp } from './helpers.ts';

const body = (x: number) => ({ inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [x] }] });

// Sleeps (without holding the thread) as long as its input says, in ms.
const SLEEPER = `
export async function predict(input) {
  await new Promise((r) => setTimeout(r, input.x));
  return { y: input.x };
}
`;

// Holds its thread for x ms and says which thread it ran on.
const SPINNER = `
import { threadId } from 'node:worker_threads';
export function predict(input) {
  const end = Date.now() + input.x;
  while (Date.now() < end) {}
  return { y: input.x, thread: threadId };
}
`;

describe('admission control', () => {
  it('runs maxConcurrency, queues maxQueue, and refuses the rest at once with 503, Retry-After and a code', async () => {
    await withApp(
      appFor(await makeBundle({ 'predict.mjs': SLEEPER }), { name: 'm', admission: { maxConcurrency: 2, maxQueue: 2 } }),
      async ({ app, metrics }) => {
        const started = performance.now();
        const replies = await Promise.all(
          Array.from({ length: 10 }, () => app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(100) })),
        );
        const codes = replies.map((r) => r.statusCode).sort();
        expect(codes).toEqual([200, 200, 200, 200, 503, 503, 503, 503, 503, 503]);
        const refused = replies.filter((r) => r.statusCode === 503);
        for (const r of refused) {
          expect(r.json().code).toBe('MS_ERR_MODEL_OVERLOADED');
          expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        }
        // Two rounds of 100 ms for the admitted four; the refusals did not wait for them.
        expect(performance.now() - started).toBeLessThan(1000);
        const text = await metrics.registry.metrics();
        expect(text).toContain('modelship_requests_rejected_total{model="m",reason="full"} 6');
        expect(text).toContain('modelship_requests_total{model="m",protocol="v2",status="503"} 6');
        expect(text).toContain('modelship_requests_in_flight{model="m"} 0');
        expect(text).toContain('modelship_requests_queued{model="m"} 0');
      },
    );
  });

  it('answers 503 to a request that waited maxQueueWaitMs, without running it', async () => {
    await withApp(
      appFor(await makeBundle({ 'predict.mjs': SLEEPER }), {
        name: 'm',
        admission: { maxConcurrency: 1, maxQueue: 5, maxQueueWaitMs: 100 },
      }),
      async ({ app, metrics }) => {
        const long = app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(400) });
        await new Promise((r) => setTimeout(r, 20));
        const waiting = await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(1) });
        expect(waiting.statusCode).toBe(503);
        expect(waiting.json().error).toMatch(/waited \d+ ms for the engine/);
        expect((await long).statusCode).toBe(200);
        expect(await metrics.registry.metrics()).toContain('modelship_requests_rejected_total{model="m",reason="wait"} 1');
      },
    );
  });

  it('admits feedback and custom routes too', async () => {
    const plugin = `${SLEEPER}
export async function feedback(record) { await new Promise((r) => setTimeout(r, 100)); return { ok: true }; }
export function routes(register) { register('GET', '/slow', async () => { await new Promise((r) => setTimeout(r, 100)); return { ok: true }; }); }
`;
    await withApp(
      appFor(await makeBundle({ 'predict.mjs': plugin }), { name: 'm', admission: { maxConcurrency: 1, maxQueue: 1 } }),
      async ({ app }) => {
        const replies = await Promise.all([
          app.inject({ method: 'POST', url: '/v2/models/m/feedback', payload: { id: 'r1', label: 1 } }),
          app.inject({ method: 'GET', url: '/v2/models/m/custom/slow' }),
          app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(1) }),
        ]);
        expect(replies.map((r) => r.statusCode)).toEqual([200, 200, 503]);
      },
    );
  });
});

describe('deadlines', () => {
  it('100 requests with a 5 ms deadline: every one 504, the worker thread never terminated; the next request is served by the same thread', async () => {
    await withApp(
      appFor(await makeBundle({ 'predict.mjs': SPINNER }), { name: 'm', workers: 1, requestTimeoutMs: 5000 }),
      async ({ app, metrics }) => {
        const before = (await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(1) })).json().outputs;
        const thread = before.find((o: { name: string }) => o.name === 'thread').data[0];
        const hasty = await Promise.all(
          Array.from({ length: 100 }, () =>
            app.inject({
              method: 'POST',
              url: '/v2/models/m/infer',
              headers: { 'x-modelship-timeout-ms': '5' },
              payload: body(100),
            }),
          ),
        );
        expect(hasty.map((r) => r.statusCode)).toEqual(Array(100).fill(504));
        expect(new Set(hasty.map((r) => r.json().code))).toEqual(new Set(['MS_ERR_PREDICT_TIMEOUT']));
        const t0 = performance.now();
        const after = await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(1) });
        expect(after.statusCode).toBe(200);
        expect(after.json().outputs.find((o: { name: string }) => o.name === 'thread').data[0]).toBe(thread);
        // At most the one 100 ms call that was running is ahead of it; the callers that left were skipped.
        expect(performance.now() - t0).toBeLessThan(400);
        expect(await metrics.registry.metrics()).not.toMatch(/modelship_worker_restarts_total\{[^}]*\} [1-9]/);
      },
    );
  });

  it("the server's timeout terminates the thread, within the kill budget; past it the call runs on", async () => {
    await withApp(
      appFor(await makeBundle({ 'predict.mjs': SPINNER }), { name: 'm', workers: 1, requestTimeoutMs: 300, timeoutKillsPerMinute: 1 }),
      async ({ app, metrics }) => {
        const threadOf = (r: { json(): { outputs: { name: string; data: number[] }[] } }) =>
          r.json().outputs.find((o) => o.name === 'thread')?.data[0];
        const thread = threadOf(await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(1) }));
        const killed = await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(3000) });
        expect(killed.statusCode).toBe(504);
        // The replacement thread loads the plugin again; then it serves.
        let next = await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(1) });
        for (let i = 0; i < 20 && next.statusCode !== 200; i++) {
          next = await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(1) });
        }
        expect(next.statusCode).toBe(200);
        const replaced = threadOf(next);
        expect(replaced).not.toBe(thread);
        expect(await metrics.registry.metrics()).toContain('modelship_worker_restarts_total{model="m",reason="timeout"} 1');
        // The budget (1 a minute) is spent: the next overlong call is answered 504 and runs to its end on its thread.
        expect((await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(800) })).statusCode).toBe(504);
        await new Promise((r) => setTimeout(r, 600));
        const later = await app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(1) });
        expect(threadOf(later)).toBe(replaced);
        expect(await metrics.registry.metrics()).toContain('modelship_worker_restarts_total{model="m",reason="timeout"} 1');
      },
    );
  });

  it('a batched request keeps its own deadline; the others in its batch are answered', async () => {
    const plugin = `
export async function predictBatch(rows) {
  await new Promise((r) => setTimeout(r, 150));
  return rows.map((r) => ({ y: r.x }));
}
`;
    await withApp(
      appFor(await makeBundle({ 'predict.mjs': plugin }), { name: 'm', batching: { maxBatchSize: 8, maxLatencyMs: 20 } }),
      async ({ app }) => {
        const t0 = performance.now();
        const [hasty, patient] = await Promise.all([
          app
            .inject({ method: 'POST', url: '/v2/models/m/infer', headers: { 'x-modelship-timeout-ms': '60' }, payload: body(1) })
            .then((r) => ({ r, ms: performance.now() - t0 })),
          app.inject({ method: 'POST', url: '/v2/models/m/infer', payload: body(2) }),
        ]);
        expect(hasty.r.statusCode).toBe(504);
        expect(hasty.ms).toBeLessThan(150);
        expect(patient.statusCode).toBe(200);
        expect(patient.json().outputs[0].data).toEqual([2]);
      },
    );
  });
});

describe('the health listener', () => {
  it('answers liveness, readiness and metrics on its own port', async () => {
    await withApp(appFor(await makeBundle({ 'predict.mjs': SLEEPER }), { name: 'm' }), async ({ model, metrics }) => {
      const health = await startHealth(model, metrics, '127.0.0.1', 0);
      try {
        const base = `http://127.0.0.1:${health.port}`;
        expect(await (await fetch(`${base}/v2/health/live`)).json()).toEqual({ live: true });
        const ready = await fetch(`${base}/v2/health/ready`);
        expect(ready.status).toBe(200);
        expect(await (await fetch(`${base}/metrics`)).text()).toContain('modelship_model_ready');
        expect((await fetch(`${base}/v2/models/m/infer`)).status).toBe(404);
        model.setDraining();
        expect((await fetch(`${base}/v2/health/ready`)).status).toBe(503);
      } finally {
        await health.close();
      }
    });
  });
});

describe('records', () => {
  it('hold the values of binary inputs, as JSON inputs do', () => {
    const fp32 = new Float32Array([1.5, 2.5]);
    const i64 = new BigInt64Array([7n, 9007199254740993n]);
    const tail = Buffer.concat([Buffer.from(fp32.buffer), Buffer.from(i64.buffer)]);
    const inputs = [
      { name: 'a', datatype: 'FP32', shape: [2], parameters: { binary_data_size: 8 } },
      { name: 'b', datatype: 'INT64', shape: [2, 1], parameters: { binary_data_size: 16 } },
      { name: 'c', datatype: 'BYTES', shape: [1], data: ['text'] },
    ];
    expect(inputsForRecord(inputs, tail)).toEqual([
      { name: 'a', datatype: 'FP32', shape: [2], data: [1.5, 2.5] },
      { name: 'b', datatype: 'INT64', shape: [2, 1], data: [7, '9007199254740993'] },
      { name: 'c', datatype: 'BYTES', shape: [1], data: ['text'] },
    ]);
  });
});
