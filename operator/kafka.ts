// The operator's Kafka topic management for inference logging: make a topic (`topic: CREATE`), check one
// exists, delete one (finalizer). One admin connection, made on first use.
import { Admin } from '@platformatic/kafka';
import type { KafkaSettings } from '../common/settings.ts';
import { kafkaConnection, kafkaErrorMessages, unknownTopicOf } from '../common/kafka.ts';

export interface TopicInfo {
  partitions: number;
}

export class TopicAdmin {
  private admin: Admin | undefined;
  private readonly settings: KafkaSettings;

  constructor(settings: KafkaSettings) {
    this.settings = settings;
  }

  private client(): Admin {
    this.admin ??= new Admin({ clientId: 'modelship-operator', ...kafkaConnection(this.settings), retries: 1, retryDelay: 500 });
    return this.admin;
  }

  /** The topic's partition count, or undefined when it does not exist. Throws when Kafka cannot answer. */
  async describe(topic: string): Promise<TopicInfo | undefined> {
    try {
      const md = await this.client().metadata({ topics: [topic], forceUpdate: true });
      const t = md.topics.get(topic);
      return t ? { partitions: t.partitionsCount } : undefined;
    } catch (err) {
      if (unknownTopicOf(err) === topic) return undefined;
      throw err;
    }
  }

  /** Makes the topic unless it exists; says which. */
  async ensure(topic: string, partitions: number, replicationFactor: number): Promise<'created' | 'exists'> {
    if (await this.describe(topic)) return 'exists';
    try {
      await this.client().createTopics({ topics: [topic], partitions, replicas: replicationFactor });
      return 'created';
    } catch (err) {
      // Someone (another operator replica before a failover, a person) made it meanwhile.
      if (await this.describe(topic).catch(() => undefined)) return 'exists';
      throw err;
    }
  }

  /** Deletes the topic; a topic already gone is fine. */
  async delete(topic: string): Promise<'deleted' | 'absent'> {
    if (!(await this.describe(topic))) return 'absent';
    await this.client().deleteTopics({ topics: [topic] });
    return 'deleted';
  }

  async close(): Promise<void> {
    await this.admin?.close().catch(() => {});
    this.admin = undefined;
  }
}

/** A short, readable reason from a Kafka client error (its nested causes included). */
export function kafkaErrorMessage(err: unknown): string {
  return kafkaErrorMessages(err).slice(0, 3).join(': ') || String(err);
}
