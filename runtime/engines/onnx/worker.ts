// A worker thread of the ONNX engine's pool: opens its own session of the model at start, then runs
// stacked tensors through it, so a long session.run() blocks this thread and not the server's.
// Errors travel back as data (code + message), since class identity does not survive the thread boundary.
import { workerData } from 'node:worker_threads';
import { describe, isModelshipError } from '../../errors.ts';
import type { FlatTensor } from './graph.ts';
import { openSession } from './session.ts';

export interface OnnxWorkerInit {
  path: string;
  entrypoint: string;
}

/** A run carries its caller's deadline: a run whose caller has gone is skipped when its turn comes. */
export type OnnxTask = { op: 'ping' } | { op: 'run'; feeds: Record<string, FlatTensor>; fetches: string[]; deadline?: number | undefined };

export type OnnxReply = { ok: true; value: Record<string, FlatTensor> | null } | { ok: false; code: string; message: string };

const init = workerData as OnnxWorkerInit;
const ready = openSession(init.path, init.entrypoint);
// Unhandled until the first task asks; then it is that task's answer.
ready.catch(() => {});

export default async function run(task: OnnxTask): Promise<OnnxReply> {
  try {
    const session = await ready;
    if (task.op === 'ping') return { ok: true, value: null };
    if (task.deadline !== undefined && Date.now() >= task.deadline) {
      return { ok: false, code: 'MS_ERR_PREDICT_TIMEOUT', message: 'the caller stopped waiting before the run began' };
    }
    return { ok: true, value: await session.run(task.feeds, task.fetches) };
  } catch (err) {
    if (isModelshipError(err)) return { ok: false, code: err.code, message: err.message };
    return { ok: false, code: 'MS_ERR_PREDICT_FAILED', message: `predict failed: ${describe(err)}` };
  }
}
