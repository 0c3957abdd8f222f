// OIP as real clients speak it: NVIDIA's tritonclient (PyPI, in the local environment's Python), unmodified
// and with its defaults, against running runtimes over REST (binary tensors, no Content-Type) and gRPC
// (raw contents): metadata, readiness, infer with FP32, FP64, INT64 and BYTES, requested outputs, and
// errors for a wrong model or input. A JS bundle (iris, echo) and a Python one (no-code sklearn).
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../runtime/config.ts';
import { type Runtime, start } from '../../runtime/server.ts';
import { binaries } from '../../env/build.ts';
import { silent } from '../runtime/helpers.ts';

const EXAMPLES = join(import.meta.dirname, '../../examples');
const CHECK = join(import.meta.dirname, 'tritonclient_check.py');
const { python } = binaries();
const runtimes: Runtime[] = [];
afterAll(() => Promise.all(runtimes.map((r) => r.shutdown())));

async function serve(bundle: string, name: string): Promise<Runtime> {
  const config = loadConfig({
    MODELSHIP_BUNDLE_URI: bundle,
    MODELSHIP_MODEL_NAME: name,
    MODELSHIP_HOST: '127.0.0.1',
    MODELSHIP_PORT: '0',
    MODELSHIP_WORK_DIR: await mkdtemp(join(tmpdir(), 'ms-interop-')),
    MODELSHIP_PYTHON: python,
    MODELSHIP_WORKERS: '1',
  });
  const rt = await start(config, silent);
  runtimes.push(rt);
  await rt.loaded;
  return rt;
}

type Tensor = { dtype: string; shape: number[]; data: unknown[] };
type Report = Record<
  'http' | 'grpc',
  {
    live: boolean;
    ready: boolean;
    model_ready: boolean;
    server: { name: string; extensions: string[] };
    model: { name: string; inputs: string[]; outputs: string[] };
    infer: Record<string, Tensor>;
    id: string;
    only?: string[];
    wrong_model: { status: string; message: string } | null;
    wrong_input: { status: string; message: string } | null;
  }
>;

async function drive(rt: Runtime, model: string, which: 'iris' | 'sklearn' | 'echo'): Promise<Report> {
  const http = rt.url.replace(/^http:\/\//, '');
  const { stdout } = await promisify(execFile)(python, [CHECK, http, `127.0.0.1:${rt.grpcPort}`, model, which], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as Report;
}

describe.each(['http', 'grpc'] as const)('tritonclient over %s', (proto) => {
  it('serves the JS iris bundle: metadata, readiness, FP64 in, BYTES and FP64 out, requested outputs, errors', async () => {
    const rt = runtimes.find((r) => r.model.name === 'iris') ?? (await serve(join(EXAMPLES, 'iris/bundle'), 'iris'));
    const r = (await drive(rt, 'iris', 'iris'))[proto];
    expect(r).toMatchObject({ live: true, ready: true, model_ready: true, server: { name: 'modelship' } });
    expect(r.server.extensions).toContain('binary_tensor_data');
    expect(r.model).toEqual({ name: 'iris', inputs: ['features'], outputs: ['label', 'probabilities'] });
    expect(r.infer.label).toEqual({ dtype: 'object', shape: [2], data: ['setosa', 'virginica'] });
    expect(r.infer.probabilities?.dtype).toBe('float64');
    expect(r.infer.probabilities?.shape).toEqual([2, 3]);
    expect(r.id).toBe(`tc-${proto}-1`);
    expect(r.only).toEqual(['probabilities']);
    expect(r.wrong_model?.message).toContain('model "no-such-model" is not served here');
    expect(r.wrong_input?.message).toContain('input "nope" (instance 0) is not one of the model\'s inputs (features)');
    if (proto === 'grpc') {
      expect(r.wrong_model?.status).toBe('StatusCode.NOT_FOUND');
      expect(r.wrong_input?.status).toBe('StatusCode.INVALID_ARGUMENT');
    } else {
      expect(r.wrong_model?.status).toBe('404');
      expect(r.wrong_input?.status).toBe('400');
    }
  });

  it('echoes FP32, FP64, INT64 and BYTES tensors exactly', async () => {
    const rt = runtimes.find((x) => x.model.name === 'echo') ?? (await serve(join(EXAMPLES, 'echo'), 'echo'));
    const r = (await drive(rt, 'echo', 'echo'))[proto];
    expect(r.infer.f32).toEqual({ dtype: 'float32', shape: [2, 3], data: [0, 0.25, 0.5, 0.75, 1, 1.25] });
    expect(r.infer.f64).toEqual({ dtype: 'float64', shape: [2], data: [1.5, -2.25] });
    expect(r.infer.i64).toEqual({ dtype: 'int64', shape: [2, 2], data: [1, -2, 3, 2 ** 40] });
    expect(r.infer.s).toEqual({ dtype: 'object', shape: [2], data: ['hello', 'héllo'] });
  });

  it('serves a Python bundle (no-code sklearn) the same way', async () => {
    const rt = runtimes.find((x) => x.model.name === 'iris-sklearn') ?? (await serve(join(EXAMPLES, 'iris-sklearn'), 'iris-sklearn'));
    const r = (await drive(rt, 'iris-sklearn', 'sklearn'))[proto];
    expect(r.model).toEqual({ name: 'iris-sklearn', inputs: ['input'], outputs: ['predict', 'predict_proba'] });
    expect(r.infer.predict).toEqual({ dtype: 'int64', shape: [2], data: [0, 2] });
    expect(r.infer.predict_proba?.shape).toEqual([2, 3]);
    expect(r.only).toEqual(['predict']);
  });
});
