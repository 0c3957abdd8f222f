// Test helpers for the runtime: throwaway bundles on disk and an app built around them.
import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import { build } from '../../runtime/app.ts';
import { resolveBundle } from '../../runtime/bundle/manifest.ts';
import { createEngine } from '../../runtime/engines/index.ts';
import { ServedModel } from '../../runtime/model.ts';
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
}

/** Builds an app serving the bundle in `dir`, loaded and ready. */
export async function appFor(dir: string, opts: AppOptions = {}) {
  const bundle = await resolveBundle(dir);
  const model = new ServedModel(opts.name ?? bundle.manifest.name ?? 'model', opts.version);
  const metrics = new RuntimeMetrics({ processMetrics: false });
  const app = build({
    model,
    metrics,
    log: silent,
    requestTimeoutMs: opts.requestTimeoutMs ?? 5000,
    bodyLimitBytes: opts.bodyLimitBytes ?? 1024 * 1024,
  });
  const engine = await createEngine(bundle, {
    modelName: model.name,
    modelVersion: opts.version ?? bundle.manifest.version,
    initTimeoutMs: opts.initTimeoutMs ?? 5000,
    workers: opts.workers ?? 0,
    log: silent,
    logLevel: 'silent',
  });
  model.setReady(engine, bundle.manifest);
  return { app, model, metrics, engine };
}
