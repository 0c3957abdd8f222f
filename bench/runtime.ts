// `npm run bench:runtime`: the runtime against baselines measured side by side in the same run.
//   throughput  echo bundle over OIP v2 ÷ a bare fastify hello-world (autocannon, 100 connections, no pipelining)
//   latency     p50/p99 of the echo bundle at half of its max load
//   logging     echo requests/s with inference logging to Kafka on (every request, mode all) ÷ off: produced by
//               the runtime itself, and through the recorder sidecar (a process of its own, over a Unix socket,
//               as in a pod)
//   cold start  spawn → ready for a 100 MB bundle in MinIO ÷ raw download + unzip of the same object
//   batching    a plugin with a fixed cost per call (2 ms, whatever the batch) with adaptive batching on ÷ off,
//               at 64 connections; and its p50 at 1 connection, on vs off
//   protocols   the echo bundle over OIP gRPC ÷ over REST (same tensor, 64 in flight); a 10,000-element FP32
//               tensor in and out as binary (the binary tensor extension) ÷ as JSON
//   composition one hop: an ensemble runtime whose plugin calls an echo member (ctx.models) vs the member called
//               directly, p50 and p99 at half of the ensemble's max load (vegeta, constant rate, open loop)
// Prints one JSON document. BENCH_SECONDS sets each load run's length (default 10); BENCH_PARTS picks parts
// (comma-separated: throughput, logging, coldstart, protocols, batching, composition; default all).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Admin } from '@platformatic/kafka';
import yauzl from 'yauzl';
import { packBundle } from '../cli/pack.ts';
import { pushBundle } from '../cli/push.ts';
import { minioClientFor } from '../runtime/bundle/fetch.ts';
import { down, readEnv, isHealthy, up, type EnvInfo } from '../env/env.ts';
import { freePort } from '../env/process.ts';
import { cpuMs, type LoadResult, load, median, ratio, spawnServer, waitFor } from './lib.ts';
import { steadyLoadOf, VEGETA, vegeta } from './servers.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

/** The environment of a runtime serving the echo bundle on a free port of 127.0.0.1. */
async function echoRuntimeEnv(workDir: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  return {
    MODELSHIP_BUNDLE_URI: join(root, 'examples/echo'),
    MODELSHIP_MODEL_NAME: 'echo',
    MODELSHIP_HOST: '127.0.0.1',
    MODELSHIP_PORT: String(await freePort()),
    MODELSHIP_LOG_LEVEL: 'warn',
    MODELSHIP_WORK_DIR: workDir,
    ...extra,
  };
}

const echoBody = JSON.stringify({ inputs: [{ name: 'text', shape: [1], datatype: 'BYTES', data: ['hello'] }] });

async function throughput() {
  const work = await mkdtemp(join(tmpdir(), 'bench-rt-'));
  const baseline = await spawnServer(join(root, 'bench/bare-fastify.ts'));
  const runtime = await spawnServer(join(root, 'runtime/main.ts'), await echoRuntimeEnv(work), '/v2/health/ready');
  try {
    const hello = { url: `${baseline.url}/`, seconds };
    const echo = { url: `${runtime.url}/v2/models/echo/infer`, method: 'POST' as const, body: echoBody, seconds };
    log('warming up');
    await load({ ...hello, seconds: 2 });
    await load({ ...echo, seconds: 2 });
    const jsonEcho = { url: `${baseline.url}/echo`, method: 'POST' as const, body: echoBody, seconds };
    const base: number[] = [];
    const baseJson: number[] = [];
    const rt: number[] = [];
    for (let round = 0; round < 2; round++) {
      log(`round ${round + 1}: bare fastify hello-world, ${seconds} s`);
      base.push((await load(hello)).rps);
      log(`round ${round + 1}: bare fastify JSON echo (POST, same body), ${seconds} s`);
      baseJson.push((await load(jsonEcho)).rps);
      log(`round ${round + 1}: runtime echo (OIP v2 infer), ${seconds} s`);
      const r = await load(echo);
      if (r.errors || r.non2xx) throw new Error(`runtime load run had ${r.errors} errors and ${r.non2xx} non-2xx responses`);
      rt.push(r.rps);
    }
    const baseRps = median(base);
    const rtRps = median(rt);
    log(`latency at half load (${Math.round(rtRps / 2)} req/s)`);
    const half = await load({ ...echo, rate: Math.round(rtRps / 2) });
    const baseHalf = await load({ ...jsonEcho, rate: Math.round(rtRps / 2) });
    const v1 = await load({
      url: `${runtime.url}/v1/models/echo:predict`,
      method: 'POST',
      body: JSON.stringify({ instances: [{ text: 'hello' }] }),
      seconds: Math.max(3, Math.round(seconds / 2)),
    });
    return {
      bareFastifyHelloRps: baseRps,
      runtimeEchoRps: rtRps,
      ratio: ratio(rtRps, baseRps),
      target: '>= 0.85',
      bareFastifyJsonEchoRps: median(baseJson),
      ratioVsJsonEcho: ratio(rtRps, median(baseJson)),
      runtimeV1EchoRps: v1.rps,
      halfLoad: {
        rate: Math.round(rtRps / 2),
        p50Ms: half.p50,
        p99Ms: half.p99,
        target: 'p99 <= 2 ms',
        bareFastifyJsonEchoSameRate: { p50Ms: baseHalf.p50, p99Ms: baseHalf.p99 },
      },
    };
  } finally {
    await Promise.all([baseline.stop(), runtime.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

async function logging(info: EnvInfo) {
  const topic = `bench.log.${randomBytes(3).toString('hex')}`;
  const admin = new Admin({ clientId: 'bench', bootstrapBrokers: info.kafka.bootstrapServers });
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 });
  const work = await mkdtemp(join(tmpdir(), 'bench-log-'));
  const runtimeEnv = async (extra: Record<string, string>) => echoRuntimeEnv(await mkdtemp(join(work, 'w-')), extra);
  const off = await spawnServer(join(root, 'runtime/main.ts'), await runtimeEnv({}), '/v2/health/ready');
  const on = await spawnServer(
    join(root, 'runtime/main.ts'),
    await runtimeEnv({ MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: info.kafka.bootstrapServers.join(','), MODELSHIP_INFERENCE_LOG_TOPIC: topic }),
    '/v2/health/ready',
  );
  // As in a pod: the recorder sidecar holds the Kafka settings, the runtime only its socket.
  const socket = join(work, 'recorder.sock');
  const recorder = spawn(process.execPath, [join(root, 'runtime/main.ts'), 'recorder'], {
    env: {
      PATH: process.env.PATH,
      MODELSHIP_MODEL_NAME: 'echo',
      MODELSHIP_RECORDER_SOCKET: socket,
      MODELSHIP_KAFKA_BOOTSTRAP_SERVERS: info.kafka.bootstrapServers.join(','),
      MODELSHIP_INFERENCE_LOG_TOPIC: topic,
    },
    stdio: 'ignore',
  });
  const viaSidecar = await spawnServer(
    join(root, 'runtime/main.ts'),
    await runtimeEnv({ MODELSHIP_RECORDER_SOCKET: socket, MODELSHIP_INFERENCE_LOG_TOPIC: topic }),
    '/v2/health/ready',
  );
  try {
    const run = (url: string, secs = seconds) =>
      load({ url: `${url}/v2/models/echo/infer`, method: 'POST', body: echoBody, seconds: secs });
    log('logging: warming up');
    await run(off.url, 2);
    await run(on.url, 2);
    await run(viaSidecar.url, 2);
    const offRps: number[] = [];
    const onRps: number[] = [];
    const sidecarRps: number[] = [];
    const sidecarCpu: number[] = [];
    // CPU per 1000 requests of the runtime with logging off and on, and of the broker while logging is on:
    // on a small machine the broker competes with the runtime and the load generator for the same cores.
    const offCpu: number[] = [];
    const onCpu: number[] = [];
    const brokerCpu: number[] = [];
    const brokerPid = info.processes.kafka?.pid;
    for (let round = 0; round < 2; round++) {
      log(`logging round ${round + 1}: off, ${seconds} s`);
      let c0 = cpuMs(off.child.pid as number);
      const rOff = await run(off.url);
      offCpu.push(((cpuMs(off.child.pid as number) - c0) / rOff.requests) * 1000);
      offRps.push(rOff.rps);
      log(`logging round ${round + 1}: on (Kafka, every request, mode all), ${seconds} s`);
      c0 = cpuMs(on.child.pid as number);
      const b0 = brokerPid ? cpuMs(brokerPid) : 0;
      const r = await run(on.url);
      if (r.errors || r.non2xx) throw new Error(`logging-on run had ${r.errors} errors and ${r.non2xx} non-2xx responses`);
      onCpu.push(((cpuMs(on.child.pid as number) - c0) / r.requests) * 1000);
      if (brokerPid) brokerCpu.push((cpuMs(brokerPid) - b0) / (seconds * 1000));
      onRps.push(r.rps);
      log(`logging round ${round + 1}: on through the recorder sidecar, ${seconds} s`);
      c0 = cpuMs(viaSidecar.child.pid as number) + cpuMs(recorder.pid as number);
      const rs = await run(viaSidecar.url);
      if (rs.errors || rs.non2xx) throw new Error(`sidecar run had ${rs.errors} errors and ${rs.non2xx} non-2xx responses`);
      sidecarCpu.push(((cpuMs(viaSidecar.child.pid as number) + cpuMs(recorder.pid as number) - c0) / rs.requests) * 1000);
      sidecarRps.push(rs.rps);
    }
    const metricsOf = async (url: string) => (await fetch(`${url}/metrics`)).text();
    const metrics = await metricsOf(on.url);
    const sidecarMetrics = await metricsOf(viaSidecar.url);
    const countIn = (text: string, name: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith(name))
        .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    const count = (name: string) => countIn(metrics, name);
    return {
      offRps: median(offRps),
      onRps: median(onRps),
      ratio: ratio(median(onRps), median(offRps)),
      target: '>= 0.95',
      runtimeCpuMsPer1kRequests: { off: Math.round(median(offCpu)), on: Math.round(median(onCpu)) },
      runtimeCpuRatio: ratio(median(offCpu), median(onCpu)),
      brokerCoresBusyWhileOn: brokerCpu.length ? Number(median(brokerCpu).toFixed(2)) : null,
      recordsSent: count('modelship_inference_log_sent_total'),
      recordsDropped: count('modelship_inference_log_dropped_total'),
      recorderSidecar: {
        onRps: median(sidecarRps),
        ratio: ratio(median(sidecarRps), median(offRps)),
        target: '>= 0.95',
        // The runtime and the sidecar together.
        cpuMsPer1kRequests: Math.round(median(sidecarCpu)),
        recordsSent: countIn(sidecarMetrics, 'modelship_inference_log_sent_total'),
        recordsDropped: countIn(sidecarMetrics, 'modelship_inference_log_dropped_total'),
      },
    };
  } finally {
    recorder.kill('SIGTERM');
    await Promise.all([off.stop(), on.stop(), viaSidecar.stop()]);
    await admin.deleteTopics({ topics: [topic] }).catch(() => {});
    await admin.close();
    await rm(work, { recursive: true, force: true });
  }
}

async function rawDownloadAndUnzip(info: EnvInfo, bucket: string, key: string, dir: string): Promise<number> {
  const t0 = performance.now();
  const client = minioClientFor({ ...info.s3 });
  const zip = join(dir, 'raw.zip');
  await pipeline(await client.getObject(bucket, key), createWriteStream(zip));
  const out = join(dir, 'raw');
  const zf = await new Promise<yauzl.ZipFile>((res, rej) => yauzl.open(zip, { lazyEntries: true }, (e, z) => (e || !z ? rej(e) : res(z))));
  await new Promise<void>((resolve, reject) => {
    zf.on('entry', (entry: yauzl.Entry) => {
      zf.openReadStream(entry, async (err, stream) => {
        if (err || !stream) return reject(err);
        const dest = join(out, entry.fileName);
        await mkdir(dirname(dest), { recursive: true });
        await pipeline(stream, createWriteStream(dest));
        zf.readEntry();
      });
    });
    zf.on('end', resolve);
    zf.on('error', reject);
    zf.readEntry();
  });
  const ms = performance.now() - t0;
  await rm(join(dir, 'raw'), { recursive: true, force: true });
  await rm(zip, { force: true });
  return ms;
}

/**
 * Spawn → ready. `prepared`: as in a pod, the prepare step (`main.ts prepare`, which alone gets the keys) runs to
 * its end first, then the server loads what it left; otherwise one process fetches and serves.
 */
async function runtimeColdStart(info: EnvInfo, uri: string, dir: string, prepared = false): Promise<number> {
  const work = await mkdtemp(join(dir, 'work-'));
  const port = await freePort();
  const common = {
    MODELSHIP_BUNDLE_URI: uri,
    MODELSHIP_MODEL_NAME: 'big',
    MODELSHIP_LOG_LEVEL: 'warn',
    MODELSHIP_WORK_DIR: work,
  };
  const keys = {
    MODELSHIP_S3_ENDPOINT: info.s3.endpoint,
    MODELSHIP_S3_ACCESS_KEY: info.s3.accessKey,
    MODELSHIP_S3_SECRET_KEY: info.s3.secretKey,
  };
  const t0 = performance.now();
  if (prepared) {
    const prep = spawn(process.execPath, [join(root, 'runtime/main.ts'), 'prepare'], {
      env: { ...process.env, ...common, ...keys, MODELSHIP_TERMINATION_LOG: join(work, 'termination-log') },
      stdio: 'ignore',
    });
    const code = await new Promise((resolve) => prep.once('exit', resolve));
    if (code !== 0) throw new Error(`prepare exited with ${code}`);
  }
  const server = await spawnServer(join(root, 'runtime/main.ts'), {
    ...common,
    MODELSHIP_HOST: '127.0.0.1',
    MODELSHIP_PORT: String(port),
    ...(prepared ? { MODELSHIP_BUNDLE_PREPARED: 'true' } : keys),
  });
  await waitFor(async () => (await fetch(`${server.url}/v2/health/ready`)).status === 200, 120_000);
  const ms = performance.now() - t0;
  await server.stop();
  await rm(work, { recursive: true, force: true });
  return ms;
}

async function coldStart(info: EnvInfo) {
  const dir = await mkdtemp(join(tmpdir(), 'bench-cold-'));
  const client = minioClientFor({ ...info.s3 });
  const bucket = `bench-${randomBytes(3).toString('hex')}`;
  try {
    const bundleDir = join(dir, 'bundle');
    await mkdir(bundleDir);
    await writeFile(join(bundleDir, 'predict.mjs'), 'export async function predict(input) { return input; }\n');
    // 100 MB of incompressible weights, in 4 files, as a real model would ship them.
    for (let i = 0; i < 4; i++) await writeFile(join(bundleDir, `weights-${i}.bin`), randomBytes(25 * 1024 * 1024));
    const packed = await packBundle(bundleDir, join(dir, 'big.zip'));
    await client.makeBucket(bucket, info.s3.region);
    await pushBundle(packed.file, `s3://${bucket}/big/bundle.zip`, { ...info.s3 }, { progress: false });
    const raw: number[] = [];
    const cold: number[] = [];
    const twoStep: number[] = [];
    for (let i = 0; i < 3; i++) {
      log(`cold start round ${i + 1}`);
      raw.push(await rawDownloadAndUnzip(info, bucket, 'big/bundle.zip', dir));
      cold.push(await runtimeColdStart(info, `s3://${bucket}/big/bundle.zip`, dir));
      twoStep.push(await runtimeColdStart(info, `s3://${bucket}/big/bundle.zip`, dir, true));
    }
    return {
      bundleBytes: packed.bytes,
      rawDownloadUnzipMs: Math.round(median(raw)),
      runtimeSpawnToReadyMs: Math.round(median(cold)),
      ratio: ratio(median(cold), median(raw)),
      target: '<= 1.5',
      // As in a pod since the prepare init container: prepare (fetch, verify, unpack) to its end, then serve.
      prepareThenServeMs: Math.round(median(twoStep)),
      prepareThenServeRatio: ratio(median(twoStep), median(raw)),
      prepareThenServeVsOneProcess: ratio(median(twoStep), median(cold)),
    };
  } finally {
    const names: string[] = [];
    for await (const o of client.listObjectsV2(bucket, '', true)) if (o.name) names.push(o.name);
    if (names.length) await client.removeObjects(bucket, names).catch(() => {});
    await client.removeBucket(bucket).catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}

/** One grpc-load run (bench/grpc-load.ts, a process of its own, as autocannon's work is its own). */
async function grpcLoad(target: string, model: string, secs: number, request: unknown): Promise<LoadResult> {
  const child = spawn(
    process.execPath,
    [join(root, 'bench/grpc-load.ts'), target, model, String(secs), '64', '4', JSON.stringify(request)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  await new Promise((resolve) => child.once('exit', resolve));
  const r = JSON.parse(out.trim()) as { requests: number; rps: number; p50: number; p99: number; errors: number };
  return { ...r, non2xx: 0 };
}

async function protocols() {
  const work = await mkdtemp(join(tmpdir(), 'bench-proto-'));
  const grpcPort = await freePort();
  const runtime = await spawnServer(
    join(root, 'runtime/main.ts'),
    await echoRuntimeEnv(work, { MODELSHIP_GRPC_PORT: String(grpcPort) }),
    '/v2/health/ready',
  );
  const pid = runtime.child.pid as number;
  const target = `127.0.0.1:${grpcPort}`;
  // The server's CPU per 1000 requests says what each protocol costs the server, whatever the client's cost.
  const measured = async <T extends LoadResult>(run: () => Promise<T>) => {
    const c0 = cpuMs(pid);
    const r = await run();
    if (r.errors || r.non2xx) throw new Error(`a protocols run had ${r.errors} errors and ${r.non2xx} non-2xx responses`);
    return { ...r, serverCpuMsPer1k: Math.round(((cpuMs(pid) - c0) / r.requests) * 1000 * 10) / 10 };
  };
  try {
    const rest = () => load({ url: `${runtime.url}/v2/models/echo/infer`, method: 'POST', body: echoBody, seconds, connections: 64 });
    // The same tensor as REST's, as tritonclient sends it: BYTES in raw contents (a 4-byte length, the bytes).
    const hello = Buffer.concat([Buffer.from([5, 0, 0, 0]), Buffer.from('hello')]);
    const grpcRequest = { inputs: [{ name: 'text', datatype: 'BYTES', shape: [1] }], raw_input_contents: [hello.toString('base64')] };
    const grpcRun = () => grpcLoad(target, 'echo', seconds, grpcRequest);
    log('protocols: warming up');
    await load({ url: `${runtime.url}/v2/models/echo/infer`, method: 'POST', body: echoBody, seconds: 2, connections: 64 });
    await grpcLoad(target, 'echo', 2, grpcRequest);
    const restRuns = [];
    const grpcRuns = [];
    for (let round = 0; round < 2; round++) {
      log(`protocols round ${round + 1}: REST echo, ${seconds} s`);
      restRuns.push(await measured(rest));
      log(`protocols round ${round + 1}: gRPC echo, ${seconds} s`);
      grpcRuns.push(await measured(grpcRun));
    }
    // 10,000 FP32 values in and out: JSON, then the binary tensor extension.
    const values = Array.from({ length: 10_000 }, (_, i) => (i % 997) / 8);
    const tensorJson = JSON.stringify({ inputs: [{ name: 'x', shape: [1, 10_000], datatype: 'FP32', data: values }] });
    const header = Buffer.from(
      JSON.stringify({
        parameters: { binary_data_output: true },
        inputs: [{ name: 'x', shape: [1, 10_000], datatype: 'FP32', parameters: { binary_data_size: 40_000 } }],
      }),
    );
    const tensorBinary = Buffer.concat([header, Buffer.from(Float32Array.from(values).buffer)]);
    const json = () => load({ url: `${runtime.url}/v2/models/echo/infer`, method: 'POST', body: tensorJson, seconds, connections: 64 });
    const binary = () =>
      load({
        url: `${runtime.url}/v2/models/echo/infer`,
        method: 'POST',
        body: tensorBinary,
        headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
        seconds,
        connections: 64,
      });
    log('tensors: warming up');
    await load({ url: `${runtime.url}/v2/models/echo/infer`, method: 'POST', body: tensorJson, seconds: 2, connections: 64 });
    const jsonRuns = [];
    const binaryRuns = [];
    for (let round = 0; round < 2; round++) {
      log(`tensors round ${round + 1}: 10k FP32 as JSON, ${seconds} s`);
      jsonRuns.push(await measured(json));
      log(`tensors round ${round + 1}: 10k FP32 as binary, ${seconds} s`);
      binaryRuns.push(await measured(binary));
    }
    const pick = (runs: (LoadResult & { serverCpuMsPer1k: number })[]) => ({
      rps: median(runs.map((r) => r.rps)),
      p50Ms: median(runs.map((r) => r.p50)),
      p99Ms: median(runs.map((r) => r.p99)),
      serverCpuMsPer1k: median(runs.map((r) => r.serverCpuMsPer1k)),
    });
    const [r, g, j, b] = [pick(restRuns), pick(grpcRuns), pick(jsonRuns), pick(binaryRuns)];
    return {
      echo: {
        rest: r,
        grpc: { ...g, client: 'bench/grpc-load.ts (@grpc/grpc-js, 64 in flight over 4 connections)' },
        ratio: ratio(g.rps, r.rps),
        serverCpuRatio: ratio(r.serverCpuMsPer1k, g.serverCpuMsPer1k),
        target: 'gRPC >= 1.5x REST',
      },
      tensor10kFp32: {
        json: j,
        binary: b,
        ratio: ratio(b.rps, j.rps),
        serverCpuRatio: ratio(j.serverCpuMsPer1k, b.serverCpuMsPer1k),
        target: '>= 5',
      },
    };
  } finally {
    await runtime.stop();
    await rm(work, { recursive: true, force: true });
  }
}

async function batching() {
  const work = await mkdtemp(join(tmpdir(), 'bench-batch-'));
  const bundle = join(work, 'bundle');
  await mkdir(bundle);
  // 2 ms per call, however many rows, one call at a time: the cost of a GPU kernel launch or a Python
  // worker's call (an async JS plugin would otherwise overlap its calls and need no batching).
  await writeFile(
    join(bundle, 'predict.mjs'),
    [
      'let busy = Promise.resolve();',
      'export function predictBatch(rows) {',
      '  const done = busy.then(() => new Promise((r) => setTimeout(r, 2)));',
      '  busy = done;',
      '  return done.then(() => rows.map((r) => ({ y: r.x })));',
      '}',
      '',
    ].join('\n'),
  );
  const body = JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP64', data: [1] }] });
  const start = async (extra: Record<string, string>) =>
    spawnServer(
      join(root, 'runtime/main.ts'),
      { ...(await echoRuntimeEnv(await mkdtemp(join(work, 'w-')), extra)), MODELSHIP_BUNDLE_URI: bundle, MODELSHIP_MODEL_NAME: 'fixed' },
      '/v2/health/ready',
    );
  const off = await start({});
  const on = await start({ MODELSHIP_BATCH_MAX_SIZE: '64', MODELSHIP_BATCH_MAX_LATENCY_MS: '2' });
  try {
    const run = (url: string, connections: number) =>
      load({ url: `${url}/v2/models/fixed/infer`, method: 'POST', body, seconds, connections });
    log('batching: warming up');
    await run(off.url, 2);
    await run(on.url, 64);
    log(`batching: off, 64 connections, ${seconds} s`);
    const off64 = await run(off.url, 64);
    log(`batching: on, 64 connections, ${seconds} s`);
    const on64 = await run(on.url, 64);
    log(`batching: off and on, 1 connection, ${seconds} s each`);
    const off1 = await run(off.url, 1);
    const on1 = await run(on.url, 1);
    for (const r of [off64, on64, off1, on1])
      if (r.errors || r.non2xx) throw new Error(`a batching run had ${r.errors} errors and ${r.non2xx} non-2xx`);
    return {
      plugin: 'predictBatch takes 2 ms per call, whatever the batch, one call at a time',
      settings: { maxBatchSize: 64, maxLatencyMs: 2 },
      connections64: { offRps: off64.rps, onRps: on64.rps, ratio: ratio(on64.rps, off64.rps), target: '>= 8' },
      connection1: { offP50Ms: off1.p50, onP50Ms: on1.p50, addedMs: on1.p50 - off1.p50, target: '<= maxLatencyMs (2)' },
    };
  } finally {
    await Promise.all([off.stop(), on.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

/** One hop of composition: the overhead an ensemble adds over calling its member directly. */
async function composition() {
  const work = await mkdtemp(join(tmpdir(), 'bench-comp-'));
  const ensembleDir = join(work, 'ensemble');
  await mkdir(ensembleDir, { recursive: true });
  await writeFile(join(ensembleDir, 'modelship.yaml'), 'name: hop\nformat: js\nentrypoint: hop.mjs\n');
  await writeFile(join(ensembleDir, 'hop.mjs'), 'export function predict(input, ctx) { return ctx.models.echo.predict(input); }\n');
  const member = await spawnServer(join(root, 'runtime/main.ts'), await echoRuntimeEnv(join(work, 'm')), '/v2/health/ready');
  const ensemble = await spawnServer(
    join(root, 'runtime/main.ts'),
    {
      ...(await echoRuntimeEnv(join(work, 'e'))),
      MODELSHIP_BUNDLE_URI: ensembleDir,
      MODELSHIP_MODEL_NAME: 'hop',
      MODELSHIP_DEPENDENCIES: JSON.stringify({ echo: { url: member.url, model: 'echo', modelServing: 'echo' } }),
    },
    '/v2/health/ready',
  );
  try {
    const body = JSON.stringify({ instances: [{ text: 'hello' }] });
    const direct = { url: `${member.url}/v1/models/echo:predict`, body };
    const hop = { url: `${ensemble.url}/v1/models/hop:predict`, body };
    log('composition: warming up, then the ensemble path at full load');
    await load({ ...direct, method: 'POST', seconds: 2 });
    await load({ ...hop, method: 'POST', seconds: 2 });
    const max = await load({ ...hop, method: 'POST', seconds });
    if (max.errors || max.non2xx) throw new Error(`ensemble load run had ${max.errors} errors and ${max.non2xx} non-2xx responses`);
    const rate = Math.max(50, Math.round(max.rps / 2));
    const bin = await vegeta();
    log(`composition: ${seconds} s each at ${rate} requests/s (vegeta): member direct, then through the ensemble`);
    const d = await steadyLoadOf(bin, direct, rate, seconds, 16);
    const h = await steadyLoadOf(bin, hop, rate, seconds, 16);
    for (const r of [d, h]) if (r.errors.length) throw new Error(`steady load errors: ${r.errors.join('; ')}`);
    return {
      ensembleMaxRps: max.rps,
      rate,
      loadGenerator: VEGETA,
      direct: { p50Ms: d.p50Ms, p99Ms: d.p99Ms, rps: d.rps },
      throughEnsemble: { p50Ms: h.p50Ms, p99Ms: h.p99Ms, rps: h.rps },
      addedPerHop: { p50Ms: Number((h.p50Ms - d.p50Ms).toFixed(2)), p99Ms: Number((h.p99Ms - d.p99Ms).toFixed(2)) },
      target: 'p50 added <= 0.5 ms',
    };
  } finally {
    await Promise.all([member.stop(), ensemble.stop()]);
    await rm(work, { recursive: true, force: true });
  }
}

const parts = new Set(
  (process.env.BENCH_PARTS ?? 'throughput,logging,coldstart,protocols,batching,composition').split(',').map((p) => p.trim()),
);
const result: Record<string, unknown> = { node: process.version, cpus: (await import('node:os')).cpus().length };
if (parts.has('throughput')) result.throughput = await throughput();
if (parts.has('protocols')) result.protocols = await protocols();
if (parts.has('batching')) result.batching = await batching();
if (parts.has('composition')) result.composition = await composition();
if (parts.has('logging') || parts.has('coldstart')) {
  // Kafka and MinIO come from the local environment; started here (and stopped after) if it is not up.
  let info = await readEnv();
  let startedHere = false;
  if (!info || !(await isHealthy(info))) {
    log('starting the local environment for Kafka and MinIO');
    info = await up();
    startedHere = true;
  }
  try {
    if (parts.has('logging')) result.logging = await logging(info);
    if (parts.has('coldstart')) result.coldStart = await coldStart(info);
  } finally {
    if (startedHere) await down(info);
  }
}
console.log(JSON.stringify(result, null, 2));
