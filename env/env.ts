// The local environment: a real Kubernetes control plane (etcd, kube-apiserver, kube-controller-manager,
// kube-scheduler) with kwok nodes, a process node and a real node (kubelet + containerd in a network namespace
// of its own: real-node.ts), a MinIO server and a single-node Kafka broker in KRaft mode, all on loopback and on
// free ports, each with its own data directory and log file under one root
// directory; and a Python with the runtime image's base stack (not a process: the process node's
// runtime-python pods and the tests use it).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { binaries, ensureBuilt } from './build.ts';
import { minioClientFor } from '../runtime/bundle/fetch.ts';
import { CLUSTER_SERVICES, type EnvInfo, envFile, LOCAL_BUCKET, REPO_ROOT, writeEnv } from './info.ts';
import {
  etcdHealthy,
  FIRST_SERVICE_IP,
  startApiServer,
  startControllerManager,
  startEtcd,
  startKwok,
  startScheduler,
} from './control-plane.ts';
import { createReadOnlyUser, minioReadyUrl, startMinio } from './minio.ts';
import { createPki, type Pki } from './pki.ts';
import { type ProcessRecord, freePorts, isAlive, startProcess, stopProcess, waitReady } from './process.ts';
import { KAFKA_VERSION, KUBERNETES_VERSION } from './versions.ts';
import { createKwokNodes, kwokNodesReady, PROCESS_NODE_NAME, processNodeReady } from './nodes.ts';
import { kafkaMetadataAnswered, startKafka } from './kafka.ts';
import { ensureImages, IMAGES } from './images.ts';
import { applyAddons, addonsReady } from './addons.ts';
import { PYPI_PROXY_INDEX_PATH, pypiProxyHealthy, startPypiProxy } from './pypi-proxy.ts';
import { applyHostServices } from './services.ts';
import { applyLocalVolumes, LOCAL_STORAGE_CLASS } from './volumes.ts';
import { RUNTIME_UID } from '../runtime/contract.ts';

export { CLUSTER_SERVICES, type EnvInfo, envFile, readEnv, REPO_ROOT } from './info.ts';
export { FIRST_SERVICE_IP, SERVICE_CIDR } from './control-plane.ts';
import {
  CLUSTER_DNS_IP,
  containerdRoot,
  NETNS,
  NODE_IP,
  POD_CIDR,
  REAL_NODE_NAME,
  assertRealNodePossible,
  startRealNode,
  stopRealNode,
} from './real-node.ts';

export interface UpOptions {
  /** Number of kwok nodes (default 2). */
  nodes?: number;
  progress?: (line: string) => void;
  /** Root directory for data and logs (default: a new temporary directory). */
  root?: string;
  /** Start the real node (default: unless MODELSHIP_REAL_NODE=0). One per machine: its names are fixed. */
  realNode?: boolean;
}

function kubeconfigYaml(server: string, pki: Pki, user: { cert: string; key: string }, name: string): string {
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'modelship', cluster: { server, 'certificate-authority': pki.ca.cert } }],
    users: [{ name, user: { 'client-certificate': user.cert, 'client-key': user.key } }],
    contexts: [{ name: 'modelship', context: { cluster: 'modelship', user: name } }],
    'current-context': 'modelship',
  });
}

interface TlsProbe {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  insecure?: boolean;
}

/** GET a URL; resolves with status and body. Used for readiness probes only. */
export function httpGet(url: string, tls: TlsProbe = {}, timeoutMs = 3000): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const u = new URL(url);
    const req =
      u.protocol === 'https:'
        ? httpsRequest(u, {
            method: 'GET',
            timeout: timeoutMs,
            ...(tls.ca ? { ca: tls.ca } : {}),
            ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
            rejectUnauthorized: !tls.insecure,
          })
        : httpRequest(u, { method: 'GET', timeout: timeoutMs });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolvePromise({ status: res.statusCode ?? 0, body }));
    });
    req.end();
  });
}

/**
 * Builds what is missing, starts every component and waits until each is healthy. Writes `.modelship/env.json`.
 * On failure, stops whatever it had started and throws an error naming the component.
 */
export async function up(options: UpOptions = {}): Promise<EnvInfo> {
  const progress = options.progress ?? ((line: string) => process.stderr.write(`${line}\n`));
  const bins = await ensureBuilt({ progress });
  const started = Date.now();
  const root = options.root ?? (await mkdtemp(join(tmpdir(), 'modelship-env-')));
  await mkdir(root, { recursive: true });
  const dir = (name: string) => join(root, name);
  const logs = dir('logs');
  await mkdir(logs, { recursive: true });
  const processes: Record<string, ProcessRecord> = {};
  const [
    etcdClient,
    etcdPeer,
    apiPort,
    cmPort,
    schedPort,
    kwokPort,
    minioPort,
    minioConsole,
    kafkaPort,
    kafkaCtl,
    kafkaNodePort,
    pypiPort,
  ] = (await freePorts(12)) as [number, number, number, number, number, number, number, number, number, number, number, number];
  const apiServer = `https://127.0.0.1:${apiPort}`;
  const wantRealNode = options.realNode ?? process.env.MODELSHIP_REAL_NODE !== '0';
  // Before anything starts: a refusal here leaves another environment's node alone.
  if (wantRealNode) assertRealNodePossible();
  let realNodeRoot: string | undefined;

  try {
    progress('modelship env: starting etcd, MinIO and Kafka');
    const pki = await createPki(dir('pki'), FIRST_SERVICE_IP, { ip: NODE_IP, name: REAL_NODE_NAME });
    const kubeconfig = join(root, 'admin.kubeconfig');
    await writeFile(kubeconfig, kubeconfigYaml(apiServer, pki, pki.admin, 'admin'), { mode: 0o600 });
    const cmKubeconfig = join(root, 'controller-manager.kubeconfig');
    await writeFile(cmKubeconfig, kubeconfigYaml(apiServer, pki, pki.controllerManager, 'controller-manager'), {
      mode: 0o600,
    });
    const schedKubeconfig = join(root, 'scheduler.kubeconfig');
    await writeFile(schedKubeconfig, kubeconfigYaml(apiServer, pki, pki.scheduler, 'scheduler'), { mode: 0o600 });

    processes.etcd = await startEtcd({
      bin: bins.etcd,
      dataDir: dir('etcd'),
      logFile: join(logs, 'etcd.log'),
      clientPort: etcdClient,
      peerPort: etcdPeer,
    });
    const minio = await startMinio({
      bin: bins.minio,
      dataDir: dir('minio'),
      logFile: join(logs, 'minio.log'),
      port: minioPort,
      consolePort: minioConsole,
    });
    processes.minio = minio.process;
    const s3 = minio.s3;

    // The package index proxy: only the real node's pods install requirements through it (one per cache dir).
    const pypi = wantRealNode
      ? await startPypiProxy({ venv: bins.pypiProxyVenv, port: pypiPort, logFile: join(logs, 'pypi-proxy.log') })
      : undefined;
    if (pypi) processes['pypi-proxy'] = pypi.process;

    // Kafka (KRaft, one node acting as broker and controller) ------------------------------------------------
    // Pods reach it only with credentials (SASL PLAIN), as on a shared cluster: code without them cannot produce.
    const kafkaSasl = { mechanism: 'PLAIN' as const, username: 'modelship', password: randomBytes(18).toString('base64url') };
    processes.kafka = await startKafka({
      root,
      kafkaLibDir: bins.kafkaLibDir,
      port: kafkaPort,
      controllerPort: kafkaCtl,
      ...(wantRealNode ? { node: { port: kafkaNodePort, advertise: `${NODE_IP}:${kafkaNodePort}`, sasl: kafkaSasl } } : {}),
    });

    await waitReady(processes.etcd, async () => etcdHealthy((await httpGet(`http://127.0.0.1:${etcdClient}/health`)).body), 30_000);
    progress('modelship env: starting kube-apiserver');
    processes['kube-apiserver'] = await startApiServer({
      bin: bins.kubeApiserver,
      dataDir: dir('kube-apiserver'),
      logFile: join(logs, 'kube-apiserver.log'),
      port: apiPort,
      etcdUrl: `http://127.0.0.1:${etcdClient}`,
      // The `kubernetes` Service's endpoint: the real node's pods reach the API server through its relay.
      advertiseAddress: wantRealNode ? NODE_IP : '127.0.0.1',
      pki,
    });
    const adminTls = {
      ca: await readFile(pki.ca.cert),
      cert: await readFile(pki.admin.cert),
      key: await readFile(pki.admin.key),
    };
    await waitReady(processes['kube-apiserver'], async () => (await httpGet(`${apiServer}/readyz`, adminTls)).status === 200, 90_000);

    // controller-manager, scheduler, kwok -----------------------------------------------------------------------
    progress('modelship env: starting kube-controller-manager, kube-scheduler and kwok');
    processes['kube-controller-manager'] = await startControllerManager({
      bin: bins.kubeControllerManager,
      dataDir: dir('kube-controller-manager'),
      logFile: join(logs, 'kube-controller-manager.log'),
      port: cmPort,
      kubeconfig: cmKubeconfig,
      pki,
    });
    processes['kube-scheduler'] = await startScheduler({
      bin: bins.kubeScheduler,
      dataDir: dir('kube-scheduler'),
      logFile: join(logs, 'kube-scheduler.log'),
      port: schedPort,
      kubeconfig: schedKubeconfig,
    });
    processes.kwok = startKwok({ bin: bins.kwok, logFile: join(logs, 'kwok.log'), port: kwokPort, kubeconfig });

    const insecure = { insecure: true };
    await Promise.all([
      waitReady(
        processes['kube-controller-manager'],
        async () => (await httpGet(`https://127.0.0.1:${cmPort}/healthz`, insecure)).status === 200,
        60_000,
        'healthy',
      ),
      waitReady(
        processes['kube-scheduler'],
        async () => (await httpGet(`https://127.0.0.1:${schedPort}/healthz`, insecure)).status === 200,
        60_000,
        'healthy',
      ),
      waitReady(processes.minio, async () => (await httpGet(minioReadyUrl(s3.endpoint))).status === 200, 60_000),
      waitReady(processes.kafka, () => kafkaMetadataAnswered([`127.0.0.1:${kafkaPort}`]), 90_000, 'answering metadata'),
    ]);
    // The bucket `modelship push`, `deploy` and the examples use (s3://models/…), as an object store set up for
    // a team has one.
    await minioClientFor(s3).makeBucket(LOCAL_BUCKET, s3.region);
    // Keys for pods that read and never write: what the demo and the CLI's local profile put in the cluster.
    s3.readOnly = await createReadOnlyUser(bins.minioAdmin, s3);

    const nodeNames = await createKwokNodes(kubeconfig, options.nodes ?? 2);
    await waitReady(processes.kwok, () => kwokNodesReady(kubeconfig, nodeNames), 60_000, 'marking its nodes Ready');

    // The process node: real runtime processes for pods that tolerate its taint ---------------------------------
    processes['process-node'] = startProcess({
      name: 'process-node',
      command: process.execPath,
      args: [
        join(REPO_ROOT, 'env/process-node-main.ts'),
        kubeconfig,
        PROCESS_NODE_NAME,
        dir('process-node'),
        '--python',
        bins.python,
        '--uv',
        bins.uv,
      ],
      logFile: join(logs, 'process-node.log'),
    });
    await waitReady(processes['process-node'], () => processNodeReady(kubeconfig), 30_000, 'marking its node Ready');

    // The real node ----------------------------------------------------------------------------------------------
    let realNode: EnvInfo['realNode'];
    if (wantRealNode) {
      const nodeServer = `https://${NODE_IP}:${apiPort}`;
      const kubeletKubeconfig = join(root, 'kubelet.kubeconfig');
      await writeFile(kubeletKubeconfig, kubeconfigYaml(nodeServer, pki, pki.kubelet, `system:node:${REAL_NODE_NAME}`), { mode: 0o600 });
      const kubeProxyKubeconfig = join(root, 'kube-proxy.kubeconfig');
      await writeFile(kubeProxyKubeconfig, kubeconfigYaml(nodeServer, pki, pki.kubeProxy, 'kube-proxy'), { mode: 0o600 });
      realNodeRoot = join(root, 'real-node');
      const node = await startRealNode({
        root,
        logs,
        bins,
        caCert: pki.ca.cert,
        kubeletKubeconfig,
        kubeProxyKubeconfig,
        relayed: [
          { name: 'apiserver', nodePort: apiPort, hostPort: apiPort },
          { name: 'minio', nodePort: minioPort, hostPort: minioPort },
          { name: 'kafka', nodePort: kafkaNodePort, hostPort: kafkaNodePort },
          ...(pypi ? [{ name: 'pypi', nodePort: pypiPort, hostPort: pypiPort }] : []),
        ],
        progress,
      });
      Object.assign(processes, node.processes);
      const images = await ensureImages({
        bins,
        ctr: bins.ctr,
        containerdSocket: node.containerdSocket,
        containerdRoot: containerdRoot(),
        logFile: join(logs, 'images.log'),
        progress,
      });
      await waitReady(
        processes.kubelet as ProcessRecord,
        () => processNodeReady(kubeconfig, REAL_NODE_NAME),
        60_000,
        'marking its node Ready',
      );
      progress('modelship env: starting CoreDNS and metrics-server on the real node');
      await applyAddons(bins.kubectl, kubeconfig);
      const { minio, kafka, pypi: index } = CLUSTER_SERVICES;
      applyHostServices(bins.kubectl, kubeconfig, [
        { ...minio, address: NODE_IP, targetPort: minioPort },
        { ...kafka, address: NODE_IP, targetPort: kafkaNodePort },
        { ...index, address: NODE_IP, targetPort: pypiPort },
      ]);
      await applyLocalVolumes(bins.kubectl, kubeconfig, { dir: join(root, 'volumes'), node: REAL_NODE_NAME, uid: RUNTIME_UID });
      await waitReady(processes.kubelet as ProcessRecord, () => addonsReady(kubeconfig), 120_000, 'running CoreDNS and metrics-server');
      realNode = {
        name: REAL_NODE_NAME,
        netns: NETNS,
        nodeIp: NODE_IP,
        podCidr: POD_CIDR,
        clusterDns: CLUSTER_DNS_IP,
        containerdSocket: node.containerdSocket,
        s3Endpoint: `http://${minio.name}.${minio.name}.svc:${minio.port}`,
        kafkaBootstrap: `${kafka.name}.${kafka.name}.svc:${kafka.port}`,
        kafkaSasl,
        pythonIndexUrl: `http://${index.name}.${index.name}.svc${PYPI_PROXY_INDEX_PATH}`,
        storageClass: LOCAL_STORAGE_CLASS,
        images: Object.fromEntries(Object.entries(IMAGES).map(([k, name]) => [name, images[k as keyof typeof IMAGES]])),
      };
    }

    const info: EnvInfo = {
      schemaVersion: 1,
      startedAt: new Date().toISOString(),
      root,
      kubernetesVersion: KUBERNETES_VERSION,
      kubeconfig,
      apiServer,
      pki: { ca: pki.ca.cert, adminCert: pki.admin.cert, adminKey: pki.admin.key },
      s3,
      kafka: { bootstrapServers: [`127.0.0.1:${kafkaPort}`], version: KAFKA_VERSION },
      nodes: nodeNames,
      processNode: PROCESS_NODE_NAME,
      ...(realNode ? { realNode } : {}),
      ...(pypi ? { pypi: { indexUrl: pypi.url } } : {}),
      binaries: bins,
      processes,
    };
    await writeEnv(info);
    progress(`modelship env: ready in ${((Date.now() - started) / 1000).toFixed(1)} s (kubeconfig ${kubeconfig})`);
    return info;
  } catch (err) {
    await Promise.all(Object.values(processes).map((p) => stopProcess(p, 5000)));
    if (realNodeRoot) stopRealNode(realNodeRoot);
    throw err;
  }
}

export interface ComponentHealth {
  name: string;
  /** Absent for a component that is not a process (python). */
  pid?: number;
  running?: boolean;
  healthy: boolean;
  detail: string;
}

const execFileAsync = promisify(execFile);

/** The environment's Python: its interpreter answers and imports the base stack. */
async function pythonHealth(info: EnvInfo): Promise<ComponentHealth> {
  // An env.json written before the python component existed has no such binary.
  const python = info.binaries.python as string | undefined;
  if (!python) return { name: 'python', healthy: false, detail: 'not in env.json (started before it was added): env:down, then env:up' };
  try {
    const script = 'import sys, sklearn; print(sys.version.split()[0], sklearn.__version__)';
    const { stdout } = await execFileAsync(python, ['-c', script], { timeout: 30_000 });
    const [version, sklearn] = stdout.trim().split(' ');
    return { name: 'python', healthy: true, detail: `Python ${version}, scikit-learn ${sklearn} (${python})` };
  } catch (err) {
    const e = err as Error & { stderr?: string };
    return { name: 'python', healthy: false, detail: (e.stderr?.trim().split('\n').at(-1) || e.message).slice(0, 300) };
  }
}

/** Health of every component of the environment described by `info`. */
export async function status(info: EnvInfo): Promise<ComponentHealth[]> {
  const adminTls = {
    ca: await readFile(info.pki.ca),
    cert: await readFile(info.pki.adminCert),
    key: await readFile(info.pki.adminKey),
  };
  const checks: Record<string, () => Promise<string>> = {
    etcd: async () => {
      const url = info.processes.etcd?.command.find((a) => a.startsWith('--listen-client-urls='))?.split('=')[1];
      const r = await httpGet(`${url}/health`);
      if (!r.body.includes('"health":"true"')) throw new Error(r.body);
      return 'healthy';
    },
    'kube-apiserver': async () => {
      const r = await httpGet(`${info.apiServer}/readyz`, adminTls);
      if (r.status !== 200) throw new Error(`/readyz ${r.status}`);
      return '/readyz ok';
    },
    'kube-controller-manager': async () => portHealthz(info.processes['kube-controller-manager']),
    'kube-scheduler': async () => portHealthz(info.processes['kube-scheduler']),
    kwok: async () => {
      if (!(await kwokNodesReady(info.kubeconfig, info.nodes))) throw new Error('nodes not Ready');
      return `${info.nodes.length} nodes Ready`;
    },
    minio: async () => {
      const r = await httpGet(minioReadyUrl(info.s3.endpoint));
      if (r.status !== 200) throw new Error(`health ${r.status}`);
      return `ready at ${info.s3.endpoint}`;
    },
    'process-node': async () => {
      if (!(await processNodeReady(info.kubeconfig))) throw new Error('node not Ready');
      return `${info.processNode} Ready`;
    },
    kubelet: async () => {
      if (!(await processNodeReady(info.kubeconfig, REAL_NODE_NAME))) throw new Error('node not Ready');
      if (!(await addonsReady(info.kubeconfig))) throw new Error('CoreDNS or metrics-server not ready');
      return `${REAL_NODE_NAME} Ready (${info.realNode?.nodeIp}), CoreDNS and metrics-server ready`;
    },
    'pypi-proxy': async () => {
      if (!info.pypi || !(await pypiProxyHealthy(info.pypi.indexUrl))) throw new Error('the index does not answer');
      return `index at ${info.pypi.indexUrl} (pods: ${info.realNode?.pythonIndexUrl})`;
    },
    kafka: async () => {
      if (!(await kafkaMetadataAnswered(info.kafka.bootstrapServers))) throw new Error('no metadata');
      return `metadata answered at ${info.kafka.bootstrapServers.join(',')}`;
    },
  };
  const processes = Promise.all(
    Object.entries(info.processes).map(async ([name, rec]): Promise<ComponentHealth> => {
      const running = isAlive(rec);
      if (!running) return { name, pid: rec.pid, running, healthy: false, detail: 'not running' };
      try {
        const detail = (await checks[name]?.()) ?? 'running';
        return { name, pid: rec.pid, running, healthy: true, detail };
      } catch (err) {
        return { name, pid: rec.pid, running, healthy: false, detail: (err as Error).message };
      }
    }),
  );
  const [rows, python] = await Promise.all([processes, pythonHealth(info)]);
  return [...rows, python];
}

async function portHealthz(rec: ProcessRecord | undefined): Promise<string> {
  const port = rec?.command.find((a) => a.startsWith('--secure-port='))?.split('=')[1];
  const r = await httpGet(`https://127.0.0.1:${port}/healthz`, { insecure: true });
  if (r.status !== 200) throw new Error(`/healthz ${r.status}`);
  return '/healthz ok';
}

export async function isHealthy(info: EnvInfo): Promise<boolean> {
  return (await status(info)).every((c) => c.healthy);
}

/**
 * Stops exactly the processes the environment started (by PID and start time), in reverse order of start,
 * then removes its data directory and `.modelship/env.json`.
 */
export async function down(info: EnvInfo, file = envFile()): Promise<void> {
  const order = [
    'kube-proxy',
    'kubelet',
    'containerd',
    'relay-node',
    'relay-host',
    'process-node',
    'kwok',
    'kube-scheduler',
    'kube-controller-manager',
    'kube-apiserver',
    'kafka',
    'pypi-proxy',
    'minio',
    'etcd',
  ];
  const names = [...order.filter((n) => info.processes[n]), ...Object.keys(info.processes).filter((n) => !order.includes(n))];
  for (const name of names) {
    const rec = info.processes[name];
    if (rec) await stopProcess(rec, name === 'kafka' ? 20_000 : 10_000);
  }
  if (info.realNode) stopRealNode(join(info.root, 'real-node'));
  if (info.root.includes('modelship-env-') || existsSync(join(info.root, 'pki'))) {
    await rm(info.root, { recursive: true, force: true });
  }
  await rm(file, { force: true });
}

/**
 * Gives an environment started before the read-only MinIO user existed (a demo left running across an upgrade)
 * that user, and records it. What the demo and the tests rely on, whoever started the environment.
 */
export async function ensureReadOnlyUser(info: EnvInfo): Promise<EnvInfo> {
  if (info.s3.readOnly) return info;
  await ensureBuilt({ only: ['minio-admin'] });
  info.s3.readOnly = await createReadOnlyUser(binaries().minioAdmin, info.s3);
  await writeEnv(info);
  return info;
}
