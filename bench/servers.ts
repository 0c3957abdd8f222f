// What the side-by-side benchmarks (bench:python, bench:peers) share: servers started as child processes,
// each in its own process group and all killed when the benchmark ends; CPU accounting from /proc (the
// server's processes, the load generator, the rest of the machine); a measured load run; Python venvs for
// the peers, made with uv and reused by their pins; and the two servers every comparison has, ours and
// MLServer. Traffic goes to 127.0.0.1 only.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { binaries, ensureBuilt } from '../env/build.ts';
import { cacheRoot } from '../env/cache.ts';
import { VEGETA_VERSION } from '../env/versions.ts';
import { freePorts } from '../env/process.ts';
import { type LoadResult, load, waitFor } from './lib.ts';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const run = promisify(execFile);

// ---- child processes: each in its own process group, all killed when the benchmark ends ----

export interface Proc {
  name: string;
  child: ChildProcess;
  pgid: number;
  output(): string;
  stop(): Promise<void>;
}

const live = new Set<number>();
const killGroup = (pgid: number, signal: NodeJS.Signals) => {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group is gone
  }
};
process.on('exit', () => killAll());
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));

/** Kills every process group still running (the benchmark's end, whatever happened). */
export function killAll(): void {
  for (const pgid of live) killGroup(pgid, 'SIGKILL');
  live.clear();
}

export function launch(name: string, cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv }): Proc {
  const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`${name}: cannot start ${cmd}`);
  const pgid = child.pid;
  live.add(pgid);
  let out = '';
  const add = (c: Buffer) => {
    out = (out + c.toString()).slice(-32 * 1024);
  };
  child.stdout?.on('data', add);
  child.stderr?.on('data', add);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    child,
    pgid,
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        killGroup(pgid, 'SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
      }
      // Whatever is left of the group (a worker that outlived its parent) goes too.
      killGroup(pgid, 'SIGKILL');
      live.delete(pgid);
    },
  };
}

export async function waitReady(p: Proc, url: string, timeoutMs: number): Promise<void> {
  await waitFor(async () => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) throw new Error('exited');
    return (await fetch(url)).status === 200;
  }, timeoutMs).catch(() => {
    const how = p.child.exitCode !== null ? `exited with ${p.child.exitCode}` : 'did not become ready';
    throw new Error(`${p.name} ${how} (${url}):\n${p.output().trimEnd().split('\n').slice(-30).join('\n')}`);
  });
}

// ---- CPU accounting from /proc: the server's process group, this process (autocannon), the machine ----

function statFields(pid: number | string): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/** CPU ms per process of a process group, with each process's program name. */
function groupCpu(pgid: number): Map<number, { ms: number; program: string }> {
  const m = new Map<number, { ms: number; program: string }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = statFields(d);
      if (Number(f[2]) !== pgid) continue;
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      const program = (argv[0] ?? '').split('/').pop() ?? '';
      m.set(Number(d), { ms: ((Number(f[11]) + Number(f[12])) * 1000) / 100, program });
    } catch {
      // exited meanwhile
    }
  }
  return m;
}

/** Busy CPU ms of the whole machine (all cores). */
export function machineBusyMs(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return ((total - (f[3] ?? 0) - (f[4] ?? 0)) * 1000) / 100;
}

export interface Measured {
  rps: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  /** Spawn → ready (model loaded) of this server. */
  readyMs: number;
  /** Cores busy on the machine just before the run (the server idle), after waiting for quiet. */
  machineBusyBefore: number;
  /** Cores kept busy during the run, on average: the server's first process, its other processes, autocannon, the rest. */
  coresBusy: { front: number; workers: number; autocannon: number; otherProcesses: number };
}

/** A request the load generator repeats: where, and with which body. */
export interface Target {
  url: string;
  body: string;
}

export interface RunSettings {
  seconds: number;
  connections: number;
  /** Bounded wait for the machine to be quiet before the run. */
  quietWaitMs: number;
}

const QUIET_CORES = 0.25;

/** Adaptive batching of the benchmarks' batching setups: up to 64 rows, waiting at most 2 ms. */
export const BENCH_BATCH = { maxBatchSize: 64, maxLatencyMs: 2 };

/**
 * The load every side-by-side run gets, from the environment: BENCH_SECONDS per measured run (default 10)
 * after BENCH_WARMUP_SECONDS (3), BENCH_ROUNDS (the benchmark's default), BENCH_QUIET_WAIT_SECONDS (20),
 * always 64 connections.
 */
export function benchSettings(defaultRounds: number, env: NodeJS.ProcessEnv = process.env) {
  const seconds = Number(env.BENCH_SECONDS ?? 10);
  const quietWaitMs = Number(env.BENCH_QUIET_WAIT_SECONDS ?? 20) * 1000;
  const connections = 64;
  return {
    seconds,
    warmupSeconds: Number(env.BENCH_WARMUP_SECONDS ?? 3),
    rounds: Number(env.BENCH_ROUNDS ?? defaultRounds),
    quietWaitMs,
    connections,
    settings: { seconds, connections, quietWaitMs } satisfies RunSettings,
  };
}

/** Waits (bounded) until the machine is quiet; returns the cores busy in the last second. */
export async function waitQuiet(quietWaitMs: number): Promise<number> {
  const deadline = Date.now() + quietWaitMs;
  for (;;) {
    const m0 = machineBusyMs();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = Number(((machineBusyMs() - m0) / 1000).toFixed(2));
    if (busy < QUIET_CORES || Date.now() > deadline) return busy;
  }
}

export async function measure(p: Proc, target: Target, readyMs: number, s: RunSettings): Promise<Measured> {
  const machineBusyBefore = await waitQuiet(s.quietWaitMs);
  const g0 = groupCpu(p.pgid);
  const m0 = machineBusyMs();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const r: LoadResult = await load({
    url: target.url,
    method: 'POST',
    body: target.body,
    seconds: s.seconds,
    connections: s.connections,
  });
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const g1 = groupCpu(p.pgid);
  let front = 0;
  let workers = 0;
  for (const [pid, { ms }] of g1) {
    const d = ms - (g0.get(pid)?.ms ?? 0);
    if (pid === p.pgid) front += d;
    else workers += d;
  }
  const loadgen = (c.user + c.system) / 1000;
  const other = machineBusyMs() - m0 - front - workers - loadgen;
  const cores = (ms: number) => Number((Math.max(0, ms) / wall).toFixed(2));
  return {
    rps: r.rps,
    requests: r.requests,
    p50Ms: r.p50,
    p99Ms: r.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    readyMs: Math.round(readyMs),
    machineBusyBefore,
    coresBusy: { front: cores(front), workers: cores(workers), autocannon: cores(loadgen), otherProcesses: cores(other) },
  };
}

/** The program names of a group's processes, counted ("python": 3, "node": 1). */
export function processCount(pgid: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { program } of groupCpu(pgid).values()) counts[program] = (counts[program] ?? 0) + 1;
  return counts;
}

// ---- Python environments of the peers ----

/** Versions of a Python and of packages installed in it. */
export async function versions(python: string, packages: string[]): Promise<Record<string, string>> {
  const script = `import importlib.metadata as m, json, sys; print(json.dumps({"python": sys.version.split()[0], **{p: m.version(p) for p in ${JSON.stringify(packages)}}}))`;
  return JSON.parse((await run(python, ['-c', script], { timeout: 60_000 })).stdout);
}

/** The locked requirements of a peer (`bench/peers/<name>.lock`, compiled by uv from `<name>.in`). */
export const peerLock = (name: string) => join(root, 'bench/peers', `${name}.lock`);

/**
 * A venv with a lock file installed by uv from the host's python3, in the modelship cache under `name` and
 * a hash of the lock and the interpreter; reused when present.
 */
export async function pythonVenv(name: string, lock: string): Promise<{ venv: string; reused: boolean; python: string }> {
  const { uv } = binaries();
  const host = (await run('python3', ['-c', 'import sys; print(sys.executable, sys.version.split()[0])'])).stdout.trim();
  const [python = 'python3'] = host.split(' ');
  const key = createHash('sha256')
    .update(JSON.stringify([readFileSync(lock, 'utf8'), host]))
    .digest('hex')
    .slice(0, 12);
  const venv = join(cacheRoot(), 'bench', `${name}-${key}`);
  const marker = join(venv, '.bench-complete');
  if (existsSync(marker)) return { venv, reused: true, python: host };
  await rm(venv, { recursive: true, force: true });
  await mkdir(dirname(venv), { recursive: true });
  const env = { ...process.env, UV_CACHE_DIR: join(cacheRoot(), 'uv'), UV_PYTHON_DOWNLOADS: 'never', UV_NO_PROGRESS: '1' };
  log(`installing ${lock} into ${venv}`);
  const t0 = performance.now();
  try {
    await run(uv, ['venv', '--quiet', '--python', python, venv], { env, timeout: 120_000 });
    await run(uv, ['pip', 'install', '--quiet', '--python', join(venv, 'bin', 'python'), '-r', lock], {
      env,
      timeout: 900_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    await rm(venv, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    throw new Error(`uv could not install ${lock}: ${(e.stderr || e.message).trim()}`);
  }
  await writeFile(marker, `${lock}\n`);
  log(`installed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { venv, reused: false, python: host };
}

// ---- the servers every comparison has: ours and MLServer ----

/** A server under test, ready, with the request the load repeats and one answer to it. */
export interface Server {
  proc: Proc;
  target: Target;
  /** One response to the benchmark's body, to show the servers do the same work. */
  sample: unknown;
  readyMs: number;
}

/** The iris model every server serves: scikit-learn's LogisticRegression as a joblib file. */
export const SKLEARN_MODEL = 'iris-sklearn';
export const SKLEARN_FILE = join(root, 'examples/iris-sklearn/model.joblib');
export const SETOSA = [5.1, 3.5, 1.4, 0.2];

/** The OIP v2 body: one setosa row, `predict` alone (mlserver-sklearn's default; all our engines compute for it); null: no `outputs`. */
export const v2Body = (outputs: string[] | null = ['predict']) =>
  JSON.stringify({
    inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP64', data: SETOSA }],
    ...(outputs ? { outputs: outputs.map((name) => ({ name })) } : {}),
  });

/** Posts the body once and checks the answer predicts setosa (class 0); returns it. */
export async function checkedSample(name: string, target: Target, classOf: (json: any) => unknown): Promise<unknown> {
  const res = await fetch(target.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: target.body });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  let cls: unknown;
  try {
    cls = classOf(json);
  } catch {
    cls = undefined;
  }
  if (res.status !== 200 || Number(cls) !== 0) {
    throw new Error(`${name} answered ${res.status} ${JSON.stringify(json).slice(0, 500)} (expected class 0, setosa)`);
  }
  return json;
}

/** Class of an OIP v2 answer whose first output is the label. */
export const v2Class = (json: any) => json.outputs[0].data[0];

export interface OursOptions {
  /** A bundle directory. */
  bundle: string;
  model: string;
  workers: number;
  batching?: { maxBatchSize: number; maxLatencyMs: number } | undefined;
  body: string;
  work: string;
  label: string;
}

export async function startOurs(opts: OursOptions): Promise<Server> {
  const [port] = await freePorts(1);
  const bin = binaries();
  const workDir = await mkdtemp(join(opts.work, 'ours-'));
  const t0 = performance.now();
  const proc = launch(opts.label, process.execPath, [join(root, 'runtime/main.ts')], {
    env: {
      ...process.env,
      MODELSHIP_BUNDLE_URI: opts.bundle,
      MODELSHIP_MODEL_NAME: opts.model,
      MODELSHIP_HOST: '127.0.0.1',
      MODELSHIP_PORT: String(port),
      MODELSHIP_WORKERS: String(opts.workers),
      MODELSHIP_LOG_LEVEL: 'warn',
      MODELSHIP_WORK_DIR: workDir,
      MODELSHIP_PYTHON: bin.python,
      MODELSHIP_UV: bin.uv,
      ...(opts.batching
        ? {
            MODELSHIP_BATCH_MAX_SIZE: String(opts.batching.maxBatchSize),
            MODELSHIP_BATCH_MAX_LATENCY_MS: String(opts.batching.maxLatencyMs),
          }
        : {}),
    },
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(proc, `${base}/v2/health/ready`, 120_000);
    const readyMs = performance.now() - t0;
    const target = { url: `${base}/v2/models/${opts.model}/infer`, body: opts.body };
    return { proc, target, readyMs, sample: await checkedSample(proc.name, target, v2Class) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

// MLServer's pins and why (uvloop 0.21.0) are in bench/peers/mlserver.in.
export const MLSERVER_REPORTED = [
  'mlserver',
  'mlserver-sklearn',
  'scikit-learn',
  'joblib',
  'numpy',
  'uvloop',
  'uvicorn',
  'fastapi',
  'orjson',
];
// The variables our engine sets to 1 in its workers when there are several (runtime/engines/python/index.ts);
// the peers' workers get the same, so N processes share the cores alike.
export const THREAD_VARS = ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS'];

export function mlserverSetup(parallelWorkers: number | string, ports: (number | string)[]) {
  return {
    // debug: false turns off uvicorn's access log (a line per request) and DEBUG logging; our runtime logs no
    // line per request either. Everything else is MLServer's default: uvloop, metrics server on its own port
    // (our runtime serves /metrics too), gzip middleware (a no-op: autocannon does not accept gzip), gRPC server.
    settings: {
      debug: false,
      host: '127.0.0.1',
      http_port: ports[0],
      grpc_port: ports[1],
      metrics_port: ports[2],
      parallel_workers: parallelWorkers,
    },
    modelSettings: {
      name: SKLEARN_MODEL,
      implementation: 'mlserver_sklearn.SKLearnModel',
      parameters: { uri: SKLEARN_FILE, version: '1' },
    },
  };
}

export async function startMlserver(venv: string, parallelWorkers: number, work: string, body: string): Promise<Server> {
  const ports = await freePorts(3);
  const dir = join(await mkdtemp(join(work, 'mlserver-')), SKLEARN_MODEL);
  await mkdir(dir);
  const setup = mlserverSetup(parallelWorkers, ports);
  await writeFile(join(dir, 'settings.json'), JSON.stringify(setup.settings, null, 2));
  await writeFile(join(dir, 'model-settings.json'), JSON.stringify(setup.modelSettings, null, 2));
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (parallelWorkers > 1) for (const v of THREAD_VARS) env[v] ??= '1';
  const t0 = performance.now();
  const proc = launch(`MLServer (parallel_workers ${parallelWorkers})`, join(venv, 'bin', 'mlserver'), ['start', dir], { cwd: dir, env });
  const base = `http://127.0.0.1:${ports[0]}`;
  try {
    await waitReady(proc, `${base}/v2/models/${SKLEARN_MODEL}/ready`, 120_000);
    const readyMs = performance.now() - t0;
    const target = { url: `${base}/v2/models/${SKLEARN_MODEL}/infer`, body };
    return { proc, target, readyMs, sample: await checkedSample(proc.name, target, v2Class) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

/** What the benchmarks' open-loop load is made by (their JSON says so). */
export const VEGETA = `github.com/tsenart/vegeta/v12@${VEGETA_VERSION}`;

/** The vegeta binary: the local environment's component (env/vegeta, pinned there), built if it is not yet. */
export async function vegeta(): Promise<string> {
  await ensureBuilt({ only: ['vegeta'] });
  return binaries().vegeta;
}

export interface SteadyResult {
  rate: number;
  rps: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  statusCodes: Record<string, number>;
  errors: string[];
}

/** A constant-rate, open-loop load of `rate` requests/s for `seconds` over at most `connections` connections. */
export async function steadyLoadOf(bin: string, target: Target, rate: number, seconds: number, connections: number): Promise<SteadyResult> {
  const targets = `${JSON.stringify({
    method: 'POST',
    url: target.url,
    header: { 'Content-Type': ['application/json'] },
    body: Buffer.from(target.body).toString('base64'),
  })}\n`;
  const attack = spawn(
    bin,
    [
      'attack',
      '-format=json',
      `-rate=${rate}/s`,
      `-duration=${seconds}s`,
      `-connections=${connections}`,
      `-max-connections=${connections}`,
      '-keepalive=true',
      '-timeout=30s',
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const report = spawn(bin, ['report', '-type=json'], { stdio: ['pipe', 'pipe', 'inherit'] });
  attack.stdout.pipe(report.stdin);
  attack.stdin.end(targets);
  let out = '';
  report.stdout.on('data', (c: Buffer) => (out += c));
  const closed = (p: ChildProcess, what: string) =>
    new Promise<void>((resolve, reject) => {
      p.once('error', reject);
      p.once('close', (code, signal) => (code === 0 ? resolve() : reject(new Error(`vegeta ${what} exited with ${code ?? signal}`))));
    });
  // Bounded like every load here: the attack lasts `seconds`, answers wait at most its 30 s timeout.
  const guard = setTimeout(
    () => {
      attack.kill('SIGKILL');
      report.kill('SIGKILL');
    },
    (seconds + 60) * 1000,
  );
  try {
    await Promise.all([closed(attack, 'attack'), closed(report, 'report')]);
  } finally {
    clearTimeout(guard);
  }
  const r = JSON.parse(out) as {
    latencies: Record<string, number>;
    throughput: number;
    requests: number;
    status_codes: Record<string, number>;
    errors: string[] | null;
  };
  const ms = (ns: number | undefined) => Number(((ns ?? Number.NaN) / 1e6).toFixed(2));
  return {
    rate,
    rps: Math.round(r.throughput),
    requests: r.requests,
    p50Ms: ms(r.latencies['50th']),
    p99Ms: ms(r.latencies['99th']),
    maxMs: ms(r.latencies.max),
    statusCodes: r.status_codes,
    errors: (r.errors ?? []).slice(0, 5),
  };
}
