// Inference logging, feedback, plugin metrics and events, against the environment's real Kafka broker.
// Each test starts the runtime in-process on a packed bundle (so records carry its sha256) and reads what
// reached the topics with a consumer of its own.
import { spawn } from 'node:child_process';
import type { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Compile } from 'typebox/compile';
import { beforeAll, describe, expect, it } from 'vitest';
import { packBundle } from '../../cli/pack.ts';
import { predictGrpc } from '../../cli/oip-client.ts';
import { loadConfig } from '../../runtime/config.ts';
import { createProducer } from '../../runtime/inference-log/kafka.ts';
import { RecordSink } from '../../runtime/inference-log/sink.ts';
import { createSocketProducer } from '../../runtime/inference-log/socket-producer.ts';
import { type Runtime, start } from '../../runtime/server.ts';
import { useTestEnv } from '../env/fixtures.ts';
import { readTopic } from '../../env/kafka.ts';
import { eventually } from '../../env/wait.ts';
import { makeBundle, silent } from './helpers.ts';

const env = useTestEnv();
const bootstrap = env.info.kafka.bootstrapServers;
// The committed, published schema: records are checked against the file users read, not our TS types.
const schema = Compile(JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/inference-record.schema.json'), 'utf8')));

const PLUGIN = `
let seen = 0, right = 0;
export async function predict(input) {
  const x = Number(input.x);
  if (x < 0) throw new Error('negative input');
  const out = { y: x * 2 };
  if (x === 7) out.$metrics = [{ name: 'lucky_sevens', type: 'counter', value: 1 }];
  return out;
}
export async function feedback(record) {
  seen++;
  if (record.label === 'right') right++;
  return {
    seen,
    $metrics: [{ name: 'accuracy', type: 'GAUGE', value: right / seen }, { name: 'bad name!', type: 'gauge', value: 1 }],
    $events: [
      { topic: record.allowedTopic, value: { drift: right / seen <= 0.5 } },
      { topic: record.forbiddenTopic, value: { leak: true } },
    ],
  };
}
`;

let bundleFile: string;
let bundleSha: string;

beforeAll(async () => {
  const dir = await makeBundle({ 'predict.mjs': PLUGIN, 'modelship.yaml': 'name: doubler\nversion: "3"\n' });
  bundleFile = join(await mkdtemp(join(tmpdir(), 'ms-packed-')), 'bundle.zip');
  bundleSha = (await packBundle(dir, bundleFile)).sha256;
});

async function runtime(extra: Record<string, string>): Promise<Runtime> {
  const config = loadConfig({
    MODELSHIP_BUNDLE_URI: `file://${bundleFile}`,
    MODELSHIP_MODEL_NAME: 'doubler',
    MODELSHIP_NAMESPACE: 'ml-team',
    MODELSHIP_HOST: '127.0.0.1',
    MODELSHIP_PORT: '0',
    MODELSHIP_WORK_DIR: await mkdtemp(join(tmpdir(), 'ms-work-')),
    MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: bootstrap.join(','),
    ...extra,
  });
  const rt = await start(config, silent);
  await rt.loaded;
  return rt;
}

const v2 = (url: string, x: number, requestId?: string, id?: string) =>
  fetch(`${url}/v2/models/doubler/infer`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}) },
    body: JSON.stringify({ ...(id ? { id } : {}), inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [x] }] }),
  });
const v1 = (url: string, x: number, requestId: string) =>
  fetch(`${url}/v1/models/doubler:predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-request-id': requestId },
    body: JSON.stringify({ instances: [{ x }] }),
  });
const post = (url: string, path: string, body: unknown, requestId?: string) =>
  fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}) },
    body: JSON.stringify(body),
  });
const metricsOf = async (url: string) => (await fetch(`${url}/metrics`)).text();
const parse = (records: { value: string }[]) => records.map((r) => JSON.parse(r.value) as Record<string, any>);

describe('inference logging (real Kafka)', () => {
  it('mode all: one record per request, keyed by request id, matching the published schema', async () => {
    const topic = await env.topic('log-all');
    const rt = await runtime({ MODELSHIP_INFERENCE_LOG_TOPIC: topic });
    try {
      expect((await v2(rt.url, 2, 'req-v2-ok', 'client-id-1')).status).toBe(200);
      expect((await v1(rt.url, 3, 'req-v1-ok')).status).toBe(200);
      expect((await v2(rt.url, -1, 'req-v2-fail')).status).toBe(500);
      expect((await predictGrpc(`127.0.0.1:${rt.grpcPort}`, 'doubler', [{ x: 5 }], 'req-grpc-ok')).requestId).toBe('req-grpc-ok');
      // The binary tensor extension: the record holds the values, as for JSON.
      const header = Buffer.from(
        JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP64', parameters: { binary_data_size: 8 } }] }),
      );
      const binary = await fetch(`${rt.url}/v2/models/doubler/infer`, {
        method: 'POST',
        headers: { 'inference-header-content-length': String(header.length), 'x-request-id': 'req-v2-binary' },
        body: Buffer.concat([header, Buffer.from(new Float64Array([6]).buffer)]),
      });
      expect(binary.status).toBe(200);
      const records = await readTopic(bootstrap, topic, 5);
      expect(records.map((r) => r.key).sort()).toEqual(['req-grpc-ok', 'req-v1-ok', 'req-v2-binary', 'req-v2-fail', 'req-v2-ok']);
      const values = parse(records);
      for (const v of values) expect(schema.Check(v), JSON.stringify([...schema.Errors(v)])).toBe(true);
      const byId = Object.fromEntries(values.map((v) => [v.requestId, v]));
      expect(byId['req-v2-ok']).toMatchObject({
        schemaVersion: 1,
        type: 'inference',
        protocol: 'v2',
        model: 'doubler',
        modelVersion: '3',
        namespace: 'ml-team',
        bundleSha256: bundleSha,
        inferenceId: 'client-id-1',
        input: [{ name: 'x', shape: [1], datatype: 'FP64', data: [2] }],
        output: [{ name: 'y', datatype: 'FP64', shape: [1], data: [4] }],
      });
      expect(byId['req-v2-ok']?.latencyMs).toBeGreaterThan(0);
      expect(byId['req-v1-ok']).toMatchObject({ protocol: 'v1', input: [{ x: 3 }], output: [{ y: 6 }] });
      expect(byId['req-grpc-ok']).toMatchObject({
        protocol: 'grpc',
        input: [{ name: 'x', shape: [1], datatype: 'FP64', data: [5] }],
        output: [{ name: 'y', datatype: 'FP64', shape: [1], data: [10] }],
      });
      expect(byId['req-v2-binary']).toMatchObject({
        protocol: 'v2',
        input: [{ name: 'x', shape: [1], datatype: 'FP64', data: [6] }],
        output: [{ name: 'y', datatype: 'FP64', shape: [1], data: [12] }],
      });
      expect(byId['req-v2-fail']).toMatchObject({ error: { code: 'MS_ERR_PREDICT_FAILED', status: 500 } });
      expect(byId['req-v2-fail']?.error.message).toContain('negative input');
      expect(byId['req-v2-fail']).not.toHaveProperty('output');
      expect(await metricsOf(rt.url)).toContain('modelship_inference_log_sent_total{model="doubler"} 5');
    } finally {
      await rt.shutdown();
    }
  });

  it('mode predictions leaves the input out; mode inputs leaves the output out', async () => {
    for (const [mode, present, absent] of [
      ['predictions', 'output', 'input'],
      ['inputs', 'input', 'output'],
    ] as const) {
      const topic = await env.topic(`log-${mode}`);
      const rt = await runtime({ MODELSHIP_INFERENCE_LOG_TOPIC: topic, MODELSHIP_INFERENCE_LOG_MODE: mode });
      try {
        expect((await v2(rt.url, 1, `req-${mode}`)).status).toBe(200);
        const [value] = parse(await readTopic(bootstrap, topic, 1));
        expect(value).toHaveProperty(present);
        expect(value).not.toHaveProperty(absent);
        expect(schema.Check(value)).toBe(true);
      } finally {
        await rt.shutdown();
      }
    }
  });

  it('sampleRate holds: 600 requests at 0.3 give a binomial count of records', async () => {
    const topic = await env.topic('log-sample');
    const rt = await runtime({ MODELSHIP_INFERENCE_LOG_TOPIC: topic, MODELSHIP_INFERENCE_LOG_SAMPLE_RATE: '0.3' });
    const n = 600;
    try {
      for (let i = 0; i < n; i += 50) {
        const batch = await Promise.all(Array.from({ length: 50 }, (_, j) => v2(rt.url, 1, `s-${i + j}`)));
        for (const r of batch) expect(r.status).toBe(200);
      }
      await rt.shutdown();
      // Ask for more than can exist; the read ends when the time runs out.
      const records = await readTopic(bootstrap, topic, n, 8000);
      const k = records.length;
      // Binomial(600, 0.3): mean 180, sd 11.2; 5 sd either side fails about once in 3.5 million runs.
      expect(k).toBeGreaterThan(180 - 56);
      expect(k).toBeLessThan(180 + 56);
      const ids = new Set(records.map((r) => r.key));
      expect(ids.size).toBe(k);
      for (const id of ids) expect(id).toMatch(/^s-\d+$/);
    } finally {
      await rt.shutdown();
    }
  });

  it('topic NONE (unset): no producer, nothing recorded, predictions as usual', async () => {
    const rt = await runtime({});
    try {
      expect(rt.recorder.topic).toBeUndefined();
      for (let i = 0; i < 5; i++) expect((await v2(rt.url, i, `none-${i}`)).status).toBe(200);
      const text = await metricsOf(rt.url);
      expect(text).not.toMatch(/modelship_inference_log_sent_total\{[^}]*\} [1-9]/);
      expect(text).not.toMatch(/modelship_inference_log_dropped_total\{[^}]*\} [1-9]/);
      expect(text).toContain('modelship_inference_log_buffer_bytes{model="doubler"} 0');
    } finally {
      await rt.shutdown();
    }
  });

  it('a topic that does not exist: predictions work, the records are dropped and counted', async () => {
    const missing = await env.topic('log-missing', false);
    const rt = await runtime({ MODELSHIP_INFERENCE_LOG_TOPIC: missing });
    try {
      for (let i = 0; i < 10; i++) expect((await v2(rt.url, i, `m-${i}`)).status).toBe(200);
      await expect
        .poll(
          async () => /modelship_inference_log_dropped_total\{model="doubler",reason="topic_not_found"\} 10/.test(await metricsOf(rt.url)),
          {
            timeout: 10_000,
          },
        )
        .toBe(true);
    } finally {
      await rt.shutdown();
    }
  });

  it('shutdown flushes every waiting record', async () => {
    const topic = await env.topic('log-flush');
    const rt = await runtime({ MODELSHIP_INFERENCE_LOG_TOPIC: topic });
    const n = 400;
    const results = await Promise.all(Array.from({ length: n }, (_, i) => v2(rt.url, 1, `f-${i}`)));
    for (const r of results) expect(r.status).toBe(200);
    // Straight after the last response: records still wait in the buffer or in flight.
    await rt.shutdown();
    const records = await readTopic(bootstrap, topic, n);
    expect(new Set(records.map((r) => r.key)).size).toBe(n);
  });
});

describe('feedback, plugin metrics and events (real Kafka)', () => {
  it('feedback joins its inference by request id; metrics reach /metrics; events only reach allowed topics', async () => {
    const topic = await env.topic('fb-log');
    const allowed = await env.topic('fb-events');
    // Exists, so an event that leaked to it would be there to see.
    const forbidden = await env.topic('fb-forbidden');
    const rt = await runtime({ MODELSHIP_INFERENCE_LOG_TOPIC: topic, MODELSHIP_EVENT_TOPICS: allowed });
    try {
      expect((await v2(rt.url, 7, 'inf-1')).status).toBe(200);
      const fb = await post(
        rt.url,
        '/v2/models/doubler/feedback',
        { id: 'inf-1', label: 'right', allowedTopic: allowed, forbiddenTopic: forbidden },
        'fb-req-1',
      );
      expect(fb.status).toBe(200);
      expect(await fb.json()).toEqual({ id: 'inf-1', model: 'doubler', logged: true, result: { seen: 1 } });
      const fb1 = await post(rt.url, '/v1/models/doubler:feedback', {
        id: 'inf-1',
        label: 'wrong',
        allowedTopic: allowed,
        forbiddenTopic: forbidden,
      });
      expect(fb1.status).toBe(200);

      const records = parse(await readTopic(bootstrap, topic, 3));
      const inference = records.find((r) => r.type === 'inference');
      const feedbacks = records.filter((r) => r.type === 'feedback');
      expect(feedbacks).toHaveLength(2);
      for (const r of records) expect(schema.Check(r)).toBe(true);
      for (const f of feedbacks) expect(f.requestId).toBe(inference?.requestId);
      expect(feedbacks.find((f) => f.protocol === 'v2')).toMatchObject({ feedbackRequestId: 'fb-req-1', feedback: { label: 'right' } });
      expect(feedbacks.find((f) => f.protocol === 'v1')).toMatchObject({ feedback: { label: 'wrong' } });

      const metrics = await metricsOf(rt.url);
      expect(metrics).toContain('modelship_plugin_lucky_sevens{model="doubler"} 1');
      expect(metrics).toContain('modelship_plugin_accuracy{model="doubler"} 0.5');
      expect(metrics).toContain('modelship_plugin_signals_rejected_total{model="doubler",kind="metric",reason="invalid"} 2');
      expect(metrics).toContain('modelship_plugin_signals_rejected_total{model="doubler",kind="event",reason="not_allowed"} 2');
      expect(metrics).toContain(`modelship_plugin_events_total{model="doubler",topic="${allowed}"} 2`);

      const events = parse(await readTopic(bootstrap, allowed, 2));
      expect(events.map((e) => e.value)).toEqual(expect.arrayContaining([{ drift: false }, { drift: true }]));
      for (const e of events) expect(e).toMatchObject({ type: 'event', requestId: 'inf-1', model: 'doubler' });
      expect(await readTopic(bootstrap, forbidden, 1, 3000)).toEqual([]);
    } finally {
      await rt.shutdown();
    }
  });

  it('refuses feedback without an id (400) and feedback nobody can take (501), with JSON errors', async () => {
    const none = await makeBundle({ 'predict.mjs': 'export const predict = (i) => ({ y: 1 });' });
    const config = loadConfig({
      MODELSHIP_BUNDLE_URI: none,
      MODELSHIP_HOST: '127.0.0.1',
      MODELSHIP_PORT: '0',
      MODELSHIP_WORK_DIR: await mkdtemp(join(tmpdir(), 'ms-work-')),
    });
    const rt = await start(config, silent);
    try {
      await rt.loaded;
      const missing = await post(rt.url, '/v2/models/model/feedback', { label: 1 });
      expect(missing.status).toBe(400);
      expect(((await missing.json()) as { error: string }).error).toMatch(/id/);
      const v1missing = await post(rt.url, '/v1/models/model:feedback', { label: 1 });
      expect(v1missing.status).toBe(400);
      const nobody = await post(rt.url, '/v2/models/model/feedback', { id: 'x', label: 1 });
      expect(nobody.status).toBe(501);
      expect(await nobody.json()).toMatchObject({ code: 'MS_ERR_FEEDBACK_UNSUPPORTED' });
      const badPredict = await post(rt.url, '/v1/models/model:predict', { instance: [1] });
      expect(badPredict.status).toBe(400);
      expect(((await badPredict.json()) as { error: string }).error).toMatch(/instances/);
    } finally {
      await rt.shutdown();
    }
  });
});

describe('the recorder sidecar (real Kafka)', () => {
  it('produces what the runtime hands it over its socket, and only to the topics it allows, whoever asks', async () => {
    const topic = await env.topic('rec-log');
    const allowed = await env.topic('rec-events');
    const forbidden = await env.topic('rec-forbidden');
    const dir = await mkdtemp(join(tmpdir(), 'ms-rec-'));
    const socket = join(dir, 'recorder.sock');
    // The sidecar as a process of its own (main.ts recorder), with the Kafka settings; the runtime without any.
    const sidecar = spawn(process.execPath, [join(import.meta.dirname, '../../runtime/main.ts'), 'recorder'], {
      env: {
        PATH: process.env.PATH,
        MODELSHIP_MODEL_NAME: 'doubler',
        MODELSHIP_RECORDER_SOCKET: socket,
        MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: bootstrap.join(','),
        MODELSHIP_INFERENCE_LOG_TOPIC: topic,
        MODELSHIP_EVENT_TOPICS: allowed,
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const rt = await runtime({
      MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: '',
      MODELSHIP_RECORDER_SOCKET: socket,
      MODELSHIP_INFERENCE_LOG_TOPIC: topic,
      MODELSHIP_EVENT_TOPICS: allowed,
    });
    try {
      expect(rt.recorder.topic).toBe(topic);
      expect((await v2(rt.url, 2, 'rec-1')).status).toBe(200);
      const fb = await post(rt.url, '/v2/models/doubler/feedback', {
        id: 'rec-1',
        label: 'right',
        allowedTopic: allowed,
        forbiddenTopic: forbidden,
      });
      expect(fb.status).toBe(200);
      const records = parse(await readTopic(bootstrap, topic, 2));
      expect(records.map((r) => r.type).sort()).toEqual(['feedback', 'inference']);
      expect(records.find((r) => r.type === 'inference')).toMatchObject({ requestId: 'rec-1', output: [{ name: 'y', data: [4] }] });
      expect(parse(await readTopic(bootstrap, allowed, 1))[0]).toMatchObject({ type: 'event', value: { drift: false } });

      // Code that talks to the socket itself (a bundle could): records for other topics are refused, not sent.
      const refused: { n: number; topics: string[] }[] = [];
      const direct = createSocketProducer({ path: socket, onRefused: (n, topics) => refused.push({ n, topics }) });
      await direct.send([
        { topic: forbidden, key: 'x', value: '{"leak":true}', bytes: 0 },
        { topic: allowed, key: 'y', value: '{"ok":true}', bytes: 0 },
      ]);
      await direct.close();
      expect(refused).toEqual([{ n: 1, topics: [forbidden] }]);
      expect(parse(await readTopic(bootstrap, allowed, 2))).toContainEqual({ ok: true });
      expect(await readTopic(bootstrap, forbidden, 1, 3000)).toEqual([]);
    } finally {
      await rt.shutdown();
      sidecar.kill('SIGTERM');
    }
  });
});

describe('the Kafka producer thread (real Kafka)', () => {
  it('comes back after it exits: records wait within the bound meanwhile, the overflow is counted, then they flow', async () => {
    const topic = await env.topic('producer-restart');
    const producer = createProducer({ bootstrapServers: bootstrap, tls: false, tlsCa: undefined, sasl: undefined }, 'restart-test', {
      minRestartMs: 300,
    });
    const drops: Record<string, number> = {};
    let sent = 0;
    const bufferBytes = 2_000;
    const sink = new RecordSink({
      send: producer.send,
      log: silent,
      bufferBytes,
      minBackoffMs: 20,
      maxBackoffMs: 100,
      observer: {
        sent: (n) => (sent += n),
        dropped: (reason, n) => (drops[reason] = (drops[reason] ?? 0) + n),
        sendFailed: () => {},
      },
    });
    const value = (i: number) => JSON.stringify({ i, pad: 'x'.repeat(80) });
    try {
      for (const k of ['before-1', 'before-2']) expect(sink.offer(topic, k, value(0))).toBe(true);
      await eventually(async () => sent === 2, 'the first records sent');

      // The thread ends as a crash would end it (terminate: exit code 1, no close message).
      const first = producer.thread as Worker;
      expect(await first.terminate()).toBe(1);
      expect(producer.thread).toBeUndefined();
      let kept = 0;
      for (let i = 0; i < 50; i++) if (sink.offer(topic, `during-${i}`, value(i))) kept++;
      // The bound holds while the thread is away: what does not fit is dropped and counted, never queued.
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(50);
      expect(drops.buffer_full).toBe(50 - kept);
      expect(sink.bufferedBytes).toBeLessThanOrEqual(bufferBytes);

      await eventually(async () => producer.thread !== undefined && producer.thread !== first, 'a new producer thread', 10_000);
      expect(producer.restarts).toBe(1);
      await eventually(async () => sent === 2 + kept, 'the kept records sent by the new thread', 20_000);
      const keys = (await readTopic(bootstrap, topic, 2 + kept)).map((r) => r.key);
      expect(keys.slice(0, 2)).toEqual(['before-1', 'before-2']);
      expect(keys.slice(2)).toEqual(Array.from({ length: kept }, (_, i) => `during-${i}`));
      expect(sink.bufferedBytes).toBe(0);
    } finally {
      await sink.close(1000);
      await producer.close();
    }
  });
});
