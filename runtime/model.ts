// The one model a runtime serves, its life cycle (loading → ready → draining, or loading → failed), and
// the one way a model is loaded (bundle → engine), used by the server, the CLI and the tests.
import { loadPrepared, type PrepareOptions, type PreparedBundle, prepareBundle } from './bundle/index.ts';
import type { Manifest, TensorMetadata } from './bundle/manifest.ts';
import { createEngine, type EngineOptions } from './engines/index.ts';
import type { Engine } from './engines/types.ts';
import { describe, msError } from './errors.ts';

export type ModelStatus = 'loading' | 'ready' | 'failed' | 'draining';

export class ServedModel {
  /** Named by whoever serves it; a model made without a name takes the manifest's (else "model"). */
  name: string;
  private readonly named: boolean;
  version: string | undefined;
  status: ModelStatus = 'loading';
  /** Why the model is not ready (the failure message, or the loading step). */
  reason = 'loading the bundle';
  engine: Engine | undefined;
  manifest: Manifest = {};
  bundleSha256: string | undefined;
  inputs: readonly TensorMetadata[] = [];
  outputs: readonly TensorMetadata[] = [];

  constructor(name?: string, version?: string) {
    this.name = name ?? 'model';
    this.named = name !== undefined;
    this.version = version;
  }

  setLoading(step: string): void {
    this.reason = step;
  }

  /** Before the engine loads: the manifest's name and version, where the server named none. */
  adopt(manifest: Manifest): void {
    if (!this.named && manifest.name) this.name = manifest.name;
    this.version ??= manifest.version;
  }

  setReady(engine: Engine, manifest: Manifest, bundleSha256?: string): void {
    this.engine = engine;
    this.manifest = manifest;
    this.bundleSha256 = bundleSha256;
    this.version ??= manifest.version;
    this.inputs = engine.metadata.inputs ?? manifest.inputs ?? [];
    this.outputs = engine.metadata.outputs ?? manifest.outputs ?? [];
    this.status = 'ready';
    this.reason = '';
  }

  setFailed(reason: string): void {
    this.status = 'failed';
    this.reason = reason;
  }

  setDraining(): void {
    if (this.status === 'ready') {
      this.status = 'draining';
      this.reason = 'shutting down';
    }
  }

  /** Loaded, not draining, and its engine can take a call (not every worker down and restarting). */
  get ready(): boolean {
    return this.status === 'ready' && (this.engine?.serving() ?? false);
  }

  /** The engine, or a 503 error saying why there is none. */
  requireEngine(): Engine {
    // A draining model keeps serving what reaches it: requests already routed here must not fail.
    if (this.engine && (this.status === 'ready' || this.status === 'draining')) return this.engine;
    throw msError('MS_ERR_MODEL_NOT_READY', { name: this.name, detail: this.reason || this.status });
  }
}

export interface LoadOptions extends Omit<PrepareOptions, 'onStep'> {
  engine: Omit<EngineOptions, 'modelName' | 'modelVersion'>;
  /** The prepare init container has fetched and unpacked the bundle into workDir: load it from there. */
  prepared?: boolean;
}

/**
 * Fetches, verifies and unpacks the bundle, starts its engine (init included) and makes the model ready.
 * On failure the model is failed with the reason, and the error is thrown.
 */
export async function loadModel(
  model: ServedModel,
  o: LoadOptions,
): Promise<{ engine: Engine; bundle: PreparedBundle; loadSeconds: number }> {
  const log = o.engine.log;
  try {
    const bundle = o.prepared
      ? await loadPrepared(o)
      : await prepareBundle({
          ...o,
          onStep: (step) => {
            model.setLoading(step);
            log.info({ step }, 'loading');
          },
        });
    model.adopt(bundle.manifest);
    model.setLoading(`loading ${bundle.entrypoint} and running init()`);
    const t0 = performance.now();
    const engine = await createEngine(bundle, {
      ...o.engine,
      modelName: model.name,
      modelVersion: model.version,
      onFatal: (err) => {
        model.setFailed(`${err.code}: ${err.message}`);
        o.engine.onFatal?.(err);
      },
    });
    model.setReady(engine, bundle.manifest, bundle.sha256);
    return { engine, bundle, loadSeconds: (performance.now() - t0) / 1000 };
  } catch (err) {
    model.setFailed(describe(err));
    throw err;
  }
}
