// Picks the engine for a bundle's format.
import type { Logger } from 'pino';
import type { ResolvedBundle } from '../bundle/manifest.ts';
import { msError } from '../errors.ts';
import { createJsEngine } from './js.ts';
import type { Engine } from './types.ts';

export interface EngineOptions {
  modelName: string;
  modelVersion: string | undefined;
  initTimeoutMs: number;
  workers: number;
  log: Logger;
  logLevel: string;
}

export async function createEngine(bundle: ResolvedBundle, opts: EngineOptions): Promise<Engine> {
  switch (bundle.format) {
    case 'js':
      return createJsEngine({
        bundleDir: bundle.dir,
        entrypoint: bundle.entrypoint,
        parameters: bundle.manifest.parameters ?? {},
        ...opts,
      });
    case 'onnx':
      throw msError('MS_ERR_ENGINE_UNSUPPORTED', { format: 'onnx', detail: 'the ONNX engine is not in this runtime yet' });
    case 'python':
      throw msError('MS_ERR_ENGINE_UNSUPPORTED', {
        format: 'python',
        detail: 'Python bundles need the modelship/runtime-python image',
      });
  }
}
