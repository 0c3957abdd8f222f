// `npm run bench:operator`: the operator against a plain client, side by side on the local environment.
//   converge   time from the first of N ModelServings created until every one has its Deployment and Service
//              ÷ time a plain client (same concurrency as the operator's workers) takes to create the same
//              Deployments and Services directly (target ≤ 1.3)
//   idle       API writes by the operator during an idle period after convergence (target 0)
//   rss        the operator process's peak resident memory (target < 200 MB)
// BENCH_COUNT (default 1000), BENCH_IDLE_SECONDS (default 120). Replicas are 0 on both sides, so the
// comparison measures the controllers' own work, not the scheduling of pods.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import type { ModelServing } from '../crds/modelserving.schema.ts';
import { DEFAULT_CONFIG } from '../operator/config.ts';
import { desiredDeployment } from '../operator/controller/desired/deployment.ts';
import { desiredService } from '../operator/controller/desired/service.ts';
import { PooledKubeConfig } from '../operator/kube/config.ts';
import { down, isHealthy, readEnv, up } from '../test/env/env.ts';
import { freePort } from '../test/env/process.ts';
import { ratio } from './lib.ts';

const root = join(import.meta.dirname, '..');
const count = Number(process.env.BENCH_COUNT ?? 1000);
const idleSeconds = Number(process.env.BENCH_IDLE_SECONDS ?? 120);
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

async function writesOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return [...text.matchAll(/^modelship_operator_writes_total\{[^}]*\} (\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
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
const plainNs = `bench-plain-${suffix}`;
const opNs = `bench-operator-${suffix}`;
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
  await core.createNamespace({ body: { metadata: { name: plainNs } } });
  await core.createNamespace({ body: { metadata: { name: opNs } } });
  const names = Array.from({ length: count }, (_, i) => `m${i}`);

  log(`plain client: ${count} Deployments + Services, ${workers} at a time`);
  const p0 = performance.now();
  await pool(names, workers, async (n) => {
    const ms = model(n, plainNs);
    const { ownerReferences: _o, ...dMeta } = desiredDeployment(ms, DEFAULT_CONFIG).metadata ?? {};
    const { ownerReferences: _s, ...sMeta } = desiredService(ms).metadata ?? {};
    await apps.createNamespacedDeployment({ namespace: plainNs, body: { ...desiredDeployment(ms, DEFAULT_CONFIG), metadata: dMeta } });
    await core.createNamespacedService({ namespace: plainNs, body: { ...desiredService(ms), metadata: sMeta } });
  });
  const plainMs = performance.now() - p0;

  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  operator = spawn(process.execPath, [join(root, 'operator/main.ts')], {
    env: {
      ...process.env,
      // As the chart runs it: a heap bound sized for the operator's caches.
      NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? '',
      KUBECONFIG: info.kubeconfig,
      MODELSHIP_LEADER_ELECTION: 'false',
      MODELSHIP_WATCH_NAMESPACES: opNs,
      MODELSHIP_OPERATOR_METRICS_PORT: String(port),
      MODELSHIP_OPERATOR_BIND: '127.0.0.1',
      MODELSHIP_LOG_LEVEL: 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
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
  log(`operator: ${count} ModelServings`);
  const o0 = performance.now();
  await pool(names, workers, (n) =>
    custom.createNamespacedCustomObject({
      group: 'modelship.dev',
      version: 'v1alpha1',
      namespace: opNs,
      plural: 'modelservings',
      body: model(n, opNs),
    }),
  );
  let converged = 0;
  for (;;) {
    const [d, s] = await Promise.all([apps.listNamespacedDeployment({ namespace: opNs }), core.listNamespacedService({ namespace: opNs })]);
    if (d.items.length >= count && s.items.length >= count) {
      converged = performance.now() - o0;
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  let statuses = 0;
  for (;;) {
    const list = (await custom.listNamespacedCustomObject({
      group: 'modelship.dev',
      version: 'v1alpha1',
      namespace: opNs,
      plural: 'modelservings',
    })) as {
      items: ModelServing[];
    };
    if (list.items.filter((m) => m.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length >= count) {
      statuses = performance.now() - o0;
      break;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  log(`converged; idle for ${idleSeconds} s`);
  await new Promise((r) => setTimeout(r, 3000));
  const before = await writesOf(url);
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const idleWrites = (await writesOf(url)) - before;
  const result = {
    count,
    workers,
    plainClientMs: Math.round(plainMs),
    operatorConvergeMs: Math.round(converged),
    ratio: ratio(converged, plainMs),
    target: '<= 1.3',
    operatorAllReadyMs: Math.round(statuses),
    idle: { seconds: idleSeconds, writes: idleWrites, target: 0 },
    operatorPeakRssMb: rssMb(operator.pid as number),
    rssTarget: '< 200',
  };
  console.log(JSON.stringify(result, null, 2));
} finally {
  operator?.kill('SIGTERM');
  await core.deleteNamespace({ name: plainNs }).catch(() => {});
  await core.deleteNamespace({ name: opNs }).catch(() => {});
  if (startedHere) await down(info);
}
