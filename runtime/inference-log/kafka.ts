// Kafka connection options from KafkaSettings (shared by the runtime's producer and the operator's admin
// client), and the producer that delivers a sink's batches.
import { Producer } from '@platformatic/kafka';
import type { KafkaSettings } from '../config.ts';
import type { OutgoingRecord, SendBatch } from './sink.ts';

export interface KafkaConnection {
  bootstrapBrokers: string[];
  tls?: { ca?: string };
  sasl?: NonNullable<KafkaSettings['sasl']>;
  connectTimeout: number;
  requestTimeout: number;
}

export function kafkaConnection(settings: KafkaSettings): KafkaConnection {
  return {
    bootstrapBrokers: settings.bootstrapServers,
    ...(settings.tls ? { tls: settings.tlsCa ? { ca: settings.tlsCa } : {} } : {}),
    ...(settings.sasl ? { sasl: { ...settings.sasl } } : {}),
    connectTimeout: 3_000,
    requestTimeout: 10_000,
  };
}

export interface KafkaProducer {
  send: SendBatch;
  close(): Promise<void>;
}

export function createProducer(settings: KafkaSettings, clientId: string): KafkaProducer {
  const producer = new Producer({
    clientId,
    ...kafkaConnection(settings),
    // The sink retries with its own backoff and keeps the records meanwhile; a topic is never made by a typo.
    retries: 0,
    autocreateTopics: false,
    acks: -1,
  });
  return {
    send: async (records: readonly OutgoingRecord[]) => {
      await producer.send({
        messages: records.map((r) => ({ topic: r.topic, key: Buffer.from(r.key), value: Buffer.from(r.value) })),
      });
    },
    close: () => producer.close(true),
  };
}
