// Inference logging as the operator manages it, against the real API server and the real Kafka broker:
// topic CREATE / NONE / existing, the LoggingReady condition, the runtime's environment, and the topic
// finalizer's bound when Kafka is unreachable.
import { AppsV1Api } from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelServing } from '../../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG, type OperatorConfig } from '../../operator/config.ts';
import { ModelServingController } from '../../operator/controller/controller.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { eventually } from '../../env/wait.ts';

const env = useTestEnv();
const apps = env.kubeConfig.makeApiClient(AppsV1Api);
const log = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const controllers: ModelServingController[] = [];
const kafka = { bootstrapServers: env.info.kafka.bootstrapServers, tls: false, tlsCa: undefined, sasl: undefined };

async function startController(namespace: string, extra: Partial<OperatorConfig>) {
  const c = new ModelServingController(
    env.kubeConfig,
    { ...DEFAULT_CONFIG, namespaces: [namespace], workers: 2, ...extra },
    log,
    new OperatorMetrics({ processMetrics: false }),
  );
  controllers.push(c);
  await c.start();
}

const ms = (namespace: string) => env.modelServings(namespace);
const cond = (m: ModelServing, type: string) => m.status?.conditions?.find((c) => c.type === type);
const envOf = async (namespace: string, name: string, container = 'runtime') => {
  const d = await apps.readNamespacedDeployment({ name, namespace });
  const spec = d.spec?.template.spec;
  const c = [...(spec?.containers ?? []), ...(spec?.initContainers ?? [])].find((x) => x.name === container);
  return Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
};
const bundle = { uri: 's3://models/iris/1/bundle.zip' };

beforeAll(() => env.installCrd());
afterAll(async () => {
  for (const c of controllers) await c.stop();
});

describe('inference logging (operator, real Kafka)', () => {
  let ns: string;
  beforeAll(async () => {
    ns = await env.namespace('logging');
    await startController(ns, { kafka, topicPartitions: 3, loggingRecheckSeconds: 2 });
  });

  it('CREATE makes the topic with the configured partitions and hands it to the runtime', async () => {
    const api = ms(ns);
    await api.create('created', { bundle, replicas: 1, inferenceLogging: { topic: 'CREATE', mode: 'predictions', sampleRate: 0.25 } });
    const topic = `modelship.${ns}.created.inference`;
    const m = await eventually(async () => {
      const o = await api.get('created');
      return cond(o, 'LoggingReady')?.status === 'True' ? o : undefined;
    }, 'LoggingReady=True');
    expect(cond(m, 'LoggingReady')).toMatchObject({ reason: 'TopicReady' });
    expect(m.status?.inferenceLogging?.topic).toBe(topic);
    const md = await env.kafkaAdmin().metadata({ topics: [topic], forceUpdate: true });
    expect(md.topics.get(topic)?.partitionsCount).toBe(3);
    // The runtime gets the topic and the recorder sidecar's socket; only the recorder gets Kafka.
    const vars = await envOf(ns, 'created');
    expect(vars).toMatchObject({
      MODELSHIP_RECORDER_SOCKET: '/var/run/modelship/recorder.sock',
      MODELSHIP_INFERENCE_LOG_TOPIC: topic,
      MODELSHIP_INFERENCE_LOG_MODE: 'predictions',
      MODELSHIP_INFERENCE_LOG_SAMPLE_RATE: '0.25',
    });
    expect(vars.MODELSHIP_KAFKA_BOOTSTRAP_SERVERS).toBeUndefined();
    expect(await envOf(ns, 'created', 'recorder')).toMatchObject({
      MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: kafka.bootstrapServers.join(','),
      MODELSHIP_INFERENCE_LOG_TOPIC: topic,
    });
    // Not deleteTopicOnDelete: no finalizer, and the topic outlives the ModelServing.
    expect(m.metadata.finalizers ?? []).toEqual([]);
    await api.delete('created');
    await eventually(() => api.gone('created'), 'the ModelServing gone', 20_000);
    expect(await env.kafkaAdmin().listTopics()).toContain(topic);
    await env.kafkaAdmin().deleteTopics({ topics: [topic] });
  });

  it('NONE (the default): no topic, no Kafka variables, no LoggingReady condition', async () => {
    const api = ms(ns);
    await api.create('quiet', { bundle, replicas: 1 });
    const m = await eventually(async () => {
      const o = await api.get('quiet');
      return cond(o, 'Ready')?.status === 'True' ? o : undefined;
    }, 'Ready');
    expect(cond(m, 'LoggingReady')).toBeUndefined();
    expect(m.status?.inferenceLogging).toBeUndefined();
    const vars = await envOf(ns, 'quiet');
    expect(Object.keys(vars).filter((k) => k.includes('KAFKA') || k.includes('INFERENCE_LOG'))).toEqual([]);
    expect(await env.kafkaAdmin().listTopics()).not.toContain(`modelship.${ns}.quiet.inference`);
  });

  it('a missing existing topic: LoggingReady=False TopicNotFound while Ready; creating the topic clears it', async () => {
    const api = ms(ns);
    const topic = await env.topic('existing', false);
    await api.create('existing', { bundle, replicas: 1, inferenceLogging: { topic } });
    const m = await eventually(async () => {
      const o = await api.get('existing');
      if (cond(o, 'LoggingReady')?.reason === 'TopicNotFound' && cond(o, 'Ready')?.status === 'True') return o;
      // Not yet: what it says instead is the timeout's message.
      throw new Error(JSON.stringify(o.status?.conditions?.map((c) => [c.type, c.status, c.reason, c.message])));
    }, 'LoggingReady=False TopicNotFound with Ready=True');
    expect(cond(m, 'LoggingReady')?.status).toBe('False');
    expect(cond(m, 'LoggingReady')?.message).toContain(`Kafka topic ${topic} does not exist`);
    expect((await envOf(ns, 'existing')).MODELSHIP_INFERENCE_LOG_TOPIC).toBe(topic);
    // The operator never makes a topic it was not asked to make.
    expect(await env.kafkaAdmin().listTopics()).not.toContain(topic);
    await env.kafkaAdmin().createTopics({ topics: [topic], partitions: 1, replicas: 1 });
    await eventually(
      async () => cond(await api.get('existing'), 'LoggingReady')?.status === 'True',
      'LoggingReady=True once the topic exists',
    );
    expect(env.kubectl(['get', 'ms', 'existing', '-n', ns])).toMatch(/existing\s+True/);
  });
});

describe('topic finalizer when Kafka is unreachable', () => {
  it('reports KafkaUnavailable, and deleting the ModelServing gives up after the bound with a Warning event', async () => {
    const ns = await env.namespace('finalizer');
    // Port 1 on loopback: connection refused, a Kafka that is down.
    const dead = { ...kafka, bootstrapServers: ['127.0.0.1:1'] };
    await startController(ns, { kafka: dead, topicDeleteTimeoutSeconds: 4, loggingRecheckSeconds: 2 });
    const api = ms(ns);
    await api.create('stuck', { bundle, replicas: 1, inferenceLogging: { topic: 'CREATE', deleteTopicOnDelete: true } });
    const m = await eventually(async () => {
      const o = await api.get('stuck');
      return cond(o, 'LoggingReady')?.reason === 'KafkaUnavailable' && cond(o, 'Ready')?.status === 'True' ? o : undefined;
    }, 'LoggingReady=False KafkaUnavailable while Ready=True');
    expect(m.metadata.finalizers).toEqual(['modelship.dev/inference-topic']);
    expect(cond(m, 'LoggingReady')?.message).toMatch(/cannot check topic .*connect/i);
    const t0 = Date.now();
    await api.delete('stuck');
    await eventually(() => api.gone('stuck'), 'the ModelServing gone despite Kafka', 30_000);
    // Held for the bound (4 s), not forever.
    expect(Date.now() - t0).toBeGreaterThan(3000);
    const events = await eventually(async () => {
      const list = JSON.parse(env.kubectl(['get', 'events', '-n', ns, '-o', 'json'])).items as {
        reason: string;
        type: string;
        message: string;
      }[];
      return list.find((e) => e.reason === 'TopicNotDeleted');
    }, 'the TopicNotDeleted event');
    expect(events.type).toBe('Warning');
    expect(events.message).toContain(`modelship.${ns}.stuck.inference`);
    expect(events.message).toContain('delete it by hand');
  });
});
