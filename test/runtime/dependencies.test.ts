// Composition in the runtime: a JS bundle calls other runtimes through ctx.models (real servers on loopback).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDependencies } from '../../runtime/dependencies.ts';
import { appFor, makeBundle } from './helpers.ts';

type App = Awaited<ReturnType<typeof appFor>>;
const apps: App[] = [];
let member: App;
let slow: App;
let memberUrl: string;
let slowUrl: string;
const seen: { id?: string | string[]; timeout?: string | string[] }[] = [];
const slowTold: (string | string[] | undefined)[] = [];

async function listen(t: App): Promise<string> {
  apps.push(t);
  return t.app.listen({ host: '127.0.0.1', port: 0 });
}

beforeAll(async () => {
  member = await appFor(
    await makeBundle({
      'modelship.yaml': 'name: member\nformat: js\nentrypoint: p.mjs\n',
      'p.mjs': `export function predict(x, ctx) {
        if (x.bad) throw new TypeError('bad input');
        return { doubled: x.n * 2, requestId: ctx.requestId };
      }`,
    }),
    { name: 'member' },
  );
  member.app.addHook('onRequest', async (req) => {
    seen.push({ id: req.headers['x-request-id'], timeout: req.headers['x-modelship-timeout-ms'] });
  });
  memberUrl = await listen(member);
  slow = await appFor(
    await makeBundle({
      'modelship.yaml': 'name: slow\nformat: js\nentrypoint: p.mjs\n',
      'p.mjs': 'export async function predict(x) { await new Promise((r) => setTimeout(r, 3000)); return { late: true }; }',
    }),
    { name: 'slow', requestTimeoutMs: 10_000 },
  );
  slow.app.addHook('onRequest', async (req) => {
    slowTold.push(req.headers['x-modelship-timeout-ms']);
  });
  slowUrl = await listen(slow);
});
afterAll(async () => {
  for (const t of apps) {
    await t.app.close();
    await t.engine.close();
  }
});

async function ensemble(code: string, timeoutMs = 5000, dead = 'http://127.0.0.1:9') {
  const t = await appFor(await makeBundle({ 'modelship.yaml': 'name: ens\nformat: js\nentrypoint: e.mjs\n', 'e.mjs': code }), {
    name: 'ens',
    requestTimeoutMs: timeoutMs,
    dependencies: parseDependencies(
      JSON.stringify({
        member: { url: memberUrl, model: 'member', modelServing: 'member-ms' },
        slow: { url: slowUrl, model: 'slow', modelServing: 'slow-ms' },
        gone: { url: dead, model: 'gone', modelServing: 'gone-ms' },
      }),
    ),
  });
  apps.push(t);
  return t;
}

const v1 = (t: App, instances: unknown[], headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/v1/models/ens:predict', payload: { instances }, headers });

describe('ctx.models: handles to spec.dependencies', () => {
  it('calls members in parallel, passing the request id and the remaining time', async () => {
    const t = await ensemble(`export async function predict(x, ctx) {
      const [a, b] = await Promise.all([ctx.models.member.predict({ n: x.n }), ctx.models.member.predict([{ n: 1 }, { n: 2 }])]);
      return { a: a.doubled, b: b.map((p) => p.doubled), id: a.requestId, names: Object.keys(ctx.models) };
    }`);
    seen.length = 0;
    const r = await v1(t, [{ n: 21 }], { 'x-request-id': 'tree-1' });
    expect(r.statusCode).toBe(200);
    expect(r.json().predictions[0]).toEqual({ a: 42, b: [2, 4], id: 'tree-1', names: ['gone', 'member', 'slow'] });
    expect(seen.map((s) => s.id)).toEqual(['tree-1', 'tree-1']);
    for (const s of seen) expect(Number(s.timeout)).toBeGreaterThan(4000);
    expect(Number(seen[0]?.timeout)).toBeLessThanOrEqual(5000);
    const m = await t.metrics.registry.getSingleMetricAsString('modelship_dependency_requests_total');
    expect(m).toContain('modelship_dependency_requests_total{dependency="member",outcome="ok"} 2');
  });

  it('an unknown name is a coded error listing the known ones', async () => {
    const t = await ensemble('export async function predict(x, ctx) { return ctx.models.svn.predict(x); }');
    const r = await v1(t, [{ n: 1 }]);
    expect(r.statusCode).toBe(500);
    expect(r.json()).toEqual({
      code: 'MS_ERR_DEPENDENCY_UNKNOWN',
      error: 'no dependency named "svn"; spec.dependencies has gone, member, slow',
    });
  });

  it('a member that cannot be reached answers 503 naming it', async () => {
    const t = await ensemble('export async function predict(x, ctx) { return ctx.models.gone.predict(x); }');
    const r = await v1(t, [{ n: 1 }]);
    expect(r.statusCode).toBe(503);
    expect(r.json().code).toBe('MS_ERR_DEPENDENCY_UNAVAILABLE');
    expect(r.json().error).toMatch(/^dependency gone \(ModelServing gone-ms\) is unavailable: ECONNREFUSED/);
    // A refused connection never carried the request: tried 4 times in all (50, 100, 200 ms apart).
    const m = await t.metrics.registry.getSingleMetricAsString('modelship_dependency_request_duration_seconds');
    const sum = Number(/modelship_dependency_request_duration_seconds_sum\{dependency="gone"\} ([\d.]+)/.exec(m)?.[1]);
    expect(sum).toBeGreaterThan(0.34);
  });

  it("a slow member past the caller's deadline: 504 in time, and the member is told the deadline too", async () => {
    const t = await ensemble('export async function predict(x, ctx) { return ctx.models.slow.predict(x); }', 800);
    slowTold.length = 0;
    const started = Date.now();
    const r = await v1(t, [{ n: 1 }]);
    const took = Date.now() - started;
    expect(r.statusCode).toBe(504);
    expect(took).toBeLessThan(1500);
    // Whichever deadline fires first in the caller (its own sweep, or the call's timer), the code says a timeout.
    expect(['MS_ERR_DEPENDENCY_TIMEOUT', 'MS_ERR_PREDICT_TIMEOUT']).toContain(r.json().code);
    expect(Number(slowTold[0])).toBeGreaterThan(0);
    expect(Number(slowTold[0])).toBeLessThanOrEqual(800);
  });

  it("the member's own error comes back in the caller's, with its code", async () => {
    const t = await ensemble(
      `export async function predict(x, ctx) { return ctx.models.member.infer({ inputs: [{ name: 'n', shape: [1], datatype: 'FP64', data: 'no' }] }); }`,
    );
    const r = await v1(t, [{ n: 1 }]);
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe('MS_ERR_DEPENDENCY_REJECTED');
    expect(r.json().error).toMatch(/^dependency member \(ModelServing member-ms\) rejected the input: MS_ERR_/);
    const t2 = await ensemble('export async function predict(x, ctx) { return ctx.models.member.predict({ bad: true }); }');
    const r2 = await v1(t2, [{ n: 1 }]);
    expect(r2.statusCode).toBe(502);
    expect(r2.json().error).toMatch(
      /^dependency member \(ModelServing member-ms\) failed: MS_ERR_PREDICT_FAILED: predict failed: bad input$/,
    );
  });

  it("keeps the plugin's abort signal working (a timed-out call is aborted, handles or not)", async () => {
    const t = await ensemble(
      `export async function predict(x, ctx) {
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        globalThis.__msAborted = ctx.signal.aborted && typeof ctx.models.member.predict === 'function';
        return {};
      }`,
      300,
    );
    const r = await v1(t, [{ n: 1 }]);
    expect(r.statusCode).toBe(504);
    await new Promise((res) => setTimeout(res, 50));
    expect((globalThis as { __msAborted?: boolean }).__msAborted).toBe(true);
  });

  it('the callee honours a shorter deadline from its caller', async () => {
    const started = Date.now();
    const r = await slow.app.inject({
      method: 'POST',
      url: '/v1/models/slow:predict',
      payload: { instances: [{}] },
      headers: { 'x-modelship-timeout-ms': '300' },
    });
    expect(r.statusCode).toBe(504);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('parses MODELSHIP_DEPENDENCIES and refuses what it cannot use', () => {
    expect(parseDependencies(undefined)).toEqual({});
    expect(parseDependencies('{"a":{"url":"http://a.ns.svc/","model":"a"}}')).toEqual({
      a: { url: 'http://a.ns.svc', model: 'a', modelServing: 'a' },
    });
    expect(() => parseDependencies('[')).toThrow(/not JSON/);
    expect(() => parseDependencies('{"a":{"url":"ftp://x","model":"a"}}')).toThrow(/needs an http:\/\/ url/);
  });
});
