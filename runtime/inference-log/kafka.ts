// The producer that delivers a sink's batches (in a worker thread).
import { setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import type { KafkaSettings } from '../../common/settings.ts';
import { kafkaConnection, UnknownTopicError } from '../../common/kafka.ts';
import type { BatchMessage, BatchReply, ProducerWorkerInit } from './producer-worker.ts';
import type { OutgoingRecord, SendBatch } from './sink.ts';

export interface KafkaProducer {
  send: SendBatch;
  close(): Promise<void>;
}

/** A producer in a worker thread of its own; `send` resolves when the broker acknowledged the batch. */
export function createProducer(settings: KafkaSettings, clientId: string): KafkaProducer {
  const worker = new Worker(new URL('./producer-worker.ts', import.meta.url), {
    workerData: { clientId, connection: kafkaConnection(settings) } satisfies ProducerWorkerInit,
  });
  // Never keeps the process alive by itself; close() ends it.
  worker.unref();
  let next = 0;
  const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();
  const failAll = (err: Error) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
  };
  worker.on('message', (reply: BatchReply) => {
    const p = pending.get(reply.id);
    if (!p) return;
    pending.delete(reply.id);
    if (reply.ok) p.resolve();
    else p.reject(reply.unknownTopic !== undefined ? new UnknownTopicError(reply.unknownTopic) : new Error(reply.message));
  });
  worker.on('error', (err) => failAll(err));
  worker.on('exit', () => failAll(new Error('the Kafka producer thread exited')));
  return {
    send: (records: readonly OutgoingRecord[]) =>
      new Promise<void>((resolve, reject) => {
        const id = next++;
        pending.set(id, { resolve, reject });
        const msg: BatchMessage = { id, topics: [], keys: [], values: [] };
        for (const r of records) {
          msg.topics.push(r.topic);
          msg.keys.push(r.key);
          msg.values.push(r.value);
        }
        worker.postMessage(msg);
      }),
    close: async () => {
      const exited = new Promise<void>((r) => worker.once('exit', () => r()));
      worker.postMessage({ close: true });
      await Promise.race([exited, sleep(5000, undefined, { ref: false })]);
      await worker.terminate();
    },
  };
}
