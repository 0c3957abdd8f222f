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
// MLServer is installed by this benchmark with uv from bench/peers/mlserver.lock into a venv of its own in the
// modelship cache (reused when present, keyed by the lock and the interpreter). A peer that fails to install or start is reported in the
// output, not hidden; the exit code is non-zero only when our own server fails. Every server runs in its own
// process group, which is killed at the end (and on exit, whatever happened). Traffic goes to 127.0.0.1 only.
// Prints one JSON document. BENCH_SECONDS: each measured run (default 10), after BENCH_WARMUP_SECONDS of warm-up
// (default 3); BENCH_ROUNDS: rounds of every setup, alternating the order (default 3, medians); before each
// measured run the benchmark waits up to BENCH_QUIET_WAIT_SECONDS (default 20) for the rest of the machine to
// be quiet (< 0.25 cores busy), and each run reports the cores other processes used meanwhile.
// BENCH_PARTS: throughput, coldstart (comma-separated; default both).
import { cp, copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { binaries } from '../env/build.ts';
import { freePorts } from '../env/process.ts';
import { median, load, ratio } from './lib.ts';
import {
  killAll,
  launch,
  log,
  MLSERVER_REPORTED,
  type Measured,
  machineBusyMs,
  measure,
  mlserverSetup,
  peerLock,
  processCount,
  pythonVenv,
  root,
  SKLEARN_MODEL,
  startMlserver,
  startOurs,
  THREAD_VARS,
  v2Body,
  versions,
  waitReady,
  benchSettings,
  BENCH_BATCH,
} from './servers.ts';

const { seconds, warmupSeconds, rounds, connections: CONNECTIONS, settings } = benchSettings(3);
const cpus = availableParallelism();

// Both servers are asked for `predict` alone: what mlserver-sklearn returns by default, and all our engine
// computes for a no-code scikit-learn bundle when it is the only output requested.
const body = v2Body();

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

interface Setup {
  key: 'ours' | 'oursBatching' | 'mlserver' | 'mlserverInProcess';
  /** Our --workers, or MLServer's parallel_workers. */
  n: number;
  label: string;
}

async function oneRun(setup: Setup, venv: string | undefined, work: string) {
  const server =
    setup.key === 'ours' || setup.key === 'oursBatching'
      ? await startOurs({
          bundle: join(root, 'examples/iris-sklearn'),
          model: SKLEARN_MODEL,
          workers: setup.n,
          batching: setup.key === 'oursBatching' ? BENCH_BATCH : undefined,
          body,
          work,
          label: `modelship (--workers ${setup.n}${setup.key === 'oursBatching' ? ', batching' : ''})`,
        })
      : await startMlserver(venv as string, setup.n, work, body);
  try {
    const processes = processCount(server.proc.pgid);
    log(`${server.proc.name}: warm-up ${warmupSeconds} s, then ${seconds} s at ${CONNECTIONS} connections`);
    await load({ url: server.target.url, method: 'POST', body, seconds: warmupSeconds, connections: CONNECTIONS });
    const m = await measure(server.proc, server.target, server.readyMs, settings);
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
      label: `modelship --workers ${n} with adaptive batching (${BENCH_BATCH.maxBatchSize} rows, ${BENCH_BATCH.maxLatencyMs} ms)`,
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
  throw new Error(`the local Python stack is not built (${bin.python}); run: node env/cli.ts build`);
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
      const v = await pythonVenv('mlserver-1.7.1', peerLock('mlserver'));
      venv = v.venv;
      const mv = await versions(join(venv, 'bin', 'python'), MLSERVER_REPORTED);
      log(`MLServer: ${JSON.stringify(mv)} in ${venv}${v.reused ? ' (reused)' : ''}`);
      result.mlserver = {
        venv,
        reused: v.reused,
        createdFrom: v.python,
        lock: 'bench/peers/mlserver.lock',
        versions: mv,
        ...mlserverSetup("N (the pair's count of Python inference processes)", Array(3).fill('a free port')),
        threadVarsWhenSeveralWorkers: THREAD_VARS.map((t) => `${t}=1`),
      };
    } catch (err) {
      venvError = (err as Error).message;
      log(`MLServer is not available: ${venvError}`);
      result.mlserver = { error: venvError, lock: 'bench/peers/mlserver.lock' };
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
  killAll();
}
console.log(JSON.stringify(result, null, 2));
if (oursFailed) process.exitCode = 1;
