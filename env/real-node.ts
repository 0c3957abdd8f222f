// The real node: containerd, runc (Debian's), the CNI plugins (Debian's), kubelet and kube-proxy (iptables),
// in a network namespace of the environment's own. The kubelet refuses a loopback node IP, so the node gets an
// address of its own on a veth pair (NODE_IP, in NODE_NET); pods get theirs from the CNI bridge plugin in
// POD_CIDR, each in its own namespace. The root namespace gains only: the veth's host end (HOST_IP) with the
// routes to those two ranges, and one iptables chain that drops whatever the node would forward out through it
// (the node has no default route either): test traffic stays on loopback, in the node and in its pods.
// The control plane, MinIO and Kafka listen on 127.0.0.1; relays (relay.ts) serve them at NODE_IP.
// Everything the node adds is removed by stopRealNode, also after a crash (the names are fixed).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { stringify } from 'yaml';
import type { Binaries } from './build.ts';
import { cacheRoot } from './cache.ts';
import { installCommand, machineProblems, missingPrerequisites } from './prereqs.mjs';
import { type ProcessRecord, startProcess, stopProcess, waitReady } from './process.ts';

export const REAL_NODE_NAME = 'real-node-0';
export const NETNS = 'modelship-node';
/** The veth pair: the host end in the root namespace, the node end (eth0) in NETNS. */
export const HOST_VETH = 'ms-node0';
export const NODE_NET = '10.250.0.0/30';
export const HOST_IP = '10.250.0.1';
export const NODE_IP = '10.250.0.2';
export const POD_CIDR = '10.246.0.0/24';
export const CLUSTER_DNS_IP = '10.96.0.10';
/** The kubelet's cgroup parent, in every cgroup v1 hierarchy. */
export const CGROUP_ROOT = 'modelship-node';
const FORWARD_CHAIN = 'MODELSHIP-NODE-FWD';
/**
 * Machine-wide settings the kubelet makes (it runs in the machine's mount namespace: its sysctls are global) and
 * the directory of log links it keeps; recorded before the first kubelet start and put back by stopRealNode.
 */
const KUBELET_SYSCTLS = [
  'vm/overcommit_memory',
  'vm/panic_on_oom',
  'kernel/panic',
  'kernel/panic_on_oops',
  'kernel/keys/root_maxkeys',
  'kernel/keys/root_maxbytes',
];
const CONTAINER_LOG_LINKS = '/var/log/containers';
const machineStateFile = () => join(cacheRoot(), 'real-node', 'machine-before.json');

interface MachineBefore {
  sysctls: Record<string, string>;
  containerLogLinks: boolean;
}

/** Records the machine's own values, unless a record of an earlier start is still there (it holds the originals). */
function recordMachine(): void {
  const file = machineStateFile();
  if (existsSync(file)) return;
  const before: MachineBefore = { sysctls: {}, containerLogLinks: existsSync(CONTAINER_LOG_LINKS) };
  for (const k of KUBELET_SYSCTLS) {
    try {
      before.sysctls[k] = readFileSync(`/proc/sys/${k}`, 'utf8').trim();
    } catch {}
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(before, null, 2));
}

/** Puts back what recordMachine saw, and removes the kubelet's log links (and their directory if it made it). */
function restoreMachine(): void {
  const file = machineStateFile();
  if (!existsSync(file)) return;
  const before = JSON.parse(readFileSync(file, 'utf8')) as MachineBefore;
  for (const [k, v] of Object.entries(before.sysctls)) {
    try {
      writeFileSync(`/proc/sys/${k}`, v);
    } catch {}
  }
  if (existsSync(CONTAINER_LOG_LINKS)) {
    for (const e of readdirSync(CONTAINER_LOG_LINKS)) {
      const link = join(CONTAINER_LOG_LINKS, e);
      try {
        if (/\/real-node\//.test(readlinkSync(link))) rmSync(link);
      } catch {}
    }
    if (!before.containerLogLinks && readdirSync(CONTAINER_LOG_LINKS).length === 0) rmdirSync(CONTAINER_LOG_LINKS);
  }
  rmSync(file, { force: true });
}
const CNI_BIN_DIR = '/usr/lib/cni';
const RUNC = '/usr/bin/runc';
const PAUSE_IMAGE = 'registry.k8s.io/pause:3.10';

/** A port the relays serve at NODE_IP, and the 127.0.0.1 port it leads to. */
export interface Relayed {
  name: string;
  nodePort: number;
  hostPort: number;
}

export interface RealNodeOptions {
  root: string;
  logs: string;
  bins: Binaries;
  caCert: string;
  kubeletKubeconfig: string;
  kubeProxyKubeconfig: string;
  relayed: Relayed[];
  progress: (line: string) => void;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function quiet(cmd: string, args: string[]): boolean {
  return spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
}

/** Only the network namespace: `ip netns exec` would also remount /sys, hiding the cgroup hierarchies. */
export const NSENTER = ['nsenter', `--net=/run/netns/${NETNS}`, '--'];
const inNode = (cmd: string, ...args: string[]) => sh(NSENTER[0] as string, [...NSENTER.slice(1), cmd, ...args]);

/** What is missing on this machine for the real node (Debian packages named, from env/prereqs.json), or undefined. */
export function realNodeProblem(): string | undefined {
  const missing = missingPrerequisites({ realNode: true }).filter((p) => p.for === 'realNode');
  if (missing.length)
    return `the real node needs the Debian packages ${missing.map((p) => p.package).join(', ')} (${installCommand(missing)})`;
  return machineProblems({ realNode: true })[0];
}

function cgroupHierarchies(): string[] {
  return readdirSync('/sys/fs/cgroup')
    .map((d) => join('/sys/fs/cgroup', d))
    .filter((d) => existsSync(join(d, 'cgroup.procs')) && !d.endsWith('/unified'));
}

function walkDirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) out.push(...walkDirs(join(dir, e.name)));
  out.push(dir);
  return out;
}

/** Every process of the node: in its network namespace (containerd, shims, kubelet) or its cgroups (pods). */
function nodePids(): number[] {
  const pids = new Set<number>();
  if (quiet('ip', ['netns', 'pids', NETNS])) {
    for (const p of spawnSync('ip', ['netns', 'pids', NETNS], { encoding: 'utf8' }).stdout.split('\n')) if (p.trim()) pids.add(Number(p));
  }
  for (const h of cgroupHierarchies()) {
    for (const d of walkDirs(join(h, CGROUP_ROOT))) {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n')) if (p.trim()) pids.add(Number(p));
    }
  }
  pids.delete(process.pid);
  return [...pids];
}

/**
 * The node's mount points, deepest first: under `dir` (this environment's node), under any environment's
 * `real-node/` (one that crashed without its record) and under containerd's root.
 */
function nodeMounts(dir: string | undefined): string[] {
  const ours = (m: string) =>
    (dir !== undefined && (m === dir || m.startsWith(`${dir}/`))) ||
    /\/modelship-env-[^/]+\/real-node(\/|$)/.test(m) ||
    m.startsWith(`${containerdRoot()}/`);
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && ours(m))
    .sort((a, b) => b.length - a.length);
}

/**
 * Removes everything a real node adds to the machine: its processes, mounts, cgroups, network namespace
 * (with the veth and its routes) and the iptables chain. Safe to run when nothing is there.
 */
export function stopRealNode(nodeRoot: string | undefined): void {
  // The host half of the relays runs in the machine's namespace and cgroups: found by its socket directory.
  spawnSync('pkill', ['-KILL', '-f', 'relay\\.ts to-tcp \\S*/real-node/relay']);
  for (let round = 0; round < 3; round++) {
    const pids = nodePids();
    if (!pids.length) break;
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {}
    }
    spawnSync('sleep', ['0.3']);
  }
  for (const m of nodeMounts(nodeRoot)) quiet('umount', ['-l', m]);
  for (const h of cgroupHierarchies()) {
    for (const d of walkDirs(join(h, CGROUP_ROOT))) {
      try {
        rmdirSync(d);
      } catch {}
    }
  }
  quiet('ip', ['netns', 'del', NETNS]);
  quiet('ip', ['link', 'del', HOST_VETH]);
  restoreMachine();
  while (quiet('iptables', ['-w', '-D', 'FORWARD', '-i', HOST_VETH, '-j', FORWARD_CHAIN]));
  quiet('iptables', ['-w', '-F', FORWARD_CHAIN]);
  quiet('iptables', ['-w', '-X', FORWARD_CHAIN]);
}

function setUpNetwork() {
  sh('ip', ['netns', 'add', NETNS]);
  sh('ip', ['link', 'add', HOST_VETH, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', NETNS]);
  sh('ip', ['addr', 'add', `${HOST_IP}/30`, 'dev', HOST_VETH]);
  sh('ip', ['link', 'set', HOST_VETH, 'up']);
  sh('ip', ['route', 'add', POD_CIDR, 'via', NODE_IP, 'dev', HOST_VETH]);
  // Nothing leaves through the host end towards other networks, whatever the machine's forwarding says.
  sh('iptables', ['-w', '-N', FORWARD_CHAIN]);
  sh('iptables', ['-w', '-A', FORWARD_CHAIN, '-j', 'DROP']);
  sh('iptables', ['-w', '-I', 'FORWARD', '-i', HOST_VETH, '-j', FORWARD_CHAIN]);
  inNode('ip', 'link', 'set', 'lo', 'up');
  inNode('ip', 'addr', 'add', `${NODE_IP}/30`, 'dev', 'eth0');
  inNode('ip', 'link', 'set', 'eth0', 'up');
  // No default route: the node reaches the host end and its own pods only. Service IPs need a route for a
  // connect() from the node itself before kube-proxy's DNAT rewrites them; through lo nothing else sees them.
  inNode('ip', 'route', 'add', '10.96.0.0/16', 'dev', 'lo');
  for (const [key, value] of [
    ['net.ipv4.ip_forward', '1'],
    ['net.bridge.bridge-nf-call-iptables', '1'],
    ['net.ipv4.conf.all.route_localnet', '1'],
  ] as const) {
    // Per network namespace: these change the node, not the machine.
    const file = `/proc/sys/${key.replaceAll('.', '/')}`;
    if (existsSync(file)) inNode('sh', '-c', `echo ${value} > ${file}`);
  }
}

function createCgroups() {
  for (const h of cgroupHierarchies()) {
    const dir = join(h, CGROUP_ROOT);
    sh('mkdir', ['-p', dir]);
    // cpuset children start empty: copy the parent's CPUs and memory nodes.
    if (h.endsWith('/cpuset')) {
      for (const f of ['cpuset.cpus', 'cpuset.mems']) writeFileSync(join(dir, f), readFileSync(join(h, f)));
    }
  }
}

function containerdConfig(dir: string, root: string): string {
  const q = JSON.stringify;
  return `version = 3
root = ${q(root)}
state = ${q(join(dir, 'state'))}

[grpc]
  address = ${q(join(dir, 'containerd.sock'))}

[ttrpc]
  address = ${q(join(dir, 'containerd.sock.ttrpc'))}

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = ${q(PAUSE_IMAGE)}

[plugins.'io.containerd.cri.v1.runtime']
  # This machine lacks CAP_SYS_RESOURCE: runc may not lower a container's oom_score_adj below its own.
  restrict_oom_score_adj = true
  # Pods' network namespaces under the state directory, not the machine's /run/netns.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = ${q(RUNC)}
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = [${q(CNI_BIN_DIR)}]
    conf_dir = ${q(join(dir, 'cni'))}
`;
}

function cniConfig(ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: 'modelship',
      plugins: [
        {
          type: 'bridge',
          bridge: 'ms-cni0',
          isGateway: true,
          ipMasq: false,
          hairpinMode: true,
          ipam: { type: 'host-local', ranges: [[{ subnet: POD_CIDR }]], routes: [{ dst: '10.0.0.0/8' }], dataDir: ipamDir },
        },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    },
    null,
    2,
  );
}

function kubeletConfig(o: { dir: string; caCert: string; resolvConf: string; socket: string }): string {
  return stringify({
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'cgroupfs',
    cgroupRoot: `/${CGROUP_ROOT}`,
    containerRuntimeEndpoint: `unix://${o.socket}`,
    failSwapOn: false,
    address: NODE_IP,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: true }, x509: { clientCAFile: o.caCert } },
    authorization: { mode: 'Webhook' },
    clusterDNS: [CLUSTER_DNS_IP],
    clusterDomain: 'cluster.local',
    resolvConf: o.resolvConf,
    // Not the machine's /var/log/pods.
    podLogsDir: join(o.dir, 'pod-logs'),
    podCIDR: POD_CIDR,
    maxPods: 40,
    // A test machine's disk and memory run full of other things: evict only when really out.
    evictionHard: { 'memory.available': '100Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    // Faster than production, so tests see pod and node changes in seconds.
    nodeStatusUpdateFrequency: '4s',
    syncFrequency: '10s',
    fileCheckFrequency: '5s',
    serializeImagePulls: false,
    localStorageCapacityIsolation: true,
  });
}

/** containerd's root (images, snapshots): kept in the cache across environments, as a node's across reboots. */
export function containerdRoot(): string {
  return join(cacheRoot(), 'real-node', 'containerd');
}

export interface RealNode {
  processes: Record<string, ProcessRecord>;
  containerdSocket: string;
  dir: string;
}

/**
 * Throws when this machine cannot run the real node now: a package or privilege missing, or another environment's
 * node running (its processes alive; the names are fixed). Call before anything is set up, so a refusal never
 * leads to cleaning up a node that is not ours.
 */
export function assertRealNodePossible(): void {
  const problem = realNodeProblem();
  if (problem) throw new Error(`${problem} (or start without it: MODELSHIP_REAL_NODE=0)`);
  if (nodePids().length > 0) {
    throw new Error(
      `another environment's real node is running (network namespace ${NETNS}): stop that environment first (npm run env:down), or start this one with MODELSHIP_REAL_NODE=0`,
    );
  }
}

/** Starts the real node; resolves once containerd answers (call assertRealNodePossible first). */
export async function startRealNode(o: RealNodeOptions): Promise<RealNode> {
  assertRealNodePossible();
  const dir = join(o.root, 'real-node');
  // What a crashed earlier environment left with none of its processes alive (mounts, cgroups, the namespace).
  stopRealNode(undefined);
  const ctdDir = join(dir, 'containerd');
  const kubeletDir = join(dir, 'kubelet');
  const relayDir = join(dir, 'relay');
  for (const d of [ctdDir, join(ctdDir, 'cni'), join(dir, 'cni-ipam'), kubeletDir, relayDir]) await mkdir(d, { recursive: true });
  const processes: Record<string, ProcessRecord> = {};
  try {
    recordMachine();
    setUpNetwork();
    createCgroups();
    await startNodeProcesses(o, dir, processes);
  } catch (err) {
    // Nothing half-started outlives the failure: the host relay runs outside the node's namespace and cgroups.
    for (const p of Object.values(processes)) await stopProcess(p, 3000);
    stopRealNode(dir);
    throw err;
  }
  return { processes, containerdSocket: join(dir, 'containerd', 'containerd.sock'), dir };
}

async function startNodeProcesses(o: RealNodeOptions, dir: string, processes: Record<string, ProcessRecord>): Promise<void> {
  const ctdDir = join(dir, 'containerd');
  const kubeletDir = join(dir, 'kubelet');
  const relayDir = join(dir, 'relay');
  const node = (name: string, command: string, args: string[], extra: { env?: NodeJS.ProcessEnv; dataDir?: string } = {}) => {
    processes[name] = startProcess({
      name,
      command: NSENTER[0] as string,
      args: [...NSENTER.slice(1), command, ...args],
      logFile: join(o.logs, `${name}.log`),
      env: extra.env ?? process.env,
      ...(extra.dataDir ? { dataDir: extra.dataDir } : {}),
    });
    return processes[name];
  };

  // Relays: the host half first (it makes the sockets), then the node's.
  processes['relay-host'] = startProcess({
    name: 'relay-host',
    command: process.execPath,
    args: [join(import.meta.dirname, 'relay.ts'), 'to-tcp', relayDir, ...o.relayed.map((r) => `${r.name}=127.0.0.1:${r.hostPort}`)],
    logFile: join(o.logs, 'relay-host.log'),
  });
  await waitReady(processes['relay-host'], async () => o.relayed.every((r) => existsSync(join(relayDir, `${r.name}.sock`))), 10_000);
  node('relay-node', process.execPath, [
    join(import.meta.dirname, 'relay.ts'),
    'to-unix',
    relayDir,
    ...o.relayed.map((r) => `${NODE_IP}:${r.nodePort}=${r.name}`),
  ]);

  o.progress('modelship env: starting the real node (containerd, kubelet, kube-proxy)');
  await writeFile(join(ctdDir, 'config.toml'), containerdConfig(ctdDir, containerdRoot()));
  await writeFile(join(ctdDir, 'cni', '10-modelship.conflist'), cniConfig(join(dir, 'cni-ipam')));
  const socket = join(ctdDir, 'containerd.sock');
  const path = `${o.bins.nodeBinDir}:/usr/sbin:/usr/bin:/sbin:/bin`;
  node('containerd', o.bins.containerd, ['--config', join(ctdDir, 'config.toml'), '--log-level', 'warn'], {
    env: { ...process.env, PATH: path },
    dataDir: ctdDir,
  });
  await waitReady(processes.containerd as ProcessRecord, async () => existsSync(socket) && ctrOk(o.bins.ctr, socket), 30_000);

  const resolvConf = join(dir, 'resolv.conf');
  // The pods' upstream resolver: none (CoreDNS answers cluster names, everything else fails fast).
  await writeFile(resolvConf, 'nameserver 127.0.0.1\noptions timeout:1 attempts:1\n');
  await writeFile(join(kubeletDir, 'config.yaml'), kubeletConfig({ dir: kubeletDir, caCert: o.caCert, resolvConf, socket }));
  node(
    'kubelet',
    o.bins.kubelet,
    [
      `--config=${join(kubeletDir, 'config.yaml')}`,
      `--kubeconfig=${o.kubeletKubeconfig}`,
      `--root-dir=${kubeletDir}`,
      `--cert-dir=${join(kubeletDir, 'pki')}`,
      `--hostname-override=${REAL_NODE_NAME}`,
      `--node-ip=${NODE_IP}`,
      '--node-labels=type=real',
      '--v=1',
    ],
    { env: { ...process.env, PATH: path }, dataDir: kubeletDir },
  );
  await writeFile(
    join(dir, 'kube-proxy.yaml'),
    stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      mode: 'iptables',
      clientConnection: { kubeconfig: o.kubeProxyKubeconfig },
      clusterCIDR: POD_CIDR,
      hostnameOverride: REAL_NODE_NAME,
      bindAddress: NODE_IP,
      healthzBindAddress: '127.0.0.1:10256',
      metricsBindAddress: '127.0.0.1:10249',
      // Not the machine's conntrack table sizes: the node's namespace shares them.
      conntrack: { maxPerCore: 0 },
      iptables: { masqueradeAll: false, syncPeriod: '10s', minSyncPeriod: '0s' },
    }),
  );
  node('kube-proxy', o.bins.kubeProxy, [`--config=${join(dir, 'kube-proxy.yaml')}`, '--v=1'], { env: { ...process.env, PATH: path } });
}

function ctrOk(ctr: string, socket: string): boolean {
  return spawnSync(ctr, ['--address', socket, 'version'], { stdio: 'ignore', timeout: 5000 }).status === 0;
}
