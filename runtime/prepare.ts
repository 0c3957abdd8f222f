// The prepare init container: `node runtime/main.ts prepare`. Fetches the bundle with the storage keys (which only
// this container holds), verifies its sha256, unpacks it into the pod's work volume, builds a Python bundle's
// requirements.txt environment in the cache (writable here only), and records what it did. The serving container
// then mounts both read-only and loads from them (MODELSHIP_BUNDLE_PREPARED). A failure exits non-zero with its
// code and message in the termination log, as the serving process does.
import { writeFileSync } from 'node:fs';
import { recordPrepared, prepareBundle } from './bundle/index.ts';
import { loadConfig } from './config.ts';
import { pythonRequirements, probePython } from './engines/python/index.ts';
import { describe, isModelshipError } from './errors.ts';
import { createLogger } from './observability/logging.ts';

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const started = performance.now();
  let terminationLog = env.MODELSHIP_TERMINATION_LOG ?? '/dev/termination-log';
  const fail = (err: unknown, exitCode: number) => {
    const code = isModelshipError(err) ? err.code : 'MS_ERR_SERVER_INTERNAL';
    const text = `${code}: ${describe(err)}`;
    process.stderr.write(`${JSON.stringify({ level: 'fatal', step: 'prepare', code, msg: describe(err) })}\n`);
    try {
      writeFileSync(terminationLog, text.slice(0, 4000));
    } catch {
      // not in a container
    }
    process.exit(exitCode);
  };
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig(env);
  } catch (err) {
    return fail(err, 2);
  }
  terminationLog = config.terminationLog;
  const log = createLogger(config.logLevel, {
    model: config.modelName,
    step: 'prepare',
    ...(config.namespace ? { namespace: config.namespace } : {}),
  });
  try {
    let timings = { downloadSeconds: 0, unpackSeconds: 0 };
    const bundle = await prepareBundle({
      uri: config.bundleUri,
      sha256: config.bundleSha256,
      workDir: config.workDir,
      fetch: { s3: config.s3, timeoutMs: config.fetchTimeoutMs },
      limits: { maxEntries: config.maxBundleEntries, maxTotalBytes: config.maxBundleBytes, maxRatio: config.maxCompressionRatio },
      onStep: (step) => log.info({ step }, 'preparing'),
      onTimings: (t) => {
        timings = { downloadSeconds: t.downloadSeconds, unpackSeconds: t.unpackSeconds };
      },
    });
    const pythonEnv =
      bundle.format === 'python'
        ? ((await pythonRequirements(config.python, bundle.dir, await probePython(config.python.python), log)) ?? null)
        : undefined;
    await recordPrepared(config.workDir, bundle, timings, pythonEnv);
    log.info(
      {
        bundle: bundle.display,
        sha256: bundle.sha256,
        format: bundle.format,
        seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      },
      'bundle prepared',
    );
  } catch (err) {
    fail(err, 1);
  }
}
