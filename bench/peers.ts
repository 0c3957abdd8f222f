import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { binaries } from '../env/build.ts';
import { freePorts } from '../env/process.ts';
import { load, median, ratio, waitFor } from './lib.ts';
import {
  checkedSample,
  killAll,
  launch,
  log,
  MLSERVER_REPORTED,
  type Measured,
  measure,
  peerLock,
  processCount,
  pythonVenv,
  root,
  SETOSA,
  type Server,
  type Target,
  SKLEARN_FILE,
  SKLEARN_MODEL,
  startMlserver,
  startOurs,
  THREAD_VARS,
  v2Body,
  v2Class,
  versions,
  waitQuiet,
  waitReady,
  benchSettings,
  BENCH_BATCH,
  type SteadyResult,
  steadyLoadOf,
  VEGETA,
  vegeta,
} from './servers.ts';

const { seconds, warmupSeconds, rounds, quietWaitMs, connections: CONNECTIONS, settings } = benchSettings(1);
const cpus = availableParallelism();
const PEERS_DIR = join(root, 'bench/peers');

type PeerName = 'mlserver' | 'kserve' | 'ray' | 'bentoml';
const wanted = new Set((process.env.BENCH_PEERS ?? 'mlserver,kserve,ray,bentoml').split(',').map((p) => p.trim()));

/** What each peer's venv holds, and which of its packages the output names with their versions. */
const PEER_PACKAGES: Record<PeerName, { venvName: string; reported: string[] }> = {
  mlserver: { venvName: 'mlserver-1.7.1', reported: MLSERVER_REPORTED },
  kserve: { venvName: 'kserve-0.21.0', reported: ['kserve', 'fastapi', 'uvicorn', 'uvloop', 'orjson', 'scikit-learn', 'numpy'] },
  ray: { venvName: 'ray-2.60.0', reported: ['ray', 'starlette', 'uvicorn', 'uvloop', 'scikit-learn', 'numpy'] },
  bentoml: { venvName: 'bentoml-1.4.40', reported: ['bentoml', 'starlette', 'uvicorn', 'scikit-learn', 'numpy'] },
};

const pythonEnv = (n: number): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  if (n > 1) for (const v of THREAD_VARS) env[v] ??= '1';
  return env;
};

async function startKserve(venv: string, n: number): Promise<Server> {
  const [http, grpc] = await freePorts(2);
  const t0 = performance.now();
  const proc = launch(
    `KServe (--workers ${n})`,
    join(venv, 'bin', 'python'),
    [
      join(PEERS_DIR, 'kserve_server.py'),
      '--model_name',
      SKLEARN_MODEL,
      '--model_path',
      SKLEARN_FILE,
      '--http_port',
      String(http),
      '--grpc_port',
      String(grpc),
      '--workers',
      String(n),
    ],
    // kserve 0.21.0 returns FastAPI's ORJSONResponse, which the FastAPI its lock resolves to warns about on
    // every response: the warning is silenced, in KServe's favour.
    { env: { ...pythonEnv(n), PYTHONWARNINGS: 'ignore:ORJSONResponse is deprecated' } },
  );
  const base = `http://127.0.0.1:${http}`;
  try {
    await waitReady(proc, `${base}/v2/models/${SKLEARN_MODEL}/ready`, 120_000);
    const readyMs = performance.now() - t0;
    // KServe names its output output-0 and refuses a request for `predict`: the same body, no `outputs`.
    const target = { url: `${base}/v2/models/${SKLEARN_MODEL}/infer`, body: v2Body(null) };
    return { proc, target, readyMs, sample: await checkedSample(proc.name, target, v2Class) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

async function startRay(venv: string, n: number): Promise<Server> {
  const [port] = await freePorts(1);
  // Ray's session directory holds Unix sockets, whose paths must stay short.
  const temp = await mkdtemp('/tmp/rb-');
  const t0 = performance.now();
  const proc = launch(
    `Ray Serve (${n} replica${n > 1 ? 's' : ''})`,
    join(venv, 'bin', 'python'),
    [
      join(PEERS_DIR, 'ray_server.py'),
      '--model_path',
      SKLEARN_FILE,
      '--port',
      String(port),
      '--replicas',
      String(n),
      '--cpus',
      String(cpus),
      '--temp_dir',
      temp,
      '--max_ongoing_requests',
      String(CONNECTIONS),
    ],
    { env: { ...pythonEnv(n), RAY_USAGE_STATS_ENABLED: '0' } },
  );
  const stop = proc.stop;
  proc.stop = async () => {
    await stop();
    await rm(temp, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => {
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error('exited');
      return proc.output().includes('READY');
    }, 180_000).catch(() => {
      throw new Error(`${proc.name} did not become ready:\n${proc.output().trimEnd().split('\n').slice(-30).join('\n')}`);
    });
    const readyMs = performance.now() - t0;
    const target = { url: `http://127.0.0.1:${port}/iris`, body: JSON.stringify({ instances: [SETOSA] }) };
    return { proc, target, readyMs, sample: await checkedSample(proc.name, target, (j) => j.predictions[0]) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

async function startBentoml(venv: string, n: number): Promise<Server> {
  const [port] = await freePorts(1);
  const t0 = performance.now();
  const proc = launch(
    `BentoML (workers ${n})`,
    join(venv, 'bin', 'bentoml'),
    ['serve', 'bentoml_service:SKLearnIris', '--host', '127.0.0.1', '--port', String(port)],
    {
      cwd: PEERS_DIR,
      env: { ...pythonEnv(n), BENCH_MODEL_PATH: SKLEARN_FILE, BENCH_WORKERS: String(n), BENTOML_DO_NOT_TRACK: 'True' },
    },
  );
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitReady(proc, `${base}/readyz`, 120_000);
    const readyMs = performance.now() - t0;
    const target = { url: `${base}/predict`, body: JSON.stringify({ input: [SETOSA] }) };
    return { proc, target, readyMs, sample: await checkedSample(proc.name, target, (j) => j[0]) };
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

// ---- setups ----

interface Setup {
  key: string;
  label: string;
  ours: boolean;
  peer?: PeerName;
  start(work: string): Promise<Server>;
}

function setupsFor(n: number, venvs: Partial<Record<PeerName, string>>): Setup[] {
  const ours = (key: string, label: string, bundle: string, model: string, workers: number, batching: boolean): Setup => ({
    key,
    label,
    ours: true,
    start: (work) =>
      startOurs({
        bundle: join(root, bundle),
        model,
        workers,
        batching: batching ? BENCH_BATCH : undefined,
        body: v2Body(),
        work,
        label: key,
      }),
  });
  const s: Setup[] = [
    ours(`ours-python-${n}`, `modelship Python engine, --workers ${n}`, 'examples/iris-sklearn', SKLEARN_MODEL, n, false),
    ours(
      `ours-python-${n}-batching`,
      `modelship Python engine, --workers ${n}, adaptive batching (${BENCH_BATCH.maxBatchSize} rows, ${BENCH_BATCH.maxLatencyMs} ms)`,
      'examples/iris-sklearn',
      SKLEARN_MODEL,
      n,
      true,
    ),
  ];
  if (n === 1) {
    s.push(
      ours(
        'ours-onnx',
        'modelship ONNX engine (examples/iris-onnx, in the server thread, no Python)',
        'examples/iris-onnx',
        'iris-onnx',
        0,
        false,
      ),
      ours(
        'ours-onnx-batching',
        `modelship ONNX engine with adaptive batching (${BENCH_BATCH.maxBatchSize} rows, ${BENCH_BATCH.maxLatencyMs} ms)`,
        'examples/iris-onnx',
        'iris-onnx',
        0,
        true,
      ),
    );
  }
  const peer = (p: PeerName, key: string, label: string, start: (venv: string, work: string) => Promise<Server>): Setup | undefined =>
    wanted.has(p) ? { key, label, ours: false, peer: p, start: (work) => start(venvs[p] as string, work) } : undefined;
  const peers = [
    peer('mlserver', `mlserver-${n}`, `MLServer parallel_workers ${n}`, (v, w) => startMlserver(v, n, w, v2Body())),
    n === 1
      ? peer('mlserver', 'mlserver-0', 'MLServer parallel_workers 0 (inference in its front process)', (v, w) =>
          startMlserver(v, 0, w, v2Body()),
        )
      : undefined,
    peer('kserve', `kserve-${n}`, `KServe ModelServer --workers ${n}`, (v) => startKserve(v, n)),
    peer('ray', `ray-${n}`, `Ray Serve, ${n} replica(s)`, (v) => startRay(v, n)),
    peer('bentoml', `bentoml-${n}`, `BentoML, workers ${n}`, (v) => startBentoml(v, n)),
  ];
  for (const p of peers) if (p) s.push(p);
  return s;
}

interface Result {
  setup: string;
  rps?: number;
  p50Ms?: number;
  p99Ms?: number;
  non2xx?: number;
  errors?: number;
  processes?: Record<string, number>;
  coresBusy?: Measured['coresBusy'];
  readyMs?: number;
  rounds?: number[];
  error?: string;
}

let oursFailed = false;

async function runOnce(setup: Setup, work: string): Promise<{ m: Measured; processes: Record<string, number>; sample: unknown }> {
  const server = await setup.start(work);
  try {
    const processes = processCount(server.proc.pgid);
    log(`${setup.key}: warm-up ${warmupSeconds} s, then ${seconds} s at ${CONNECTIONS} connections`);
    await load({ url: server.target.url, method: 'POST', body: server.target.body, seconds: warmupSeconds, connections: CONNECTIONS });
    const m = await measure(server.proc, server.target, server.readyMs, settings);
    log(`${setup.key}: ${m.rps} req/s, p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms, non-2xx ${m.non2xx}, errors ${m.errors}`);
    return { m, processes, sample: server.sample };
  } finally {
    await server.proc.stop();
  }
}

async function runSetups(setups: Setup[], work: string, samples: Record<string, unknown>): Promise<Record<string, Result>> {
  const runs = new Map<string, Measured[]>(setups.map((s) => [s.key, []]));
  const procs: Record<string, Record<string, number>> = {};
  const errors: Record<string, string> = {};
  for (let round = 0; round < rounds; round++) {
    for (const setup of round % 2 === 0 ? setups : [...setups].reverse()) {
      if (errors[setup.key]) continue;
      try {
        const r = await runOnce(setup, work);
        runs.get(setup.key)?.push(r.m);
        procs[setup.key] = r.processes;
        samples[setup.peer ?? 'ours'] ??= r.sample;
      } catch (err) {
        errors[setup.key] = (err as Error).message;
        log(`${setup.key} failed: ${errors[setup.key]}`);
        if (setup.ours) oursFailed = true;
      }
    }
  }
  const out: Record<string, Result> = {};
  for (const s of setups) {
    const ms = runs.get(s.key) ?? [];
    if (!ms.length) {
      out[s.key] = { setup: s.label, error: errors[s.key] ?? 'no run' };
      continue;
    }
    const med = (f: (m: Measured) => number) => median(ms.map(f));
    out[s.key] = {
      setup: s.label,
      rps: Math.round(med((m) => m.rps)),
      p50Ms: med((m) => m.p50Ms),
      p99Ms: med((m) => m.p99Ms),
      non2xx: ms.reduce((a, m) => a + m.non2xx, 0),
      errors: ms.reduce((a, m) => a + m.errors, 0),
      ...(procs[s.key] ? { processes: procs[s.key] } : {}),
      coresBusy: ms[Math.floor(ms.length / 2)]?.coresBusy,
      readyMs: Math.round(med((m) => m.readyMs)),
      rounds: ms.map((m) => m.rps),
    };
  }
  return out;
}

/** A constant-rate, open-loop load (vegeta) with this benchmark's length and connections. */
const steadyLoad = (bin: string, target: Target, rate: number) => steadyLoadOf(bin, target, rate, seconds, CONNECTIONS);

/** A steady load at `rate` after the usual warm-up, on a freshly started server. */
async function runSteady(setup: Setup, work: string, bin: string, rate: number): Promise<SteadyResult> {
  const server = await setup.start(work);
  try {
    log(`${setup.key}: warm-up ${warmupSeconds} s, then ${seconds} s at a steady ${rate} requests/s (vegeta)`);
    await load({ url: server.target.url, method: 'POST', body: server.target.body, seconds: warmupSeconds, connections: CONNECTIONS });
    await waitQuiet(quietWaitMs);
    const r = await steadyLoad(bin, server.target, rate);
    log(`${setup.key}: ${r.rps} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, max ${r.maxMs} ms, status ${JSON.stringify(r.statusCodes)}`);
    return r;
  } finally {
    await server.proc.stop();
  }
}

/** ours ÷ peer in requests/s, or null when either did not run. */
const vs = (a: Result | undefined, b: Result | undefined) => (a?.rps && b?.rps ? ratio(a.rps, b.rps) : null);

function ratios(n: number, r: Record<string, Result>) {
  const py = r[`ours-python-${n}`];
  const batch = r[`ours-python-${n}-batching`];
  const peers = Object.entries(r).filter(([k]) => !k.startsWith('ours'));
  const out: Record<string, unknown> = {
    pythonEngine: Object.fromEntries(peers.map(([k, v]) => [k, vs(py, v)])),
    pythonEngineWithBatching: Object.fromEntries(peers.map(([k, v]) => [k, vs(batch, v)])),
  };
  if (n === 1) {
    out.onnx = Object.fromEntries(peers.map(([k, v]) => [k, vs(r['ours-onnx'], v)]));
    out.onnxWithBatching = Object.fromEntries(peers.map(([k, v]) => [k, vs(r['ours-onnx-batching'], v)]));
  }
  return out;
}

// ---- main ----

const bin = binaries();
const result: Record<string, unknown> = { node: process.version, cpus, connections: CONNECTIONS, seconds, warmupSeconds, rounds };
const work = await mkdtemp(join(tmpdir(), 'bench-peers-'));
try {
  result.ours = { python: bin.python, versions: await versions(bin.python, ['scikit-learn', 'joblib', 'numpy']) };
  const venvs: Partial<Record<PeerName, string>> = {};
  const peerInfo: Record<string, unknown> = {};
  for (const p of Object.keys(PEER_PACKAGES) as PeerName[]) {
    if (!wanted.has(p)) continue;
    try {
      const v = await pythonVenv(PEER_PACKAGES[p].venvName, peerLock(p));
      venvs[p] = v.venv;
      peerInfo[p] = {
        lock: `bench/peers/${p}.lock`,
        venv: v.venv,
        reused: v.reused,
        versions: await versions(join(v.venv, 'bin', 'python'), PEER_PACKAGES[p].reported),
      };
      log(`${p}: ${JSON.stringify((peerInfo[p] as { versions: unknown }).versions)}`);
    } catch (err) {
      wanted.delete(p);
      peerInfo[p] = { error: (err as Error).message };
      log(`${p} is not available: ${(err as Error).message}`);
    }
  }
  result.peers = peerInfo;
  const samples: Record<string, unknown> = {};
  const groups: Record<string, unknown>[] = [];
  let oneProcess: Record<string, Result> = {};
  for (const n of cpus >= 2 ? [1, 2] : [1]) {
    const r = await runSetups(setupsFor(n, venvs), work, samples);
    if (n === 1) oneProcess = r;
    groups.push({ pythonInferenceProcesses: n, results: r, ratios: ratios(n, r) });
  }
  result.groups = groups;
  result.sampleResponses = samples;

  // Half load: MLServer's best setup and our Python engine (one process each), at half of MLServer's highest rate.
  const mlBest = ['mlserver-1', 'mlserver-0']
    .map((k) => ({ k, r: oneProcess[k] }))
    .filter((x) => x.r?.rps)
    .sort((a, b) => (b.r?.rps ?? 0) - (a.r?.rps ?? 0))[0];
  if (mlBest?.r?.rps) {
    const rate = Math.round(mlBest.r.rps / 2);
    const pick = setupsFor(1, venvs).filter((s) => s.key === mlBest.k || s.key === 'ours-python-1');
    const half: Record<string, unknown> = { rate, mlserverSetup: mlBest.k };
    const vegetaBin = await vegeta();
    half.loadGenerator = VEGETA;
    for (const s of pick) {
      try {
        half[s.key] = await runSteady(s, work, vegetaBin, rate);
      } catch (err) {
        half[s.key] = { error: (err as Error).message };
        if (s.ours) oursFailed = true;
      }
    }
    const ours = half['ours-python-1'] as SteadyResult | undefined;
    const ml = half[mlBest.k] as SteadyResult | undefined;
    half.p99Ratio = ours?.p99Ms !== undefined && ml?.p99Ms ? ratio(ours.p99Ms, ml.p99Ms) : null;
    half.target = 'p99Ratio <= 0.333';
    result.halfLoad = half;
  } else {
    result.halfLoad = { error: 'MLServer did not run, so it has no rate to halve' };
  }
  result.targets = {
    'pythonEngine (same Python processes) vs mlserver-N and kserve-N': '>= 3',
    'pythonEngineWithBatching vs mlserver-N': '>= 5',
    'onnx vs mlserver (sklearn)': '>= 10',
    'halfLoad.p99Ratio': '<= 0.333',
  };
} finally {
  killAll();
  await rm(work, { recursive: true, force: true });
}
console.log(JSON.stringify(result, null, 2));
if (oursFailed) process.exitCode = 1;
