// Prometheus metrics of one runtime, in a registry of its own (so tests and several apps in one process do
// not collide). Label children are cached so the hot path does a map lookup, not a label-set build.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class RuntimeMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'model' | 'protocol' | 'status'>;
  readonly duration: Histogram<'model' | 'protocol'>;
  readonly inFlight: Gauge<'model'>;
  readonly bundleDownloadBytes: Counter;
  readonly bundleDownloadSeconds: Gauge;
  readonly bundleUnpackSeconds: Gauge;
  readonly modelLoadSeconds: Gauge;
  readonly modelReady: Gauge<'model'>;
  readonly logSent: Counter<'model'>;
  readonly logDropped: Counter<'model' | 'reason'>;
  readonly logSendErrors: Counter<'model'>;
  readonly logBufferBytes: Gauge<'model'>;
  readonly pluginEvents: Counter<'model' | 'topic'>;
  readonly pluginRejected: Counter<'model' | 'kind' | 'reason'>;
  /** Read into modelship_inference_log_buffer_bytes at scrape time. */
  bufferedBytes: () => number = () => 0;
  private readonly pluginMetrics = new Map<string, Gauge<'model'> | Counter<'model'>>();
  readonly batchSize: Histogram<'model'>;
  readonly dependencyCalls: Counter<'dependency' | 'outcome'>;
  readonly dependencyDuration: Histogram<'dependency'>;
  readonly batchWait: Histogram<'model'>;
  readonly queueDepth: Gauge<'model'>;
  readonly rejected: Counter<'model' | 'reason'>;
  readonly workerRestarts: Counter<'model' | 'reason'>;
  /** Requests at the engine and waiting for it: read into the gauges at scrape time (the data plane sets them). */
  inFlightCount: () => number = () => 0;
  queued: () => number = () => 0;
  private inFlightModel = 'model';
  private readonly durationChildren = new Map<string, ReturnType<Histogram<'model' | 'protocol'>['labels']>>();
  private readonly requestChildren = new Map<string, ReturnType<Counter<'model' | 'protocol' | 'status'>['labels']>>();

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'modelship_requests_total',
      help: 'Inference requests by model, protocol (v2, v1, custom) and HTTP status',
      labelNames: ['model', 'protocol', 'status'],
      registers,
    });
    this.duration = new Histogram({
      name: 'modelship_request_duration_seconds',
      help: 'Inference request latency, from request received to response sent',
      labelNames: ['model', 'protocol'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    const self = this;
    this.inFlight = new Gauge({
      name: 'modelship_requests_in_flight',
      help: 'Requests (inference, feedback, custom routes) admitted to the engine and not yet done with it',
      labelNames: ['model'],
      registers,
      collect() {
        this.set({ model: self.inFlightModel }, self.inFlightCount());
      },
    });
    this.queueDepth = new Gauge({
      name: 'modelship_requests_queued',
      help: 'Requests waiting for the engine (admission control)',
      labelNames: ['model'],
      registers,
      collect() {
        this.set({ model: self.inFlightModel }, self.queued());
      },
    });
    this.rejected = new Counter({
      name: 'modelship_requests_rejected_total',
      help: 'Requests refused with 503 MS_ERR_MODEL_OVERLOADED, by reason: full (refused on arrival), wait (waited the most it may)',
      labelNames: ['model', 'reason'],
      registers,
    });
    this.workerRestarts = new Counter({
      name: 'modelship_worker_restarts_total',
      help: 'Engine workers (Python processes, worker threads) replaced, by reason: crash, timeout (killed by the server timeout)',
      labelNames: ['model', 'reason'],
      registers,
    });
    this.dependencyCalls = new Counter({
      name: 'modelship_dependency_requests_total',
      help: 'Calls to other ModelServings (spec.dependencies) by outcome: ok, unavailable, timeout, rejected, failed, error',
      labelNames: ['dependency', 'outcome'],
      registers,
    });
    this.dependencyDuration = new Histogram({
      name: 'modelship_dependency_request_duration_seconds',
      help: 'Time of calls to other ModelServings, from the call to its answer',
      labelNames: ['dependency'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.batchSize = new Histogram({
      name: 'modelship_batch_size',
      help: 'Rows per engine call when adaptive batching is on',
      labelNames: ['model'],
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
      registers,
    });
    this.batchWait = new Histogram({
      name: 'modelship_batch_queue_seconds',
      help: 'Time a request waited for its batch to fill (adaptive batching)',
      labelNames: ['model'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.bundleDownloadBytes = new Counter({
      name: 'modelship_bundle_download_bytes_total',
      help: 'Bytes of bundle archive downloaded',
      registers,
    });
    this.bundleDownloadSeconds = new Gauge({
      name: 'modelship_bundle_download_seconds',
      help: 'Time the bundle download took',
      registers,
    });
    this.bundleUnpackSeconds = new Gauge({
      name: 'modelship_bundle_unpack_seconds',
      help: 'Time verifying and unpacking the bundle took',
      registers,
    });
    this.modelLoadSeconds = new Gauge({
      name: 'modelship_model_load_seconds',
      help: 'Time loading the plugin and running its init() took',
      registers,
    });
    this.modelReady = new Gauge({
      name: 'modelship_model_ready',
      help: '1 when the model is loaded and serving, else 0',
      labelNames: ['model'],
      registers,
    });
    this.logSent = new Counter({
      name: 'modelship_inference_log_sent_total',
      help: 'Records (inference, feedback, event) written to Kafka',
      labelNames: ['model'],
      registers,
    });
    this.logDropped = new Counter({
      name: 'modelship_inference_log_dropped_total',
      help: 'Records not written to Kafka, by reason: buffer_full (Kafka slow or down), too_large, topic_not_found, shutdown (flush bound reached), not_allowed',
      labelNames: ['model', 'reason'],
      registers,
    });
    this.logSendErrors = new Counter({
      name: 'modelship_inference_log_send_errors_total',
      help: 'Failed attempts to write a batch of records to Kafka (the records are kept and retried)',
      labelNames: ['model'],
      registers,
    });
    this.logBufferBytes = new Gauge({
      name: 'modelship_inference_log_buffer_bytes',
      help: 'Bytes of records waiting to be written to Kafka',
      labelNames: ['model'],
      registers,
      collect() {
        this.set({ model: self.inFlightModel }, self.bufferedBytes());
      },
    });
    this.pluginEvents = new Counter({
      name: 'modelship_plugin_events_total',
      help: 'Events the plugin returned, accepted for an allowed topic',
      labelNames: ['model', 'topic'],
      registers,
    });
    this.pluginRejected = new Counter({
      name: 'modelship_plugin_signals_rejected_total',
      help: 'Metrics and events the plugin returned that were refused, by kind and reason (invalid, not_allowed, no_kafka, limit, type_conflict, name_taken)',
      labelNames: ['model', 'kind', 'reason'],
      registers,
    });
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * Sets or adds to a metric the plugin returned, exposed as `modelship_plugin_<name>{model}`. Returns why
   * it was refused, if it was.
   */
  pluginMetric(
    model: string,
    m: { name: string; type: 'gauge' | 'counter'; value: number; help?: string },
  ): 'limit' | 'type_conflict' | 'name_taken' | undefined {
    const name = `modelship_plugin_${m.name.toLowerCase()}`;
    let metric = this.pluginMetrics.get(name);
    if (!metric) {
      if (this.pluginMetrics.size >= RuntimeMetrics.MAX_PLUGIN_METRICS) return 'limit';
      const cfg = {
        name,
        help: m.help ?? `${m.name}, as reported by the model's plugin`,
        labelNames: ['model'] as const,
        registers: [this.registry],
      };
      // The registry refuses a name one of ours already has (modelship_plugin_events_total, …).
      if (this.registry.getSingleMetric(name)) return 'name_taken';
      metric = m.type === 'gauge' ? new Gauge(cfg) : new Counter(cfg);
      this.pluginMetrics.set(name, metric);
    }
    if (m.type === 'gauge') {
      if (!(metric instanceof Gauge)) return 'type_conflict';
      metric.labels(model).set(m.value);
    } else {
      if (!(metric instanceof Counter)) return 'type_conflict';
      metric.labels(model).inc(m.value);
    }
    return undefined;
  }

  static readonly MAX_PLUGIN_METRICS = 100;

  /** The model the in-flight gauge is labelled with. */
  setModel(name: string): void {
    this.inFlightModel = name;
  }

  observeRequest(model: string, protocol: string, status: number, seconds: number): void {
    const dk = `${model}\0${protocol}`;
    let d = this.durationChildren.get(dk);
    if (!d) {
      d = this.duration.labels(model, protocol);
      this.durationChildren.set(dk, d);
    }
    d.observe(seconds);
    const rk = `${dk}\0${status}`;
    let r = this.requestChildren.get(rk);
    if (!r) {
      r = this.requests.labels(model, protocol, String(status));
      this.requestChildren.set(rk, r);
    }
    r.inc();
  }

  /** What the dependency client reports each call to (calls by outcome, and their durations). */
  dependencyObserver(): { observe(dependency: string, outcome: string, seconds: number): void } {
    return {
      observe: (dependency, outcome, seconds) => {
        this.dependencyCalls.labels(dependency, outcome).inc();
        this.dependencyDuration.labels(dependency).observe(seconds);
      },
    };
  }
}
