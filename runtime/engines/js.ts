// The JS engine: runs a bundle's predict plugin in-process, or, for CPU-heavy plugins, in a pool of worker
// threads (each loads the plugin and runs its own init()) so one slow request does not stall the others.
// In the pool a request that passes the server's timeout has its worker terminated and replaced (a real
// cancellation), at most `timeoutKillsPerMinute` times a minute; beyond that it runs on and its answer is dropped.
// A caller's shorter deadline never terminates a worker: a call whose caller has gone is skipped when its turn
// comes.
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { type ErrorCode, ModelshipError, msError } from '../errors.ts';
import { Dependencies, type DependencyMetrics, withModels } from '../dependencies.ts';
import { PluginHost } from './plugin-host.ts';
import { KillBudget } from './kill-budget.ts';
import type {
  BundleEngineOptions,
  CustomRouteRequest,
  CustomRouteResponse,
  CustomRouteSpec,
  Engine,
  FeedbackResult,
  PluginMetadata,
  Prediction,
  RequestContext,
} from './types.ts';
import type { WorkerInit, WorkerReply, WorkerTask } from './js-worker.ts';

export interface JsEngineOptions extends BundleEngineOptions {
  /** 0: in-process; N > 0: a pool of N worker threads. */
  workers: number;
  logLevel: string;
  dependencyMetrics?: DependencyMetrics | undefined;
  timeoutKillsPerMinute?: number | undefined;
  onWorkerRestart?: ((reason: 'crash' | 'timeout') => void) | undefined;
}

const PREDICT_ONLY = ['predict'] as const;

export async function createJsEngine(opts: JsEngineOptions): Promise<Engine> {
  return opts.workers > 0 ? createPoolEngine(opts) : createInProcessEngine(opts);
}

async function createInProcessEngine(opts: JsEngineOptions): Promise<Engine> {
  const host = await PluginHost.load(opts.bundleDir, opts.entrypoint);
  const deps =
    opts.dependencies && Object.keys(opts.dependencies).length ? new Dependencies(opts.dependencies, opts.dependencyMetrics) : undefined;
  await host.init(
    opts.bundleDir,
    { modelName: opts.modelName, modelVersion: opts.modelVersion, parameters: opts.parameters, log: opts.log },
    opts.initTimeoutMs,
  );
  return {
    format: 'js',
    metadata: {
      ...host.pluginMetadata,
      methods: PREDICT_ONLY,
      routes: host.routes,
      hasFeedback: host.hasFeedback,
      capacity: undefined,
    },
    serving: () => true,
    predict: (rows, ctx) => host.predict(rows, withModels(ctx, deps)),
    feedback: (record, ctx) => host.feedback(record, withModels(ctx, deps)),
    callRoute: (i, req, ctx) => host.callRoute(i, req, withModels(ctx, deps)),
    close: async () => deps?.close(),
  };
}

function unwrap<T>(reply: WorkerReply): T {
  if (reply.ok) return reply.value as T;
  throw ModelshipError.restore(reply.code as ErrorCode, reply.message);
}

async function createPoolEngine(opts: JsEngineOptions): Promise<Engine> {
  const workerData: WorkerInit = {
    bundleDir: opts.bundleDir,
    entrypoint: opts.entrypoint,
    modelName: opts.modelName,
    modelVersion: opts.modelVersion,
    parameters: opts.parameters,
    initTimeoutMs: opts.initTimeoutMs,
    logLevel: opts.logLevel,
    dependencies: opts.dependencies,
  };
  const pool = new Piscina({
    filename: fileURLToPath(new URL('./js-worker.ts', import.meta.url)),
    minThreads: opts.workers,
    maxThreads: opts.workers,
    concurrentTasksPerWorker: 1,
    idleTimeout: Number.POSITIVE_INFINITY,
    workerData,
  });
  let info: { routes: CustomRouteSpec[]; pluginMetadata: PluginMetadata | undefined; hasFeedback: boolean };
  try {
    // One ping per worker, concurrently: each lands on an idle worker and waits for its init().
    const replies = await Promise.all(
      Array.from({ length: opts.workers }, () => pool.run({ op: 'ping' } satisfies WorkerTask) as Promise<WorkerReply>),
    );
    info = unwrap(replies[0] as WorkerReply);
    for (const r of replies) unwrap(r);
  } catch (err) {
    await pool.destroy();
    if (err instanceof ModelshipError) throw err;
    throw msError('MS_ERR_PLUGIN_INIT_FAILED', { detail: `worker: ${(err as Error).message}` }, err);
  }
  const budget = new KillBudget(opts.timeoutKillsPerMinute ?? 6);
  const run = async <T>(task: WorkerTask, ctx: RequestContext): Promise<T> => {
    // Terminating the thread is the only way to stop a running call: done on the server's timeout, within the budget.
    let ended = false;
    const signal = budget.guard(
      ctx.signal,
      () => {
        opts.onWorkerRestart?.('timeout');
        opts.log.warn({ requestId: ctx.requestId }, 'request passed the server timeout; terminating its worker thread');
      },
      () => ended,
    );
    try {
      const framed = { ...task, deadline: ctx.deadline, ...(ctx.authorization ? { authorization: ctx.authorization } : {}) } as WorkerTask;
      return unwrap<T>((await pool.run(framed, { signal })) as WorkerReply);
    } catch (err) {
      if (err instanceof ModelshipError) throw err;
      if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
      throw msError('MS_ERR_PREDICT_FAILED', { detail: `worker: ${(err as Error).message}` }, err);
    } finally {
      ended = true;
    }
  };
  return {
    format: 'js',
    metadata: {
      ...info.pluginMetadata,
      methods: PREDICT_ONLY,
      routes: info.routes,
      hasFeedback: info.hasFeedback,
      capacity: opts.workers,
    },
    serving: () => true,
    predict: (rows, ctx) => run<Prediction>({ op: 'predict', rows, requestId: ctx.requestId, parameters: ctx.parameters }, ctx),
    feedback: (record, ctx) => run<FeedbackResult>({ op: 'feedback', record, requestId: ctx.requestId }, ctx),
    callRoute: (index: number, req: CustomRouteRequest, ctx: RequestContext) =>
      run<CustomRouteResponse>({ op: 'route', index, req, requestId: ctx.requestId }, ctx),
    close: () => pool.destroy(),
  };
}
