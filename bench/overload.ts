// `npm run bench:overload`: the runtime under an open-loop load above its capacity (issue 23's acceptance), one
// engine at a time, each served by `node runtime/main.ts` from a local bundle directory:
//   python  bench/overload/python-sleep: predict sleeps 20 ms; one worker process (MODELSHIP_WORKERS=1)
//   js      bench/overload/js-spin: predict busy-waits 5 ms; a pool of 2 worker threads (MODELSHIP_WORKERS=2)
//   onnx    test/fixtures/onnx/slow.onnx asked for 40 products of 176×176 matrices (about 5 ms on one core);
//           MODELSHIP_WORKERS=2 puts it in 2 worker threads whatever its warm-up time
// For each engine:
//   1. unloaded: autocannon, 1 connection, BENCH_SECONDS (default 10): its p99 is the unloaded p99;
//      capacity: autocannon, closed loop, BENCH_CONNECTIONS (default 16) connections, BENCH_SECONDS: the answers
//      with status 200 per second
//   2. overload: vegeta, open loop (a constant rate, whether or not answers come), 3 × capacity for
//      BENCH_OVERLOAD_SECONDS (default 60), 30 s timeout; its results (`vegeta encode`) split by status:
//      goodput = the 200s answered during the attack, per second of it, ÷ capacity; p99 of the 200s (admitted)
//      and of the 503s (rejected); the count of every other status (0: vegeta's own error, such as its timeout)
//   3. meanwhile, from the attack's start until its last answer: liveness every 100 ms on the health listener
//      (MODELSHIP_HEALTH_PORT; the main port when the runtime does not open it, which the output says), each probe
//      on a new connection with a 1 s timeout, as the kubelet's; the RSS of the server's process group every
//      second; the cores used by the server, vegeta, this process and the rest of the machine
//   4. restarts: the server's child processes (the Python workers) before and after the attack, and the
//      counter modelship_worker_restarts_total from /metrics where the runtime exports it
// Targets: goodput ≥ 0.90; admitted p99 ≤ 2 × unloaded p99 + the queue-wait bound (MODELSHIP_MAX_QUEUE_WAIT_MS,
// passed as BENCH_MAX_QUEUE_WAIT_MS, default 500); rejections ≤ 10 ms p99; no restart; liveness p99 < 50 ms and no
// failed probe; the largest RSS is stated. MODELSHIP_MAX_CONCURRENCY and MODELSHIP_MAX_QUEUE are left unset (the
// runtime derives them from the engine). BENCH_ENGINES picks engines (comma-separated; default python,js,onnx).
// vegeta is the local environment's (env/vegeta; `node env/cli.ts build`). Each server runs in its own process
// group, killed at the end whatever happened; traffic goes to 127.0.0.1 only. Prints one JSON document; the exit
// code is non-zero only when an engine could not be measured (a missed target is in the document, not the code).
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { binaries } from '../env/build.ts';
import { freePorts } from '../env/process.ts';
import { load, ratio } from './lib.ts';
import { killAll, launch, log, machineBusyMs, measure, type Proc, root, waitQuiet, waitReady } from './servers.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const OVERLOAD_SECONDS = Number(process.env.BENCH_OVERLOAD_SECONDS ?? 60);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const QUEUE_WAIT_MS = Number(process.env.BENCH_MAX_QUEUE_WAIT_MS ?? 500);
const QUIET_WAIT_MS = Number(process.env.BENCH_QUIET_WAIT_SECONDS ?? 20) * 1000;
const WARMUP_SECONDS = 2;
/** The open-loop rate, as a multiple of the measured capacity. */
const OVERLOAD_FACTOR = 3;
const VEGETA_TIMEOUT_S = 30;
const PROBE_EVERY_MS = 100;
/** The kubelet's default probe timeout. */
const PROBE_TIMEOUT_MS = 1000;
const ONNX_SIDE = 176;

type EngineName = 'python' | 'js' | 'onnx';

interface Setup {
  engine: EngineName;
  description: string;
  /** A bundle directory, made in `work` when it is not committed as one. */
  bundle(work: string): Promise<string>;
  workers: number;
  body: string;
}

const scalarBody = JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [1] }] });

const SETUPS: Record<EngineName, Setup> = {
  python: {
    engine: 'python',
    description: 'bench/overload/python-sleep: predict sleeps 20 ms; 1 Python worker process',
    bundle: async () => join(root, 'bench/overload/python-sleep'),
    workers: 1,
    body: scalarBody,
  },
  js: {
    engine: 'js',
    description: 'bench/overload/js-spin: predict busy-waits 5 ms; a pool of 2 worker threads',
    bundle: async () => join(root, 'bench/overload/js-spin'),
    workers: 2,
    body: scalarBody,
  },
  onnx: {
    engine: 'onnx',
    description: `test/fixtures/onnx/slow.onnx at side ${ONNX_SIDE} (40 products of ${ONNX_SIDE}×${ONNX_SIDE} matrices); 2 worker threads`,
    async bundle(work) {
      const dir = await mkdtemp(join(work, 'onnx-'));
      await copyFile(join(root, 'test/fixtures/onnx/slow.onnx'), join(dir, 'model.onnx'));
      return dir;
    },
    workers: 2,
    // k = 1/side keeps every product's entries at 1/side (no overflow); the answer is side.
    body: JSON.stringify({
      inputs: [
        { name: 'k', shape: [1], datatype: 'FP32', data: [1 / ONNX_SIDE] },
        { name: 'side', shape: [1], datatype: 'INT64', data: [ONNX_SIDE] },
      ],
    }),
  },
};

// ---- small measures ----

/** Nearest-rank percentile of a list of numbers; null for an empty list. */
function percentile(values: number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = Float64Array.from(values).sort();
  return round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number);
}

const round = (n: number) => Number(n.toFixed(2));

interface ProcInfo {
  pid: number;
  ppid: number;
  program: string;
  rssKb: number;
}

/** The processes of a process group, from /proc. */
function groupProcesses(pgid: number): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(f[2]) !== pgid) continue;
      const rss = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'));
      const program = (readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0')[0] ?? '').split('/').pop() ?? '';
      out.push({ pid: Number(d), ppid: Number(f[1]), program, rssKb: Number(rss?.[1] ?? 0) });
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/** CPU ms (user + system) of a process group's live processes. */
function groupCpuMs(pgid: number): number {
  let ms = 0;
  for (const { pid } of groupProcesses(pgid)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ms += ((Number(f[11]) + Number(f[12])) * 1000) / 100;
    } catch {
      // exited meanwhile
    }
  }
  return ms;
}

/** CPU ms of this process's children that have exited and been waited for (vegeta, once it is done). */
function reapedChildrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[13]) + Number(f[14])) * 1000) / 100;
}

/** GET with a fresh connection and a hard timeout: status and elapsed ms, or the error. */
function probe(url: string, timeoutMs: number): Promise<{ ms: number; status?: number; error?: string; body?: string }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ ms: performance.now() - t0, status: res.statusCode, body }));
      res.on('error', (err) => resolve({ ms: performance.now() - t0, error: err.message }));
    });
    req.on('error', (err) => resolve({ ms: performance.now() - t0, error: err.name === 'AbortError' ? 'timeout' : err.message }));
  });
}

/** Probes a URL every PROBE_EVERY_MS until stopped; each probe runs on its own, as the kubelet's do. */
function startLiveness(url: string) {
  const latencies: number[] = [];
  const failures: Record<string, number> = {};
  const pending = new Set<Promise<void>>();
  const timer = setInterval(() => {
    const p = probe(url, PROBE_TIMEOUT_MS).then((r) => {
      latencies.push(r.ms);
      if (r.status !== 200) {
        const why = r.error ?? `status ${r.status}`;
        failures[why] = (failures[why] ?? 0) + 1;
      }
    });
    pending.add(p);
    p.finally(() => pending.delete(p));
  }, PROBE_EVERY_MS);
  return async () => {
    clearInterval(timer);
    await Promise.all(pending);
    const failed = Object.values(failures).reduce((a, b) => a + b, 0);
    return {
      url,
      everyMs: PROBE_EVERY_MS,
      timeoutMs: PROBE_TIMEOUT_MS,
      probes: latencies.length,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      maxMs: latencies.length ? round(Math.max(...latencies)) : null,
      failures: failed,
      failureKinds: failures,
    };
  };
}

/**
 * Samples the RSS of a process group every second until stopped (MB), and the open files of its first process
 * (the server's sockets: every request waiting in it holds one).
 */
function startRss(pgid: number) {
  const samples: number[] = [];
  let maxOpenFiles = 0;
  const sample = () => {
    samples.push(groupProcesses(pgid).reduce((a, p) => a + p.rssKb, 0) / 1024);
    try {
      maxOpenFiles = Math.max(maxOpenFiles, readdirSync(`/proc/${pgid}/fd`).length);
    } catch {
      // exited
    }
  };
  sample();
  const timer = setInterval(sample, 1000);
  return () => {
    clearInterval(timer);
    sample();
    return {
      what: "sum of VmRSS over the server's process group, sampled every second",
      atStartMb: Math.round(samples[0] as number),
      maxMb: Math.round(Math.max(...samples)),
      atEndMb: Math.round(samples[samples.length - 1] as number),
      samples: samples.length,
      serverMaxOpenFiles: maxOpenFiles,
    };
  };
}

/** The sum of a counter over its label sets in a Prometheus text exposition; null when it is not there. */
function counterSum(text: string | undefined, name: string): number | null {
  if (!text) return null;
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

// ---- the open-loop attack ----

interface Attack {
  rate: number;
  seconds: number;
  wallMs: number;
  results: string;
  coresBusy: { server: number; vegeta: number; bench: number; otherProcesses: number };
}

async function attack(vegeta: string, url: string, body: string, rate: number, pgid: number, work: string): Promise<Attack> {
  const bodyFile = join(work, 'body.json');
  const targets = join(work, 'targets.txt');
  const results = join(work, 'results.bin');
  await writeFile(bodyFile, body);
  await writeFile(targets, `POST ${url}\nContent-Type: application/json\n@${bodyFile}\n`);
  const args = [
    'attack',
    `-targets=${targets}`,
    `-rate=${rate}/s`,
    `-duration=${OVERLOAD_SECONDS}s`,
    `-timeout=${VEGETA_TIMEOUT_S}s`,
    '-max-body=512',
    `-output=${results}`,
  ];
  const s0 = groupCpuMs(pgid);
  const v0 = reapedChildrenCpuMs();
  const b0 = process.cpuUsage();
  const m0 = machineBusyMs();
  const t0 = performance.now();
  // In a process group of its own, like the servers, so it ends with the benchmark whatever happens.
  const vegetaProc = launch('vegeta attack', vegeta, args, { env: process.env });
  // Bounded: the attack lasts OVERLOAD_SECONDS and its last answers wait at most the timeout.
  const guard = setTimeout(() => vegetaProc.child.kill('SIGKILL'), (OVERLOAD_SECONDS + VEGETA_TIMEOUT_S + 30) * 1000);
  try {
    await exited(vegetaProc.child, 'vegeta attack', vegetaProc.output);
  } finally {
    clearTimeout(guard);
    await vegetaProc.stop();
  }
  const wallMs = performance.now() - t0;
  const server = groupCpuMs(pgid) - s0;
  const vegetaMs = reapedChildrenCpuMs() - v0;
  const b = process.cpuUsage(b0);
  const bench = (b.user + b.system) / 1000;
  const other = machineBusyMs() - m0 - server - vegetaMs - bench;
  const cores = (ms: number) => round(Math.max(0, ms) / wallMs);
  return {
    rate,
    seconds: OVERLOAD_SECONDS,
    wallMs: Math.round(wallMs),
    results,
    coresBusy: { server: cores(server), vegeta: cores(vegetaMs), bench: cores(bench), otherProcesses: cores(other) },
  };
}

function exited(child: ChildProcess, what: string, detail: () => string): Promise<void> {
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${what} exited with ${code ?? signal}: ${detail().trim()}`)),
    );
  });
}

/** Reads vegeta's results (`vegeta encode -to json`, one result a line) and splits them by status. */
async function splitByStatus(vegeta: string, results: string, url: string) {
  const child = spawn(vegeta, ['encode', '-to', 'json', results], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4096)));
  const done = exited(child, 'vegeta encode', () => stderr);
  done.catch(() => {}); // awaited below, after the last line
  const latencies = new Map<number, number[]>();
  /** When each answer came (sent + latency), ms since the epoch, by status. */
  const answeredAt = new Map<number, number[]>();
  let firstSent = Number.POSITIVE_INFINITY;
  const errors: Record<string, number> = {};
  /** The error codes (`MS_ERR_…`) of the answers that were not 200, by status. */
  const errorCodes: Record<string, Record<string, number>> = {};
  for await (const line of createInterface({ input: child.stdout as NodeJS.ReadableStream, crlfDelay: Number.POSITIVE_INFINITY })) {
    if (!line) continue;
    const r = JSON.parse(line) as { code: number; timestamp: string; latency: number; error: string; body: string | null };
    const ms = r.latency / 1e6;
    const sent = Date.parse(r.timestamp);
    firstSent = Math.min(firstSent, sent);
    const list = latencies.get(r.code) ?? [];
    if (list.length === 0) latencies.set(r.code, list);
    list.push(ms);
    const at = answeredAt.get(r.code) ?? [];
    if (at.length === 0) answeredAt.set(r.code, at);
    at.push(sent + ms);
    if (r.error) {
      const e = r.error.replaceAll(url, '<url>').slice(0, 200);
      errors[e] = (errors[e] ?? 0) + 1;
    }
    if (r.code !== 200 && r.code !== 0) {
      let code = 'no JSON body';
      try {
        code = String(JSON.parse(Buffer.from(r.body ?? '', 'base64').toString()).code ?? 'no code');
      } catch {
        // not JSON (or cut by -max-body)
      }
      const byCode = errorCodes[r.code] ?? {};
      errorCodes[r.code] = byCode;
      byCode[code] = (byCode[code] ?? 0) + 1;
    }
  }
  await done;
  return { latencies, answeredAt, firstSent, errors, errorCodes };
}

// ---- one engine ----

async function runEngine(setup: Setup, vegeta: string) {
  const work = await mkdtemp(join(tmpdir(), `bench-overload-${setup.engine}-`));
  let proc: Proc | undefined;
  try {
    const [port, healthPort, grpcPort] = await freePorts(3);
    const bin = binaries();
    const env: Record<string, string> = {
      MODELSHIP_MODEL_NAME: `overload-${setup.engine}`,
      MODELSHIP_HOST: '127.0.0.1',
      MODELSHIP_PORT: String(port),
      MODELSHIP_HEALTH_PORT: String(healthPort),
      MODELSHIP_GRPC_PORT: String(grpcPort),
      MODELSHIP_WORKERS: String(setup.workers),
      MODELSHIP_MAX_QUEUE_WAIT_MS: String(QUEUE_WAIT_MS),
      MODELSHIP_LOG_LEVEL: 'warn',
    };
    const bundle = await setup.bundle(work);
    const t0 = performance.now();
    proc = launch(`modelship (${setup.engine})`, process.execPath, [join(root, 'runtime/main.ts')], {
      env: {
        ...process.env,
        ...env,
        MODELSHIP_BUNDLE_URI: bundle,
        MODELSHIP_WORK_DIR: await mkdtemp(join(work, 'w-')),
        MODELSHIP_PYTHON: bin.python,
        MODELSHIP_UV: bin.uv,
      },
    });
    const base = `http://127.0.0.1:${port}`;
    await waitReady(proc, `${base}/v2/health/ready`, 120_000);
    const readyMs = Math.round(performance.now() - t0);
    const url = `${base}/v2/models/${env.MODELSHIP_MODEL_NAME}/infer`;
    const sample = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: setup.body });
    const sampleText = await sample.text();
    if (sample.status !== 200) throw new Error(`${proc.name} answered ${sample.status} ${sampleText.slice(0, 300)}`);

    // The health listener, or the main port where the runtime does not open one yet.
    const healthBase = `http://127.0.0.1:${healthPort}`;
    const own = await probe(`${healthBase}/v2/health/live`, PROBE_TIMEOUT_MS);
    const healthListener =
      own.status === 200
        ? { port: healthPort, ownListener: true }
        : {
            port,
            ownListener: false,
            note: `MODELSHIP_HEALTH_PORT=${healthPort} is not honoured (${own.error ?? `status ${own.status}`}): liveness probed on the main port`,
          };
    const liveUrl = `http://127.0.0.1:${healthListener.port}/v2/health/live`;
    const scrape = async () => {
      for (const b of healthListener.ownListener ? [healthBase, base] : [base]) {
        const r = await probe(`${b}/metrics`, 5000);
        if (r.status === 200 && r.body?.includes('modelship_')) return r.body;
      }
      return undefined;
    };

    log(`${setup.engine}: ready in ${readyMs} ms; warm-up ${WARMUP_SECONDS} s`);
    await load({ url, method: 'POST', body: setup.body, seconds: WARMUP_SECONDS, connections: CONNECTIONS });
    const quiet = { seconds: SECONDS, quietWaitMs: QUIET_WAIT_MS };
    const unloaded = await measure(proc, { url, body: setup.body }, readyMs, { ...quiet, connections: 1 });
    log(`${setup.engine}: unloaded (1 connection) ${unloaded.rps} req/s, p50 ${unloaded.p50Ms} ms, p99 ${unloaded.p99Ms} ms`);
    const closed = await measure(proc, { url, body: setup.body }, readyMs, { ...quiet, connections: CONNECTIONS });
    const capacity = Math.round((closed.requests - closed.non2xx) / SECONDS);
    log(`${setup.engine}: capacity (${CONNECTIONS} connections, closed loop) ${capacity} answers 200/s, p99 ${closed.p99Ms} ms`);
    if (capacity <= 0) throw new Error(`${proc.name}: no answer 200 in the closed-loop run`);

    const children = () =>
      groupProcesses(proc?.pgid as number)
        .filter((p) => p.ppid === proc?.pgid)
        .map(({ pid, program }) => ({ pid, program }));
    const childrenBefore = children();
    const restartsBefore = counterSum(await scrape(), 'modelship_worker_restarts_total');
    const machineBusyBefore = await waitQuiet(QUIET_WAIT_MS);

    const rate = OVERLOAD_FACTOR * capacity;
    log(`${setup.engine}: open loop at ${rate} requests/s for ${OVERLOAD_SECONDS} s (vegeta), liveness every ${PROBE_EVERY_MS} ms`);
    const stopLiveness = startLiveness(liveUrl);
    const stopRss = startRss(proc.pgid);
    const a = await attack(vegeta, url, setup.body, rate, proc.pgid, work).catch(async (err: unknown) => {
      // No timer outlives a failed run.
      await stopLiveness();
      stopRss();
      throw err;
    });
    const liveness = await stopLiveness();
    const memory = stopRss();
    // A server that died under the load is the worst restart of all: say so, with its last words.
    const exit = proc.child.exitCode ?? proc.child.signalCode;
    const serverExited =
      exit === null
        ? null
        : {
            exit,
            lastLines: proc
              .output()
              .trimEnd()
              .split('\n')
              .slice(-6)
              .map((l) => l.slice(0, 400)),
          };
    const childrenAfter = children();
    const restartsAfter = counterSum(await scrape(), 'modelship_worker_restarts_total');
    const { latencies, answeredAt, firstSent, errors, errorCodes } = await splitByStatus(vegeta, a.results, url);

    const count = (code: number) => latencies.get(code)?.length ?? 0;
    const statusCodes = Object.fromEntries([...latencies].map(([code, l]) => [String(code), l.length]));
    const requests = [...latencies.values()].reduce((n, l) => n + l.length, 0);
    // Goodput: the 200s answered while the attack ran, per second of it (a queue drained after the attack
    // would otherwise count as capacity it never had).
    const windowEnd = firstSent + OVERLOAD_SECONDS * 1000;
    const okInWindow = (answeredAt.get(200) ?? []).filter((t) => t <= windowEnd).length;
    const goodputRps = okInWindow / OVERLOAD_SECONDS;
    // Answers per second in 5 s steps from the attack's start, through the drain after it.
    const timeline: { fromS: number; ok200PerS: number; rejected503PerS: number; otherPerS: number }[] = [];
    for (const [code, times] of answeredAt) {
      for (const t of times) {
        const i = Math.max(0, Math.floor((t - firstSent) / 5000));
        for (let j = timeline.length; j <= i; j++) timeline.push({ fromS: j * 5, ok200PerS: 0, rejected503PerS: 0, otherPerS: 0 });
        const step = timeline[i] as (typeof timeline)[number];
        if (code === 200) step.ok200PerS += 0.2;
        else if (code === 503) step.rejected503PerS += 0.2;
        else step.otherPerS += 0.2;
      }
    }
    for (const step of timeline) {
      step.ok200PerS = round(step.ok200PerS);
      step.rejected503PerS = round(step.rejected503PerS);
      step.otherPerS = round(step.otherPerS);
    }
    const admittedP99 = percentile(latencies.get(200) ?? [], 99);
    const rejectedP99 = percentile(latencies.get(503) ?? [], 99);
    const admittedLimit = round(2 * unloaded.p99Ms + QUEUE_WAIT_MS);
    const pidsBefore = childrenBefore.map((c) => c.pid).sort();
    const pidsAfter = childrenAfter.map((c) => c.pid).sort();
    const pidsChanged = pidsBefore.join(',') !== pidsAfter.join(',');
    const restartMetric = restartsBefore === null || restartsAfter === null ? null : restartsAfter - restartsBefore;

    const targets = {
      goodput: { value: ratio(goodputRps, capacity), target: '>= 0.90', pass: goodputRps / capacity >= 0.9 },
      admittedP99Ms: {
        value: admittedP99,
        target: `<= 2 × unloaded p99 (${unloaded.p99Ms} ms) + queue-wait bound (${QUEUE_WAIT_MS} ms) = ${admittedLimit} ms`,
        pass: admittedP99 !== null && admittedP99 <= admittedLimit,
      },
      rejectedP99Ms: {
        value: rejectedP99,
        target: '<= 10 ms',
        // No 503 at all under 3× capacity is not a pass: nothing was shed (null: not measurable).
        pass: rejectedP99 === null ? null : rejectedP99 <= 10,
      },
      restarts: {
        value: { serverExited: serverExited !== null, workerPidsChanged: pidsChanged, metricDelta: restartMetric },
        target: '0 (the server alive, its worker PIDs unchanged, modelship_worker_restarts_total unchanged where exported)',
        pass: serverExited === null && !pidsChanged && (restartMetric === null || restartMetric === 0),
      },
      livenessP99Ms: {
        value: liveness.p99Ms,
        failures: liveness.failures,
        target: '< 50 ms, no failed probe',
        pass: liveness.p99Ms !== null && liveness.p99Ms < 50 && liveness.failures === 0,
      },
      maxRssMb: { value: memory.maxMb, target: 'stated', pass: null },
    };
    const verdicts = Object.values(targets).map((t) => t.pass);
    log(
      `${setup.engine}: ${requests} requests, statuses ${JSON.stringify(statusCodes)}; goodput ${targets.goodput.value}, ` +
        `admitted p99 ${admittedP99} ms, rejected p99 ${rejectedP99} ms, liveness p99 ${liveness.p99Ms} ms ` +
        `(${liveness.failures} failed), max RSS ${memory.maxMb} MB` +
        (serverExited ? `; the server exited (${serverExited.exit})` : '') +
        (pidsChanged ? '; worker PIDs changed' : ''),
    );
    return {
      setup: { description: setup.description, env, bundle: bundle.startsWith(root) ? bundle.slice(root.length + 1) : 'a temporary copy' },
      readyMs,
      sampleResponse: JSON.parse(sampleText),
      healthListener,
      unloaded: {
        connections: 1,
        seconds: SECONDS,
        rps: unloaded.rps,
        p50Ms: unloaded.p50Ms,
        p99Ms: unloaded.p99Ms,
        non2xx: unloaded.non2xx,
      },
      capacity: {
        connections: CONNECTIONS,
        seconds: SECONDS,
        ok200PerSecond: capacity,
        p50Ms: closed.p50Ms,
        p99Ms: closed.p99Ms,
        non2xx: closed.non2xx,
        errors: closed.errors,
        coresBusy: closed.coresBusy,
      },
      overload: {
        rate: a.rate,
        seconds: a.seconds,
        // Fewer sent than planned: the load generator fell behind (its cores are in coresBusy).
        requestsPlanned: a.rate * a.seconds,
        wallMs: a.wallMs,
        machineBusyBefore,
        requests,
        statusCodes,
        ok200AnsweredDuringAttack: okInWindow,
        ok200AnsweredInAll: count(200),
        goodputPerSecond: round(goodputRps),
        admittedP50Ms: percentile(latencies.get(200) ?? [], 50),
        admittedP99Ms: admittedP99,
        rejectedP50Ms: percentile(latencies.get(503) ?? [], 50),
        rejectedP99Ms: rejectedP99,
        otherStatuses: requests - count(200) - count(503),
        errorCodes,
        errors: Object.fromEntries(
          Object.entries(errors)
            .sort((x, y) => y[1] - x[1])
            .slice(0, 5),
        ),
        coresBusy: a.coresBusy,
        timeline,
      },
      liveness,
      memory,
      restarts: {
        serverExited,
        childrenBefore,
        childrenAfter,
        workerPidsChanged: pidsChanged,
        metric: {
          name: 'modelship_worker_restarts_total',
          before: restartsBefore,
          after: restartsAfter,
          exported: restartsBefore !== null,
        },
      },
      targets,
      allTargetsMet: !verdicts.includes(false),
    };
  } finally {
    await proc?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

// ---- main ----

const engines = (process.env.BENCH_ENGINES ?? 'python,js,onnx').split(',').map((e) => e.trim()) as EngineName[];
for (const e of engines) if (!SETUPS[e]) throw new Error(`BENCH_ENGINES: unknown engine ${e} (python, js, onnx)`);
const bin = binaries();
for (const [what, path] of [
  ['vegeta', bin.vegeta],
  ['the Python stack', bin.python],
]) {
  if (!existsSync(path as string)) throw new Error(`${what} is not built (${path}); run: node env/cli.ts build`);
}
const result: Record<string, unknown> = {
  node: process.version,
  cpus: availableParallelism(),
  vegeta: bin.vegeta,
  settings: {
    seconds: SECONDS,
    overloadSeconds: OVERLOAD_SECONDS,
    connections: CONNECTIONS,
    overloadFactor: OVERLOAD_FACTOR,
    vegetaTimeoutSeconds: VEGETA_TIMEOUT_S,
    maxQueueWaitMs: QUEUE_WAIT_MS,
    maxConcurrency: "unset (the runtime's default, from the engine)",
    maxQueue: "unset (the runtime's default, from the engine)",
  },
};
const perEngine: Record<string, unknown> = {};
let failed = false;
try {
  for (const e of engines) {
    try {
      perEngine[e] = await runEngine(SETUPS[e], bin.vegeta);
    } catch (err) {
      failed = true;
      perEngine[e] = { error: (err as Error).message };
      log(`${e} failed: ${(err as Error).message}`);
    }
  }
} finally {
  killAll();
}
result.engines = perEngine;
result.summary = Object.fromEntries(
  Object.entries(perEngine).map(([e, r]) => {
    const t = (r as { targets?: Record<string, { pass: boolean | null }> }).targets;
    return [e, t ? Object.fromEntries(Object.entries(t).map(([k, v]) => [k, v.pass])) : 'not measured'];
  }),
);
console.log(JSON.stringify(result, null, 2));
if (failed) process.exitCode = 1;
