import { randomBytes } from 'node:crypto';
import { Admin, Consumer } from '@platformatic/kafka';

/** True when the broker answers a metadata request (the broker is up and the KRaft quorum has a leader). */
export async function kafkaMetadataAnswered(bootstrapServers: string[]): Promise<boolean> {
  const admin = new Admin({
    clientId: 'modelship-env-probe',
    bootstrapBrokers: bootstrapServers,
    connectTimeout: 2000,
    requestTimeout: 3000,
    retries: 0,
  });
  try {
    const md = await admin.metadata({ topics: [] });
    return md.brokers.size > 0;
  } finally {
    await admin.close().catch(() => {});
  }
}

export interface ConsumedRecord {
  key: string;
  value: string;
  partition: number;
  offset: bigint;
}

/**
 * Reads a topic from the beginning until `count` records arrived or `timeoutMs` passed (whichever is
 * first), with a consumer group of its own. To show that nothing (more) arrives, ask for more than expected
 * and let the time run out.
 */
export async function readTopic(bootstrapServers: string[], topic: string, count: number, timeoutMs = 20_000): Promise<ConsumedRecord[]> {
  const consumer = new Consumer({
    clientId: 'modelship-test-reader',
    groupId: `modelship-test-${randomBytes(6).toString('hex')}`,
    bootstrapBrokers: bootstrapServers,
    maxWaitTime: 200,
  });
  const out: ConsumedRecord[] = [];
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    const timer = setTimeout(() => void stream.close(), timeoutMs);
    try {
      for await (const m of stream) {
        out.push({ key: m.key?.toString() ?? '', value: m.value?.toString() ?? '', partition: m.partition, offset: m.offset });
        if (out.length >= count) break;
      }
    } finally {
      clearTimeout(timer);
      await stream.close().catch(() => {});
    }
  } finally {
    await consumer.close(true).catch(() => {});
  }
  return out;
}
