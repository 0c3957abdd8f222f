// Adaptive batching across concurrent requests to one model: requests wait up to `maxLatencyMs` for others,
// and up to `maxBatchSize` rows go to the engine in one call (JS predictBatch, Python predict_batch or the
// vectorised estimator). Each request gets exactly its own rows back; a batch that fails fails only its own
// requests (one whose caller made a mistake, a 4xx, is run again request by request, so only the culprit
// fails); a request whose caller's deadline has passed when its batch is sent never runs (the data plane has
// answered it 504 already). The batch itself runs under the server's timeout: a caller's short deadline never
// cuts the others' work short. Requests that ask for different outputs, another v1 verb or carry parameters
// are not mixed: each such kind batches on its own; nor are requests of different callers (spec.auth), since a
// batch's calls to dependencies carry one caller's credentials.
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
  authorization: string | undefined,
) => Promise<Prediction>;

interface Waiting {
  requestId: string;
  rows: Record<string, unknown>[];
  /** The caller's deadline (epoch ms). */
  deadline: number;
  enqueued: number;
  resolve: (p: Prediction) => void;
  reject: (e: unknown) => void;
}

interface Queue {
  opts: PredictOptions | undefined;
  authorization: string | undefined;
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
  private readonly now: () => number;

  constructor(settings: BatchingSettings, run: RunBatch, timeout: () => ModelshipError, observer?: BatchObserver, now = Date.now) {
    this.settings = settings;
    this.run = run;
    this.timeout = timeout;
    this.observer = observer;
    this.now = now;
  }

  /** Queues one request's rows (`deadline`: its caller's, epoch ms); resolves with its own predictions. */
  submit(
    requestId: string,
    rows: Record<string, unknown>[],
    opts: PredictOptions | undefined,
    deadline: number,
    authorization?: string,
  ): Promise<Prediction> {
    const kind = batchKey(opts);
    // Alone: it cannot share, or it fills a batch by itself.
    if (kind === undefined || rows.length >= this.settings.maxBatchSize) return this.run(requestId, rows, opts, authorization);
    const key = authorization === undefined ? kind : `${kind}\0${authorization}`;
    return new Promise<Prediction>((resolve, reject) => {
      let q = this.queues.get(key);
      // A request that would overflow the waiting batch sends it off and starts the next one.
      if (q && q.rows + rows.length > this.settings.maxBatchSize) {
        this.flush(key, q);
        q = undefined;
      }
      if (!q) {
        q = { opts, authorization, waiting: [], rows: 0, timer: undefined };
        this.queues.set(key, q);
      }
      const w: Waiting = { requestId, rows, deadline, enqueued: performance.now(), resolve, reject };
      q.waiting.push(w);
      q.rows += rows.length;
      if (q.rows >= this.settings.maxBatchSize) this.flush(key, q);
      else if (!q.timer) {
        const queue = q;
        q.timer = setTimeout(() => this.flush(key, queue), this.settings.maxLatencyMs);
      }
    });
  }

  private flush(key: string, q: Queue): void {
    if (q.timer) clearTimeout(q.timer);
    this.queues.delete(key);
    const wall = this.now();
    const members: Waiting[] = [];
    for (const w of q.waiting) {
      if (w.deadline <= wall) w.reject(this.timeout());
      else members.push(w);
    }
    if (members.length === 0) return;
    const now = performance.now();
    const rows: Record<string, unknown>[] = [];
    for (const w of members) {
      for (const r of w.rows) rows.push(r);
      this.observer?.waited((now - w.enqueued) / 1000);
    }
    this.observer?.batch(rows.length, members.length);
    const first = members[0] as Waiting;
    const id = members.length === 1 ? first.requestId : `${first.requestId}+${members.length - 1}`;
    this.run(id, rows, q.opts, q.authorization).then(
      (p) => {
        let at = 0;
        for (const w of members) {
          const own: Outputs[] = p.outputs.slice(at, at + w.rows.length);
          at += w.rows.length;
          // The batch's metrics and events go with its first request (they are the plugin's, once per call).
          w.resolve(w === first && p.signals ? { outputs: own, signals: p.signals } : { outputs: own });
        }
      },
      (err: unknown) => {
        // The caller's mistake in one request must not fail the others: run each again on its own.
        if (members.length > 1 && isModelshipError(err) && err.statusCode < 500) {
          for (const w of members) this.run(w.requestId, w.rows, q.opts, q.authorization).then(w.resolve, w.reject);
          return;
        }
        for (const w of members) w.reject(err);
      },
    );
  }
}
