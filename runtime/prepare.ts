// The pod's init steps, each a container of its own with only what it needs:
// - `main.ts prepare` fetches the bundle with the storage keys (which only it holds), verifies its sha256, unpacks it
//   into the pod's work volume and records it; it runs nothing of the bundle's.
// - `main.ts install` (Python bundles) builds the requirements.txt environment in the cache, with no keys at all:
//   package build scripts run there. It records the environment's path beside the bundle.
// The serving container then mounts both read-only and loads from them (MODELSHIP_BUNDLE_PREPARED). A failure exits
// non-zero with its code and message in the termination log, as the serving process does.
import { writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { loadPrepared, prepareBundle, recordPrepared, recordPythonEnv } from './bundle/index.ts';
import { loadConfig, type RuntimeConfig } from './config.ts';
import { pythonRequirements, probePython } from './engines/python/index.ts';
import { describe, isModelshipError } from './errors.ts';
import { createLogger } from './observability/logging.ts';

/** Runs one init step: config, a logger, and a failure's code in the termination log with a non-zero exit. */
async function step(
  name: 'prepare' | 'install',
  env: NodeJS.ProcessEnv,
  body: (config: RuntimeConfig, log: Logger) => Promise<void>,
): Promise<void> {
  let terminationLog = env.MODELSHIP_TERMINATION_LOG ?? '/dev/termination-log';
  const fail = (err: unknown, exitCode: number) => {
    const code = isModelshipError(err) ? err.code : 'MS_ERR_SERVER_INTERNAL';
    const text = `${code}: ${describe(err)}`;
    process.stderr.write(`${JSON.stringify({ level: 'fatal', step: name, code, msg: describe(err) })}\n`);
    try {
      writeFileSync(terminationLog, text.slice(0, 4000));
    } catch {
      // not in a container
    }
    process.exit(exitCode);
  };
  let config: RuntimeConfig;
  try {
    config = loadConfig(env);
  } catch (err) {
    return fail(err, 2);
  }
  terminationLog = config.terminationLog;
  const log = createLogger(config.logLevel, {
    model: config.modelName,
    step: name,
    ...(config.namespace ? { namespace: config.namespace } : {}),
  });
  try {
    await body(config, log);
  } catch (err) {
    fail(err, 1);
  }
}

/** `main.ts prepare`: fetch, verify, unpack, record. The only step that gets the storage keys; it runs no bundle code. */
export function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const started = performance.now();
  return step('prepare', env, async (config, log) => {
    let timings = { downloadSeconds: 0, unpackSeconds: 0 };
    const bundle = await prepareBundle({
      uri: config.bundleUri,
      sha256: config.bundleSha256,
      workDir: config.workDir,
      fetch: { s3: config.s3, timeoutMs: config.fetchTimeoutMs },
      limits: { maxEntries: config.maxBundleEntries, maxTotalBytes: config.maxBundleBytes, maxRatio: config.maxCompressionRatio },
      onStep: (s) => log.info({ step: s }, 'preparing'),
      onTimings: (t) => {
        timings = { downloadSeconds: t.downloadSeconds, unpackSeconds: t.unpackSeconds };
      },
    });
    await recordPrepared(config.workDir, bundle, timings);
    log.info(
      {
        bundle: bundle.display,
        sha256: bundle.sha256,
        format: bundle.format,
        seconds: Number(((performance.now() - started) / 1000).toFixed(3)),
      },
      'bundle prepared',
    );
  });
}

/**
 * `main.ts install`: a Python bundle's requirements.txt into the environment cache, recorded beside the bundle. A
 * container of its own, with no storage keys: package build scripts (which the bundle's author chooses) run here.
 */
export function install(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return step('install', env, async (config, log) => {
    const bundle = await loadPrepared({ workDir: config.workDir });
    const pythonEnv =
      bundle.format === 'python'
        ? ((await pythonRequirements(config.python, bundle.dir, await probePython(config.python.python), log)) ?? null)
        : undefined;
    if (pythonEnv !== undefined) await recordPythonEnv(config.workDir, pythonEnv);
    log.info({ requirementsEnv: pythonEnv?.path ?? null }, 'requirements installed');
  });
}
