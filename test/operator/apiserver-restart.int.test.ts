// The operator recovers by itself when the API server restarts. This file brings up an environment of its
// own (the shared one must not lose its API server under the other test files), restarts that
// kube-apiserver, and checks the controller keeps reconciling.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { eventually } from '../../env/wait.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG } from '../../operator/config.ts';
import { ModelServingController } from '../../operator/controller/controller.ts';
import { OperatorMetrics } from '../../operator/metrics.ts';
import { down, type EnvInfo, httpGet, up } from '../../env/env.ts';
import { startProcess, stopProcess, waitReady } from '../../env/process.ts';

const CRD_FILE = join(import.meta.dirname, '../../crds/modelship.dev_modelservings.yaml');
let info: EnvInfo;
let controller: ModelServingController;
let metrics: OperatorMetrics;

beforeAll(async () => {
  const file = join(await mkdtemp(join(tmpdir(), 'ms-env-')), 'env.json');
  process.env.MODELSHIP_ENV_FILE = file;
  try {
    // No real node: the machine has room for one, and the shared environment's is running.
    info = await up({ nodes: 1, progress: () => {}, realNode: false });
  } finally {
    delete process.env.MODELSHIP_ENV_FILE;
  }
  execFileSync(info.binaries.kubectl, ['--kubeconfig', info.kubeconfig, 'apply', '--server-side', '-f', CRD_FILE]);
  execFileSync(info.binaries.kubectl, [
    '--kubeconfig',
    info.kubeconfig,
    'wait',
    '--for=condition=Established',
    'crd/modelservings.modelship.dev',
    '--timeout=30s',
  ]);
}, 180_000);

afterAll(async () => {
  await controller?.stop();
  if (info) await down(info, join(tmpdir(), 'nonexistent-env.json'));
});

describe('API server restart', () => {
  it('the controller restarts its informers and keeps reconciling', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(info.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    await core.createNamespace({ body: { metadata: { name: 'restart' } } });
    metrics = new OperatorMetrics({ processMetrics: false });
    controller = new ModelServingController(kc, { ...DEFAULT_CONFIG, workers: 2 }, pino({ level: 'silent' }), metrics);
    await controller.start();
    const create = (name: string) =>
      custom.createNamespacedCustomObject({
        group: 'modelship.dev',
        version: 'v1alpha1',
        namespace: 'restart',
        plural: 'modelservings',
        body: { apiVersion: 'modelship.dev/v1alpha1', kind: 'ModelServing', metadata: { name }, spec: { bundle: { uri: 's3://b/k.zip' } } },
      });
    await create('before');
    await eventually(() => apps.readNamespacedDeployment({ name: 'before', namespace: 'restart' }), 'the first Deployment');

    // Restart kube-apiserver with the same command line (etcd keeps the data).
    const old = info.processes['kube-apiserver'];
    if (!old) throw new Error('no kube-apiserver in the environment');
    await stopProcess(old, 10_000);
    await new Promise((r) => setTimeout(r, 3000));
    const [command, ...args] = old.command;
    const restarted = startProcess({ name: 'kube-apiserver', command: command as string, args, logFile: old.logFile });
    info.processes['kube-apiserver'] = restarted;
    const tls = { ca: readFileSync(info.pki.ca), cert: readFileSync(info.pki.adminCert), key: readFileSync(info.pki.adminKey) };
    await waitReady(restarted, async () => (await httpGet(`${info.apiServer}/readyz`, tls)).status === 200, 90_000);

    await create('after');
    await eventually(
      () => apps.readNamespacedDeployment({ name: 'after', namespace: 'restart' }),
      'a Deployment made after the restart',
      90_000,
    );
    const restarts = (await metrics.informerRestarts.get()).values.reduce((a, v) => a + v.value, 0);
    expect(restarts).toBeGreaterThan(0);
  }, 240_000);
});
