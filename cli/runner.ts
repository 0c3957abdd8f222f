// The local bundle runner behind `modelship test`: the server's own loader (loadModel), engine and output
// validation, without a server.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { pythonSettings } from '../runtime/config.ts';
import { DEFAULTS } from '../runtime/contract.ts';
import { loadModel, ServedModel } from '../runtime/model.ts';
import { compileInputCheck } from '../runtime/protocol/inputs.ts';
import { outputsToJson } from '../runtime/protocol/tensors.ts';

export async function runBundle(bundle: string, inputs: Record<string, unknown>[], opts: { logLevel?: string } = {}) {
  const workDir = await mkdtemp(join(tmpdir(), 'modelship-test-'));
  const log = pino({ level: opts.logLevel ?? 'warn' }, process.stderr);
  const model = new ServedModel();
  try {
    const { engine, bundle: resolved } = await loadModel(model, {
      uri: resolve(bundle),
      workDir,
      fetch: { timeoutMs: DEFAULTS.fetchTimeoutMs },
      limits: { maxEntries: DEFAULTS.maxBundleEntries, maxTotalBytes: DEFAULTS.maxBundleBytes, maxRatio: DEFAULTS.maxCompressionRatio },
      engine: {
        initTimeoutMs: DEFAULTS.initTimeoutMs,
        // JS in-process; Python one worker process (0 workers = one per CPU, capped at the limit of 1).
        workers: 0,
        cpuLimit: 1,
        python: pythonSettings(process.env, workDir),
        log,
        logLevel: opts.logLevel ?? 'warn',
      },
    });
    try {
      // The server's checks: the declared inputs first, then the plugin (whose outputs the engine checks).
      if (model.inputs.length > 0) compileInputCheck(model.inputs)(inputs);
      const { outputs, signals } = await engine.predict(inputs, {
        requestId: 'local',
        modelName: model.name,
        signal: new AbortController().signal,
        log,
      });
      return { bundle: resolved, outputs: outputs.map(outputsToJson), signals };
    } finally {
      await engine.close();
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
}
