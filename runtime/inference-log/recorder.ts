// Everything a request may leave behind besides its response: the inference record (sampled, per `mode`),
// the feedback record, and the metrics and events the plugin returned. Records go to Kafka through a
// bounded sink (never waiting); plugin metrics go to the Prometheus registry. Without Kafka configured the
// recorder still takes plugin metrics, and says once, at start, what it cannot do.
import type { Logger } from 'pino';
import { DEFAULTS } from '../contract.ts';
import type { KafkaSettings } from '../../common/settings.ts';
import type { InferenceLogSettings } from '../config.ts';
import { type Signals, validateEvent, validateMetric } from '../engines/signals.ts';
import type { ServedModel } from '../model.ts';
import type { RuntimeMetrics } from '../observability/metrics.ts';
import { createProducer, type KafkaProducer } from './kafka.ts';
import { createSocketProducer } from './socket-producer.ts';
import { eventRecord, feedbackRecord, type InferenceFacts, inferenceRecord, type RecordSource } from './record.ts';
import { RecordSink } from './sink.ts';

export interface RecorderOptions {
  model: ServedModel;
  namespace: string | undefined;
  kafka: KafkaSettings | undefined;
  /** The recorder sidecar's socket, in place of Kafka settings (a pod: the sidecar holds the credentials). */
  recorderSocket?: string | undefined;
  inferenceLog: InferenceLogSettings;
  eventTopics: readonly string[];
  metrics: RuntimeMetrics;
  log: Logger;
}

export class Recorder {
  /** The inference-logging topic, when logging is on. */
  readonly topic: string | undefined;
  private readonly settings: InferenceLogSettings;
  private readonly sink: RecordSink | undefined;
  private readonly producer: KafkaProducer | undefined;
  private readonly allowed: ReadonlySet<string>;
  private readonly model: ServedModel;
  private readonly namespace: string | undefined;
  private readonly metrics: RuntimeMetrics;
  private readonly log: Logger;
  private readonly always: boolean;
  private readonly warned = new Set<string>();

  constructor(o: RecorderOptions) {
    this.model = o.model;
    this.namespace = o.namespace;
    this.metrics = o.metrics;
    this.log = o.log;
    this.settings = o.inferenceLog;
    this.allowed = new Set(o.eventTopics);
    const wantsKafka = o.inferenceLog.topic !== undefined || o.eventTopics.length > 0;
    if (wantsKafka && (o.recorderSocket || o.kafka)) {
      const model = o.model.name;
      const m = o.metrics;
      this.producer = o.recorderSocket
        ? createSocketProducer({
            path: o.recorderSocket,
            onRefused: (n, topics) => {
              m.logDropped.labels(model, 'not_allowed').inc(n);
              this.log.warn({ topics, dropped: n }, 'inference log: the recorder refused records for topics this model may not write to');
            },
          })
        : createProducer(o.kafka as KafkaSettings, `modelship-runtime-${o.model.name}`, { log: o.log });
      const sent = m.logSent.labels(model);
      this.sink = new RecordSink({
        send: this.producer.send,
        log: o.log,
        bufferBytes: o.inferenceLog.bufferBytes,
        observer: {
          sent: (n) => sent.inc(n),
          dropped: (reason, n) => m.logDropped.labels(model, reason).inc(n),
          sendFailed: () => m.logSendErrors.labels(model).inc(),
        },
      });
      m.bufferedBytes = () => this.sink?.bufferedBytes ?? 0;
      this.topic = o.inferenceLog.topic;
      o.log.info(
        {
          topic: this.topic ?? null,
          mode: this.settings.mode,
          sampleRate: this.settings.sampleRate,
          eventTopics: [...this.allowed],
          bufferBytes: this.settings.bufferBytes,
          ...(o.recorderSocket ? { through: 'recorder sidecar' } : {}),
        },
        'inference logging to Kafka',
      );
    } else {
      this.topic = undefined;
      if (wantsKafka)
        o.log.warn('inference logging or event topics are configured but no Kafka bootstrap servers: records are not produced');
    }
    this.always = this.settings.sampleRate >= 1;
  }

  /** Whether this request gets an inference record (decided before it runs). */
  sample(): boolean {
    if (this.topic === undefined) return false;
    return this.always || Math.random() < this.settings.sampleRate;
  }

  // The model (a RecordSource by shape) changes version and sha256 once, when it loads; the namespace is fixed.
  private src: RecordSource | undefined;
  private source(): RecordSource {
    const m = this.model;
    const s = this.src;
    if (s && s.modelVersion === m.version && s.bundleSha256 === m.bundleSha256) return s;
    this.src = { model: m.name, modelVersion: m.version, namespace: this.namespace, bundleSha256: m.bundleSha256 };
    return this.src;
  }

  inference(facts: InferenceFacts): void {
    if (!this.sink || this.topic === undefined) return;
    const record = inferenceRecord(this.source(), this.settings.mode, facts);
    this.sink.offer(this.topic, facts.requestId, JSON.stringify(record));
  }

  /** Writes a feedback record (never sampled); false when logging is off. */
  feedback(protocol: 'v2' | 'v1', requestId: string, feedbackRequestId: string, body: Record<string, unknown>): boolean {
    if (!this.sink || this.topic === undefined) return false;
    const record = feedbackRecord(this.source(), protocol, requestId, feedbackRequestId, body);
    return this.sink.offer(this.topic, requestId, JSON.stringify(record));
  }

  private reject(kind: 'metric' | 'event', reason: string, detail: string): void {
    this.metrics.pluginRejected.labels(this.model.name, kind, reason).inc();
    // One log line per distinct problem: a plugin returning a bad metric on every request must not flood.
    const key = `${kind}\0${reason}\0${detail}`;
    if (this.warned.size < 1000 && !this.warned.has(key)) {
      this.warned.add(key);
      this.log.warn({ kind, reason }, `plugin ${kind} refused: ${detail}`);
    }
  }

  /** Applies the metrics and events a plugin returned. Never throws: a bad signal costs no prediction. */
  signals(s: Signals | undefined, requestId: string): void {
    if (!s) return;
    for (const raw of s.metrics) {
      const m = validateMetric(raw);
      if (typeof m === 'string') {
        this.reject('metric', 'invalid', m);
        continue;
      }
      const refused = this.metrics.pluginMetric(this.model.name, m);
      if (refused) this.reject('metric', refused, `${m.name} (${m.type})`);
    }
    for (const raw of s.events) {
      const e = validateEvent(raw);
      if (typeof e === 'string') {
        this.reject('event', 'invalid', e);
        continue;
      }
      if (!this.allowed.has(e.topic)) {
        this.reject('event', 'not_allowed', `topic ${e.topic} is not in spec.inferenceLogging.eventTopics`);
        continue;
      }
      if (!this.sink) {
        this.reject('event', 'no_kafka', `no Kafka configured for topic ${e.topic}`);
        continue;
      }
      const key = e.key ?? requestId;
      if (this.sink.offer(e.topic, key, JSON.stringify(eventRecord(this.source(), requestId, e.value)))) {
        this.metrics.pluginEvents.labels(this.model.name, e.topic).inc();
      }
    }
  }

  /** Flushes waiting records within the configured bound, then disconnects. */
  async close(): Promise<void> {
    if (!this.sink) return;
    await this.sink.close(this.settings.flushTimeoutMs);
    await this.producer?.close().catch(() => {});
  }
}

/** A recorder without Kafka (local serving and tests): plugin metrics only, no records or events. */
export function localRecorder(model: ServedModel, metrics: RuntimeMetrics, log: Logger): Recorder {
  return new Recorder({
    model,
    namespace: undefined,
    kafka: undefined,
    inferenceLog: {
      topic: undefined,
      mode: DEFAULTS.inferenceLogMode,
      sampleRate: DEFAULTS.inferenceLogSampleRate,
      bufferBytes: DEFAULTS.inferenceLogBufferBytes,
      flushTimeoutMs: DEFAULTS.inferenceLogFlushTimeoutMs,
    },
    eventTopics: [],
    metrics,
    log,
  });
}
