// Admission control for one model: at most `concurrency` requests are at the engine at once, the others wait in
// one FIFO queue, and a request that would wait too long is refused at once (503 MS_ERR_MODEL_OVERLOADED with a
// Retry-After) instead of joining a queue that only grows. "Too long" is judged before the request waits: its
// expected wait is its place in the queue divided by the rate requests leave at while others wait (departures
// counted over windows of 100 ms, a moving average of those rates: what the engine really serves, whatever else
// shares the CPUs, and not thrown by one slow call or a pause; before any window, the service time divided by the
// concurrency), and it must fit within `maxWaitMs` with a quarter to spare for the estimate's error; `maxQueue` is a
// hard bound on top (memory). A
// request that still waits past `maxWaitMs` (the engine slowed down) gets the same 503; one whose caller's
// deadline passes while it waits, or would pass before its expected turn, gets the caller's 504. Either way it
// never reaches the engine.
//
// Hot path: a request that finds a free slot and nobody waiting is admitted synchronously (no promise, no timer).
// One sweeper timer runs only while requests wait.
import { type ModelshipError, msError } from './errors.ts';

export interface AdmissionSettings {
  /** Requests at the engine at once. */
  concurrency: number;
  /** Most requests waiting. */
  maxQueue: number;
  /** Longest a request waits for the engine. */
  maxWaitMs: number;
}

export interface AdmissionObserver {
  /** A request refused: `full` at once, `wait` after waiting `maxWaitMs`. */
  rejected(reason: 'full' | 'wait'): void;
}

interface Waiter {
  enqueued: number;
  /** The caller's deadline (epoch ms). */
  replyBy: number;
  resolve: () => void;
  reject: (err: ModelshipError) => void;
}

/** Weight of the newest sample in the moving averages. */
const EWMA_WEIGHT = 0.2;
/** The share of `maxWaitMs` an expected wait may take: the rest is room for the estimate's error. */
const EXPECTED_SHARE = 0.75;
/** Departures are counted over windows this long, each giving one sample of the rate. */
const RATE_WINDOW_MS = 100;

export class Admission {
  readonly settings: AdmissionSettings;
  private readonly model: string;
  /** The caller's 504, given the time it had (ms). */
  private readonly timeout: (budgetMs: number) => ModelshipError;
  private readonly observer: AdmissionObserver | undefined;
  private readonly now: () => number;
  private running = 0;
  private readonly queue: Waiter[] = [];
  /** Moving average of the time a request holds its slot, ms; undefined until one finished. */
  private serviceMs: number | undefined;
  /** Moving average of the rate requests leave at while others wait, per ms; undefined until one window closed. */
  private rate: number | undefined;
  /** The window being counted: when it began (undefined: none, nobody waiting) and its departures. */
  private windowStart: number | undefined;
  private windowCount = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    model: string,
    settings: AdmissionSettings,
    timeout: (budgetMs: number) => ModelshipError,
    observer?: AdmissionObserver,
    now: () => number = Date.now,
  ) {
    this.model = model;
    this.settings = settings;
    this.timeout = timeout;
    this.observer = observer;
    this.now = now;
  }

  /** Requests at the engine. */
  get inFlight(): number {
    return this.running;
  }

  /** Requests waiting for the engine. */
  get waiting(): number {
    return this.queue.length;
  }

  /** The expected wait of a request joining the queue at `position` (0: the head), ms. */
  private expectedWaitMs(position: number): number {
    const perDeparture =
      this.rate !== undefined && this.rate > 0
        ? 1 / this.rate
        : this.serviceMs === undefined
          ? 0
          : this.serviceMs / this.settings.concurrency;
    return (position + 1) * perDeparture;
  }

  private overloaded(detail: string): ModelshipError {
    // When to come back: the time the queue ahead takes to drain, in whole seconds (at least 1).
    const seconds = Math.max(1, Math.ceil(this.expectedWaitMs(this.queue.length) / 1000));
    const err = msError('MS_ERR_MODEL_OVERLOADED', { name: this.model, detail, seconds });
    err.retryAfterSeconds = seconds;
    return err;
  }

  /**
   * A request that would be refused were it to arrive now (the queue at its bound, or its expected wait too long),
   * refused before anything of it is read: the error, counted. Undefined: it may go on (and `enter` decides).
   */
  refuseEarly(): ModelshipError | undefined {
    if (this.running < this.settings.concurrency || this.queue.length === 0) return undefined;
    const position = this.queue.length;
    const expected = this.expectedWaitMs(position);
    if (position < this.settings.maxQueue && expected <= this.settings.maxWaitMs * EXPECTED_SHARE) return undefined;
    this.observer?.rejected('full');
    return this.overloaded(`${this.running} requests running and ${position} waiting; the expected wait is ${Math.round(expected)} ms`);
  }

  /**
   * Takes a slot: undefined when taken at once, else a promise that resolves when it is taken. Throws (or the
   * promise rejects with) MS_ERR_MODEL_OVERLOADED, or the caller's timeout when `replyBy` passes while it waits.
   * Every admitted request must `leave()` once the engine is done with it.
   */
  enter(replyBy: number): Promise<void> | undefined {
    const { concurrency, maxQueue, maxWaitMs } = this.settings;
    if (this.running < concurrency && this.queue.length === 0) {
      this.running++;
      return undefined;
    }
    const position = this.queue.length;
    const expected = this.expectedWaitMs(position);
    // Its caller would give up before its turn: answered now, as it would be then.
    const left = replyBy - this.now();
    if (expected >= left) throw this.timeout(left);
    if (position >= maxQueue) {
      this.observer?.rejected('full');
      throw this.overloaded(`${this.running} requests running and ${position} waiting, the most it queues`);
    }
    if (expected > maxWaitMs * EXPECTED_SHARE) {
      this.observer?.rejected('full');
      throw this.overloaded(
        `${position} requests waiting; the expected wait of ${Math.round(expected)} ms is too close to ${maxWaitMs} ms`,
      );
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ enqueued: this.now(), replyBy, resolve, reject });
      this.timer ??= setInterval(() => this.sweep(), Math.max(5, Math.min(50, Math.floor(maxWaitMs / 10)))).unref();
    });
  }

  /** Gives the slot back; `heldMs` (the time it was held) feeds the service-time average. */
  leave(heldMs: number): void {
    this.running--;
    this.serviceMs = this.serviceMs === undefined ? heldMs : this.serviceMs + EWMA_WEIGHT * (heldMs - this.serviceMs);
    if (this.queue.length > 0) {
      const now = this.now();
      if (this.windowStart === undefined) {
        this.windowStart = now;
        this.windowCount = 0;
      } else {
        this.windowCount++;
        const span = now - this.windowStart;
        if (span >= RATE_WINDOW_MS) {
          const sample = this.windowCount / span;
          this.rate = this.rate === undefined ? sample : this.rate + EWMA_WEIGHT * (sample - this.rate);
          this.windowStart = now;
          this.windowCount = 0;
        }
      }
    } else this.windowStart = undefined;
    while (this.running < this.settings.concurrency && this.queue.length > 0) {
      const next = this.queue.shift() as Waiter;
      this.running++;
      next.resolve();
    }
    this.idle();
  }

  private sweep(): void {
    const now = this.now();
    const oldest = now - this.settings.maxWaitMs;
    for (let i = 0; i < this.queue.length; ) {
      const w = this.queue[i] as Waiter;
      if (w.enqueued <= oldest) {
        this.queue.splice(i, 1);
        this.observer?.rejected('wait');
        w.reject(this.overloaded(`waited ${now - w.enqueued} ms for the engine, the most it waits`));
      } else if (w.replyBy <= now) {
        this.queue.splice(i, 1);
        w.reject(this.timeout(w.replyBy - w.enqueued));
      } else i++;
    }
    this.idle();
  }

  private idle(): void {
    if (this.queue.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}

/** The admission bounds: configured ones win, else from the engine's capacity. Pure. */
export function admissionSettings(
  capacity: number | undefined,
  configured: { maxConcurrency: number; maxQueue: number; maxQueueWaitMs: number },
  inProcessConcurrency: number,
  batchSize = 1,
): AdmissionSettings {
  const concurrency = configured.maxConcurrency > 0 ? configured.maxConcurrency : (capacity ?? inProcessConcurrency) * batchSize;
  return {
    concurrency,
    maxQueue: configured.maxQueue > 0 ? configured.maxQueue : 1024,
    maxWaitMs: configured.maxQueueWaitMs,
  };
}
