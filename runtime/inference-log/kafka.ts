// The producer that delivers a sink's batches (in a worker thread). A thread that exits (a crash, an error the
// client threw where nothing caught it) is started again with backoff; meanwhile batches are refused at once, so
// the sink keeps its records within its bound, counts what does not fit, and retries with its own backoff.
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { KafkaSettings } from '../../common/settings.ts';
import { kafkaConnection, UnknownTopicError } from '../../common/kafka.ts';
import type { BatchMessage, BatchReply, ProducerWorkerInit } from './producer-worker.ts';
import type { OutgoingRecord, SendBatch } from './sink.ts';

export interface KafkaProducer {
  send: SendBatch;
  close(): Promise<void>;
}

export interface ThreadProducerOptions {
  log?: Logger | undefined;
  /** First restart delay after the thread exits; doubles per exit in a row (no batch acknowledged between). */
  minRestartMs?: number;
  maxRestartMs?: number;
}

/** The producer in its thread, with what tells a restart: the thread now, and how many times it was started again. */
export interface ThreadProducer extends KafkaProducer {
  /** The running thread; undefined while a restart waits out its backoff. */
  readonly thread: Worker | undefined;
  readonly restarts: number;
}

/** A producer in a worker thread of its own; `send` resolves when the broker acknowledged the batch. */
export function createProducer(settings: KafkaSettings, clientId: string, o: ThreadProducerOptions = {}): ThreadProducer {
  const minRestartMs = o.minRestartMs ?? 100;
  const maxRestartMs = o.maxRestartMs ?? 10_000;
  const workerData = { clientId, connection: kafkaConnection(settings) } satisfies ProducerWorkerInit;
  let worker: Worker | undefined;
  let closing = false;
  let restarts = 0;
  let exitsInARow = 0;
  let restartTimer: NodeJS.Timeout | undefined;
  let next = 0;
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };

  const start = () => {
    restartTimer = undefined;
    const w = new Worker(new URL('./producer-worker.ts', import.meta.url), { workerData });
    // Never keeps the process alive by itself; close() ends it.
    w.unref();
    worker = w;
    w.on('message', (reply: BatchReply) => {
      const p = pending.get(reply.id);
      if (!p) return;
      pending.delete(reply.id);
      if (reply.ok) {
        exitsInARow = 0;
        p.resolve();
      } else p.reject(reply.unknownTopic !== undefined ? new UnknownTopicError(reply.unknownTopic) : new Error(reply.message));
    });
    let error: Error | undefined;
    w.on('error', (err) => {
      error = err;
    });
    w.once('exit', (code) => {
      if (worker !== w) return;
      worker = undefined;
      failAll(new Error('the Kafka producer thread exited'));
      if (closing) return;
      exitsInARow++;
      const delay = Math.min(maxRestartMs, minRestartMs * 2 ** Math.min(exitsInARow - 1, 16));
      o.log?.error(
        { exitCode: code, err: error?.message, restartInMs: delay, exitsInARow },
        'inference log: the Kafka producer thread exited; starting it again (records wait in the buffer meanwhile)',
      );
      restartTimer = setTimeout(() => {
        if (closing) return;
        restarts++;
        start();
      }, delay);
      restartTimer.unref();
    });
  };
  start();

  return {
    get thread() {
      return worker;
    },
    get restarts() {
      return restarts;
    },
    send: (records: readonly OutgoingRecord[]) => {
      const w = worker;
      // Refused at once, not left waiting for a thread: the sink keeps the batch and retries after its backoff.
      if (!w) return Promise.reject(new Error('the Kafka producer thread is restarting'));
      return new Promise<void>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        const msg: BatchMessage = { id, topics: [], keys: [], values: [] };
        for (const r of records) {
          msg.topics.push(r.topic);
          msg.keys.push(r.key);
          msg.values.push(r.value);
        }
        w.postMessage(msg);
      });
    },
    close: async () => {
      closing = true;
      if (restartTimer) clearTimeout(restartTimer);
      const w = worker;
      if (!w) return;
      const exited = new Promise<void>((r) => w.once('exit', () => r()));
      w.postMessage({ close: true });
      await Promise.race([exited, sleep(5000, undefined, { ref: false })]);
      await w.terminate();
    },
  };
}
