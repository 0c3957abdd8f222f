// Test helpers for the runtime: throwaway bundles on disk and an app built around them.
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type Logger, pino } from 'pino';
import { build } from '../../runtime/app.ts';
import type { BatchingSettings } from '../../runtime/batching.ts';
import { pythonSettings } from '../../runtime/config.ts';
import { DEFAULTS, type DependencyTarget } from '../../runtime/contract.ts';
import type { AdmissionConfig } from '../../runtime/dataplane.ts';
import type { PythonSettings } from '../../runtime/engines/python/index.ts';
import type { ModelshipError } from '../../runtime/errors.ts';
import { localRecorder, type Recorder } from '../../runtime/inference-log/recorder.ts';
import { loadModel, ServedModel } from '../../runtime/model.ts';
import { RuntimeMetrics } from '../../runtime/observability/metrics.ts';

export async function makeBundle(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ms-bundle-'));
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
  return dir;
}

export const silent = pino({ level: 'silent' });

export interface AppOptions {
  name?: string;
  version?: string;
  workers?: number;
  requestTimeoutMs?: number;
  bodyLimitBytes?: number;
  initTimeoutMs?: number;
  /** Python: worker processes when `workers` is 0. */
  cpuLimit?: number;
  python?: Partial<PythonSettings>;
  log?: Logger;
  onFatal?: (err: ModelshipError) => void;
  recorder?: (model: ServedModel, metrics: RuntimeMetrics) => Recorder;
  batching?: BatchingSettings;
  /** spec.dependencies, resolved (name → {url, model, modelServing}). */
  dependencies?: Record<string, DependencyTarget>;
  admission?: Partial<AdmissionConfig>;
  timeoutKillsPerMinute?: number;
  /** Serve the batch protocol too (a BatchPrediction's model sidecar). */
  batch?: boolean;
}

/** Builds an app serving the bundle in `dir`, loaded (by the server's loadModel) and ready. */
export async function appFor(dir: string, opts: AppOptions = {}) {
  const model = new ServedModel(opts.name, opts.version);
  const metrics = new RuntimeMetrics({ processMetrics: false });
  const workDir = await mkdtemp(join(tmpdir(), 'ms-work-'));
  const { engine } = await loadModel(model, {
    uri: dir,
    workDir,
    fetch: { timeoutMs: 10_000 },
    limits: { maxEntries: DEFAULTS.maxBundleEntries, maxTotalBytes: DEFAULTS.maxBundleBytes, maxRatio: DEFAULTS.maxCompressionRatio },
    engine: {
      initTimeoutMs: opts.initTimeoutMs ?? 5000,
      workers: opts.workers ?? 0,
      cpuLimit: opts.cpuLimit ?? 1,
      python: { ...pythonSettings(process.env, workDir), ...(opts.python ?? {}) },
      log: opts.log ?? silent,
      logLevel: 'silent',
      ...(opts.onFatal ? { onFatal: opts.onFatal } : {}),
      dependencies: opts.dependencies,
      dependencyMetrics: metrics.dependencyObserver(),
      timeoutKillsPerMinute: opts.timeoutKillsPerMinute,
      onWorkerRestart: (reason) => metrics.workerRestarts.labels(model.name, reason).inc(),
    },
  });
  const app = build({
    model,
    metrics,
    log: opts.log ?? silent,
    recorder: opts.recorder?.(model, metrics) ?? localRecorder(model, metrics, silent),
    requestTimeoutMs: opts.requestTimeoutMs ?? 5000,
    bodyLimitBytes: opts.bodyLimitBytes ?? 1024 * 1024,
    batching: opts.batching,
    admission: opts.admission,
    batch: opts.batch,
  });
  return { app, model, metrics, engine };
}

/** Runs `fn` on an app made by appFor, then closes the app and its engine, whatever `fn` did. */
export async function withApp(
  made: ReturnType<typeof appFor>,
  fn: (t: Awaited<ReturnType<typeof appFor>>) => Promise<void>,
): Promise<void> {
  const t = await made;
  try {
    await fn(t);
  } finally {
    await t.app.close();
    await t.engine.close();
  }
}
