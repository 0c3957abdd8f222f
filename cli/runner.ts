// The local bundle runner behind `modelship test`: the server's own loader, engine and output validation,
// without a server.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { resolveBundle } from '../runtime/bundle/manifest.ts';
import { unzipSafely } from '../runtime/bundle/unzip.ts';
import { DEFAULTS } from '../runtime/contract.ts';
import { createEngine } from '../runtime/engines/index.ts';
import { outputsToJson } from '../runtime/protocol/tensors.ts';

export async function runBundle(bundle: string, inputs: Record<string, unknown>[], opts: { logLevel?: string } = {}) {
  let dir = bundle;
  let tmp: string | undefined;
  if ((await stat(bundle)).isFile()) {
    tmp = await mkdtemp(join(tmpdir(), 'modelship-test-'));
    dir = join(tmp, 'bundle');
    await unzipSafely(bundle, dir, {
      maxEntries: DEFAULTS.maxBundleEntries,
      maxTotalBytes: DEFAULTS.maxBundleBytes,
      maxRatio: DEFAULTS.maxCompressionRatio,
    });
  }
  try {
    const resolved = await resolveBundle(dir);
    const log = pino({ level: opts.logLevel ?? 'warn' }, process.stderr);
    const engine = await createEngine(resolved, {
      modelName: resolved.manifest.name ?? 'model',
      modelVersion: resolved.manifest.version,
      initTimeoutMs: DEFAULTS.initTimeoutMs,
      workers: 0,
      log,
      logLevel: opts.logLevel ?? 'warn',
    });
    try {
      const { outputs, signals } = await engine.predict(inputs, {
        requestId: 'local',
        modelName: resolved.manifest.name ?? 'model',
        signal: new AbortController().signal,
        log,
      });
      return { bundle: resolved, outputs: outputs.map(outputsToJson), signals };
    } finally {
      await engine.close();
    }
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}
