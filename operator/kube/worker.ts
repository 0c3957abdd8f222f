// A controller's worker: takes a key from the queue, runs the reconcile, and decides what comes next: a timed
// re-check (requeueAfterMs), a retry with exponential backoff (an error), or nothing more (done, or a TerminalError:
// the reconcile has said why in the status, and a retry would only say it again).
import type { Logger } from 'pino';
import type { OperatorMetrics } from '../metrics.ts';
import { apiError, TerminalError } from './errors.ts';
import type { WorkQueue } from './queue.ts';

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface WorkerOptions {
  /** The controller's name in logs and metrics. */
  controller: string;
  queue: WorkQueue;
  reconcile: (key: string) => Promise<ReconcileResult>;
  /** Why a key is left alone now (its namespace belongs to another operator), or undefined to reconcile it. */
  skip?: (key: string) => string | undefined;
  metrics: OperatorMetrics;
  log: Logger;
}

export async function work(options: WorkerOptions): Promise<void> {
  const { controller, queue, metrics, log } = options;
  for (;;) {
    const key = await queue.get();
    if (key === undefined) return;
    const skipped = options.skip?.(key);
    if (skipped) {
      log.debug({ controller, key, why: skipped }, 'left alone');
      queue.forget(key);
      queue.done(key);
      continue;
    }
    const end = metrics.reconcileDuration.startTimer({ controller });
    try {
      const result = await options.reconcile(key);
      queue.forget(key);
      if (result.requeueAfterMs) {
        queue.addAfter(key, result.requeueAfterMs);
        metrics.reconciles.labels(controller, 'requeue').inc();
      } else metrics.reconciles.labels(controller, 'ok').inc();
    } catch (err) {
      if (err instanceof TerminalError) {
        queue.forget(key);
        metrics.reconciles.labels(controller, 'terminal').inc();
        log.info({ controller, key, reason: err.reason, err: err.message }, 'reconcile stopped: needs a person');
      } else {
        const delay = queue.addRateLimited(key);
        metrics.reconciles.labels(controller, 'error').inc();
        log.warn({ controller, key, err: apiError(err).message, retryInMs: delay }, 'reconcile failed');
      }
    } finally {
      end();
      queue.done(key);
    }
  }
}
