// The runtime process: config → start fetching the bundle → listen (live, not ready) → verify + unpack →
// load the plugin and run init() → ready. SIGTERM: stop reporting ready, finish in-flight requests
// (bounded), exit. A failure to load writes its code and message to the termination log and exits
// non-zero. The HTTP stack is imported after the download has started, so the two overlap.
import { writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { loadConfig, type RuntimeConfig } from './config.ts';
import { describe, isModelshipError, type ModelshipError, msError } from './errors.ts';
import { Recorder } from './inference-log/recorder.ts';
import { loadModel, ServedModel } from './model.ts';
import { createLogger } from './observability/logging.ts';
import { RuntimeMetrics } from './observability/metrics.ts';

/** How long a drain leaves keep-alive connections open before closing the idle ones (see shutdown). */
export const DRAIN_IDLE_GRACE_MS = 1000;

export interface Runtime {
  app: FastifyInstance;
  model: ServedModel;
  metrics: RuntimeMetrics;
  recorder: Recorder;
  log: Logger;
  /** The bound address, e.g. http://127.0.0.1:8080. */
  url: string;
  /** The bound gRPC port. */
  grpcPort: number;
  /** The bound health and metrics port. */
  healthPort: number;
  /** Resolves when the model is ready; rejects with the load failure. */
  loaded: Promise<void>;
  /** Graceful shutdown: not ready, drain in-flight requests (bounded by drainTimeoutMs), flush records, close. */
  shutdown(): Promise<void>;
}

export interface StartHooks {
  /** The model can no longer serve after it was ready (Python workers that keep crashing). */
  onFatal?: (err: ModelshipError) => void;
}

/** Starts the server and begins loading the model; the caller decides what to do on failure. */
export async function start(
  config: RuntimeConfig,
  log = createLogger(config.logLevel, { model: config.modelName }),
  hooks: StartHooks = {},
): Promise<Runtime> {
  const metrics = new RuntimeMetrics();
  const model = new ServedModel(config.modelName, config.modelVersion);
  metrics.modelReady.labels(model.name).set(0);
  const t0 = performance.now();
  // Loading starts before the HTTP stack is even imported, so the download and the import overlap.
  const loading = loadModel(model, {
    uri: config.bundleUri,
    sha256: config.bundleSha256,
    workDir: config.workDir,
    prepared: config.bundlePrepared,
    fetch: { s3: config.s3, timeoutMs: config.fetchTimeoutMs, onBytes: (n) => metrics.bundleDownloadBytes.inc(n) },
    limits: {
      maxEntries: config.maxBundleEntries,
      maxTotalBytes: config.maxBundleBytes,
      maxRatio: config.maxCompressionRatio,
    },
    onTimings: (t) => {
      metrics.bundleDownloadSeconds.set(t.downloadSeconds);
      metrics.bundleUnpackSeconds.set(t.unpackSeconds);
    },
    engine: {
      initTimeoutMs: config.initTimeoutMs,
      workers: config.workers,
      cpuLimit: config.cpuLimit,
      python: config.python,
      log,
      logLevel: config.logLevel,
      dependencies: config.dependencies,
      dependencyMetrics: metrics.dependencyObserver(),
      timeoutKillsPerMinute: config.timeoutKillsPerMinute,
      onWorkerRestart: (reason) => metrics.workerRestarts.labels(model.name, reason).inc(),
      onFatal: (err) => {
        metrics.modelReady.labels(model.name).set(0);
        hooks.onFatal?.(err);
      },
    },
  });
  // Handled below, after the server is up; this keeps an early failure from counting as unhandled.
  loading.catch(() => {});
  const { build } = await import('./app.ts');
  const recorder = new Recorder({
    model,
    namespace: config.namespace,
    kafka: config.kafka,
    recorderSocket: config.recorderSocket,
    inferenceLog: config.inferenceLog,
    eventTopics: config.eventTopics,
    metrics,
    log,
  });
  const auth = config.authSocket ? new (await import('./auth/gate.ts')).AuthGate(config.authSocket) : undefined;
  const app = build({
    model,
    metrics,
    log,
    recorder,
    requestTimeoutMs: config.requestTimeoutMs,
    bodyLimitBytes: config.bodyLimitBytes,
    batching: config.batching,
    admission: config.admission,
    auth,
    batch: config.batchSocket !== undefined,
  });
  // A port that cannot be bound stops the start whole: nothing stays up half-started, the load included.
  const abandon = async (err: unknown): Promise<never> => {
    await app.close().catch(() => {});
    void loading.then(
      () => model.engine?.close(),
      () => {},
    );
    throw err;
  };
  // A batch model sidecar answers its pod's driver on a Unix socket only: no port, no gRPC.
  const socket = config.batchSocket;
  if (socket) await rm(socket, { force: true });
  const url = await app.listen(socket ? { path: socket } : { host: config.host, port: config.port }).catch((err: NodeJS.ErrnoException) =>
    abandon(
      msError('MS_ERR_LISTEN_FAILED', {
        protocol: 'HTTP',
        address: socket ?? `${config.host}:${config.port}`,
        detail: err.code ?? err.message,
      }),
    ),
  );
  const { startGrpc } = await import('./protocol/grpc.ts');
  const grpc = socket
    ? { port: 0, close: async () => {} }
    : await startGrpc(app.plane, {
        host: config.host,
        port: config.grpcPort,
        log,
        maxMessageBytes: config.bodyLimitBytes,
        auth,
      }).catch(abandon);
  const { startHealth } = await import('./health.ts');
  const health = await startHealth(model, metrics, config.host, config.healthPort).catch(async (err) => {
    await grpc.close(0);
    return abandon(err);
  });
  log.info({ url, grpcPort: grpc.port, healthPort: health.port }, 'listening; loading the model');

  const loaded = loading.then(({ bundle, loadSeconds }) => {
    metrics.modelLoadSeconds.set(loadSeconds);
    metrics.modelReady.labels(model.name).set(1);
    log.info(
      {
        bundle: bundle.display,
        sha256: bundle.sha256,
        format: bundle.format,
        workers: config.workers,
        seconds: Number(((performance.now() - t0) / 1000).toFixed(3)),
      },
      'model ready',
    );
  });

  let closing: Promise<void> | undefined;
  const shutdown = () => {
    closing ??= (async () => {
      model.setDraining();
      metrics.modelReady.labels(model.name).set(0);
      log.info({ drainTimeoutMs: config.drainTimeoutMs }, 'shutting down: draining in-flight requests');
      const started = performance.now();
      // Connections in use get `Connection: close` on their next response (app.ts) and end there. Idle
      // keep-alive connections are closed only after DRAIN_IDLE_GRACE_MS: one that was just handed a response
      // is likely carrying the client's next request already, and closing it would reset that request. Node's
      // server.close() closes idle connections at once, so it waits for the grace too.
      const open = await new Promise<number>((r) => app.server.getConnections((err, n) => r(err ? 1 : n)));
      if (open > 0) await new Promise((r) => setTimeout(r, Math.min(DRAIN_IDLE_GRACE_MS, config.drainTimeoutMs)));
      const sweeper = setInterval(() => app.server.closeIdleConnections(), 50);
      let timer: NodeJS.Timeout | undefined;
      const drained = await Promise.race([
        Promise.all([app.close(), grpc.close(config.drainTimeoutMs)]).then(() => true),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(false), Math.max(0, config.drainTimeoutMs - (performance.now() - started)));
        }),
      ]);
      clearTimeout(timer);
      clearInterval(sweeper);
      if (!drained) {
        log.warn('drain timeout passed with requests still in flight; closing their connections');
        app.server.closeAllConnections();
      }
      // Requests are done: what they recorded is all there is to flush (bounded).
      await recorder.close();
      await model.engine?.close();
      await health.close();
      await auth?.close();
    })();
    return closing;
  };
  return { app, model, metrics, recorder, log, url, grpcPort: grpc.port, healthPort: health.port, loaded, shutdown };
}

function writeTerminationLog(path: string, text: string): void {
  try {
    // Kubernetes shows at most 4096 bytes of it.
    writeFileSync(path, text.slice(0, 4000));
  } catch {
    // Not in a container (or not writable): the log line carries the same text.
  }
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  let config: RuntimeConfig;
  try {
    config = loadConfig(env);
  } catch (err) {
    const text = isModelshipError(err) ? `${err.code}: ${err.message}` : describe(err);
    process.stderr.write(`${JSON.stringify({ level: 'fatal', msg: text })}\n`);
    writeTerminationLog(env.MODELSHIP_TERMINATION_LOG ?? '/dev/termination-log', text);
    process.exit(2);
  }
  const log = createLogger(config.logLevel, { model: config.modelName, ...(config.namespace ? { namespace: config.namespace } : {}) });
  let runtime: Runtime | undefined;
  const fail = (err: unknown) => {
    const code = isModelshipError(err) ? err.code : 'MS_ERR_SERVER_INTERNAL';
    const text = `${code}: ${describe(err)}`;
    log.fatal({ code, err }, describe(err));
    writeTerminationLog(config.terminationLog, text);
    process.exit(1);
  };
  const onSignal = (signal: string) => {
    log.info({ signal }, 'signal received');
    if (!runtime) process.exit(0);
    runtime.shutdown().then(
      () => process.exit(0),
      (err) => fail(err),
    );
  };
  process.once('SIGTERM', () => onSignal('SIGTERM'));
  process.once('SIGINT', () => onSignal('SIGINT'));
  try {
    runtime = await start(config, log, { onFatal: fail });
  } catch (err) {
    fail(err);
    return;
  }
  runtime.loaded.catch(fail);
}
