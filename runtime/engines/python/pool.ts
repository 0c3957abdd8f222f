// A fixed pool of Python worker processes, each with its own init. Requests wait in one queue and go to
// the least busy worker; each worker holds up to PIPELINE_DEPTH of them (one running, the next already in
// its pipe, so it never idles while this process handles a reply). Two deadlines:
// - a request whose caller's deadline (`deadline`) has passed when its turn comes never runs (here, or in the
//   worker, which skips it); a caller's deadline never kills a worker;
// - a request that passes the server's own timeout (its AbortSignal) while it runs kills and replaces its worker
//   (the only real cancellation of Python code), within a budget of kills per minute (kill-budget.ts) and with
//   backoff; past the budget it runs on and its answer is dropped.
// A worker that dies fails only the request it was running (those behind it go back to the queue) and is
// restarted with backoff; `maxCrashes` crashes in a row (no request answered in between) are fatal: the model
// is not ready and the runtime reports why. While no worker is up the engine is not serving (not ready).
import type { Logger } from 'pino';
import { type ModelshipError, isModelshipError, msError } from '../../errors.ts';
import { KillBudget } from '../kill-budget.ts';
import { NotStarted, type PythonWorker, type Reply, replyError } from './worker.ts';

/** Requests a worker holds at once: the one running and the next ones, waiting in its pipe (bench:python: 4
 * serves ~8% more than 2 with one worker; a deeper pipe only adds head-of-line waiting). */
export const PIPELINE_DEPTH = 4;

export interface PoolOptions {
  size: number;
  spawn: (index: number) => PythonWorker;
  /** The init message every worker gets first. */
  init: unknown;
  initTimeoutMs: number;
  log: Logger;
  maxCrashes: number;
  /** First restart delay; doubles per crash in a row, up to 10 s. */
  backoffMs: number;
  onFatal: (err: ModelshipError) => void;
  modelName: string;
  /** Kills the server's timeout may make per minute. */
  timeoutKillsPerMinute: number;
  onRestart?: ((reason: 'crash' | 'timeout') => void) | undefined;
}

interface Task {
  message: unknown;
  requestId: string;
  /** The caller's deadline (epoch ms): past it, the task is not started. */
  deadline: number | undefined;
  signal: AbortSignal | undefined;
  resolve: (r: Reply) => void;
  reject: (e: unknown) => void;
  onAbort: (() => void) | undefined;
  slot: Slot | undefined;
  aborted: boolean;
}

interface Slot {
  index: number;
  worker: PythonWorker | undefined;
  ready: boolean;
  /** In the order sent: the first is running. */
  tasks: Task[];
  /** Killed on purpose (a timeout): replaced at once, not counted as a crash. */
  killed: boolean;
}

export class WorkerPool {
  private readonly o: PoolOptions;
  private readonly slots: Slot[];
  private readonly queue: Task[] = [];
  private crashes = 0;
  /** Where the next re-queued request goes, while one worker's waiting requests come back. */
  private requeued = 0;
  private closing = false;
  private fatal: ModelshipError | undefined;
  private readonly kills: KillBudget;

  constructor(o: PoolOptions) {
    this.o = o;
    this.kills = new KillBudget(o.timeoutKillsPerMinute);
    this.slots = Array.from({ length: o.size }, (_, index) => ({ index, worker: undefined, ready: false, tasks: [], killed: false }));
  }

  /** Starts every worker; resolves with the first one's init reply once all have loaded. */
  async start(): Promise<Record<string, unknown>> {
    const results = await Promise.allSettled(this.slots.map((s) => this.startWorker(s)));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      this.closing = true;
      for (const s of this.slots) s.worker?.kill();
      throw (failed as PromiseRejectedResult).reason;
    }
    for (const s of this.slots) s.ready = true;
    return (results[0] as PromiseFulfilledResult<Record<string, unknown>>).value;
  }

  private async startWorker(slot: Slot): Promise<Record<string, unknown>> {
    const worker = this.o.spawn(slot.index);
    slot.worker = worker;
    slot.killed = false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        worker.kill();
        reject(msError('MS_ERR_PLUGIN_INIT_TIMEOUT', { seconds: Math.round(this.o.initTimeoutMs / 100) / 10 }));
      }, this.o.initTimeoutMs);
    });
    let reply: Reply;
    try {
      reply = await Promise.race([worker.call(this.o.init), timeout]);
    } catch (err) {
      worker.kill();
      // A worker that died during init: its own error (a segfault in an import) says more as init's.
      if (isModelshipError(err) && err.code === 'MS_ERR_WORKER_CRASHED') {
        throw msError('MS_ERR_PLUGIN_INIT_FAILED', { detail: `the worker died while loading (${await worker.exited})` });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
    if (!reply.ok) {
      if (reply.trace?.length) this.o.log.error({ worker: slot.index, trace: reply.trace.join('\n') }, 'loading the bundle failed');
      worker.kill();
      throw replyError(reply);
    }
    void worker.exited.then((how) => this.onExit(slot, worker, how));
    return reply;
  }

  private onExit(slot: Slot, worker: PythonWorker, how: string): void {
    if (slot.worker !== worker || this.closing) return;
    slot.worker = undefined;
    slot.ready = false;
    if (slot.killed) {
      // Back off by the kills of the last minute: a model whose calls keep running too long is not restarted
      // back to back.
      const delay = Math.min(10_000, this.o.backoffMs * 2 ** Math.max(0, this.kills.recent - 1));
      this.o.log.warn(
        { worker: slot.index, pid: worker.pid, delayMs: delay },
        'worker killed after a request passed the server timeout; starting a new one',
      );
      this.o.onRestart?.('timeout');
      this.respawn(slot, delay);
      return;
    }
    this.crashes++;
    this.o.onRestart?.('crash');
    this.o.log.error({ worker: slot.index, pid: worker.pid, how, crashesInARow: this.crashes }, 'worker died; restarting it');
    this.afterCrash(slot, how);
  }

  private afterCrash(slot: Slot, how: string): void {
    if (this.crashes >= this.o.maxCrashes) {
      this.fatal = msError('MS_ERR_WORKER_CRASHED', {
        worker: slot.index,
        how,
        detail: `; ${this.crashes} crashes in a row, giving up`,
      });
      this.closing = true;
      for (const t of this.queue.splice(0)) t.reject(this.fatal);
      this.o.onFatal(this.fatal);
      return;
    }
    this.respawn(slot, Math.min(10_000, this.o.backoffMs * 2 ** (this.crashes - 1)));
  }

  private respawn(slot: Slot, delayMs: number): void {
    const timer = setTimeout(() => {
      if (this.closing) return;
      this.startWorker(slot).then(
        () => {
          slot.ready = true;
          this.dispatch();
        },
        (err: unknown) => {
          if (this.closing) return;
          this.crashes++;
          this.o.log.error({ worker: slot.index, err, crashesInARow: this.crashes }, 'restarting the worker failed');
          slot.worker = undefined;
          this.afterCrash(slot, isModelshipError(err) ? err.message : String(err));
        },
      );
    }, delayMs);
    timer.unref();
  }

  /** Whether a worker is up to take a call. */
  get serving(): boolean {
    return !this.fatal && this.slots.some((s) => s.ready && s.worker?.alive);
  }

  /**
   * Runs one message on the next idle worker. `deadline`: the caller's (not started past it); `signal`: the
   * server's timeout (kills the worker running it, within the budget).
   */
  run(message: unknown, requestId: string, signal: AbortSignal | undefined, deadline?: number): Promise<Reply> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.closing) return Promise.reject(msError('MS_ERR_MODEL_NOT_READY', { name: this.o.modelName, detail: 'shutting down' }));
    return new Promise<Reply>((resolve, reject) => {
      const task: Task = { message, requestId, deadline, signal, resolve, reject, onAbort: undefined, slot: undefined, aborted: false };
      if (signal) {
        if (signal.aborted) {
          reject(signal.reason);
          return;
        }
        task.onAbort = () => this.abort(task);
        signal.addEventListener('abort', task.onAbort, { once: true });
      }
      this.queue.push(task);
      this.dispatch();
    });
  }

  private abort(task: Task): void {
    const slot = task.slot;
    if (slot && slot.tasks[0] === task) {
      // Python code cannot be interrupted from outside: the worker goes, a new one replaces it (the requests
      // behind this one in its pipe go back to the queue). Past the budget it runs on; its answer is dropped.
      if (!this.kills.take()) {
        const retryMs = this.kills.waitMs;
        this.o.log.warn(
          { worker: slot.index, requestId: task.requestId, retryMs },
          'request passed the server timeout; the kill budget is spent, so it runs on until the budget allows a kill',
        );
        // Still running then: killed then (a call that hangs never holds its worker for good).
        setTimeout(() => {
          if (!this.closing && slot.tasks[0] === task && !task.aborted) this.abort(task);
        }, retryMs).unref();
        return;
      }
      task.aborted = true;
      slot.killed = true;
      slot.worker?.kill();
    } else if (!slot) {
      task.aborted = true;
      const i = this.queue.indexOf(task);
      if (i >= 0) this.queue.splice(i, 1);
    }
    // Still in a worker's pipe: the worker skips it (its caller's deadline has passed), or runs it and the
    // answer is dropped.
    else task.aborted = true;
    task.reject(task.signal?.reason);
  }

  /** The next task whose caller still waits; those whose caller has gone are answered, never sent. */
  private next(): Task | undefined {
    const now = Date.now();
    for (;;) {
      const task = this.queue.shift();
      if (!task || task.deadline === undefined || task.deadline > now) return task;
      if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
      task.reject(msError('MS_ERR_PREDICT_TIMEOUT', { ms: 0 }));
    }
  }

  private dispatch(): void {
    // Fill the idle workers first, then give each a next request for its pipe.
    for (let depth = 0; depth < PIPELINE_DEPTH && this.queue.length > 0; depth++) {
      for (const slot of this.slots) {
        if (this.queue.length === 0) return;
        if (!slot.ready || slot.tasks.length !== depth || !slot.worker?.alive) continue;
        const task = this.next();
        if (!task) return;
        this.send(slot, slot.worker, task);
      }
    }
  }

  private send(slot: Slot, worker: PythonWorker, task: Task): void {
    slot.tasks.push(task);
    task.slot = slot;
    worker.call(task.message, task.requestId).then(
      (reply) => {
        this.crashes = 0;
        this.finish(slot, task);
        task.resolve(reply);
        this.dispatch();
      },
      (err: unknown) => {
        const i = slot.tasks.indexOf(task);
        if (i >= 0) slot.tasks.splice(i, 1);
        if (err instanceof NotStarted && !task.aborted && !this.closing) {
          // Back to the front of the queue, in the order they were sent (their rejections arrive in order).
          task.slot = undefined;
          this.queue.splice(this.requeued++, 0, task);
          if (this.requeued === 1) {
            queueMicrotask(() => {
              this.requeued = 0;
            });
          }
        } else {
          this.finish(slot, task);
          task.reject(err);
        }
        this.dispatch();
      },
    );
  }

  private finish(slot: Slot, task: Task): void {
    const i = slot.tasks.indexOf(task);
    if (i >= 0) slot.tasks.splice(i, 1);
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
  }

  async close(graceMs: number): Promise<void> {
    this.closing = true;
    for (const t of this.queue.splice(0)) t.reject(msError('MS_ERR_MODEL_NOT_READY', { name: this.o.modelName, detail: 'shutting down' }));
    await Promise.all(this.slots.map((s) => s.worker?.stop(graceMs)));
  }
}
