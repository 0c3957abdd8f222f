// Adaptive batching across concurrent requests to one model: requests wait up to `maxLatencyMs` for others,
// and up to `maxBatchSize` rows go to the engine in one call (JS predictBatch, Python predict_batch or the
// vectorised estimator). Each request gets exactly its own rows back; a batch that fails fails only its own
// requests (one whose caller made a mistake, a 4xx, is run again request by request, so only the culprit
// fails); a request whose deadline passes while it waits answers 504 and never runs. Requests that ask for
// different outputs, another v1 verb or carry parameters are not mixed: each such kind batches on its own.
import type { Outputs } from './engines/outputs.ts';
import type { Prediction, PredictOptions } from './engines/types.ts';
import { isModelshipError, type ModelshipError } from './errors.ts';

export interface BatchingSettings {
  maxBatchSize: number;
  maxLatencyMs: number;
}

/** What the batcher needs from the data plane: run one engine call for a whole batch. */
export type RunBatch = (
  requestId: string,
  rows: Record<string, unknown>[],
  opts: PredictOptions | undefined,
  deadline: number,
) => Promise<Prediction>;

interface Waiting {
  requestId: string;
  rows: Record<string, unknown>[];
  deadline: number;
  enqueued: number;
  resolve: (p: Prediction) => void;
  reject: (e: unknown) => void;
  done: boolean;
}

interface Queue {
  opts: PredictOptions | undefined;
  waiting: Waiting[];
  rows: number;
  timer: NodeJS.Timeout | undefined;
}

export interface BatchObserver {
  batch(size: number, requests: number): void;
  waited(seconds: number): void;
}

/** The key of requests that may share a batch. Pure. */
export function batchKey(opts: PredictOptions | undefined): string | undefined {
  if (opts?.parameters && Object.keys(opts.parameters).length > 0) return undefined;
  const method = opts?.method ?? 'predict';
  const outputs = opts?.outputs?.join('\0') ?? '';
  return method === 'predict' && outputs === '' ? '' : `${method}\0${outputs}`;
}

export class Batcher {
  private readonly settings: BatchingSettings;
  private readonly run: RunBatch;
  private readonly observer: BatchObserver | undefined;
  private readonly timeout: () => ModelshipError;
  private readonly queues = new Map<string, Queue>();

  constructor(settings: BatchingSettings, run: RunBatch, timeout: () => ModelshipError, observer?: BatchObserver) {
    this.settings = settings;
    this.run = run;
    this.timeout = timeout;
    this.observer = observer;
  }

  /** Queues one request's rows; resolves with its own predictions. */
  submit(requestId: string, rows: Record<string, unknown>[], opts: PredictOptions | undefined, deadline: number): Promise<Prediction> {
    const key = batchKey(opts);
    // Alone: it cannot share, or it fills a batch by itself.
    if (key === undefined || rows.length >= this.settings.maxBatchSize) return this.run(requestId, rows, opts, deadline);
    return new Promise<Prediction>((resolve, reject) => {
      let q = this.queues.get(key);
      // A request that would overflow the waiting batch sends it off and starts the next one.
      if (q && q.rows + rows.length > this.settings.maxBatchSize) {
        this.flush(key, q);
        q = undefined;
      }
      if (!q) {
        q = { opts, waiting: [], rows: 0, timer: undefined };
        this.queues.set(key, q);
      }
      const w: Waiting = { requestId, rows, deadline, enqueued: performance.now(), resolve, reject, done: false };
      q.waiting.push(w);
      q.rows += rows.length;
      if (q.rows >= this.settings.maxBatchSize) this.flush(key, q);
      else if (!q.timer) {
        const queue = q;
        q.timer = setTimeout(() => this.flush(key, queue), this.settings.maxLatencyMs);
      }
      // A deadline that passes while the request waits answers it now; it is skipped at the flush.
      const left = deadline - Date.now();
      if (left < this.settings.maxLatencyMs) {
        setTimeout(
          () => {
            if (!w.done && this.queues.get(key)?.waiting.includes(w)) {
              w.done = true;
              reject(this.timeout());
            }
          },
          Math.max(0, left),
        ).unref();
      }
    });
  }

  private flush(key: string, q: Queue): void {
    if (q.timer) clearTimeout(q.timer);
    this.queues.delete(key);
    const members = q.waiting.filter((w) => !w.done);
    if (members.length === 0) return;
    const now = performance.now();
    const rows: Record<string, unknown>[] = [];
    let deadline = Number.POSITIVE_INFINITY;
    for (const w of members) {
      for (const r of w.rows) rows.push(r);
      deadline = Math.min(deadline, w.deadline);
      this.observer?.waited((now - w.enqueued) / 1000);
    }
    this.observer?.batch(rows.length, members.length);
    const first = members[0] as Waiting;
    const id = members.length === 1 ? first.requestId : `${first.requestId}+${members.length - 1}`;
    this.run(id, rows, q.opts, deadline).then(
      (p) => {
        let at = 0;
        for (const w of members) {
          const own: Outputs[] = p.outputs.slice(at, at + w.rows.length);
          at += w.rows.length;
          w.done = true;
          // The batch's metrics and events go with its first request (they are the plugin's, once per call).
          w.resolve(w === first && p.signals ? { outputs: own, signals: p.signals } : { outputs: own });
        }
      },
      (err: unknown) => {
        // The caller's mistake in one request must not fail the others: run each again on its own.
        if (members.length > 1 && isModelshipError(err) && err.statusCode < 500) {
          for (const w of members) this.run(w.requestId, w.rows, q.opts, w.deadline).then(w.resolve, w.reject);
          return;
        }
        for (const w of members) {
          w.done = true;
          w.reject(err);
        }
      },
    );
  }
}
