// The process node: a Node of the local cluster whose pods are real processes. For each pod scheduled to it
// that runs a modelship runtime image, it starts the runtime from this checkout with the pod's container
// env (secretKeyRef / configMapKeyRef / fieldRef resolved), bound to an address of its own on `lo` (see
// allocateIp) on the container port, and keeps the pod's status true: podIP, Running, ready from the
// runtime's real readiness endpoint, restarts with backoff, terminated state with exit code and the
// termination message the runtime wrote. Deleting a pod runs its preStop sleep, sends SIGTERM, waits up to
// the grace period for the drain (SIGKILL after), then removes the pod, as the kubelet would.
// `…/modelship/runtime-python` stands for the image with Python: its pods get the environment's Python and
// uv (the python component) and a requirements-environment cache shared by the node's pods; pods of the
// plain `…/modelship/runtime` image get no Python, as that image has none. Any other image is refused with a
// clear message: this is not a general kubelet.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, closeSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  CoordinationV1Api,
  CoreV1Api,
  type KubeConfig,
  type V1Container,
  type V1ContainerStatus,
  type V1EnvVar,
  type V1Node,
  type V1Pod,
  PatchStrategy,
  setHeaderOptions,
  Watch,
} from '@kubernetes/client-node';
import { microTime } from '../operator/kube/leader.ts';
import { ENV } from '../runtime/contract.ts';

export const PROCESS_NODE_LABEL = 'modelship.dev/process-node';
/** Tainted, so only pods that ask for real processes (a toleration) land here. */
export const PROCESS_NODE_TAINT = { key: PROCESS_NODE_LABEL, value: 'true', effect: 'NoSchedule' } as const;
const RUNTIME_IMAGE = /(^|\/)modelship\/runtime(-python)?(:[^/]*)?(@sha256:[0-9a-f]+)?$/;
const RUNTIME_MAIN = join(import.meta.dirname, '..', 'runtime', 'main.ts');
const IMAGES = '…/modelship/runtime:<tag> and …/modelship/runtime-python:<tag>';

/** Which runtime image a container runs, or undefined for any other image. */
export type RuntimeImage = 'runtime' | 'runtime-python';

export function runtimeImage(image: string): RuntimeImage | undefined {
  const m = RUNTIME_IMAGE.exec(image);
  if (!m) return undefined;
  return m[2] ? 'runtime-python' : 'runtime';
}

/** The Python a runtime-python pod runs with, in place of the image's. */
export interface NodePython {
  python: string;
  uv: string;
  /** Requirements environments, shared by the node's pods as a node-level cache volume would be. */
  envDir: string;
}

/**
 * What the node adds to a pod's resolved env for its image: the Python and uv are the image's, and the
 * requirements cache is the node's (the pod's value is a path inside its container, as the work dir is);
 * they replace any the pod names.
 */
export function imageEnv(image: RuntimeImage, python: NodePython): Record<string, string> {
  if (image === 'runtime') return {};
  return {
    [ENV.pythonEnvDir]: python.envDir,
    [ENV.python]: python.python,
    [ENV.uv]: python.uv,
  };
}

export interface ProcessNodeOptions {
  kubeConfig: KubeConfig;
  name: string;
  /** Logs, work dirs and termination logs of the pods' processes, and the node's Python envs. */
  dir: string;
  /** The interpreter and uv of runtime-python pods (the environment's python component, see build.ts Binaries). */
  python: { python: string; uv: string };
  log?: (msg: string) => void;
}

interface Running {
  pod: V1Pod;
  ip: string;
  port: number;
  child: ChildProcess | undefined;
  restarts: number;
  ready: boolean;
  stopping: boolean;
  startedAt: Date;
  lastTerminated: V1ContainerStatus['lastState'];
  restartTimer: NodeJS.Timeout | undefined;
  probe: NodeJS.Timeout | undefined;
  dir: string;
  /** The init containers' statuses, as the kubelet reports them; every one Completed once the pod is initialized. */
  initStatuses: V1ContainerStatus[];
  /** Sidecars (init containers with restartPolicy Always): started in order, running beside the runtime. */
  sidecars: ChildProcess[];
  initialized: boolean;
}

const podKey = (p: V1Pod) => `${p.metadata?.namespace}/${p.metadata?.name}`;

const NODE_CAPACITY = { cpu: '2', memory: '8Gi', pods: '32', 'ephemeral-storage': '20Gi' };

/** A resourceFieldRef as the kubelet resolves it: the container's limit or request (a limit that is not
 * set: the node's allocatable), divided by the divisor and rounded up. Pure. */
export function resourceField(resource: string, resources: V1Container['resources'], divisor: string | number = '1'): string {
  const [kind, name = ''] = resource.split('.') as [string, string];
  const set = kind === 'requests' ? resources?.requests : resources?.limits;
  const raw = set?.[name] ?? (kind === 'limits' || name === 'cpu' ? NODE_CAPACITY[name as 'cpu' | 'memory'] : '0') ?? '0';
  const amount = (q: string | number) => {
    const m = /^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(String(q));
    const unit = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 }[m?.[2] ?? ''] ?? 1;
    return Number(m?.[1] ?? 0) * unit;
  };
  return String(Math.ceil(amount(raw) / (amount(divisor) || 1)));
}

export function processNode(name: string): V1Node {
  const capacity = NODE_CAPACITY;
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name,
      labels: {
        'kubernetes.io/hostname': name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        type: 'process',
        [PROCESS_NODE_LABEL]: 'true',
      },
    },
    spec: { taints: [{ ...PROCESS_NODE_TAINT }] },
    status: { allocatable: capacity, capacity },
  };
}

export class ProcessNode {
  private readonly core: CoreV1Api;
  private readonly coordination: CoordinationV1Api;
  private readonly o: ProcessNodeOptions;
  private readonly python: NodePython;
  private readonly pods = new Map<string, Running>();
  private readonly ips = new Set<number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private watchAbort: AbortController | undefined;
  private stopped = false;
  /** The first three octets of pod addresses; see allocateIp. */
  private subnet = `10.245.${process.pid % 250}`;

  constructor(o: ProcessNodeOptions) {
    this.o = o;
    this.python = { ...o.python, envDir: join(o.dir, 'python-envs') };
    this.core = o.kubeConfig.makeApiClient(CoreV1Api);
    this.coordination = o.kubeConfig.makeApiClient(CoordinationV1Api);
  }

  private log(msg: string): void {
    this.o.log?.(`${new Date().toISOString()} ${msg}`);
  }

  async start(): Promise<void> {
    mkdirSync(this.python.envDir, { recursive: true });
    try {
      await this.core.createNode({ body: processNode(this.o.name) });
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
    }
    await this.beat();
    this.heartbeat = setInterval(() => {
      void this.beat().catch((e) => this.log(`heartbeat failed: ${(e as Error).message}`));
      // A watch can stall without ending (seen after minutes of heavy API load): a periodic list, as the
      // kubelet's resync does, makes sure no pod waits for the next watch event.
      void this.relist().catch((e) => this.log(`pod resync failed: ${(e as Error).message}`));
    }, 10_000);
    await this.watch();
  }

  /** Node Ready with a fresh heartbeat, and the node Lease renewed: the node lifecycle controller's view. */
  private async beat(): Promise<void> {
    const now = new Date();
    const ready = { type: 'Ready', status: 'True', reason: 'ProcessNodeReady', message: 'runs modelship runtime pods as processes' };
    await this.core.patchNodeStatus(
      {
        name: this.o.name,
        body: {
          status: {
            conditions: [{ ...ready, lastHeartbeatTime: now, lastTransitionTime: now }],
            addresses: [
              { type: 'InternalIP', address: '127.0.0.1' },
              { type: 'Hostname', address: this.o.name },
            ],
            nodeInfo: {
              architecture: 'amd64',
              operatingSystem: 'linux',
              kubeletVersion: 'modelship-process-node',
              kubeProxyVersion: '',
              containerRuntimeVersion: 'process://node',
              bootID: '',
              kernelVersion: '',
              machineID: '',
              osImage: 'process node',
              systemUUID: '',
            },
          },
        } as V1Node,
      },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const lease = {
      metadata: { name: this.o.name, namespace: 'kube-node-lease' },
      spec: { holderIdentity: this.o.name, leaseDurationSeconds: 40, renewTime: microTime(now) },
    };
    try {
      const existing = await this.coordination.readNamespacedLease({ name: this.o.name, namespace: 'kube-node-lease' });
      await this.coordination.replaceNamespacedLease({
        name: this.o.name,
        namespace: 'kube-node-lease',
        body: { metadata: { ...lease.metadata, resourceVersion: existing.metadata?.resourceVersion }, spec: lease.spec },
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      await this.coordination.createNamespacedLease({ namespace: 'kube-node-lease', body: lease as never });
    }
  }

  /**
   * Pods bound here, as the API server has them: each is (re)considered, and a pod we run that is gone
   * from the list was deleted. Returns the list's resourceVersion.
   */
  private async relist(): Promise<string | undefined> {
    // Only pods we ran before the list was asked for can be judged gone by it.
    const before = new Set(this.pods.keys());
    const list = await this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${this.o.name}` });
    const present = new Set(list.items.map(podKey));
    for (const p of list.items) this.onPod(p);
    for (const key of before) {
      const r = this.pods.get(key);
      if (r && !present.has(key) && !r.stopping) void this.terminate(r, r.pod);
    }
    return list.metadata?.resourceVersion;
  }

  private async watch(): Promise<void> {
    if (this.stopped) return;
    // A list first (pods already bound here), then a watch from its resourceVersion; re-done on any end,
    // and retried when the list fails (an API server under load answers 429).
    let resourceVersion: string | undefined;
    try {
      resourceVersion = await this.relist();
    } catch (e) {
      this.log(`pod list failed, retrying in 1 s: ${(e as Error).message}`);
      setTimeout(() => void this.watch(), 1000);
      return;
    }
    const w = new Watch(this.o.kubeConfig);
    this.watchAbort = await w.watch(
      '/api/v1/pods',
      { fieldSelector: `spec.nodeName=${this.o.name}`, resourceVersion, allowWatchBookmarks: true },
      (type, obj: V1Pod) => {
        if (type === 'ADDED' || type === 'MODIFIED') this.onPod(obj);
        if (type === 'DELETED') this.onGone(obj);
      },
      () => {
        if (!this.stopped) setTimeout(() => void this.watch(), 1000);
      },
    );
  }

  private onPod(pod: V1Pod): void {
    const key = podKey(pod);
    const r = this.pods.get(key);
    if (pod.metadata?.deletionTimestamp) {
      if (r && !r.stopping) void this.terminate(r, pod);
      else if (!r) void this.finalDelete(pod);
      return;
    }
    if (r) {
      r.pod = pod;
      return;
    }
    if (pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded') return;
    const c = pod.spec?.containers[0] as V1Container;
    const image = pod.spec?.containers.length === 1 ? runtimeImage(c.image ?? '') : undefined;
    const strangeInit = (pod.spec?.initContainers ?? []).find((ic) => runtimeImage(ic.image ?? '') !== image);
    if (!image || strangeInit) {
      void this.refuse(pod, strangeInit?.image ?? c?.image ?? '(none)');
      return;
    }
    void this.admit(pod, c, image).catch((e) => this.log(`${key}: could not start: ${(e as Error).message}`));
  }

  private onGone(pod: V1Pod): void {
    const r = this.pods.get(podKey(pod));
    if (r && !r.stopping) void this.terminate(r, pod);
  }

  private async refuse(pod: V1Pod, image: string): Promise<void> {
    const message = `the process node runs only the modelship runtime images (${IMAGES}) as processes; it cannot run ${image}, and is not a general kubelet`;
    this.log(`${podKey(pod)}: refused: ${message}`);
    await this.patchStatus(pod, { phase: 'Failed', reason: 'UnsupportedImage', message });
  }

  /**
   * A pod address of its own. The API server refuses loopback addresses in Endpoints and EndpointSlices
   * ("may not be in the loopback range"), so where it can (root: `ip addr add`) the node puts each pod on an
   * address of a /24 of its own in 10.245.0.0/16, added to `lo` while the pod lives; otherwise it falls back
   * to 127.0.1.N, which serves but never reaches an EndpointSlice.
   */
  private allocateIp(): string {
    for (let n = 1; n < 255; n++) {
      if (this.ips.has(n)) continue;
      this.ips.add(n);
      const ip = `${this.subnet}.${n}`;
      if (this.subnet !== '127.0.1') {
        try {
          execFileSync('ip', ['addr', 'add', `${ip}/32`, 'dev', 'lo'], { stdio: 'pipe' });
        } catch (err) {
          const text = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message);
          if (!text.includes('File exists')) {
            this.log(`cannot add ${ip} to lo (${text.trim()}); falling back to 127.0.1.N addresses, which EndpointSlices refuse`);
            this.subnet = '127.0.1';
            return `127.0.1.${n}`;
          }
        }
      }
      return ip;
    }
    throw new Error('no free pod address');
  }

  private releaseIp(ip: string): void {
    const n = Number(ip.split('.')[3]);
    this.ips.delete(n);
    if (!ip.startsWith('127.')) {
      try {
        execFileSync('ip', ['addr', 'del', `${ip}/32`, 'dev', 'lo'], { stdio: 'pipe' });
      } catch {
        // already gone
      }
    }
  }

  private async resolveEnv(pod: V1Pod, env: V1EnvVar[], ip: string): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const ns = pod.metadata?.namespace as string;
    for (const e of env) {
      if (e.value !== undefined) out[e.name] = e.value;
      const from = e.valueFrom;
      if (!from) continue;
      if (from.secretKeyRef) {
        const s = await this.core.readNamespacedSecret({ name: from.secretKeyRef.name as string, namespace: ns });
        const v = s.data?.[from.secretKeyRef.key];
        if (v === undefined) throw new Error(`secret ${from.secretKeyRef.name} has no key ${from.secretKeyRef.key}`);
        out[e.name] = Buffer.from(v, 'base64').toString('utf8');
      } else if (from.configMapKeyRef) {
        const cm = await this.core.readNamespacedConfigMap({ name: from.configMapKeyRef.name as string, namespace: ns });
        const v = cm.data?.[from.configMapKeyRef.key];
        if (v === undefined) throw new Error(`configmap ${from.configMapKeyRef.name} has no key ${from.configMapKeyRef.key}`);
        out[e.name] = v;
      } else if (from.fieldRef) {
        const fields: Record<string, string> = {
          'metadata.name': pod.metadata?.name ?? '',
          'metadata.namespace': ns,
          'status.podIP': ip,
          'spec.nodeName': this.o.name,
        };
        out[e.name] = fields[from.fieldRef.fieldPath] ?? '';
      } else if (from.resourceFieldRef) {
        const c = pod.spec?.containers.find((x) => x.name === (from.resourceFieldRef?.containerName ?? pod.spec?.containers[0]?.name));
        out[e.name] = resourceField(from.resourceFieldRef.resource, c?.resources, from.resourceFieldRef.divisor);
      }
    }
    return out;
  }

  private async admit(pod: V1Pod, c: V1Container, image: RuntimeImage): Promise<void> {
    const key = podKey(pod);
    const ip = this.allocateIp();
    const port = c.ports?.[0]?.containerPort ?? 8080;
    const dir = join(this.o.dir, `${pod.metadata?.namespace}_${pod.metadata?.name}`);
    mkdirSync(join(dir, 'work'), { recursive: true });
    const r: Running = {
      pod,
      ip,
      port,
      child: undefined,
      restarts: 0,
      ready: false,
      stopping: false,
      startedAt: new Date(),
      lastTerminated: undefined,
      restartTimer: undefined,
      probe: undefined,
      dir,
      initStatuses: [],
      sidecars: [],
      initialized: false,
    };
    this.pods.set(key, r);
    let env: Record<string, string>;
    const inits = pod.spec?.initContainers ?? [];
    let initEnvs: Record<string, string>[];
    try {
      env = { ...(await this.resolveEnv(pod, c.env ?? [], ip)), ...imageEnv(image, this.python) };
      initEnvs = await Promise.all(
        inits.map(async (ic) => ({ ...(await this.resolveEnv(pod, ic.env ?? [], ip)), ...imageEnv(image, this.python) })),
      );
    } catch (err) {
      // As the kubelet: the container cannot be made; say why and try again later.
      const message = (err as { body?: string }).body ?? (err as Error).message;
      await this.patchStatus(
        pod,
        this.status(r, { waiting: { reason: 'CreateContainerConfigError', message: String(message).slice(0, 500) } }),
      );
      this.pods.delete(key);
      this.releaseIp(ip);
      setTimeout(() => {
        if (!this.stopped && !this.pods.has(key)) this.onPod(r.pod);
      }, 5000);
      return;
    }
    void this.initialize(r, inits, initEnvs).then(
      (ok) => {
        if (!ok) return;
        this.run(r, env);
        r.probe = setInterval(() => void this.probe(r), 1000);
      },
      (err: Error) => this.log(`${key}: init containers could not run: ${err.message}`),
    );
  }

  /**
   * Runs the init containers one after the other as the kubelet does: each to completion, a failed one again with
   * back-off (restartPolicy Always) until it succeeds. The runtime image's init container is `main.ts prepare`.
   * False when the pod stopped meanwhile.
   */
  private async initialize(r: Running, inits: V1Container[], envs: Record<string, string>[]): Promise<boolean> {
    r.initStatuses = inits.map((ic) => ({
      name: ic.name,
      image: ic.image ?? '',
      imageID: `process://${RUNTIME_MAIN}`,
      ready: false,
      restartCount: 0,
      state: { waiting: { reason: 'PodInitializing' } },
    }));
    for (const [i, ic] of inits.entries()) {
      const status = r.initStatuses[i] as V1ContainerStatus;
      if (ic.restartPolicy === 'Always') {
        this.runSidecar(r, ic, envs[i] ?? {}, status);
        continue;
      }
      for (;;) {
        const terminated = await this.runInit(r, ic, envs[i] ?? {}, status);
        if (r.stopping || this.stopped) return false;
        if (terminated.exitCode === 0) {
          status.ready = true;
          break;
        }
        status.restartCount++;
        status.lastState = { terminated };
        const backoff = Math.min(30_000, 1000 * 2 ** Math.min(status.restartCount - 1, 5));
        status.state = {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off ${backoff / 1000}s restarting failed container=${ic.name} pod=${r.pod.metadata?.name}`,
          },
        };
        await this.patchStatus(r.pod, this.status(r, { waiting: { reason: 'PodInitializing' } }));
        await new Promise((res) => {
          r.restartTimer = setTimeout(res, backoff);
        });
        if (r.stopping || this.stopped) return false;
      }
    }
    r.initialized = true;
    return true;
  }

  /** A sidecar: started, restarted when it exits (after a second), stopped with the pod. */
  private runSidecar(r: Running, c: V1Container, env: Record<string, string>, status: V1ContainerStatus): void {
    if (r.stopping || this.stopped) return;
    const fd = openSync(join(r.dir, `${c.name}.log`), 'a');
    const child = spawn(process.execPath, [RUNTIME_MAIN, ...(c.args ?? [])], {
      env: { PATH: process.env.PATH, ...env, ...this.podPaths(r) },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    r.sidecars.push(child);
    status.state = { running: { startedAt: new Date() } };
    status.ready = true;
    status.started = true;
    status.containerID = `process://${child.pid ?? 0}`;
    this.log(`${podKey(r.pod)}: started sidecar ${c.name} pid ${child.pid}`);
    child.on('exit', (code) => {
      r.sidecars = r.sidecars.filter((s) => s !== child);
      if (r.stopping || this.stopped) return;
      status.restartCount++;
      this.log(`${podKey(r.pod)}: sidecar ${c.name} exited ${code}; restarting`);
      setTimeout(() => this.runSidecar(r, c, env, status), 1000);
    });
  }

  /** Paths a pod's containers share, made the pod's own on this host (in a pod: its volumes). */
  private podPaths(r: Running): Record<string, string> {
    return { MODELSHIP_RECORDER_SOCKET: join(r.dir, 'recorder.sock') };
  }

  private runInit(
    r: Running,
    c: V1Container,
    env: Record<string, string>,
    status: V1ContainerStatus,
  ): Promise<NonNullable<NonNullable<V1ContainerStatus['state']>['terminated']>> {
    const key = podKey(r.pod);
    const terminationLog = join(r.dir, `termination-log-${c.name}`);
    rmSync(terminationLog, { force: true });
    const fd = openSync(join(r.dir, `${c.name}.log`), 'a');
    const child = spawn(process.execPath, [RUNTIME_MAIN, ...(c.args ?? [])], {
      env: { PATH: process.env.PATH, ...env, MODELSHIP_WORK_DIR: join(r.dir, 'work'), MODELSHIP_TERMINATION_LOG: terminationLog },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    r.child = child;
    const startedAt = new Date();
    status.state = { running: { startedAt } };
    status.containerID = `process://${child.pid ?? 0}`;
    void this.patchStatus(r.pod, this.status(r, { waiting: { reason: 'PodInitializing' } }));
    this.log(`${key}: started init container ${c.name} pid ${child.pid}`);
    return new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        r.child = undefined;
        const exitCode = code ?? (signal === 'SIGKILL' ? 137 : 143);
        let message = '';
        try {
          message = readFileSync(terminationLog, 'utf8').slice(0, 4096);
        } catch {
          // no termination message
        }
        const terminated = {
          exitCode,
          reason: exitCode === 0 ? 'Completed' : 'Error',
          ...(message ? { message } : {}),
          startedAt,
          finishedAt: new Date(),
        };
        status.state = { terminated };
        this.log(`${key}: init container ${c.name} exited ${exitCode}${message ? `: ${message}` : ''}`);
        resolve(terminated);
      });
    });
  }

  private run(r: Running, env: Record<string, string>): void {
    const key = podKey(r.pod);
    const terminationLog = join(r.dir, 'termination-log');
    rmSync(terminationLog, { force: true });
    const fd = openSync(join(r.dir, 'runtime.log'), 'a');
    const child = spawn(process.execPath, [RUNTIME_MAIN], {
      env: {
        PATH: process.env.PATH,
        ...env,
        MODELSHIP_HOST: r.ip,
        MODELSHIP_PORT: String(r.port),
        MODELSHIP_WORK_DIR: join(r.dir, 'work'),
        MODELSHIP_TERMINATION_LOG: terminationLog,
        ...(env.MODELSHIP_RECORDER_SOCKET ? this.podPaths(r) : {}),
      },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    r.child = child;
    r.startedAt = new Date();
    r.ready = false;
    this.log(`${key}: started runtime pid ${child.pid} on ${r.ip}:${r.port}`);
    void this.patchStatus(r.pod, this.status(r, { running: { startedAt: r.startedAt } }));
    child.on('exit', (code, signal) => {
      const exitCode = code ?? (signal === 'SIGKILL' ? 137 : 143);
      let message = '';
      try {
        message = readFileSync(terminationLog, 'utf8').slice(0, 4096);
      } catch {
        // no termination message
      }
      r.child = undefined;
      r.ready = false;
      const terminated = {
        exitCode,
        reason: exitCode === 0 ? 'Completed' : 'Error',
        ...(message ? { message } : {}),
        startedAt: r.startedAt,
        finishedAt: new Date(),
      };
      this.log(`${key}: runtime exited ${exitCode}${message ? `: ${message}` : ''}`);
      if (r.stopping || this.stopped) return;
      // restartPolicy Always, with the kubelet's doubling back-off (capped lower: this is for tests).
      r.restarts++;
      r.lastTerminated = { terminated };
      const backoff = Math.min(30_000, 1000 * 2 ** Math.min(r.restarts - 1, 5));
      void this.patchStatus(
        r.pod,
        this.status(r, {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off ${backoff / 1000}s restarting failed container=runtime pod=${r.pod.metadata?.name}`,
          },
        }),
      );
      r.restartTimer = setTimeout(() => {
        if (!r.stopping && !this.stopped) this.run(r, env);
      }, backoff);
    });
  }

  private async probe(r: Running): Promise<void> {
    if (!r.child || r.stopping) return;
    let ready = false;
    try {
      const res = await fetch(`http://${r.ip}:${r.port}/v2/health/ready`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      ready = res.status === 200;
    } catch {
      ready = false;
    }
    if (ready !== r.ready && r.child && !r.stopping) {
      r.ready = ready;
      await this.patchStatus(r.pod, this.status(r, { running: { startedAt: r.startedAt } }));
    }
  }

  private status(r: Running, state: V1ContainerStatus['state']): V1Pod['status'] {
    const now = new Date();
    const c = r.pod.spec?.containers[0] as V1Container;
    const cond = (type: string, ok: boolean) => ({ type, status: ok ? 'True' : 'False', lastTransitionTime: now });
    return {
      phase: r.initialized ? 'Running' : 'Pending',
      hostIP: '127.0.0.1',
      hostIPs: [{ ip: '127.0.0.1' }],
      podIP: r.ip,
      podIPs: [{ ip: r.ip }],
      startTime: r.pod.status?.startTime ?? now,
      conditions: [
        cond('PodScheduled', true),
        cond('Initialized', r.initialized),
        cond('ContainersReady', r.ready),
        cond('Ready', r.ready),
      ],
      ...(r.initStatuses.length ? { initContainerStatuses: r.initStatuses } : {}),
      containerStatuses: [
        {
          name: c.name,
          image: c.image ?? '',
          imageID: `process://${RUNTIME_MAIN}`,
          containerID: `process://${r.child?.pid ?? 0}`,
          ready: r.ready,
          started: !!state?.running,
          restartCount: r.restarts,
          state,
          ...(r.lastTerminated ? { lastState: r.lastTerminated } : {}),
        },
      ],
    };
  }

  private async patchStatus(pod: V1Pod, status: V1Pod['status']): Promise<void> {
    try {
      await this.core.patchNamespacedPodStatus(
        { name: pod.metadata?.name as string, namespace: pod.metadata?.namespace as string, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      if ((err as { code?: number }).code !== 404) this.log(`${podKey(pod)}: status patch failed: ${(err as Error).message}`);
    }
  }

  /** preStop sleep, SIGTERM, wait up to the grace period (then SIGKILL), then remove the pod object. */
  private async terminate(r: Running, pod: V1Pod): Promise<void> {
    r.stopping = true;
    clearTimeout(r.restartTimer);
    clearInterval(r.probe);
    const key = podKey(pod);
    const grace = (pod.metadata?.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30) * 1000;
    const deadline = Date.now() + grace;
    const child = r.child;
    if (child) {
      const preStop = (pod.spec?.containers[0]?.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
      if (preStop > 0) await new Promise((res) => setTimeout(res, Math.min(preStop, grace)));
      const exited = new Promise<void>((res) =>
        child.exitCode !== null || child.signalCode !== null ? res() : child.once('exit', () => res()),
      );
      child.kill('SIGTERM');
      const left = Math.max(0, deadline - Date.now());
      const timer = setTimeout(() => child.kill('SIGKILL'), left);
      await exited;
      clearTimeout(timer);
    }
    // Sidecars stop after the runtime, as the kubelet stops them: its last records reach the recorder.
    await this.stopSidecars(r);
    this.pods.delete(key);
    this.releaseIp(r.ip);
    this.log(`${key}: stopped`);
    await this.finalDelete(pod);
  }

  private async finalDelete(pod: V1Pod): Promise<void> {
    try {
      await this.core.deleteNamespacedPod({
        name: pod.metadata?.name as string,
        namespace: pod.metadata?.namespace as string,
        gracePeriodSeconds: 0,
      });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) this.log(`${podKey(pod)}: final delete failed: ${(err as Error).message}`);
    }
  }

  /** Stops every process (SIGTERM, then SIGKILL after 10 s) and the heartbeat. The Node object stays. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.heartbeat);
    this.watchAbort?.abort();
    await Promise.all(
      [...this.pods.values()].map(async (r) => {
        clearTimeout(r.restartTimer);
        clearInterval(r.probe);
        const child = r.child;
        if (child) {
          const exited = new Promise<void>((res) => child.once('exit', () => res()));
          child.kill('SIGTERM');
          const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
          await exited;
          clearTimeout(t);
        }
        await this.stopSidecars(r);
        this.releaseIp(r.ip);
      }),
    );
  }

  private async stopSidecars(r: Running): Promise<void> {
    await Promise.all(
      r.sidecars.map(async (child) => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((res) => child.once('exit', () => res()));
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }),
    );
  }
}
