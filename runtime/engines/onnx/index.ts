// The ONNX engine: a bundle holding `model.onnx` and no code. Inputs, outputs, datatypes and shapes come
// from the graph (the manifest may override them by name); the rows of a request, or of a whole adaptive
// batch, are stacked into one tensor per input and run in one call. session.run() holds its thread, so
// small models run in the server's thread (a few microseconds) and heavy ones in a pool of worker threads,
// each with its own session; there a request that times out has its thread terminated and replaced.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { TensorMetadata } from '../../bundle/manifest.ts';
import { type ErrorCode, ModelshipError, msError } from '../../errors.ts';
import type { BundleEngineOptions, Engine, Prediction, RequestContext } from '../types.ts';
import { concatTensors, type FlatTensor, type GraphSpec, graphSpec, splitOutputs, stackInput } from './graph.ts';
import { openSession } from './session.ts';
import type { OnnxReply, OnnxTask, OnnxWorkerInit } from './worker.ts';

export interface OnnxEngineOptions extends BundleEngineOptions {
  /** 0: in the server's thread, unless the model file is larger than HEAVY_MODEL_BYTES; N: N worker threads. */
  workers: number;
  /** Worker threads for a heavy model when none were configured (the container's CPUs). */
  autoWorkers: number;
  /** The manifest's `inputs` / `outputs`, laid over the graph's by name. */
  inputs?: readonly TensorMetadata[] | undefined;
  outputs?: readonly TensorMetadata[] | undefined;
}

/** A model file above this size runs in worker threads unless the number of workers is set. */
export const HEAVY_MODEL_BYTES = 16 * 1024 * 1024;

type Runner = (feeds: Record<string, FlatTensor>, fetches: string[], ctx: RequestContext) => Promise<Record<string, FlatTensor>>;

export async function createOnnxEngine(o: OnnxEngineOptions): Promise<Engine> {
  const path = join(o.bundleDir, o.entrypoint);
  const size = (await stat(path)).size;
  const threads = o.workers > 0 ? o.workers : size > HEAVY_MODEL_BYTES ? o.autoWorkers : 0;
  const { spec, runner, close } = threads > 0 ? await pooled(o, path, threads) : await inProcess(o, path);
  o.log.info(
    {
      inputs: spec.inputs.map((s) => s.meta),
      outputs: spec.outputs.map((s) => s.meta),
      ...(spec.skipped.length ? { skippedOutputs: spec.skipped } : {}),
      threads: threads || 'server',
      bytes: size,
    },
    'ONNX model loaded',
  );
  return engineOver(spec, runner, close);
}

async function inProcess(o: OnnxEngineOptions, path: string) {
  const session = await openSession(path, o.entrypoint);
  const spec = graphSpec(session.inputs, session.outputs, o, o.entrypoint);
  const runner: Runner = (feeds, fetches) => session.run(feeds, fetches);
  return { spec, runner, close: () => session.release() };
}

function unwrap(reply: OnnxReply): Record<string, FlatTensor> | null {
  if (reply.ok) return reply.value;
  throw ModelshipError.restore(reply.code as ErrorCode, reply.message);
}

async function pooled(o: OnnxEngineOptions, path: string, threads: number) {
  // The metadata comes from a session of our own, closed at once: the threads each open theirs.
  const probe = await openSession(path, o.entrypoint);
  const spec = graphSpec(probe.inputs, probe.outputs, o, o.entrypoint);
  await probe.release();
  const pool = new Piscina({
    filename: fileURLToPath(new URL('./worker.ts', import.meta.url)),
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData: { path, entrypoint: o.entrypoint } satisfies OnnxWorkerInit,
  });
  try {
    const pings = Array.from({ length: threads }, () => pool.run({ op: 'ping' } satisfies OnnxTask) as Promise<OnnxReply>);
    for (const reply of await Promise.all(pings)) unwrap(reply);
  } catch (err) {
    await pool.destroy();
    throw err;
  }
  const runner: Runner = async (feeds, fetches, ctx) => {
    try {
      return unwrap((await pool.run({ op: 'run', feeds, fetches } satisfies OnnxTask, { signal: ctx.signal })) as OnnxReply) as Record<
        string,
        FlatTensor
      >;
    } catch (err) {
      if (err instanceof ModelshipError) throw err;
      if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
      throw msError('MS_ERR_PREDICT_FAILED', { detail: `worker: ${(err as Error).message}` }, err);
    }
  };
  return { spec, runner, close: () => pool.destroy() };
}

/** The runs that one call makes: all rows at once, or runs of the graph's fixed batch size. Pure. */
export function runsOf(rows: number, fixedBatch: number | undefined, input: string): number[] {
  if (fixedBatch === undefined) return [rows];
  if (rows % fixedBatch !== 0) {
    throw msError('MS_ERR_INPUT_INVALID', {
      detail: `the model's input "${input}" takes batches of exactly ${fixedBatch}; this request has ${rows} instances (send a multiple of ${fixedBatch})`,
    });
  }
  return Array.from({ length: rows / fixedBatch }, () => fixedBatch);
}

function engineOver(spec: GraphSpec, runner: Runner, close: () => Promise<void>): Engine {
  const outputNames = spec.outputs.map((s) => s.name);
  const fixed = spec.inputs.find((s) => s.fixedBatch !== undefined);
  return {
    format: 'onnx',
    verbs: ['predict'],
    // KServe v1 predictions are the first output's values (a converted classifier's label comes first).
    v1Output: outputNames[0],
    pluginMetadata: { inputs: spec.inputs.map((s) => s.meta), outputs: spec.outputs.map((s) => s.meta) },
    routes: [],
    hasFeedback: false,
    async predict(rows, ctx, opts): Promise<Prediction> {
      if (rows.length === 0) return { outputs: [] };
      const asked = opts?.outputs?.filter((n) => outputNames.includes(n));
      const fetches = asked?.length ? asked : outputNames;
      const parts: Record<string, FlatTensor>[] = [];
      let start = 0;
      for (const count of runsOf(rows.length, fixed?.fixedBatch, fixed?.name ?? '')) {
        const chunk = count === rows.length ? rows : rows.slice(start, start + count);
        start += count;
        const feeds: Record<string, FlatTensor> = {};
        for (const s of spec.inputs) feeds[s.name] = stackInput(chunk, s);
        parts.push(await runner(feeds, fetches, ctx));
      }
      const joined: Record<string, FlatTensor> = {};
      for (const name of fetches) joined[name] = concatTensors(parts.map((p) => p[name] as FlatTensor));
      return { outputs: splitOutputs(joined, rows.length) };
    },
    feedback: async () => {
      throw msError('MS_ERR_PREDICT_FAILED', { detail: 'ONNX models take no feedback' });
    },
    callRoute: async () => {
      throw msError('MS_ERR_PREDICT_FAILED', { detail: 'ONNX models have no custom routes' });
    },
    close,
  };
}
