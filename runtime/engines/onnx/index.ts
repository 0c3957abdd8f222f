// The ONNX engine: a bundle holding `model.onnx` and no code. Inputs, outputs, datatypes and shapes come
// from the graph (the manifest may override them by name); the rows of a request, or of a whole adaptive
// batch, are stacked into one tensor per input and run in one call. session.run() holds its thread, so a
// model that runs in about a millisecond or less stays in the server's thread, and a heavier one (timed on
// a warm-up run at load, or a large bundle) runs in a pool of worker threads, each with its own session,
// where a run is never cut short: terminating a thread inside onnxruntime aborts the whole process (measured by
// bench:overload: `terminate called after throwing an instance of 'Napi::Error'`), and a run is bounded compute
// anyway. A request past its deadline (the caller's or the server's) is answered 504 and its run's result dropped;
// a run whose caller has gone before it starts is skipped.
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { TensorMetadata } from '../../bundle/manifest.ts';
import { type ErrorCode, ModelshipError, msError } from '../../errors.ts';
import type { BundleEngineOptions, Engine, Prediction, RequestContext } from '../types.ts';
import {
  allocate,
  checkGraphDims,
  concatTensors,
  type FlatTensor,
  type GraphSpec,
  graphSpec,
  splitOutputs,
  stackInput,
  type TensorSpec,
} from './graph.ts';
import { type OnnxSession, openSession } from './session.ts';
import type { OnnxReply, OnnxTask, OnnxWorkerInit } from './worker.ts';

export interface OnnxEngineOptions extends BundleEngineOptions {
  /** 0: by the model's cost (HEAVY_RUN_MS, HEAVY_MODEL_BYTES); N: N worker threads. */
  workers: number;
  /** Worker threads for a heavy model when none were configured (the container's CPUs). */
  autoWorkers: number;
  /** The manifest's `inputs` / `outputs`, laid over the graph's by name. */
  inputs?: readonly TensorMetadata[] | undefined;
  outputs?: readonly TensorMetadata[] | undefined;
}

/** A warm-up run of one instance slower than this moves the model to worker threads. */
export const HEAVY_RUN_MS = 1;
/** A bundle larger than this (the graph and its external data) runs in worker threads whatever its warm-up. */
export const HEAVY_MODEL_BYTES = 64 * 1024 * 1024;

type Runner = (feeds: Record<string, FlatTensor>, fetches: string[], ctx: RequestContext) => Promise<Record<string, FlatTensor>>;

async function bundleBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) total += (await stat(join(e.parentPath, e.name))).size;
  }
  return total;
}

/** Zeros (empty strings, false) of one instance per input, symbolic dimensions 1: what a warm-up runs. Pure. */
export function warmupFeeds(inputs: readonly TensorSpec[]): Record<string, FlatTensor> {
  const feeds: Record<string, FlatTensor> = {};
  for (const s of inputs) {
    const dims = [s.fixedBatch ?? 1, ...s.graphDims.map((d) => (typeof d === 'number' && d >= 0 ? d : 1))];
    const data = allocate(
      s.type,
      dims.reduce((a, b) => a * b, 1),
    );
    if (Array.isArray(data)) data.fill('');
    feeds[s.name] = { type: s.type, dims, data };
  }
  return feeds;
}

/** The second of two warm-up runs in ms (the first pays one-time allocations), or undefined if it failed. */
async function timeWarmup(session: OnnxSession, spec: GraphSpec): Promise<number | undefined> {
  const feeds = warmupFeeds(spec.inputs);
  const fetches = spec.outputs.map((s) => s.name);
  try {
    await session.run(feeds, fetches);
    const t0 = performance.now();
    await session.run(feeds, fetches);
    return performance.now() - t0;
  } catch {
    return undefined; // a graph that zeros do not suit (an index input, say): its size decides
  }
}

export async function createOnnxEngine(opts: OnnxEngineOptions): Promise<Engine> {
  const path = join(opts.bundleDir, opts.entrypoint);
  const session = await openSession(path, opts.entrypoint);
  let spec: GraphSpec;
  try {
    spec = graphSpec(session.inputs, session.outputs, opts, opts.entrypoint);
  } catch (err) {
    await session.release();
    throw err;
  }
  const bytes = await bundleBytes(opts.bundleDir);
  const warmupMs = await timeWarmup(session, spec);
  const heavy = bytes > HEAVY_MODEL_BYTES || (warmupMs ?? 0) > HEAVY_RUN_MS;
  const threads = opts.workers > 0 ? opts.workers : heavy ? opts.autoWorkers : 0;
  let runner: Runner;
  let close: () => Promise<void>;
  if (threads > 0) {
    await session.release();
    ({ runner, close } = await pooled(opts, path, threads));
  } else {
    runner = (feeds, fetches) => session.run(feeds, fetches);
    close = () => session.release();
  }
  opts.log.info(
    {
      inputs: spec.inputs.map((s) => s.meta),
      outputs: spec.outputs.map((s) => s.meta),
      ...(spec.skipped.length ? { skippedOutputs: spec.skipped } : {}),
      threads: threads || 'server',
      bytes,
      ...(warmupMs !== undefined ? { warmupMs: Number(warmupMs.toFixed(3)) } : {}),
    },
    'ONNX model loaded',
  );
  return engineOver(spec, runner, close, threads);
}

function unwrap(reply: OnnxReply): Record<string, FlatTensor> | null {
  if (reply.ok) return reply.value;
  throw ModelshipError.restore(reply.code as ErrorCode, reply.message);
}

async function pooled(opts: OnnxEngineOptions, path: string, threads: number) {
  const pool = new Piscina({
    filename: fileURLToPath(new URL('./worker.ts', import.meta.url)),
    minThreads: threads,
    maxThreads: threads,
    concurrentTasksPerWorker: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData: { path, entrypoint: opts.entrypoint } satisfies OnnxWorkerInit,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const pings = Array.from({ length: threads }, () => pool.run({ op: 'ping' } satisfies OnnxTask) as Promise<OnnxReply>);
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(msError('MS_ERR_PLUGIN_INIT_TIMEOUT', { seconds: opts.initTimeoutMs / 1000 })), opts.initTimeoutMs);
    });
    for (const reply of await Promise.race([Promise.all(pings), timeout])) unwrap(reply);
  } catch (err) {
    await pool.destroy();
    throw err;
  } finally {
    clearTimeout(timer);
  }
  const runner: Runner = async (feeds, fetches, ctx) => {
    try {
      // No abort signal: piscina would terminate the thread mid-run (see above).
      const reply = (await pool.run({ op: 'run', feeds, fetches, deadline: ctx.deadline } satisfies OnnxTask)) as OnnxReply;
      return unwrap(reply) as Record<string, FlatTensor>;
    } catch (err) {
      if (err instanceof ModelshipError) throw err;
      if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
      throw msError('MS_ERR_PREDICT_FAILED', { detail: `worker: ${(err as Error).message}` }, err);
    }
  };
  // Closing waits for the runs in progress (never cut short: see above), then ends the threads.
  return { runner, close: () => pool.close() };
}

/**
 * How one call's rows go through a graph whose batch dimension is fixed: runs of that many rows, the last
 * one padded (with copies of the last row, whose answers are dropped). Unfixed: all rows in one run. Pure.
 */
export function runsOf(rows: number, fixedBatch: number | undefined): { start: number; count: number; pad: number }[] {
  if (fixedBatch === undefined) return [{ start: 0, count: rows, pad: 0 }];
  const runs: { start: number; count: number; pad: number }[] = [];
  for (let start = 0; start < rows; start += fixedBatch) {
    const count = Math.min(fixedBatch, rows - start);
    runs.push({ start, count, pad: fixedBatch - count });
  }
  return runs;
}

/** The first `n` rows of a tensor whose first dimension is the batch. Pure. */
export function firstRows(t: FlatTensor, n: number): FlatTensor {
  const rows = t.dims[0] as number;
  if (n >= rows) return t;
  const per = rows === 0 ? 0 : t.data.length / rows;
  return { type: t.type, data: t.data.slice(0, n * per) as FlatTensor['data'], dims: [n, ...t.dims.slice(1)] };
}

function engineOver(spec: GraphSpec, runner: Runner, close: () => Promise<void>, threads: number): Engine {
  const parallel = threads > 0;
  const outputNames = spec.outputs.map((s) => s.name);
  const fixed = spec.inputs.find((s) => s.fixedBatch !== undefined)?.fixedBatch;
  const runChunk = async (chunk: readonly Record<string, unknown>[], keep: number, fetches: string[], ctx: RequestContext) => {
    const feeds: Record<string, FlatTensor> = {};
    for (const s of spec.inputs) feeds[s.name] = stackInput(chunk, s);
    checkGraphDims(spec.inputs, feeds);
    const out = await runner(feeds, fetches, ctx);
    if (keep === chunk.length) return out;
    const kept: Record<string, FlatTensor> = {};
    for (const name of fetches) kept[name] = firstRows(out[name] as FlatTensor, keep);
    return kept;
  };
  return {
    format: 'onnx',
    metadata: {
      inputs: spec.inputs.map((s) => s.meta),
      outputs: spec.outputs.map((s) => s.meta),
      methods: ['predict'],
      // A prediction stands for the first output (a converted classifier's label comes first).
      primaryOutput: outputNames[0],
      routes: [],
      hasFeedback: false,
      // In the server's thread a run holds the thread: one at a time.
      capacity: parallel ? threads : 1,
    },
    serving: () => true,
    async predict(rows, ctx, opts): Promise<Prediction> {
      if (rows.length === 0) return { outputs: [] };
      const asked = opts?.outputs?.filter((n) => outputNames.includes(n));
      const fetches = asked?.length ? asked : outputNames;
      const runs = runsOf(rows.length, fixed).map(({ start, count, pad }) => {
        const chunk = count === rows.length ? rows : rows.slice(start, start + count);
        const padded = pad ? [...chunk, ...Array.from({ length: pad }, () => chunk[chunk.length - 1] as Record<string, unknown>)] : chunk;
        return { padded, count };
      });
      // In the pool the runs of a fixed-batch graph spread over the threads; in the server's thread, one by one.
      const parts = parallel
        ? await Promise.all(runs.map((r) => runChunk(r.padded, r.count, fetches, ctx)))
        : await runs.reduce<Promise<Record<string, FlatTensor>[]>>(
            async (acc, r) => [...(await acc), await runChunk(r.padded, r.count, fetches, ctx)],
            Promise.resolve([]),
          );
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
