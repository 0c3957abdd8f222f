// An operator watching every namespace, in an environment of this file's own (the shared one must not lose
// its API server under the other test files, nor have its namespaces reconciled by a second operator):
// it recovers by itself when the API server restarts, and it leaves alone a namespace that another
// operator claims.
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

  it('leaves a namespace claimed by another operator alone, and takes it once the claim is dropped', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(info.kubeconfig);
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const ms = (namespace: string, name: string) =>
      custom.createNamespacedCustomObject({
        group: 'modelship.dev',
        version: 'v1alpha1',
        namespace,
        plural: 'modelservings',
        body: { apiVersion: 'modelship.dev/v1alpha1', kind: 'ModelServing', metadata: { name }, spec: { bundle: { uri: 's3://b/k.zip' } } },
      });
    await core.createNamespace({ body: { metadata: { name: 'claimed', labels: { 'modelship.dev/operator': 'another-release' } } } });
    await core.createNamespace({ body: { metadata: { name: 'mine', labels: { 'modelship.dev/operator': DEFAULT_CONFIG.name } } } });
    await ms('claimed', 'theirs');
    await ms('mine', 'ours');
    // Its own claim is taken; by then the other namespace's ModelServing has been seen and left alone.
    await eventually(() => apps.readNamespacedDeployment({ name: 'ours', namespace: 'mine' }), 'the Deployment in its own namespace');
    await new Promise((r) => setTimeout(r, 2000));
    expect((await apps.listNamespacedDeployment({ namespace: 'claimed' })).items).toEqual([]);
    const theirs = (await custom.getNamespacedCustomObject({
      group: 'modelship.dev',
      version: 'v1alpha1',
      namespace: 'claimed',
      plural: 'modelservings',
      name: 'theirs',
    })) as { status?: unknown; metadata: { finalizers?: string[] } };
    expect(theirs.status).toBeUndefined();
    expect(theirs.metadata.finalizers ?? []).toEqual([]);
    // The claim is dropped: the namespace is everyone's again, and this operator takes it at once.
    execFileSync(info.binaries.kubectl, ['--kubeconfig', info.kubeconfig, 'label', 'namespace', 'claimed', 'modelship.dev/operator-']);
    await eventually(
      () => apps.readNamespacedDeployment({ name: 'theirs', namespace: 'claimed' }),
      'the Deployment once the claim is dropped',
      30_000,
    );
  }, 120_000);
});
