// The inference-logging topic of a ModelServing, in Kafka: checked (or made, for `topic: CREATE`) for the
// LoggingReady condition, and deleted at the end through the topic finalizer. Successful checks are cached, so an
// idle resync does not ask Kafka again for every ModelServing.
import type { Logger } from 'pino';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import type { OperatorConfig } from '../config.ts';
import { kafkaErrorMessage, type TopicAdmin } from '../kafka.ts';
import type { Writer } from '../kube/apply.ts';
import { createdTopicName, inferenceTopic, TOPIC_FINALIZER } from './desired/logging.ts';
import type { LoggingObserved } from './status.ts';

/** How long a successful topic check is trusted; failures are checked again on every requeue. */
const TOPIC_CHECK_TTL_MS = 10 * 60 * 1000;

/** Successful topic checks by namespace/name. */
export type TopicChecks = Map<string, { topic: string; at: number; result: LoggingObserved }>;

export type Note = (type: 'Normal' | 'Warning', reason: string, message: string) => void;

export interface TopicDeps {
  config: OperatorConfig;
  writer: Writer;
  log: Logger;
  /** Kafka topic management; absent when the operator has no Kafka configured. */
  topics?: TopicAdmin | undefined;
  topicChecks?: TopicChecks | undefined;
}

/** Resolves and checks the inference-logging topic: the LoggingReady condition and status topic. */
export async function checkLogging(ms: ModelServing, deps: TopicDeps, note: Note): Promise<LoggingObserved | undefined> {
  const topic = inferenceTopic(ms);
  if (topic === undefined) return undefined;
  const { config, topics } = deps;
  if (!config.kafka || !topics) {
    return {
      topic,
      status: 'False',
      reason: 'KafkaNotConfigured',
      message: 'the operator has no Kafka bootstrap servers (Helm value kafka.bootstrapServers); no records are written',
    };
  }
  const key = `${ms.metadata.namespace}/${ms.metadata.name}`;
  const cached = deps.topicChecks?.get(key);
  if (cached && cached.topic === topic && Date.now() - cached.at < TOPIC_CHECK_TTL_MS) return cached.result;
  let result: LoggingObserved;
  try {
    if (ms.spec.inferenceLogging?.topic === 'CREATE') {
      const made = await topics.ensure(topic, config.topicPartitions, config.topicReplicationFactor);
      if (made === 'created') {
        note(
          'Normal',
          'TopicCreated',
          `created Kafka topic ${topic} (${config.topicPartitions} partitions, replication ${config.topicReplicationFactor})`,
        );
      }
      result = { topic, status: 'True', reason: 'TopicReady', message: `inference records go to topic ${topic}` };
    } else if (await topics.describe(topic)) {
      result = { topic, status: 'True', reason: 'TopicReady', message: `inference records go to topic ${topic}` };
    } else {
      result = {
        topic,
        status: 'False',
        reason: 'TopicNotFound',
        message: `Kafka topic ${topic} does not exist; the model serves, but its records are dropped until the topic is created`,
      };
    }
  } catch (err) {
    result = { topic, status: 'False', reason: 'KafkaUnavailable', message: `cannot check topic ${topic}: ${kafkaErrorMessage(err)}` };
  }
  if (result.status === 'True') deps.topicChecks?.set(key, { topic, at: Date.now(), result });
  else deps.topicChecks?.delete(key);
  return result;
}

/** A ModelServing being deleted: delete its created topic if asked (bounded), then release the finalizer. */
export async function finalizeTopic(ms: ModelServing, deps: TopicDeps, note: Note): Promise<{ requeueAfterMs?: number }> {
  if (!ms.metadata.finalizers?.includes(TOPIC_FINALIZER)) return {};
  const { namespace, name } = ms.metadata;
  const topic = createdTopicName(namespace, name);
  const deadline = Date.parse(ms.metadata.deletionTimestamp ?? '') + deps.config.topicDeleteTimeoutSeconds * 1000;
  let failure: string;
  if (!deps.topics) {
    failure = 'the operator has no Kafka configured';
  } else {
    try {
      const r = await deps.topics.delete(topic);
      note('Normal', 'TopicDeleted', r === 'deleted' ? `deleted Kafka topic ${topic}` : `Kafka topic ${topic} was already gone`);
      await deps.writer.applyFinalizers(namespace, name, []);
      deps.topicChecks?.delete(`${namespace}/${name}`);
      return {};
    } catch (err) {
      failure = kafkaErrorMessage(err);
    }
  }
  const left = deadline - Date.now();
  if (left > 0 && deps.topics) {
    deps.log.info({ topic, err: failure, giveUpInMs: left }, 'deleting the inference topic failed; retrying');
    return { requeueAfterMs: Math.min(5000, left) };
  }
  // Never hold a deletion forever: say so, and let go.
  note(
    'Warning',
    'TopicNotDeleted',
    `gave up deleting Kafka topic ${topic} after ${deps.config.topicDeleteTimeoutSeconds} s (${failure}); delete it by hand`,
  );
  await deps.writer.applyFinalizers(namespace, name, []);
  deps.topicChecks?.delete(`${namespace}/${name}`);
  return {};
}
