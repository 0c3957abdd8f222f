// `npm run bench:operator`: the operator against a plain client, side by side on the local environment.
//   converge   time from the first of N ModelServings created until every one has its Deployment and Service
//              ÷ time a plain client (same concurrency as the operator's workers) takes to create the same
//              Deployments and Services directly (target ≤ 1.3)
//   idle       API writes by the operator during an idle period once every status has settled (target 0)
//   rss        the operator process's peak resident memory (target < 200 MB)
// It also prints where the time goes: CPU seconds of the API server, etcd, the controller manager, this
// process and the operator in each phase, the operator's writes by kind, and the time per API write.
//   floor      the same ratio for an operator that cost nothing: (time to create the N ModelServings alone +
//              the plain client's time) ÷ the plain client's time. Where the API server is the bottleneck (a
//              small machine), no operator can beat it: the ModelServings are writes the plain client never makes.
// Each phase starts on a clean cluster (the previous phase's namespace is collected first): Service creation
// costs the API server more with every Service that exists (its IP allocator lists them all), so a phase run
// beside the previous one's 1000 Services would be measured on a heavier cluster.
// The phases run BENCH_ROUNDS times (default 3) and the ratios are medians: on a 2-core machine one run of the
// plain client alone varies by a third with what the API server and etcd are still doing.
// BENCH_COUNT (default 1000), BENCH_IDLE_SECONDS (default 120), BENCH_NODE_OPTIONS (default: the chart's
// nodeOptions). Replicas are 0 on both sides, so the comparison measures the controllers' own work, not the
// scheduling of pods.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubernetesObject, Watch } from '@kubernetes/client-node';
import type { ModelServing } from '../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG } from '../operator/config.ts';
import { desiredDeployment } from '../operator/controller/desired/deployment.ts';
import { desiredService } from '../operator/controller/desired/service.ts';
import { PooledKubeConfig } from '../operator/kube/config.ts';
import { down, isHealthy, readEnv, up } from '../env/env.ts';
import { freePort } from '../env/process.ts';
import { parse as parseYaml } from 'yaml';
import { cpuMs, median, ratio } from './lib.ts';

const root = join(import.meta.dirname, '..');
const chartNodeOptions = String(
  (parseYaml(readFileSync(join(root, 'charts/modelship/values.yaml'), 'utf8')) as { nodeOptions?: string }).nodeOptions ?? '',
);
const count = Number(process.env.BENCH_COUNT ?? 1000);
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 120);
const rounds = Math.max(1, Math.trunc(Number(process.env.BENCH_ROUNDS ?? 3)) || 1);
const workers = DEFAULT_CONFIG.workers;
const log = (m: string) => process.stderr.write(`bench: ${m}\n`);

async function pool<T>(items: T[], concurrency: number, fn: (t: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next++] as T;
        await fn(item);
      }
    }),
  );
}

function model(name: string, namespace: string): ModelServing {
  return {
    apiVersion: 'modelship.dev/v1alpha1',
    kind: 'ModelServing',
    metadata: { name, namespace, uid: 'bench' },
    spec: { bundle: { uri: `s3://bench/${name}.zip` }, replicas: 0 },
  };
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024);
}

/** The operator's API writes so far, by verb and kind (from its own metrics). */
async function writesByKind(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^modelship_operator_writes_total\{verb="([^"]*)",kind="([^"]*)"\} (\d+)/gm))
    out[`${m[1]} ${m[2]}`] = Number(m[3]);
  return out;
}

let info = await readEnv();
let startedHere = false;
if (!info || !(await isHealthy(info))) {
  info = await up();
  startedHere = true;
}
// The plain client gets the same connection reuse as the operator: a fair baseline.
const kc = new PooledKubeConfig();
kc.loadFromFile(info.kubeconfig);
const apps = kc.makeApiClient(AppsV1Api);
const core = kc.makeApiClient(CoreV1Api);
const custom = kc.makeApiClient(CustomObjectsApi);
const kubectl = (...args: string[]) =>
  execFileSync(info.binaries.kubectl, ['--kubeconfig', info.kubeconfig, ...args], { encoding: 'utf8' });
const suffix = Date.now().toString(36);
const ns = (phase: string, round: number) => `bench-${phase}-${round}-${suffix}`;
const roundNumbers = Array.from({ length: rounds }, (_, r) => r);
const namespaces = roundNumbers.flatMap((r) => ['plain', 'floor', 'operator'].map((phase) => ns(phase, r)));
const gone = (name: string) =>
  core.readNamespace({ name }).then(
    () => false,
    (err: { code?: number }) => err.code === 404,
  );
/** Deletes a namespace and waits (bounded) until its objects are collected, so the next phase does not measure that. */
async function collect(name: string): Promise<void> {
  await core.deleteNamespace({ name }).catch(() => {});
  for (let i = 0; i < 240; i++) {
    if (await gone(name)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  log(`namespace ${name} still being deleted after 120 s: the next phase runs beside its collection`);
}
const sumOf = (o: Record<string, number>) => Object.values(o).reduce((a, b) => a + b, 0);
let operator: ChildProcess | undefined;
try {
  kubectl(
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=bench',
    '-f',
    join(root, 'crds/modelship.dev_modelservings.yaml'),
  );
  for (const name of namespaces) await core.createNamespace({ body: { metadata: { name } } });
  const names = Array.from({ length: count }, (_, i) => `m${i}`);

  // CPU seconds of each process of the control plane (and of this bench, the plain client) per phase:
  // where the time goes.
  const watched: Record<string, number> = { bench: process.pid };
  for (const name of ['kube-apiserver', 'etcd', 'kube-controller-manager']) {
    const pid = info.processes[name]?.pid;
    if (pid) watched[name] = pid;
  }
  const cpu = () => Object.fromEntries(Object.entries(watched).map(([k, pid]) => [k, cpuMs(pid)]));
  const cpuSince = (start: Record<string, number>) =>
    Object.fromEntries(Object.entries(cpu()).map(([k, v]) => [k, Math.round((v - (start[k] ?? 0)) / 100) / 10]));

  // One operator for all rounds, watching the operator phase's namespace of each.
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  operator = spawn(process.execPath, [join(root, 'operator/main.ts')], {
    env: {
      ...process.env,
      // As the chart runs it: the heap bounds of its values.yaml.
      NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? chartNodeOptions,
      KUBECONFIG: info.kubeconfig,
      MODELSHIP_LEADER_ELECTION: 'false',
      MODELSHIP_WATCH_NAMESPACES: roundNumbers.map((r) => ns('operator', r)).join(','),
      MODELSHIP_OPERATOR_METRICS_PORT: String(port),
      MODELSHIP_OPERATOR_BIND: '127.0.0.1',
      MODELSHIP_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  watched.operator = operator.pid as number;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }

  const createModels = (namespace: string) =>
    pool(names, workers, (n) =>
      custom.createNamespacedCustomObject({
        group: 'modelship.dev',
        version: 'v1alpha1',
        namespace,
        plural: 'modelservings',
        body: model(n, namespace),
      }),
    );
  // Convergence is watched, not polled: listing 1000 Deployments every 100 ms would load the API server
  // more than the operator does.
  const watches: AbortController[] = [];
  const watchUntil = async (path: string, done: (o: KubernetesObject & { status?: any }) => boolean): Promise<number> => {
    const seen = new Set<string>();
    return new Promise<number>((resolve, reject) => {
      void new Watch(kc)
        .watch(
          path,
          {},
          (type, obj: KubernetesObject & { status?: any }) => {
            const name = obj.metadata?.name ?? '';
            if (type !== 'DELETED' && done(obj)) seen.add(name);
            if (seen.size >= count) resolve(performance.now());
          },
          (err) => {
            // The server may also end a watch without an error (its timeout): that is no convergence either.
            if (seen.size < count) reject(err ?? new Error(`watch on ${path} ended with ${seen.size}/${count} seen`));
          },
        )
        .then((c) => watches.push(c), reject);
    });
  };
  const any = () => true;
  // Settled: the status says Ready and the rollout complete, i.e. the operator has seen the controller
  // manager's last word on every Deployment (which trails: it writes at its own client rate limit).
  const condition = (o: { status?: any }, type: string) =>
    (o.status?.conditions ?? []).find((c: { type: string }) => c.type === type)?.status as string | undefined;
  const isSettled = (o: { status?: any }) => condition(o, 'Ready') === 'True' && condition(o, 'Progressing') === 'False';

  interface Round {
    plainClientMs: number;
    modelServingsAloneMs: number;
    operatorConvergeMs: number;
    operatorSettledMs: number;
    ratio: number;
    floorRatio: number;
    cpuSeconds: { plain: Record<string, number>; operator: Record<string, number> };
    operatorWritesToConverge: Record<string, number>;
    perWriteRatio: number;
  }
  const results: Round[] = [];
  let memory: Record<string, number> = {};
  let idleWrites: Record<string, number> = {};
  for (const round of roundNumbers) {
    const plainNs = ns('plain', round);
    log(`round ${round + 1}/${rounds}: plain client, ${count} Deployments + Services, ${workers} at a time`);
    const plainCpu0 = cpu();
    const p0 = performance.now();
    await pool(names, workers, async (n) => {
      const ms = model(n, plainNs);
      const { ownerReferences: _o, ...dMeta } = desiredDeployment(ms, DEFAULT_CONFIG).metadata ?? {};
      const { ownerReferences: _s, ...sMeta } = desiredService(ms).metadata ?? {};
      await apps.createNamespacedDeployment({ namespace: plainNs, body: { ...desiredDeployment(ms, DEFAULT_CONFIG), metadata: dMeta } });
      await core.createNamespacedService({ namespace: plainNs, body: { ...desiredService(ms), metadata: sMeta } });
    });
    const plainMs = performance.now() - p0;
    const plainCpuS = cpuSince(plainCpu0);
    await collect(plainNs);

    log(`round ${round + 1}/${rounds}: floor, ${count} ModelServings alone (no operator watches them)`);
    const f0 = performance.now();
    await createModels(ns('floor', round));
    const modelsAloneMs = performance.now() - f0;
    await collect(ns('floor', round));

    const opNs = ns('operator', round);
    const converge = Promise.all([
      watchUntil(`/apis/apps/v1/namespaces/${opNs}/deployments`, any),
      watchUntil(`/api/v1/namespaces/${opNs}/services`, any),
    ]).then((t) => Math.max(...t));
    const settled = watchUntil(`/apis/modelship.dev/v1alpha1/namespaces/${opNs}/modelservings`, isSettled);
    await new Promise((r) => setTimeout(r, 500));
    log(`round ${round + 1}/${rounds}: operator, ${count} ModelServings`);
    const writes0 = await writesByKind(url);
    const opCpu0 = cpu();
    const o0 = performance.now();
    await createModels(opNs);
    const converged = (await converge) - o0;
    const convergeCpuS = cpuSince(opCpu0);
    const writes = Object.fromEntries(Object.entries(await writesByKind(url)).map(([k, v]) => [k, v - (writes0[k] ?? 0)]));
    const memText = await (await fetch(`${url}/metrics`)).text();
    memory = Object.fromEntries(
      ['process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_heap_size_total_bytes', 'nodejs_external_memory_bytes'].map(
        (k) => [k.replace(/_bytes$/, 'Mb'), Math.round(Number(new RegExp(`^${k} (\\S+)`, 'm').exec(memText)?.[1] ?? 0) / 2 ** 20)],
      ),
    );
    const settledMs = (await settled) - o0;
    for (const w of watches.splice(0)) w.abort();
    if (round === rounds - 1) {
      log(`settled; idle for ${idleSeconds} s`);
      await new Promise((r) => setTimeout(r, 3000));
      const before = await writesByKind(url);
      await new Promise((r) => setTimeout(r, idleSeconds * 1000));
      idleWrites = Object.fromEntries(
        Object.entries(await writesByKind(url))
          .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
          .filter(([, v]) => v > 0),
      );
    }
    results.push({
      plainClientMs: Math.round(plainMs),
      modelServingsAloneMs: Math.round(modelsAloneMs),
      operatorConvergeMs: Math.round(converged),
      operatorSettledMs: Math.round(settledMs),
      ratio: ratio(converged, plainMs),
      floorRatio: ratio(modelsAloneMs + plainMs, plainMs),
      cpuSeconds: { plain: plainCpuS, operator: convergeCpuS },
      operatorWritesToConverge: writes,
      // The operator's side writes more than the plain client's 2 per model: the ModelServing itself (made by
      // this bench), its status and an event. Time per write, operator side ÷ plain side:
      perWriteRatio: ratio(converged / (count + sumOf(writes)), plainMs / (2 * count)),
    });
    await collect(opNs);
  }
  const med = (f: (r: Round) => number) => median(results.map(f));
  const result = {
    count,
    workers,
    rounds,
    ratio: med((r) => r.ratio),
    target: '<= 1.3',
    floorRatio: med((r) => r.floorRatio),
    plainClientMs: med((r) => r.plainClientMs),
    operatorConvergeMs: med((r) => r.operatorConvergeMs),
    perWriteRatio: med((r) => r.perWriteRatio),
    perRound: results,
    operatorMemoryAtConvergence: memory,
    idle: { seconds: idleSeconds, writes: sumOf(idleWrites), byKind: idleWrites, target: 0 },
    operatorPeakRssMb: rssMb(operator.pid as number),
    rssTarget: '< 200',
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  operator?.kill('SIGTERM');
  // Wait (bounded) for the garbage collection of their objects, so that a next run does not measure it.
  for (const name of namespaces) await collect(name);
  if (startedHere) await down(info);
}
