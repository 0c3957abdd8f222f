// A Kafka outage under load costs no prediction: the runtime (a real process) keeps answering while its
// broker is stopped for 60 s, drops and counts what does not fit its buffer, resumes logging when the broker
// returns, and on SIGTERM flushes what is waiting. This file runs a broker of its own (the shared one must
// not go down under the other test files).
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Admin } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { kafkaMetadataAnswered, readTopic, startKafka } from '../../env/kafka.ts';
import { freePorts, type ProcessRecord, stopProcess, waitReady } from '../../env/process.ts';
import { eventually } from '../../env/wait.ts';
import { makeBundle } from './helpers.ts';

const info = inject('modelshipEnv');
let root: string;
let ports: number[];
let broker: ProcessRecord | undefined;
let bootstrap: string[];
const TOPIC = 'outage.records';

async function brokerUp(): Promise<void> {
  broker = await startKafka({ root, kafkaLibDir: info.binaries.kafkaLibDir, port: ports[0] as number, controllerPort: ports[1] as number });
  await waitReady(broker, () => kafkaMetadataAnswered(bootstrap), 90_000, 'answering metadata');
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ms-kafka-outage-'));
  ports = await freePorts(2);
  bootstrap = [`127.0.0.1:${ports[0]}`];
  await brokerUp();
  const admin = new Admin({ clientId: 'outage-test', bootstrapBrokers: bootstrap });
  await admin.createTopics({ topics: [TOPIC], partitions: 1, replicas: 1 });
  await admin.close();
}, 120_000);

afterAll(async () => {
  if (broker) await stopProcess(broker);
});

function metric(text: string, name: string, labels: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('Kafka outage under load', () => {
  it('0 failed predictions through a 60 s outage; drops counted; logging resumes; SIGTERM flushes', { timeout: 300_000 }, async () => {
    const bundle = await makeBundle({ 'predict.mjs': 'export const predict = (i) => ({ y: Number(i.x) + 1 });' });
    const [port] = await freePorts(1);
    const url = `http://127.0.0.1:${port}`;
    const child: ChildProcess = spawn(process.execPath, [join(import.meta.dirname, '../../runtime/main.ts')], {
      env: {
        ...process.env,
        MODELSHIP_BUNDLE_URI: bundle,
        MODELSHIP_MODEL_NAME: 'm',
        MODELSHIP_HOST: '127.0.0.1',
        MODELSHIP_PORT: String(port),
        MODELSHIP_WORK_DIR: await mkdtemp(join(tmpdir(), 'ms-work-')),
        MODELSHIP_LOG_LEVEL: 'warn',
        MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: bootstrap.join(','),
        MODELSHIP_INFERENCE_LOG_TOPIC: TOPIC,
        MODELSHIP_INFERENCE_LOG_BUFFER_BYTES: String(256 * 1024),
        MODELSHIP_INFERENCE_LOG_FLUSH_TIMEOUT_MS: '20000',
      },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (c) => (stderr += c));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    try {
      await eventually(async () => (await fetch(`${url}/v2/health/ready`)).status === 200, 'the runtime ready', 30_000);
      const metrics = async () => (await fetch(`${url}/metrics`)).text();

      // Closed-loop load from 4 clients until told to stop; every answer that is not a 200 is a failure.
      let phase = 'before';
      let running = true;
      let ok = 0;
      const failures: string[] = [];
      const client = async (c: number) => {
        for (let i = 0; running; i++) {
          const id = `${phase}-${c}-${i}`;
          try {
            const r = await fetch(`${url}/v2/models/m/infer`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', 'x-request-id': id },
              body: JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [i] }] }),
            });
            await r.arrayBuffer();
            if (r.status === 200) ok++;
            else failures.push(`${id}: ${r.status}`);
          } catch (err) {
            failures.push(`${id}: ${(err as Error).message}`);
          }
        }
      };
      const load = Promise.all([0, 1, 2, 3].map(client));

      await new Promise((r) => setTimeout(r, 3000));
      const sentBefore = metric(await metrics(), 'modelship_inference_log_sent_total', 'model="m"');
      expect(sentBefore).toBeGreaterThan(0);

      // The outage: 60 s without a broker, under load.
      phase = 'outage';
      await stopProcess(broker as ProcessRecord);
      const okAtOutage = ok;
      await new Promise((r) => setTimeout(r, 60_000));
      const during = await metrics();
      expect(ok - okAtOutage).toBeGreaterThan(1000);
      expect(metric(during, 'modelship_inference_log_dropped_total', 'model="m",reason="buffer_full"')).toBeGreaterThan(0);
      expect(metric(during, 'modelship_inference_log_send_errors_total', 'model="m"')).toBeGreaterThan(0);
      expect(metric(during, 'modelship_inference_log_buffer_bytes', 'model="m"')).toBeGreaterThan(200 * 1024);

      // The broker returns: the buffer drains and new records flow again.
      phase = 'after';
      await brokerUp();
      await eventually(
        async () => {
          const m = await metrics();
          return metric(m, 'modelship_inference_log_sent_total', 'model="m"') > sentBefore + 500;
        },
        'records flowing again after the outage',
        60_000,
      );
      running = false;
      await load;
      expect(failures).toEqual([]);

      // SIGTERM flushes: with the broker down again, requests fill the buffer (without overflowing it); the
      // broker comes back and the runtime is told to stop at once. Every one of those records must arrive.
      await stopProcess(broker as ProcessRecord);
      const flushIds = Array.from({ length: 200 }, (_, i) => `flush-${i}`);
      for (const id of flushIds) {
        const r = await fetch(`${url}/v2/models/m/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': id },
          body: JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [1] }] }),
        });
        expect(r.status).toBe(200);
      }
      const waiting = metric(await metrics(), 'modelship_inference_log_buffer_bytes', 'model="m"');
      expect(waiting).toBeGreaterThan(0);
      await brokerUp();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);

      // Read until every flushed record is there (or 60 s): under a full test run the restarted broker and a
      // fresh consumer of the whole topic take a while; a record that never arrived still fails the test.
      const flushed = new Set(flushIds);
      const records = await readTopic(bootstrap, TOPIC, (got) => got.filter((r) => flushed.has(r.key)).length >= flushIds.length, 60_000);
      const keys = new Set(records.map((r) => r.key));
      expect(flushIds.filter((id) => !keys.has(id))).toEqual([]);
      expect([...keys].some((k) => k.startsWith('after-'))).toBe(true);
      expect([...keys].some((k) => k.startsWith('before-'))).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (child.exitCode !== null && child.exitCode !== 0) console.error(stderr);
    }
  });
});
