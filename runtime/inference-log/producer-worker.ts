// The Kafka producer's thread: takes batches of serialized records from the main thread, encodes and
// sends them, and answers each batch with ok or the error. Keeping the client here keeps its encoding,
// checksums and socket work off the event loop that serves predictions.
import { parentPort, workerData } from 'node:worker_threads';
import { Producer } from '@platformatic/kafka';
import { type KafkaConnection, unknownTopicOf } from '../../common/kafka.ts';

/** What the client needs to reach the brokers (made from KafkaSettings by kafka.ts). */
export interface ProducerWorkerInit {
  clientId: string;
  connection: KafkaConnection;
}

export interface BatchMessage {
  id: number;
  topics: string[];
  keys: string[];
  values: string[];
}

export type BatchReply = { id: number; ok: true } | { id: number; ok: false; message: string; unknownTopic: string | undefined };

/**
 * FNV-1a over the key's bytes: the same key always lands on the same partition (feedback joins its inference
 * there), for a fraction of the cost of the Java client's murmur2.
 */
export function keyPartition(key: Uint8Array | undefined, partitions: number): number {
  let h = 0x811c9dc5;
  if (key) {
    for (let i = 0; i < key.length; i++) {
      h ^= key[i] as number;
      h = Math.imul(h, 0x01000193);
    }
  }
  return (h >>> 0) % partitions;
}

if (parentPort) {
  const port = parentPort;
  const init = workerData as ProducerWorkerInit;
  const producer = new Producer({
    clientId: init.clientId,
    ...init.connection,
    // The sink (main thread) retries with its own backoff and keeps the records meanwhile; a topic is never
    // made by a typo.
    retries: 0,
    autocreateTopics: false,
    acks: -1,
    partitioner: (message, _key, ctx) => {
      const n = ctx.metadata?.topics.get(message.topic)?.partitionsCount ?? 1;
      return keyPartition(message.key as Buffer | undefined, n);
    },
  });
  port.on('message', (msg: BatchMessage | { close: true }) => {
    if ('close' in msg) {
      void producer.close(true).finally(() => port.close());
      return;
    }
    const messages = msg.topics.map((topic, i) => ({
      topic,
      key: Buffer.from(msg.keys[i] as string),
      value: Buffer.from(msg.values[i] as string),
    }));
    producer.send({ messages }).then(
      () => port.postMessage({ id: msg.id, ok: true } satisfies BatchReply),
      (err: unknown) =>
        port.postMessage({
          id: msg.id,
          ok: false,
          message: (err as Error).message ?? String(err),
          unknownTopic: unknownTopicOf(err),
        } satisfies BatchReply),
    );
  });
}
