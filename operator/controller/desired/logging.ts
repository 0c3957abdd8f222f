// Inference logging as the operator sees it: which topic a ModelServing logs to, the runtime's Kafka
// environment, and whether the topic finalizer applies. Pure.
import type { V1EnvVar } from '@kubernetes/client-node';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { DEFAULTS, ENV, PATHS } from '../../../runtime/contract.ts';
import type { OperatorConfig } from '../../config.ts';

/** Holds a ModelServing until the topic made for it is deleted (only with deleteTopicOnDelete). */
export const TOPIC_FINALIZER = 'modelship.dev/inference-topic';

/** The name of the topic `topic: CREATE` makes. */
export function createdTopicName(namespace: string, name: string): string {
  return `modelship.${namespace}.${name}.inference`;
}

/** The topic the model logs to: the created one, the named existing one, or none. */
export function inferenceTopic(ms: ModelServing): string | undefined {
  const topic = ms.spec.inferenceLogging?.topic ?? 'NONE';
  if (topic === 'NONE') return undefined;
  if (topic === 'CREATE') return createdTopicName(ms.metadata.namespace, ms.metadata.name);
  return topic;
}

export function wantsTopicFinalizer(ms: ModelServing): boolean {
  const il = ms.spec.inferenceLogging;
  return il?.topic === 'CREATE' && il.deleteTopicOnDelete === true;
}

/** Whether the pod gets a recorder sidecar: the model logs or emits events, and the operator has a Kafka. */
export function wantsRecorder(ms: ModelServing, config: OperatorConfig): boolean {
  return config.kafka !== undefined && (inferenceTopic(ms) !== undefined || (ms.spec.inferenceLogging?.eventTopics?.length ?? 0) > 0);
}

/**
 * The runtime's logging variables: its topics and, when the pod has a recorder sidecar, the sidecar's socket in
 * place of any Kafka setting (the runtime, and so bundle code, never holds the Kafka credentials).
 */
export function loggingEnv(ms: ModelServing, config: OperatorConfig): V1EnvVar[] {
  const vars = topicEnv(ms);
  if (vars.length && wantsRecorder(ms, config)) vars.unshift({ name: ENV.recorderSocket, value: PATHS.recorderSocket });
  return vars;
}

/** The recorder sidecar's variables: Kafka (credentials only by reference to Secrets in the model's namespace),
 * its socket, and the topics it lets records through to. */
export function recorderEnv(ms: ModelServing, config: OperatorConfig): V1EnvVar[] {
  return [{ name: ENV.recorderSocket, value: PATHS.recorderSocket }, ...kafkaEnv(config), ...topicEnv(ms)];
}

function kafkaEnv(config: OperatorConfig): V1EnvVar[] {
  const vars: V1EnvVar[] = [];
  const kafka = config.kafka;
  if (kafka) {
    vars.push({ name: ENV.kafkaBootstrapServers, value: kafka.bootstrapServers.join(',') });
    if (kafka.tls) vars.push({ name: ENV.kafkaTls, value: 'true' });
    if (kafka.tls && config.kafkaTlsCaSecret) {
      vars.push({ name: ENV.kafkaTlsCa, valueFrom: { secretKeyRef: { name: config.kafkaTlsCaSecret, key: 'ca.crt' } } });
    }
    if (kafka.sasl && config.kafkaSaslSecret) {
      vars.push(
        { name: ENV.kafkaSaslMechanism, value: kafka.sasl.mechanism },
        { name: ENV.kafkaSaslUsername, valueFrom: { secretKeyRef: { name: config.kafkaSaslSecret, key: 'username' } } },
        { name: ENV.kafkaSaslPassword, valueFrom: { secretKeyRef: { name: config.kafkaSaslSecret, key: 'password' } } },
      );
    }
  }
  return vars;
}

function topicEnv(ms: ModelServing): V1EnvVar[] {
  const il = ms.spec.inferenceLogging;
  const topic = inferenceTopic(ms);
  const events = il?.eventTopics ?? [];
  const vars: V1EnvVar[] = [];
  if (topic !== undefined) {
    vars.push(
      { name: ENV.inferenceLogTopic, value: topic },
      { name: ENV.inferenceLogMode, value: il?.mode ?? DEFAULTS.inferenceLogMode },
      { name: ENV.inferenceLogSampleRate, value: String(il?.sampleRate ?? DEFAULTS.inferenceLogSampleRate) },
    );
  }
  if (events.length) vars.push({ name: ENV.eventTopics, value: events.join(',') });
  return vars;
}
