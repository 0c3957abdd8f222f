// The Python engine: a bundle's Python code (Fusion predict.py, a Hopsworks Predict class, an ml-deploy
// UserModel, or a pickled scikit-learn estimator) served by a pool of worker processes running
// sdk/python's `modelship._worker`. Never CPython inside Node: a crashing C extension takes one worker,
// not the server, and a runaway predict can be killed.
import { execFile } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ENV } from '../../contract.ts';
import { type ErrorCode, type ModelshipError, isModelshipError, msError } from '../../errors.ts';
import type { Outputs } from '../outputs.ts';
import type { Signals } from '../signals.ts';
import type { BundleEngineOptions, CustomRouteSpec, Engine, PluginMetadata, Prediction, RequestContext } from '../types.ts';
import { type RequirementsEnv, requirementsEnv } from './deps.ts';
import { PIPELINE_DEPTH, WorkerPool } from './pool.ts';
import { isNdArray } from './wire.ts';
import { PythonWorker, type Reply, replyError } from './worker.ts';

/** The Python package whose `modelship._worker` the workers run (and bundles import `modelship` from). */
export const SDK_DIR = fileURLToPath(new URL('../../../sdk/python', import.meta.url));
const MIN_PYTHON = [3, 10];
const THREAD_VARS = ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS'];

export interface PythonSettings {
  python: string;
  uv: string;
  envDir: string;
  indexUrl: string | undefined;
  installTimeoutMs: number;
  /** requirements.txt may name its own index, find-links or URLs (refused unless the administrator allows). */
  allowIndexOptions: boolean;
  /** Writable and the pod's own: HOME and uv's cache while installing. */
  scratchDir: string;
  /** Wheels only: no source build (no package's build script) runs. */
  noBuild: boolean;
}

export interface PythonEngineOptions extends PythonSettings, BundleEngineOptions {
  /** 0: one per CPU (the container's limit when known). */
  workers: number;
  /** Built before this process (the prepare init container): the environment, or null for none; never built here. */
  preparedEnv?: RequirementsEnv | null | undefined;
  cpuLimit: number | undefined;
  maxFrameBytes: number;
  onFatal: (err: ModelshipError) => void;
  timeoutKillsPerMinute: number;
  onWorkerRestart?: ((reason: 'crash' | 'timeout') => void) | undefined;
}

interface WorkerMeta {
  style: string;
  verbs: string[];
  routes: CustomRouteSpec[];
  hasFeedback: boolean;
  inputs?: PluginMetadata['inputs'];
  outputs?: PluginMetadata['outputs'];
  v1Output?: string;
  parameters?: Record<string, unknown>;
}

/** Version, platform and ABI of an interpreter, or MS_ERR_PYTHON_NOT_FOUND saying what to install. */
export async function probePython(python: string): Promise<string> {
  const script =
    'import sys, sysconfig; print(sys.version_info[0], sys.version_info[1], sys.version.split()[0], sysconfig.get_platform(), sys.implementation.cache_tag)';
  let out: string;
  try {
    out = (await promisify(execFile)(python, ['-c', script], { timeout: 30_000 })).stdout.trim();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const detail =
      e.code === 'ENOENT'
        ? 'not found; install Python >= 3.10 with the packages the bundle imports, set MODELSHIP_PYTHON to it, or serve with the modelship/runtime-python image'
        : (e.message.split('\n')[0] ?? String(err));
    throw msError('MS_ERR_PYTHON_NOT_FOUND', { python, detail });
  }
  const [major = 0, minor = 0] = out.split(' ').map(Number);
  if (major < (MIN_PYTHON[0] as number) || (major === MIN_PYTHON[0] && minor < (MIN_PYTHON[1] as number))) {
    throw msError('MS_ERR_PYTHON_NOT_FOUND', { python, detail: `it is Python ${major}.${minor}; modelship needs >= 3.10` });
  }
  return out;
}

/** The worker count: as configured, else one per CPU of the container. Pure. */
export function workerCount(configured: number, cpuLimit: number | undefined, cpus = availableParallelism()): number {
  if (configured > 0) return configured;
  return Math.max(1, Math.min(cpuLimit ?? cpus, cpus));
}

/** The workers' environment: the runtime's own settings (credentials among them) are not the plugin's. */
export function workerEnv(parent: NodeJS.ProcessEnv, pythonPath: string[], workers: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(parent)) if (!k.startsWith('MODELSHIP_') && !k.startsWith('AWS_')) env[k] = v;
  env.PYTHONPATH = [...pythonPath, ...(parent.PYTHONPATH ? [parent.PYTHONPATH] : [])].join(':');
  env.PYTHONUNBUFFERED = '1';
  env.PYTHONDONTWRITEBYTECODE = '1';
  // Several workers share the CPUs: one BLAS/OpenMP thread each, unless the user chose.
  if (workers > 1) for (const v of THREAD_VARS) env[v] ??= '1';
  return env;
}

/** Whole output columns (one entry per instance) → one output object per instance. Pure. */
export function columnsToRows(cols: Record<string, unknown>, n: number): Outputs[] {
  const rows: Record<string, unknown>[] = new Array(n);
  for (let i = 0; i < n; i++) rows[i] = {};
  for (const name in cols) {
    const col = cols[name];
    if (isNdArray(col)) {
      const { data, shape } = col;
      const width = shape.length === 2 ? (shape[1] as number) : 1;
      if (shape[0] !== n || shape.length > 2 || data.length !== n * width) {
        throw msError('MS_ERR_WORKER_PROTOCOL', { detail: `column ${name} of shape ${JSON.stringify(shape)} for ${n} rows` });
      }
      if (shape.length === 2) {
        for (let i = 0; i < n; i++) (rows[i] as Record<string, unknown>)[name] = data.subarray(i * width, (i + 1) * width);
      } else {
        // An INT64 column stays bigint, so its datatype is kept; numbers are made when it is encoded.
        for (let i = 0; i < n; i++) (rows[i] as Record<string, unknown>)[name] = data[i];
      }
    } else if (Array.isArray(col) && col.length === n) {
      for (let i = 0; i < n; i++) (rows[i] as Record<string, unknown>)[name] = col[i];
    } else {
      throw msError('MS_ERR_WORKER_PROTOCOL', { detail: `column ${name} does not hold ${n} values` });
    }
  }
  return rows as Outputs[];
}

/** The worker's variable naming the environment's use file (read and removed by modelship._worker). */
const ENV_INUSE = 'MODELSHIP_ENV_INUSE';

/** The bundle's requirements.txt environment, found (and verified) or built; undefined without one. */
export function pythonRequirements(
  s: PythonSettings,
  bundleDir: string,
  identity: string,
  log: BundleEngineOptions['log'],
): Promise<RequirementsEnv | undefined> {
  return requirementsEnv({
    bundleDir,
    python: s.python,
    pythonIdentity: identity,
    uv: s.uv,
    envDir: s.envDir,
    indexUrl: s.indexUrl,
    timeoutMs: s.installTimeoutMs,
    log,
    scratchDir: s.scratchDir,
    allowIndexOptions: s.allowIndexOptions,
    noBuild: s.noBuild,
  });
}

export async function createPythonEngine(o: PythonEngineOptions): Promise<Engine> {
  const identity = await probePython(o.python);
  const env = o.preparedEnv !== undefined ? (o.preparedEnv ?? undefined) : await pythonRequirements(o, o.bundleDir, identity, o.log);
  const size = workerCount(o.workers, o.cpuLimit);
  // The SDK first: nothing a requirements.txt installs stands in for the modelship package.
  const childEnv = workerEnv(process.env, env ? [SDK_DIR, env.path] : [SDK_DIR], size);
  // Each worker holds a shared lock on it while it runs, so the cache's collector leaves the environment alone.
  if (env) childEnv[ENV_INUSE] = env.inuse;
  // modelship.models: the Services of spec.dependencies (addresses, no credentials).
  if (o.dependencies && Object.keys(o.dependencies).length) childEnv[ENV.dependencies] = JSON.stringify(o.dependencies);
  const pool = new WorkerPool({
    size,
    spawn: (index) =>
      new PythonWorker({ python: o.python, env: childEnv, cwd: o.bundleDir, index, log: o.log, maxFrameBytes: o.maxFrameBytes }),
    init: { op: 'init', bundle: o.bundleDir, entrypoint: o.entrypoint, parameters: o.parameters, model: o.modelName },
    initTimeoutMs: o.initTimeoutMs,
    log: o.log,
    maxCrashes: 5,
    backoffMs: 100,
    onFatal: o.onFatal,
    modelName: o.modelName,
    timeoutKillsPerMinute: o.timeoutKillsPerMinute,
    onRestart: o.onWorkerRestart,
  });
  const meta = (await pool.start()).meta as WorkerMeta;
  o.log.info({ style: meta.style, workers: size, python: identity.split(' ')[2], requirementsEnv: env?.path }, 'Python bundle loaded');

  // A plugin exception outside predict is reported under its own operation's code.
  const call = async (message: Record<string, unknown>, ctx: RequestContext, failCode?: ErrorCode, extra?: Record<string, string>) => {
    let reply: Reply;
    try {
      // The caller's deadline travels along: a request whose caller has gone while it waited in a worker's pipe is
      // skipped there. So do the request id and the caller's credentials: modelship.models passes them on to the
      // dependencies it calls.
      const framed = {
        ...message,
        requestId: ctx.requestId,
        ...(ctx.deadline ? { deadline: ctx.deadline } : {}),
        ...(ctx.authorization ? { authorization: ctx.authorization } : {}),
      };
      reply = await pool.run(framed, ctx.requestId, ctx.signal, ctx.deadline);
    } catch (err) {
      if (isModelshipError(err) && err.code === 'MS_ERR_WORKER_CRASHED') {
        o.log.error({ requestId: ctx.requestId, code: err.code }, err.message);
      }
      throw err;
    }
    if (reply.ok) return reply;
    const err = failCode && reply.code === 'MS_ERR_PREDICT_FAILED' ? msError(failCode, { ...reply.params, ...extra }) : replyError(reply);
    if (reply.trace) o.log.error({ requestId: ctx.requestId, code: err.code, trace: reply.trace.join('\n') }, err.message);
    throw err;
  };
  const signalsOf = (reply: Record<string, unknown>) => reply.signals as Signals | undefined;

  return {
    format: 'python',
    metadata: {
      ...(meta.inputs ? { inputs: meta.inputs } : {}),
      ...(meta.outputs ? { outputs: meta.outputs } : {}),
      routes: meta.routes,
      hasFeedback: meta.hasFeedback,
      methods: meta.verbs,
      primaryOutput: meta.v1Output,
      // Each worker runs one call and holds the next ones in its pipe.
      capacity: size * PIPELINE_DEPTH,
    },
    serving: () => pool.serving,
    async predict(rows, ctx, opts): Promise<Prediction> {
      const method = opts?.method ?? 'predict';
      const reply = await call(
        { op: 'predict', rows, ...(method !== 'predict' ? { method } : {}), ...(opts?.outputs ? { outputs: opts.outputs } : {}) },
        ctx,
      );
      const outputs = reply.cols ? columnsToRows(reply.cols as Record<string, unknown>, reply.n as number) : (reply.rows as Outputs[]);
      const signals = signalsOf(reply);
      return signals ? { outputs, signals } : { outputs };
    },
    async feedback(record, ctx) {
      const reply = await call({ op: 'feedback', body: record }, ctx, 'MS_ERR_FEEDBACK_FAILED');
      const signals = signalsOf(reply);
      return signals ? { value: reply.value, signals } : { value: reply.value };
    },
    async callRoute(index, req, ctx) {
      const spec = meta.routes[index];
      const reply = await call({ op: 'route', index, req }, ctx, 'MS_ERR_ROUTE_FAILED', { route: `${spec?.method} ${spec?.path}` });
      return { status: reply.status as number, body: reply.body };
    },
    close: () => pool.close(5_000),
  };
}
