// The one model a runtime serves, and its life cycle: loading → ready → draining, or loading → failed.
import type { TensorMetadata } from './bundle/manifest.ts';
import type { Manifest } from './bundle/manifest.ts';
import type { Engine } from './engines/types.ts';
import { msError } from './errors.ts';

export type ModelStatus = 'loading' | 'ready' | 'failed' | 'draining';

export class ServedModel {
  readonly name: string;
  version: string | undefined;
  status: ModelStatus = 'loading';
  /** Why the model is not ready (the failure message, or the loading step). */
  reason = 'loading the bundle';
  engine: Engine | undefined;
  manifest: Manifest = {};
  bundleSha256: string | undefined;
  inputs: readonly TensorMetadata[] = [];
  outputs: readonly TensorMetadata[] = [];

  constructor(name: string, version?: string) {
    this.name = name;
    this.version = version;
  }

  setLoading(step: string): void {
    this.reason = step;
  }

  setReady(engine: Engine, manifest: Manifest, bundleSha256?: string): void {
    this.engine = engine;
    this.manifest = manifest;
    this.bundleSha256 = bundleSha256;
    this.version ??= manifest.version;
    this.inputs = engine.pluginMetadata?.inputs ?? manifest.inputs ?? [];
    this.outputs = engine.pluginMetadata?.outputs ?? manifest.outputs ?? [];
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

  get ready(): boolean {
    return this.status === 'ready';
  }

  /** The engine, or a 503 error saying why there is none. */
  requireEngine(): Engine {
    // A draining model keeps serving what reaches it: requests already routed here must not fail.
    if (this.engine && (this.status === 'ready' || this.status === 'draining')) return this.engine;
    throw msError('MS_ERR_MODEL_NOT_READY', { name: this.name, detail: this.reason || this.status });
  }
}
