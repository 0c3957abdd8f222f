import { Admin } from '@platformatic/kafka';

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
