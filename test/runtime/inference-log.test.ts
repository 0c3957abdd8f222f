// Pure parts of inference logging: record builders against the published schema, plugin signals, config.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Compile } from 'typebox/compile';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../runtime/config.ts';
import { takeSignals, validateEvent, validateMetric } from '../../runtime/engines/signals.ts';
import { eventRecord, feedbackRecord, inferenceRecord, recordJsonSchema } from '../../runtime/inference-log/record.ts';
import { keyPartition } from '../../runtime/inference-log/producer-worker.ts';
import { UnknownTopicError, unknownTopicOf } from '../../common/kafka.ts';
import { RuntimeMetrics } from '../../runtime/observability/metrics.ts';

const committed = readFileSync(join(import.meta.dirname, '../../docs/inference-record.schema.json'), 'utf8');
const schema = Compile(JSON.parse(committed));
const src = { model: 'iris', modelVersion: '2', namespace: 'ml', bundleSha256: 'a'.repeat(64) };
const at = new Date('2026-11-21T10:00:00.123Z');

describe('records', () => {
  it('docs/inference-record.schema.json is committed as generated (run `npm run gen`)', () => {
    expect(committed).toBe(recordJsonSchema());
  });

  it('carry input and/or output per mode, and match the schema', () => {
    const facts = { requestId: 'r1', protocol: 'v2' as const, latencyMs: 1.23456, input: [{ x: 1 }], output: [{ y: 2 }] };
    const all = inferenceRecord(src, 'all', facts, at);
    expect(all).toEqual({
      schemaVersion: 1,
      type: 'inference',
      requestId: 'r1',
      model: 'iris',
      modelVersion: '2',
      namespace: 'ml',
      bundleSha256: 'a'.repeat(64),
      timestamp: '2026-11-21T10:00:00.123Z',
      protocol: 'v2',
      latencyMs: 1.235,
      input: [{ x: 1 }],
      output: [{ y: 2 }],
    });
    expect(inferenceRecord(src, 'predictions', facts, at)).not.toHaveProperty('input');
    expect(inferenceRecord(src, 'inputs', facts, at)).not.toHaveProperty('output');
    const failed = inferenceRecord(
      src,
      'all',
      { ...facts, output: undefined, error: { code: 'MS_ERR_PREDICT_FAILED', message: 'x', status: 500 } },
      at,
    );
    expect(failed).not.toHaveProperty('output');
    for (const r of [all, failed, feedbackRecord(src, 'v1', 'r1', 'r2', { label: 1 }, at), eventRecord(src, 'r1', { a: 1 }, at)]) {
      expect(schema.Check(r), JSON.stringify([...schema.Errors(r)])).toBe(true);
    }
  });

  it('the schema refuses records that break it', () => {
    const good = inferenceRecord(src, 'all', { requestId: 'r', protocol: 'v1', latencyMs: 1, input: [] }, at);
    expect(schema.Check({ ...good, schemaVersion: 2 })).toBe(false);
    expect(schema.Check({ ...good, type: 'other' })).toBe(false);
    expect(schema.Check({ ...good, bundleSha256: 'xyz' })).toBe(false);
    expect(schema.Check({ ...good, extra: 1 })).toBe(false);
    const { requestId: _drop, ...noId } = good;
    expect(schema.Check(noId)).toBe(false);
  });
});

describe('plugin signals', () => {
  it('takes $metrics and $events off a result without touching other keys', () => {
    const into = { metrics: [] as unknown[], events: [] as unknown[] };
    const plain = { y: 1 };
    expect(takeSignals(plain, into)).toBe(plain);
    const r = takeSignals({ y: 1, $metrics: { name: 'a', type: 'gauge', value: 1 }, $events: [{ topic: 't', value: 1 }] }, into);
    expect(r).toEqual({ y: 1 });
    expect(into.metrics).toHaveLength(1);
    expect(into.events).toHaveLength(1);
  });

  it.each([
    [
      { name: 'accuracy', type: 'GAUGE', value: 0.9 },
      { name: 'accuracy', type: 'gauge', value: 0.9 },
    ],
    [
      { name: 'seen', type: 'counter', value: 2, help: 'h' },
      { name: 'seen', type: 'counter', value: 2, help: 'h' },
    ],
    [{ name: 'bad name', type: 'gauge', value: 1 }, /letters, digits/],
    [{ name: '1st', type: 'gauge', value: 1 }, /not starting with a digit/],
    [{ name: 'a', type: 'histogram', value: 1 }, /gauge or counter/],
    [{ name: 'a', type: 'gauge', value: Number.NaN }, /finite/],
    [{ name: 'a', type: 'counter', value: -1 }, /only goes up/],
    ['accuracy', /must be an object/],
  ])('metric %j', (raw, expected) => {
    const r = validateMetric(raw);
    if (expected instanceof RegExp) expect(r).toMatch(expected);
    else expect(r).toEqual(expected);
  });

  it.each([
    [
      { topic: 'alerts', value: { a: 1 } },
      { topic: 'alerts', value: { a: 1 } },
    ],
    [
      { topic: 'alerts', value: null, key: 'k' },
      { topic: 'alerts', value: null, key: 'k' },
    ],
    [{ topic: 'no spaces', value: 1 }, /not a Kafka topic name/],
    [{ topic: 'alerts' }, /has no value/],
    [{ topic: 'alerts', value: 1, key: '' }, /key must be/],
  ])('event %j', (raw, expected) => {
    const r = validateEvent(raw);
    if (expected instanceof RegExp) expect(r).toMatch(expected);
    else expect(r).toEqual(expected);
  });

  it('exposes plugin metrics as modelship_plugin_<name>, refusing type changes, taken names and too many', async () => {
    const m = new RuntimeMetrics({ processMetrics: false });
    expect(m.pluginMetric('iris', { name: 'Accuracy', type: 'gauge', value: 0.5 })).toBeUndefined();
    expect(m.pluginMetric('iris', { name: 'seen', type: 'counter', value: 2 })).toBeUndefined();
    expect(m.pluginMetric('iris', { name: 'seen', type: 'counter', value: 3 })).toBeUndefined();
    expect(m.pluginMetric('iris', { name: 'seen', type: 'gauge', value: 1 })).toBe('type_conflict');
    expect(m.pluginMetric('iris', { name: 'events_total', type: 'counter', value: 1 })).toBe('name_taken');
    const text = await m.registry.metrics();
    expect(text).toContain('modelship_plugin_accuracy{model="iris"} 0.5');
    expect(text).toContain('modelship_plugin_seen{model="iris"} 5');
    for (let i = 0; i < RuntimeMetrics.MAX_PLUGIN_METRICS; i++) m.pluginMetric('iris', { name: `m${i}`, type: 'gauge', value: i });
    expect(m.pluginMetric('iris', { name: 'one_more', type: 'gauge', value: 1 })).toBe('limit');
  });
});

describe('Kafka errors', () => {
  it('finds the missing topic in a nested client error', () => {
    const nested = new AggregateError([new Error('Unknown topic team.preds.')], 'Producing failed.');
    expect(unknownTopicOf(nested)).toBe('team.preds');
    expect(unknownTopicOf(new Error('Cannot connect to any broker.'))).toBeUndefined();
    expect(unknownTopicOf(new UnknownTopicError('a.b'))).toBe('a.b');
  });
});

describe('inference logging configuration', () => {
  const base = { MODELSHIP_BUNDLE_URI: '/tmp/b' };
  it('reads Kafka, topic, mode, rate and event topics', () => {
    const c = loadConfig({
      ...base,
      MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: 'k1:9092, k2:9093',
      MODELSHIP_KAFKA_SASL_MECHANISM: 'PLAIN',
      MODELSHIP_KAFKA_SASL_USERNAME: 'u',
      MODELSHIP_KAFKA_SASL_PASSWORD: 'p',
      MODELSHIP_INFERENCE_LOG_TOPIC: 'preds',
      MODELSHIP_INFERENCE_LOG_MODE: 'inputs',
      MODELSHIP_INFERENCE_LOG_SAMPLE_RATE: '0.1',
      MODELSHIP_EVENT_TOPICS: 'a,b',
    });
    expect(c.kafka).toEqual({
      bootstrapServers: ['k1:9092', 'k2:9093'],
      tls: false,
      tlsCa: undefined,
      sasl: { mechanism: 'PLAIN', username: 'u', password: 'p' },
    });
    expect(c.inferenceLog).toMatchObject({ topic: 'preds', mode: 'inputs', sampleRate: 0.1 });
    expect(c.eventTopics).toEqual(['a', 'b']);
    expect(loadConfig(base).kafka).toBeUndefined();
  });

  it.each([
    [{ MODELSHIP_INFERENCE_LOG_SAMPLE_RATE: '1.5' }, /SAMPLE_RATE must be a number in \[0, 1\]/],
    [{ MODELSHIP_INFERENCE_LOG_MODE: 'everything' }, /MODE must be one of all, predictions, inputs/],
    [{ MODELSHIP_INFERENCE_LOG_TOPIC: 'bad topic' }, /is not a Kafka topic name/],
    [{ MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: 'nohost' }, /is not host:port/],
    [{ MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: 'k:1', MODELSHIP_KAFKA_SASL_MECHANISM: 'KERBEROS' }, /SASL_MECHANISM must be one of/],
    [
      { MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: 'k:1', MODELSHIP_KAFKA_SASL_MECHANISM: 'PLAIN', MODELSHIP_KAFKA_SASL_USERNAME: 'u' },
      /PASSWORD is empty/,
    ],
  ])('refuses %j', (extra, message) => {
    expect(() => loadConfig({ ...base, ...extra })).toThrow(message);
  });
});

describe('key partitioning', () => {
  it('puts one key on one partition always, and spreads many keys over all partitions', () => {
    const key = (s: string) => Buffer.from(s);
    expect(keyPartition(key('req-42'), 6)).toBe(keyPartition(key('req-42'), 6));
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 6000; i++) counts[keyPartition(key(`req-${i}`), 6)]++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
    expect(keyPartition(undefined, 3)).toBeLessThan(3);
  });
});
