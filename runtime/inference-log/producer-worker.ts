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

/**
 * The producer as every record writer uses it, in the thread that calls it: acks from all replicas, no retries of
 * its own (the sink keeps the records and retries with its backoff), never a topic made by a typo, and the key's
 * partition. The runtime runs it in this worker thread; the recorder sidecar, which does nothing else, in its
 * main thread, with the values as the bytes it received.
 */
export function bufferProducer(clientId: string, connection: KafkaConnection) {
  const producer = new Producer({
    clientId,
    ...connection,
    retries: 0,
    autocreateTopics: false,
    acks: -1,
    partitioner: (message, _key, ctx) => {
      const n = ctx.metadata?.topics.get(message.topic)?.partitionsCount ?? 1;
      return keyPartition(message.key as Buffer | undefined, n);
    },
  });
  return {
    send: async (messages: { topic: string; key: Buffer; value: Buffer }[]) => {
      await producer.send({ messages });
    },
    close: () => producer.close(true),
  };
}

if (parentPort) {
  const port = parentPort;
  const init = workerData as ProducerWorkerInit;
  const producer = bufferProducer(init.clientId, init.connection);
  port.on('message', (msg: BatchMessage | { close: true }) => {
    if ('close' in msg) {
      void producer.close().finally(() => port.close());
      return;
    }
    const messages = msg.topics.map((topic, i) => ({
      topic,
      key: Buffer.from(msg.keys[i] as string),
      value: Buffer.from(msg.values[i] as string),
    }));
    producer.send(messages).then(
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
