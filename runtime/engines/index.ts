// Picks the engine for a bundle's format.
import type { Logger } from 'pino';
import type { ResolvedBundle } from '../bundle/manifest.ts';
import type { ModelshipError } from '../errors.ts';
import { createJsEngine } from './js.ts';
import { createOnnxEngine } from './onnx/index.ts';
import type { RequirementsEnv } from './python/deps.ts';
import { createPythonEngine, type PythonSettings, workerCount } from './python/index.ts';
import type { Engine } from './types.ts';
import type { DependencyTarget } from '../contract.ts';
import type { DependencyMetrics } from '../dependencies.ts';

export interface EngineOptions {
  modelName: string;
  modelVersion: string | undefined;
  initTimeoutMs: number;
  /** JS: 0 runs in-process, N a pool of threads. Python: N processes, 0 one per CPU. ONNX: N threads, 0 by model size. */
  workers: number;
  log: Logger;
  logLevel: string;
  python: PythonSettings;
  cpuLimit?: number | undefined;
  /** The engine can no longer serve (Python workers that keep crashing). */
  onFatal?: (err: ModelshipError) => void;
  /** spec.dependencies: the handles plugins get (JS ctx.models, Python modelship.models). */
  dependencies?: Record<string, DependencyTarget> | undefined;
  dependencyMetrics?: DependencyMetrics | undefined;
  /** Workers the server's own timeout may kill per minute (engines/kill-budget.ts). */
  timeoutKillsPerMinute?: number | undefined;
  /** A worker was replaced: after a crash, or killed by the server's timeout. */
  onWorkerRestart?: ((reason: 'crash' | 'timeout') => void) | undefined;
}

export async function createEngine(
  bundle: ResolvedBundle & { pythonEnv?: RequirementsEnv | null | undefined },
  opts: EngineOptions,
): Promise<Engine> {
  const parameters = bundle.manifest.parameters ?? {};
  switch (bundle.format) {
    case 'js':
      return createJsEngine({ bundleDir: bundle.dir, entrypoint: bundle.entrypoint, parameters, ...opts });
    case 'onnx':
      return createOnnxEngine({
        bundleDir: bundle.dir,
        entrypoint: bundle.entrypoint,
        parameters,
        modelName: opts.modelName,
        modelVersion: opts.modelVersion,
        initTimeoutMs: opts.initTimeoutMs,
        workers: opts.workers,
        autoWorkers: workerCount(0, opts.cpuLimit),
        inputs: bundle.manifest.inputs,
        outputs: bundle.manifest.outputs,
        log: opts.log,
      });
    case 'python':
      return createPythonEngine({
        ...opts.python,
        preparedEnv: bundle.pythonEnv,
        bundleDir: bundle.dir,
        entrypoint: bundle.entrypoint,
        modelName: opts.modelName,
        modelVersion: opts.modelVersion,
        parameters,
        initTimeoutMs: opts.initTimeoutMs,
        workers: opts.workers,
        cpuLimit: opts.cpuLimit,
        log: opts.log,
        maxFrameBytes: 1 << 30,
        dependencies: opts.dependencies ?? {},
        timeoutKillsPerMinute: opts.timeoutKillsPerMinute ?? 6,
        onWorkerRestart: opts.onWorkerRestart,
        onFatal: opts.onFatal ?? ((err) => opts.log.fatal({ code: err.code }, err.message)),
      });
  }
}
