// The recorder sidecar: `node runtime/main.ts recorder`, in its own container under its own uid. It alone holds
// the Kafka credentials; the runtime (and any bundle code beside it) hands it batches over a Unix socket in a
// volume the pod's containers share (recorder-wire.ts), and it produces only to the topics its own configuration
// allows: the model's inference topic and its spec.inferenceLogging.eventTopics. A batch's other records are
// refused and counted, whoever sent them, so the allowed topics hold even for code that talks to the socket
// itself. SIGTERM: stop accepting, let the batches in flight finish (bounded), exit.
import { chmod, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { type Env, kafkaSettings, list } from '../../common/settings.ts';
import { DEFAULTS, ENV } from '../contract.ts';
import { createLogger } from '../observability/logging.ts';
import { kafkaConnection, unknownTopicOf } from '../../common/kafka.ts';
import { bufferProducer } from './producer-worker.ts';
import { BatchReader, type ReceivedBatch, type WireReply } from './recorder-wire.ts';

/** What the recorder produces with: batches of byte values (bufferProducer, in the sidecar's own thread). */
export interface RecordProducer {
  send(messages: { topic: string; key: Buffer; value: Buffer }[]): Promise<void>;
  close(): Promise<void>;
}

export interface RecorderSidecarOptions {
  socketPath: string;
  producer: RecordProducer;
  /** The topics records may go to. */
  allowed: ReadonlySet<string>;
  log: Logger;
}

export interface RecorderSidecar {
  server: Server;
  /** Stops accepting, waits for the batches in flight (at most `timeoutMs`), closes the producer. */
  close(timeoutMs: number): Promise<void>;
}

export async function startRecorder(o: RecorderSidecarOptions): Promise<RecorderSidecar> {
  const inFlight = new Set<Promise<void>>();
  const warned = new Set<string>();
  const handle = async (socket: Socket, batch: ReceivedBatch) => {
    const allowed = batch.records.filter((r) => o.allowed.has(r.topic));
    const refusedTopics = [...new Set(batch.records.filter((r) => !o.allowed.has(r.topic)).map((r) => r.topic))];
    for (const topic of refusedTopics) {
      if (warned.size < 1000 && !warned.has(topic)) {
        warned.add(topic);
        o.log.warn({ topic }, 'recorder: refused records for a topic this model may not write to (not its inference topic or eventTopics)');
      }
    }
    let reply: WireReply;
    try {
      if (allowed.length) await o.producer.send(allowed.map((r) => ({ topic: r.topic, key: Buffer.from(r.key), value: r.value })));
      reply = {
        id: batch.id,
        ok: true,
        refused: batch.records.length - allowed.length,
        ...(refusedTopics.length ? { refusedTopics } : {}),
      };
    } catch (err) {
      const unknownTopic = unknownTopicOf(err);
      reply =
        unknownTopic !== undefined
          ? { id: batch.id, ok: false, message: `topic ${unknownTopic} does not exist`, unknownTopic }
          : { id: batch.id, ok: false, message: (err as Error).message };
    }
    if (!socket.destroyed) socket.write(`${JSON.stringify(reply)}\n`);
  };
  const server = createServer((socket) => {
    const reader = new BatchReader();
    socket.on('data', (chunk: Buffer) => {
      let batches: ReceivedBatch[];
      try {
        batches = reader.push(chunk);
      } catch (err) {
        o.log.warn({ err: (err as Error).message }, 'recorder: a malformed frame; closing that connection');
        socket.destroy();
        return;
      }
      for (const b of batches) {
        const p = handle(socket, b).finally(() => inFlight.delete(p));
        inFlight.add(p);
      }
    });
    socket.on('error', () => {});
  });
  await rm(o.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.socketPath, () => resolve());
  });
  // The runtime runs as another user of the pod's group: group read-write, nobody else.
  await chmod(o.socketPath, 0o660);
  o.log.info({ socket: o.socketPath, topics: [...o.allowed] }, 'recorder: listening');
  return {
    server,
    async close(timeoutMs) {
      server.close();
      await Promise.race([Promise.all(inFlight), new Promise((r) => setTimeout(r, timeoutMs).unref())]);
      await o.producer.close().catch(() => {});
    },
  };
}

/** The topics a model's recorder allows, from the same variables the runtime reads. Pure. */
export function allowedTopics(env: Env): Set<string> {
  const topics = new Set(list(env[ENV.eventTopics]));
  const topic = env[ENV.inferenceLogTopic];
  if (topic) topics.add(topic);
  return topics;
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const log = createLogger(env[ENV.logLevel] || DEFAULTS.logLevel, { model: env[ENV.modelName] ?? 'model', container: 'recorder' });
  const socketPath = env[ENV.recorderSocket];
  let kafka: ReturnType<typeof kafkaSettings>;
  try {
    if (!socketPath) throw new Error(`${ENV.recorderSocket} is not set`);
    kafka = kafkaSettings(env);
    if (!kafka) throw new Error(`${ENV.kafkaBootstrapServers} is not set`);
  } catch (err) {
    log.fatal({ code: 'MS_ERR_CONFIG_INVALID' }, (err as Error).message);
    process.exit(2);
  }
  const recorder = await startRecorder({
    socketPath,
    // Its main thread does nothing else: the client runs there, on the bytes as they came.
    producer: bufferProducer(`modelship-recorder-${env[ENV.modelName] ?? 'model'}`, kafkaConnection(kafka)),
    allowed: allowedTopics(env),
    log,
  });
  process.once('SIGTERM', () => {
    void recorder.close(DEFAULTS.inferenceLogFlushTimeoutMs).then(() => process.exit(0));
  });
}
