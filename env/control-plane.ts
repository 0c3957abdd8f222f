// The control plane of the local environment, one component a function: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (the fake nodes' agent). Each listens on 127.0.0.1 only, on
// the port it is given, with its data and log under the environment's root; env.ts starts them in order and
// waits on each one's health.
import { mkdir } from 'node:fs/promises';
import type { Pki } from './pki.ts';
import { type ProcessRecord, startProcess } from './process.ts';

export const SERVICE_CIDR = '10.96.0.0/16';
export const FIRST_SERVICE_IP = '10.96.0.1';

interface Common {
  bin: string;
  logFile: string;
  dataDir: string;
  port: number;
}

export async function startEtcd(o: Omit<Common, 'port'> & { clientPort: number; peerPort: number }): Promise<ProcessRecord> {
  await mkdir(o.dataDir, { recursive: true });
  return startProcess({
    name: 'etcd',
    command: o.bin,
    args: [
      '--name=modelship',
      `--data-dir=${o.dataDir}`,
      `--listen-client-urls=http://127.0.0.1:${o.clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${o.clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${o.peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${o.peerPort}`,
      `--initial-cluster=modelship=http://127.0.0.1:${o.peerPort}`,
      '--log-level=warn',
      // Test data is disposable: skip fsync so the control plane is not bound by disk latency.
      '--unsafe-no-fsync',
    ],
    logFile: o.logFile,
    dataDir: o.dataDir,
  });
}

/** etcd's own health answer. */
export const etcdHealthy = (body: string) => body.includes('"health":"true"');

export async function startApiServer(o: Common & { etcdUrl: string; advertiseAddress: string; pki: Pki }): Promise<ProcessRecord> {
  await mkdir(o.dataDir, { recursive: true });
  return startProcess({
    name: 'kube-apiserver',
    command: o.bin,
    args: [
      `--etcd-servers=${o.etcdUrl}`,
      '--bind-address=127.0.0.1',
      // The `kubernetes` Service's endpoint: the real node's pods reach the API server through its relay.
      `--advertise-address=${o.advertiseAddress}`,
      `--secure-port=${o.port}`,
      `--cert-dir=${o.dataDir}`,
      `--tls-cert-file=${o.pki.apiserver.cert}`,
      `--tls-private-key-file=${o.pki.apiserver.key}`,
      `--client-ca-file=${o.pki.ca.cert}`,
      '--authorization-mode=Node,RBAC',
      // Inert unless a namespace asks (annotations scheduler.alpha.kubernetes.io/node-selector and
      // /defaultTolerations): the tests' namespaces send their pods to the kwok nodes that way.
      '--enable-admission-plugins=PodNodeSelector,PodTolerationRestriction',
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${o.pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${o.pki.serviceAccountKey}`,
      '--api-audiences=https://kubernetes.default.svc.cluster.local',
      '--allow-privileged=false',
      '--profiling=false',
      '--endpoint-reconciler-type=lease',
      // Nodes are reached at their InternalIP (logs, exec, port-forward): by default the API server would
      // first look a node's hostname up in the machine's DNS, traffic that must not leave loopback.
      '--kubelet-preferred-address-types=InternalIP',
      `--kubelet-client-certificate=${o.pki.kubeletClient.cert}`,
      `--kubelet-client-key=${o.pki.kubeletClient.key}`,
      // The aggregation layer (metrics-server's metrics.k8s.io): requests carry the caller in headers,
      // vouched for by this client certificate; the API server dials the add-on's pod IP (it has no
      // route to Service IPs, which live in the real node's namespace).
      `--proxy-client-cert-file=${o.pki.frontProxy.cert}`,
      `--proxy-client-key-file=${o.pki.frontProxy.key}`,
      `--requestheader-client-ca-file=${o.pki.ca.cert}`,
      '--requestheader-allowed-names=front-proxy-client',
      '--requestheader-username-headers=X-Remote-User',
      '--requestheader-group-headers=X-Remote-Group',
      '--requestheader-extra-headers-prefix=X-Remote-Extra-',
      '--enable-aggregator-routing=true',
      '--v=1',
    ],
    logFile: o.logFile,
    dataDir: o.dataDir,
  });
}

export async function startControllerManager(o: Common & { kubeconfig: string; pki: Pki }): Promise<ProcessRecord> {
  await mkdir(o.dataDir, { recursive: true });
  return startProcess({
    name: 'kube-controller-manager',
    command: o.bin,
    args: [
      `--kubeconfig=${o.kubeconfig}`,
      `--authentication-kubeconfig=${o.kubeconfig}`,
      `--authorization-kubeconfig=${o.kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${o.port}`,
      `--cert-dir=${o.dataDir}`,
      '--leader-elect=false',
      '--use-service-account-credentials=true',
      `--service-account-private-key-file=${o.pki.serviceAccountKey}`,
      `--root-ca-file=${o.pki.ca.cert}`,
      `--service-cluster-ip-range=${SERVICE_CIDR}`,
      '--controllers=*',
      // Faster HPA and node lifecycle loops than production, so tests see reactions in seconds.
      '--horizontal-pod-autoscaler-sync-period=5s',
      '--profiling=false',
      '--v=1',
    ],
    logFile: o.logFile,
    dataDir: o.dataDir,
  });
}

export async function startScheduler(o: Common & { kubeconfig: string }): Promise<ProcessRecord> {
  await mkdir(o.dataDir, { recursive: true });
  return startProcess({
    name: 'kube-scheduler',
    command: o.bin,
    args: [
      `--kubeconfig=${o.kubeconfig}`,
      `--authentication-kubeconfig=${o.kubeconfig}`,
      `--authorization-kubeconfig=${o.kubeconfig}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${o.port}`,
      `--cert-dir=${o.dataDir}`,
      '--leader-elect=false',
      '--profiling=false',
      '--v=1',
    ],
    logFile: o.logFile,
    dataDir: o.dataDir,
  });
}

/** kwok, managing only the nodes annotated as its own (env/nodes.ts); its pods get addresses in 10.244.0.0/16. */
export function startKwok(o: Omit<Common, 'dataDir'> & { kubeconfig: string }): ProcessRecord {
  return startProcess({
    name: 'kwok',
    command: o.bin,
    args: [
      `--kubeconfig=${o.kubeconfig}`,
      '--manage-all-nodes=false',
      '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
      '--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom',
      '--cidr=10.244.0.0/16',
      '--node-ip=127.0.0.1',
      `--server-address=127.0.0.1:${o.port}`,
    ],
    logFile: o.logFile,
  });
}
