// Kafka as the runtime's producer and the operator's admin client both reach it: the connection options made
// from KafkaSettings, the errors read once where the client library raises them, and the typed error the
// record sink acts on.
import type { KafkaSettings } from './settings.ts';

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

/** A batch failed because its topic does not exist (its records are dropped, not retried). */
export class UnknownTopicError extends Error {
  readonly topic: string;

  constructor(topic: string) {
    super(`topic ${topic} does not exist`);
    this.name = 'UnknownTopicError';
    this.topic = topic;
  }
}

/** The messages of a Kafka client error and of the errors nested in it (AggregateError, cause), outermost first. */
export function kafkaErrorMessages(err: unknown): string[] {
  const out: string[] = [];
  const walk = (e: unknown, depth: number) => {
    if (!e || typeof e !== 'object' || depth > 4) return;
    const m = (e as Error).message;
    if (typeof m === 'string' && m && !out.includes(m)) out.push(m);
    for (const inner of (e as AggregateError).errors ?? []) walk(inner, depth + 1);
    walk((e as Error).cause, depth + 1);
  };
  walk(err, 0);
  return out;
}

// @platformatic/kafka reports a missing topic only as a UserError whose message names it.
const CLIENT_UNKNOWN_TOPIC = /Unknown topic (.+)\.$/;

/** The topic a Kafka client call failed on for not existing, if that is why it failed. */
export function unknownTopicOf(err: unknown): string | undefined {
  if (err instanceof UnknownTopicError) return err.topic;
  for (const m of kafkaErrorMessages(err)) {
    const hit = CLIENT_UNKNOWN_TOPIC.exec(m);
    if (hit) return hit[1];
  }
  return undefined;
}
