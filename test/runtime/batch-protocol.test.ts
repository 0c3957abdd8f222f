// The batch protocol a BatchPrediction's driver speaks to its model sidecar: rows in, one result per row out,
// through the same data plane as a request (input checks, engine, output checks, metrics).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { batchConcurrency } from '../../runtime/protocol/batch.ts';
import { appFor, makeBundle } from './helpers.ts';

const IRIS = join(import.meta.dirname, '../../examples/iris/bundle');
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];

describe('batch protocol (JS iris bundle)', () => {
  let t: Awaited<ReturnType<typeof appFor>>;
  beforeAll(async () => {
    t = await appFor(IRIS, { batch: true });
  });
  afterAll(async () => {
    await t.app.close();
    await t.engine.close();
  });
  const score = (rows: unknown[]) => t.app.inject({ method: 'POST', url: '/score', payload: { rows } });

  it('answers ready and the model metadata the driver maps columns with', async () => {
    expect((await t.app.inject('/ready')).statusCode).toBe(200);
    const md = (await t.app.inject('/metadata')).json();
    expect(md.inputs).toEqual([{ name: 'features', datatype: 'FP64', shape: [-1, 4] }]);
    expect(md.outputs.map((o: { name: string }) => o.name)).toEqual(['label', 'probabilities']);
    expect(md.capacity).toBe(batchConcurrency(t.engine.metadata.capacity));
  });

  it('scores every row in order, with the same outputs as an OIP request', async () => {
    const rows = [{ features: SETOSA }, { features: VIRGINICA }, { features: SETOSA }];
    const r = await score(rows);
    expect(r.statusCode).toBe(200);
    const results = r.json().results;
    expect(results.map((x: { outputs: { label: string } }) => x.outputs.label)).toEqual(['setosa', 'virginica', 'setosa']);
    const online = await t.app.inject({
      method: 'POST',
      url: '/v1/models/iris:predict',
      payload: { instances: rows },
    });
    expect(results.map((x: { outputs: unknown }) => x.outputs)).toEqual(online.json().predictions);
  });

  it('isolates a refused row: the others are scored, that one carries the coded error', async () => {
    const r = await score([{ features: SETOSA }, { features: [1, 2] }, { features: VIRGINICA }, { petals: 3 }]);
    expect(r.statusCode).toBe(200);
    const [a, bad, c, missing] = r.json().results;
    expect(a.outputs.label).toBe('setosa');
    expect(c.outputs.label).toBe('virginica');
    expect(bad).toMatchObject({ code: expect.stringMatching(/^MS_ERR_/) });
    expect(bad.error).toMatch(/features/);
    expect(missing).toMatchObject({ code: expect.stringMatching(/^MS_ERR_/) });
  });

  it('refuses a malformed batch with a coded 400', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/score', payload: { rows: [] } });
    expect(r.statusCode).toBe(400);
    expect(r.json().code).toBe('MS_ERR_REQUEST_INVALID');
  });

  it('fails the whole batch (for the driver to retry) when the model fails rather than refuses', async () => {
    const dir = await makeBundle({
      'predict.mjs': 'export async function predict(input) { if (input.x === 0) throw new TypeError("boom"); return { y: input.x * 2 }; }',
    });
    const u = await appFor(dir, { batch: true });
    try {
      const ok = await u.app.inject({ method: 'POST', url: '/score', payload: { rows: [{ x: 1 }, { x: 2 }] } });
      expect(ok.json().results).toEqual([{ outputs: { y: 2 } }, { outputs: { y: 4 } }]);
      const failed = await u.app.inject({ method: 'POST', url: '/score', payload: { rows: [{ x: 1 }, { x: 0 }] } });
      expect(failed.statusCode).toBe(500);
      expect(failed.json().code).toBe('MS_ERR_PREDICT_FAILED');
    } finally {
      await u.app.close();
      await u.engine.close();
    }
  });

  it('is not served by a runtime that is not a batch sidecar', async () => {
    const plain = await appFor(IRIS);
    try {
      expect((await plain.app.inject({ method: 'POST', url: '/score', payload: { rows: [{}] } })).statusCode).toBe(404);
    } finally {
      await plain.app.close();
      await plain.engine.close();
    }
  });
});
