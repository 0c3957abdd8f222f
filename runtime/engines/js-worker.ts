// A worker thread of the JS engine's pool: loads the plugin once, runs init() at start, then serves tasks.
// Errors travel back as data (code + message), since class identity does not survive the thread boundary.
import { workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { describe, isModelshipError, msError } from '../errors.ts';
import { Dependencies, withModels } from '../dependencies.ts';
import { PluginHost } from './plugin-host.ts';
import type { BundleEngineOptions, CustomRouteRequest, RequestContext } from './types.ts';

/** What a worker thread starts with: the engine's options, but a log level for a logger of its own. */
export interface WorkerInit extends Omit<BundleEngineOptions, 'log' | 'workers'> {
  logLevel: string;
}

/** A call: with its caller's deadline (a call whose caller has gone is skipped) and credentials (for dependencies). */
export type WorkerTask =
  | { op: 'ping' }
  | ((
      | { op: 'predict'; rows: Record<string, unknown>[]; parameters?: Record<string, unknown> | undefined }
      | { op: 'feedback'; record: Record<string, unknown> }
      | { op: 'route'; index: number; req: CustomRouteRequest }
    ) & { requestId: string; deadline?: number | undefined; authorization?: string | undefined });

export type WorkerReply = { ok: true; value: unknown } | { ok: false; code: string; message: string };

const init = workerData as WorkerInit;
const log = pino({ level: init.logLevel, base: { model: init.modelName } });

const ready: Promise<PluginHost> = (async () => {
  const host = await PluginHost.load(init.bundleDir, init.entrypoint);
  await host.init(
    init.bundleDir,
    { modelName: init.modelName, modelVersion: init.modelVersion, parameters: init.parameters, log },
    init.initTimeoutMs,
  );
  return host;
})();
// Surface init failures through the first task instead of an unhandled rejection.
ready.catch(() => {});

// The pool aborts a timed-out task by terminating this worker, so the plugin never sees an abort itself.
const neverAborted = new AbortController().signal;

// Each thread its own pool of connections to the dependencies (their calls are not in the runtime's metrics).
const deps = init.dependencies && Object.keys(init.dependencies).length ? new Dependencies(init.dependencies) : undefined;

function ctx(task: Exclude<WorkerTask, { op: 'ping' }>, parameters?: Record<string, unknown>): RequestContext {
  const { requestId } = task;
  const c: RequestContext = { requestId, modelName: init.modelName, signal: neverAborted, log: log.child({ requestId }), parameters };
  if (task.deadline !== undefined) c.deadline = task.deadline;
  if (task.authorization !== undefined) c.authorization = task.authorization;
  return withModels(c, deps);
}

export default async function handle(task: WorkerTask): Promise<WorkerReply> {
  try {
    const host = await ready;
    if (task.op === 'ping') {
      return { ok: true, value: { routes: host.routes, pluginMetadata: host.pluginMetadata, hasFeedback: host.hasFeedback } };
    }
    // Its caller has gone (it waited in the pool's queue past the caller's deadline): not run at all.
    if (task.deadline !== undefined && Date.now() >= task.deadline) {
      const err = msError('MS_ERR_PREDICT_TIMEOUT', { ms: 0 });
      return { ok: false, code: err.code, message: 'the caller stopped waiting before the call began' };
    }
    switch (task.op) {
      case 'predict':
        return { ok: true, value: await host.predict(task.rows, ctx(task, task.parameters)) };
      case 'feedback':
        return { ok: true, value: await host.feedback(task.record, ctx(task)) };
      case 'route':
        return { ok: true, value: await host.callRoute(task.index, task.req, ctx(task)) };
    }
  } catch (err) {
    if (isModelshipError(err)) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'MS_ERR_SERVER_INTERNAL', message: `internal error: ${describe(err)}` };
  }
}
