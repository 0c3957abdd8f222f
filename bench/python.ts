// `npm run bench:python`: the Python engine against MLServer, side by side in the same run, on this machine.
//   throughput  the same joblib iris LogisticRegression (examples/iris-sklearn/model.joblib) served by our
//               runtime (`--workers N`: N Python processes) and by MLServer + mlserver-sklearn
//               (`parallel_workers` N: N Python inference processes), one server at a time, same body (OIP v2
//               JSON, predict only), autocannon with 64 connections; requests/s ratio ours ÷ MLServer, p50, p99.
//               For one process MLServer also runs with parallel_workers 0 (inference in its front process), its
//               fastest setup on a small machine; bestVsBest compares the fastest setup of each side
//   cold start  spawn → ready of a Python bundle with no requirements.txt (examples/fusion-echo) and of one
//               whose requirements.txt is already in the environment cache (examples/requirements-demo, its
//               wheels/ filled for an offline install); the difference is the cached-requirements overhead
// MLServer is installed by this benchmark with uv into a venv of its own in the modelship cache (reused when
// present, keyed by the pins and the interpreter). A peer that fails to install or start is reported in the
// output, not hidden; the exit code is non-zero only when our own server fails. Every server runs in its own
// process group, which is killed at the end (and on exit, whatever happened). Traffic goes to 127.0.0.1 only.
// Prints one JSON document. BENCH_SECONDS: each measured run (default 10), after BENCH_WARMUP_SECONDS of warm-up
// (default 3); BENCH_ROUNDS: rounds of every setup, alternating the order (default 3, medians); before each
// measured run the benchmark waits up to BENCH_QUIET_WAIT_SECONDS (default 20) for the rest of the machine to
// be quiet (< 0.25 cores busy), and each run reports the cores other processes used meanwhile.
// BENCH_PARTS: throughput, coldstart (comma-separated; default both).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { binaries } from '../test/env/build.ts';
import { cacheRoot } from '../test/env/cache.ts';
import { freePorts } from '../test/env/process.ts';
import { type LoadResult, load, median, ratio, waitFor } from './lib.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const warmupSeconds = Number(process.env.BENCH_WARMUP_SECONDS ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const quietWaitMs = Number(process.env.BENCH_QUIET_WAIT_SECONDS ?? 20) * 1000;
const QUIET_CORES = 0.25;
const CONNECTIONS = 64;
const cpus = availableParallelism();
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);
const run = promisify(execFile);

const MODEL = 'iris-sklearn';
const MODEL_FILE = join(root, 'examples/iris-sklearn/model.joblib');
// Both servers are asked for `predict` alone: what mlserver-sklearn returns by default, and all our engine
// computes for a no-code scikit-learn bundle when it is the only output requested.
const body = JSON.stringify({
  inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP64', data: [5.1, 3.5, 1.4, 0.2] }],
  outputs: [{ name: 'predict' }],
});
// mlserver 1.7.1 requires uvloop unpinned, which resolves to uvloop 0.23; that one raises from
// asyncio.get_event_loop() when no loop is set, which MLServer's parallel worker calls before its loop runs
// (mlserver/parallel/worker.py, _ignore_signals), so every inference worker dies at start. 0.21.0 does not.
// scikit-learn and joblib are those of our base stack, so the same pickle loads in both without a warning.
const MLSERVER_PINS = ['mlserver==1.7.1', 'mlserver-sklearn==1.7.1', 'scikit-learn==1.9.1', 'joblib==1.6.0', 'uvloop==0.21.0'];
const MLSERVER_REPORTED = ['mlserver', 'mlserver-sklearn', 'scikit-learn', 'joblib', 'numpy', 'uvloop', 'uvicorn', 'fastapi', 'orjson'];
// The variables our engine sets to 1 in its workers when there are several (runtime/engines/python/index.ts);
// MLServer's workers get the same, so N processes share the cores alike.
const THREAD_VARS = ['OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS', 'NUMEXPR_NUM_THREADS', 'VECLIB_MAXIMUM_THREADS'];

// ---- child processes: each in its own process group, all killed when the benchmark ends ----

interface Proc {
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
process.on('exit', () => {
  for (const pgid of live) killGroup(pgid, 'SIGKILL');
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));

function launch(name: string, cmd: string, args: string[], opts: { cwd?: string; env: NodeJS.ProcessEnv }): Proc {
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

async function waitReady(p: Proc, url: string, timeoutMs: number): Promise<void> {
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
function machineBusyMs(): number {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return ((total - (f[3] ?? 0) - (f[4] ?? 0)) * 1000) / 100;
}

interface Measured {
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
  /** Cores kept busy during the run, on average: the server's front process, its Python workers, autocannon, the rest. */
  coresBusy: { front: number; workers: number; autocannon: number; otherProcesses: number };
}

async function measure(p: Proc, url: string, readyMs: number): Promise<Measured> {
  const machineBusyBefore = await waitQuiet();
  const g0 = groupCpu(p.pgid);
  const m0 = machineBusyMs();
  const s0 = process.cpuUsage();
  const t0 = performance.now();
  const r: LoadResult = await load({ url, method: 'POST', body, seconds, connections: CONNECTIONS });
  const wall = performance.now() - t0;
  const s = process.cpuUsage(s0);
  const g1 = groupCpu(p.pgid);
  let front = 0;
  let workers = 0;
  for (const [pid, { ms }] of g1) {
    const d = ms - (g0.get(pid)?.ms ?? 0);
    if (pid === p.pgid) front += d;
    else workers += d;
  }
  const loadgen = (s.user + s.system) / 1000;
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

/** Waits (bounded) until the machine is quiet; returns the cores busy in the last second. */
async function waitQuiet(): Promise<number> {
  const deadline = Date.now() + quietWaitMs;
  for (;;) {
    const m0 = machineBusyMs();
    await new Promise((r) => setTimeout(r, 1000));
    const busy = Number(((machineBusyMs() - m0) / 1000).toFixed(2));
    if (busy < QUIET_CORES || Date.now() > deadline) return busy;
  }
}

/** The program names of a group's processes, counted ("python": 3, "node": 1). */
function processCount(pgid: number): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { program } of groupCpu(pgid).values()) counts[program] = (counts[program] ?? 0) + 1;
  return counts;
}

// ---- the servers ----

interface Server {
  proc: Proc;
  inferUrl: string;
  /** One response to the benchmark's body, to show both servers do the same work. */
  sample: unknown;
  readyMs: number;
}

async function checkedSample(name: string, inferUrl: string): Promise<unknown> {
  const res = await fetch(inferUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const json = (await res.json()) as { outputs?: { name: string; data: unknown[] }[] };
  const names = (json.outputs ?? []).map((o) => o.name);
  if (res.status !== 200 || names.join() !== 'predict' || Number(json.outputs?.[0]?.data[0]) !== 0) {
    throw new Error(`${name} answered ${res.status} ${JSON.stringify(json)} (expected predict = [0] alone)`);
  }
  return json;
}

async function startOurs(workers: number, work: string, batching = false): Promise<Server> {
  const [port] = await freePorts(1);
  const bin = binaries();
  const workDir = await mkdtemp(join(work, 'ours-'));
  const t0 = performance.now();
  const proc = launch(`modelship (--workers ${workers})`, process.execPath, [join(root, 'runtime/main.ts')], {
    env: {
      ...process.env,
      MODELSHIP_BUNDLE_URI: join(root, 'examples/iris-sklearn'),
      MODELSHIP_MODEL_NAME: MODEL,
      MODELSHIP_HOST: '127.0.0.1',
      MODELSHIP_PORT: String(port),
      MODELSHIP_WORKERS: String(workers),
      MODELSHIP_LOG_LEVEL: 'warn',
      MODELSHIP_WORK_DIR: workDir,
      MODELSHIP_PYTHON: bin.python,
      MODELSHIP_UV: bin.uv,
      ...(batching
        ? { MODELSHIP_BATCH_MAX_SIZE: String(BATCH.maxBatchSize), MODELSHIP_BATCH_MAX_LATENCY_MS: String(BATCH.maxLatencyMs) }
        : {}),
    },
  });
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(proc, `${base}/v2/health/ready`, 120_000);
    const readyMs = performance.now() - t0;
    const inferUrl = `${base}/v2/models/${MODEL}/infer`;
    return { proc, inferUrl, readyMs, sample: await checkedSample(proc.name, inferUrl) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

interface MlserverSetup {
  settings: Record<string, unknown>;
  modelSettings: Record<string, unknown>;
}

function mlserverSetup(parallelWorkers: number | string, ports: (number | string)[]): MlserverSetup {
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
      name: MODEL,
      implementation: 'mlserver_sklearn.SKLearnModel',
      parameters: { uri: MODEL_FILE, version: '1' },
    },
  };
}

async function startMlserver(venv: string, parallelWorkers: number, work: string): Promise<Server> {
  const ports = await freePorts(3);
  const dir = join(await mkdtemp(join(work, 'mlserver-')), MODEL);
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
    await waitReady(proc, `${base}/v2/models/${MODEL}/ready`, 120_000);
    const readyMs = performance.now() - t0;
    const inferUrl = `${base}/v2/models/${MODEL}/infer`;
    return { proc, inferUrl, readyMs, sample: await checkedSample(proc.name, inferUrl) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

async function versions(python: string, packages: string[]): Promise<Record<string, string>> {
  const script = `import importlib.metadata as m, json, sys; print(json.dumps({"python": sys.version.split()[0], **{p: m.version(p) for p in ${JSON.stringify(packages)}}}))`;
  return JSON.parse((await run(python, ['-c', script], { timeout: 60_000 })).stdout);
}

/** MLServer's venv: reused when present, else created with uv from the host's python3. */
async function mlserverVenv(): Promise<{ venv: string; reused: boolean; python: string }> {
  const { uv } = binaries();
  const host = (await run('python3', ['-c', 'import sys; print(sys.executable, sys.version.split()[0])'])).stdout.trim();
  const [python = 'python3'] = host.split(' ');
  const key = createHash('sha256')
    .update(JSON.stringify([MLSERVER_PINS, host]))
    .digest('hex')
    .slice(0, 12);
  const venv = join(cacheRoot(), 'bench', `mlserver-1.7.1-${key}`);
  const marker = join(venv, '.bench-complete');
  if (existsSync(marker)) return { venv, reused: true, python: host };
  await rm(venv, { recursive: true, force: true });
  await mkdir(dirname(venv), { recursive: true });
  const env = { ...process.env, UV_CACHE_DIR: join(cacheRoot(), 'uv'), UV_PYTHON_DOWNLOADS: 'never', UV_NO_PROGRESS: '1' };
  log(`installing ${MLSERVER_PINS.join(' ')} into ${venv}`);
  const t0 = performance.now();
  try {
    await run(uv, ['venv', '--quiet', '--python', python, venv], { env, timeout: 120_000 });
    await run(uv, ['pip', 'install', '--quiet', '--python', join(venv, 'bin', 'python'), ...MLSERVER_PINS], {
      env,
      timeout: 900_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    await rm(venv, { recursive: true, force: true });
    const e = err as { stderr?: string; message: string };
    throw new Error(`uv could not install ${MLSERVER_PINS.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
  await writeFile(marker, `${MLSERVER_PINS.join('\n')}\n`);
  log(`installed in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return { venv, reused: false, python: host };
}

// ---- throughput ----

interface Side {
  setup: string;
  processes?: Record<string, number>;
  rps?: number;
  p50Ms?: number;
  p99Ms?: number;
  non2xx?: number;
  errors?: number;
  coresBusy?: Measured['coresBusy'];
  readyMs?: number;
  runs?: Measured[];
  error?: string;
}

function summarize(setup: string, runs: Measured[], processes: Record<string, number> | undefined, error?: string): Side {
  if (!runs.length) return { setup, error: error ?? 'no run' };
  const med = (f: (m: Measured) => number) => median(runs.map(f));
  const busy = (k: keyof Measured['coresBusy']) => Number(med((m) => m.coresBusy[k]).toFixed(2));
  return {
    setup,
    ...(processes ? { processes } : {}),
    rps: Math.round(med((m) => m.rps)),
    p50Ms: med((m) => m.p50Ms),
    p99Ms: med((m) => m.p99Ms),
    non2xx: runs.reduce((a, m) => a + m.non2xx, 0),
    errors: runs.reduce((a, m) => a + m.errors, 0),
    coresBusy: { front: busy('front'), workers: busy('workers'), autocannon: busy('autocannon'), otherProcesses: busy('otherProcesses') },
    readyMs: Math.round(med((m) => m.readyMs)),
    runs,
    ...(error ? { error } : {}),
  };
}

let oursFailed = false;

/** Adaptive batching of the batching setup: up to 64 rows, waiting at most 2 ms. */
const BATCH = { maxBatchSize: 64, maxLatencyMs: 2 };

interface Setup {
  key: 'ours' | 'oursBatching' | 'mlserver' | 'mlserverInProcess';
  /** Our --workers, or MLServer's parallel_workers. */
  n: number;
  label: string;
}

async function oneRun(setup: Setup, venv: string | undefined, work: string) {
  const server =
    setup.key === 'ours' || setup.key === 'oursBatching'
      ? await startOurs(setup.n, work, setup.key === 'oursBatching')
      : await startMlserver(venv as string, setup.n, work);
  try {
    const processes = processCount(server.proc.pgid);
    log(`${server.proc.name}: warm-up ${warmupSeconds} s, then ${seconds} s at ${CONNECTIONS} connections`);
    await load({ url: server.inferUrl, method: 'POST', body, seconds: warmupSeconds, connections: CONNECTIONS });
    const m = await measure(server.proc, server.inferUrl, server.readyMs);
    const busy = Object.entries(m.coresBusy)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    log(
      `${server.proc.name}: ${m.rps} req/s, p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms, non-2xx ${m.non2xx}, errors ${m.errors}; cores: ${busy}`,
    );
    return { m, processes, sample: server.sample };
  } finally {
    await server.proc.stop();
  }
}

/** The setups compared for n Python processes doing inference. */
function setupsFor(n: number): Setup[] {
  const s: Setup[] = [
    { key: 'ours', n, label: `modelship --workers ${n}: a Node front process and ${n} Python worker(s)` },
    {
      key: 'oursBatching',
      n,
      label: `modelship --workers ${n} with adaptive batching (${BATCH.maxBatchSize} rows, ${BATCH.maxLatencyMs} ms)`,
    },
    {
      key: 'mlserver',
      n,
      label: `MLServer parallel_workers ${n}: a Python front process (uvicorn + uvloop) and ${n} Python inference worker(s)`,
    },
  ];
  // parallel_workers 0 (documented: parallel inference off) runs inference in the front process itself: one
  // Python process in all, and MLServer's fastest setup on a small machine (no hop to a worker process).
  if (n === 1)
    s.push({
      key: 'mlserverInProcess',
      n: 0,
      label: 'MLServer parallel_workers 0: inference in its Python front process, 1 Python process in all',
    });
  return s;
}

async function throughput(venv: string | undefined, venvError: string | undefined) {
  const work = await mkdtemp(join(tmpdir(), 'bench-py-'));
  const counts = cpus >= 2 ? [1, 2] : [1];
  const groups: Record<string, unknown>[] = [];
  const samples: Record<string, unknown> = {};
  const all: { label: string; ours: boolean; rps: number; p99Ms: number }[] = [];
  try {
    for (const n of counts) {
      const setups = setupsFor(n);
      const runs = new Map<string, Measured[]>(setups.map((s) => [s.key, []]));
      const procs: Record<string, Record<string, number>> = {};
      const errs: Record<string, string> = {};
      if (!venv) for (const s of setups) if (!s.key.startsWith('ours')) errs[s.key] = `MLServer is not installed: ${venvError}`;
      for (let round = 0; round < rounds; round++) {
        // One server at a time; the order alternates between rounds so a drift of the machine hits all alike.
        for (const setup of round % 2 === 0 ? setups : [...setups].reverse()) {
          if (errs[setup.key]) continue;
          try {
            const r = await oneRun(setup, venv, work);
            runs.get(setup.key)?.push(r.m);
            procs[setup.key] = r.processes;
            samples[setup.key.startsWith('ours') ? 'ours' : 'mlserver'] ??= r.sample;
          } catch (err) {
            errs[setup.key] = (err as Error).message;
            log(`${setup.label} failed: ${errs[setup.key]}`);
            if (setup.key.startsWith('ours')) oursFailed = true;
          }
        }
      }
      const sides = Object.fromEntries(
        setups.map((s) => [s.key, summarize(s.label, runs.get(s.key) ?? [], procs[s.key], errs[s.key])]),
      ) as Record<Setup['key'], Side>;
      for (const s of setups) {
        const side = sides[s.key];
        if (side.rps !== undefined)
          all.push({ label: s.label, ours: s.key.startsWith('ours'), rps: side.rps, p99Ms: side.p99Ms as number });
      }
      const vs = (other: Side | undefined, a: Side = sides.ours) => {
        if (!other || a.rps === undefined || other.rps === undefined) return { ratio: null, p99NotHigher: null };
        return { ratio: ratio(a.rps, other.rps), p99NotHigher: (a.p99Ms as number) <= (other.p99Ms as number) };
      };
      groups.push({
        pythonInferenceProcesses: n,
        ...sides,
        vsMlserver: { ...vs(sides.mlserver), target: 'ratio >= 3, p99 not higher' },
        withBatchingVsMlserver: { ...vs(sides.mlserver, sides.oursBatching), target: 'ratio >= 5' },
        ...(sides.mlserverInProcess ? { withBatchingVsMlserverInProcess: vs(sides.mlserverInProcess, sides.oursBatching) } : {}),
        ...(sides.mlserverInProcess ? { vsMlserverInProcess: vs(sides.mlserverInProcess) } : {}),
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const best = (ours: boolean) => all.filter((x) => x.ours === ours).sort((a, b) => b.rps - a.rps)[0];
  const bo = best(true);
  const bm = best(false);
  return {
    connections: CONNECTIONS,
    seconds,
    warmupSeconds,
    rounds,
    body: JSON.parse(body),
    sampleResponses: samples,
    groups,
    bestVsBest:
      bo && bm
        ? { ours: bo, mlserver: bm, ratio: ratio(bo.rps, bm.rps), p99NotHigher: bo.p99Ms <= bm.p99Ms, target: 'ratio >= 3, p99 not higher' }
        : null,
  };
}

// ---- cold start ----

async function readyMs(bundle: string, name: string, work: string, envDir: string): Promise<{ ms: number; log: string }> {
  const [port] = await freePorts(1);
  const bin = binaries();
  const t0 = performance.now();
  const proc = launch(`modelship (${name})`, process.execPath, [join(root, 'runtime/main.ts')], {
    env: {
      ...process.env,
      MODELSHIP_BUNDLE_URI: bundle,
      MODELSHIP_MODEL_NAME: name,
      MODELSHIP_HOST: '127.0.0.1',
      MODELSHIP_PORT: String(port),
      MODELSHIP_LOG_LEVEL: 'info',
      MODELSHIP_WORK_DIR: await mkdtemp(join(work, 'w-')),
      MODELSHIP_PYTHON: bin.python,
      MODELSHIP_UV: bin.uv,
      MODELSHIP_PYTHON_ENV_DIR: envDir,
    },
  });
  try {
    await waitReady(proc, `http://127.0.0.1:${port}/v2/health/ready`, 300_000);
    const ms = performance.now() - t0;
    return { ms, log: proc.output() };
  } finally {
    await proc.stop();
  }
}

async function coldStart() {
  const work = await mkdtemp(join(tmpdir(), 'bench-py-cold-'));
  try {
    const echo = join(root, 'examples/fusion-echo');
    const demo = join(work, 'requirements-demo');
    await cp(join(root, 'examples/requirements-demo'), demo, { recursive: true });
    await mkdir(join(demo, 'wheels'));
    const wheelsDir = binaries().wheels;
    for (const w of await readdir(wheelsDir)) await copyFile(join(wheelsDir, w), join(demo, 'wheels', w));
    const envDir = join(work, 'python-envs');
    log('cold start: warm-up start of fusion-echo (compile cache, page cache)');
    await readyMs(echo, 'fusion-echo', work, envDir);
    log('cold start: requirements-demo, first start (installs tabulate from wheels/ into an empty environment cache)');
    const first = await readyMs(demo, 'requirements-demo', work, envDir);
    if (!first.log.includes('requirements.txt: installed')) throw new Error(`the first start did not install:\n${first.log}`);
    const plain: number[] = [];
    const cached: number[] = [];
    for (let i = 0; i < 3; i++) {
      log(`cold start round ${i + 1}: fusion-echo, then requirements-demo with its environment cached`);
      plain.push((await readyMs(echo, 'fusion-echo', work, envDir)).ms);
      const c = await readyMs(demo, 'requirements-demo', work, envDir);
      if (!c.log.includes('environment found in the cache')) throw new Error(`a cached start did not hit the cache:\n${c.log}`);
      cached.push(c.ms);
    }
    const overhead = median(cached) - median(plain);
    return {
      workers: `default (one per CPU: ${cpus})`,
      noRequirementsReadyMs: Math.round(median(plain)),
      cachedRequirementsReadyMs: Math.round(median(cached)),
      uncachedRequirementsFirstStartMs: Math.round(first.ms),
      cachedRequirementsOverheadMs: Math.round(overhead),
      target: '<= 1500',
      runsMs: { noRequirements: plain.map(Math.round), cachedRequirements: cached.map(Math.round) },
    };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// ---- main ----

const parts = new Set((process.env.BENCH_PARTS ?? 'throughput,coldstart').split(',').map((p) => p.trim()));
const bin = binaries();
if (!existsSync(bin.python) || !existsSync(bin.uv)) {
  throw new Error(`the local Python stack is not built (${bin.python}); run: node test/env/cli.ts build`);
}
const result: Record<string, unknown> = { node: process.version, cpus };
try {
  const oursVersions = await versions(bin.python, ['scikit-learn', 'joblib', 'numpy']);
  result.ours = { python: bin.python, versions: oursVersions };
  log(`ours: Python ${oursVersions.python}, ${JSON.stringify(oursVersions)}`);
  // Another workload on the machine would skew both sides: measured here, and per run (coresBusy.otherProcesses).
  const m0 = machineBusyMs();
  await new Promise((r) => setTimeout(r, 2000));
  result.machineBusyCoresBeforeStart = Number(((machineBusyMs() - m0) / 2000).toFixed(2));
  if ((result.machineBusyCoresBeforeStart as number) > 0.3) {
    log(`warning: ${result.machineBusyCoresBeforeStart} cores were busy before the benchmark started; figures will be noisy`);
  }
  if (parts.has('throughput')) {
    let venv: string | undefined;
    let venvError: string | undefined;
    try {
      const v = await mlserverVenv();
      venv = v.venv;
      const mv = await versions(join(venv, 'bin', 'python'), MLSERVER_REPORTED);
      log(`MLServer: ${JSON.stringify(mv)} in ${venv}${v.reused ? ' (reused)' : ''}`);
      result.mlserver = {
        venv,
        reused: v.reused,
        createdFrom: v.python,
        pins: MLSERVER_PINS,
        versions: mv,
        ...mlserverSetup("N (the pair's count of Python inference processes)", Array(3).fill('a free port')),
        threadVarsWhenSeveralWorkers: THREAD_VARS.map((t) => `${t}=1`),
      };
    } catch (err) {
      venvError = (err as Error).message;
      log(`MLServer is not available: ${venvError}`);
      result.mlserver = { error: venvError, pins: MLSERVER_PINS };
    }
    result.throughput = await throughput(venv, venvError);
  }
  if (parts.has('coldstart')) {
    try {
      result.coldStart = await coldStart();
    } catch (err) {
      oursFailed = true;
      result.coldStart = { error: (err as Error).message };
      log(`cold start failed: ${(err as Error).message}`);
    }
  }
} finally {
  for (const pgid of live) killGroup(pgid, 'SIGKILL');
}
console.log(JSON.stringify(result, null, 2));
if (oursFailed) process.exitCode = 1;
