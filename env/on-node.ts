// What tests and the demo do with the real node: requests from inside its network namespace (where Service IPs
// are routed, as on any node), a bounded load from there, the operator installed by its chart, a port-forward.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SERVER_VERSION } from '../common/version.ts';
import type { EnvInfo } from './env.ts';
import { KAFKA_SASL_SECRET } from './info.ts';

const execFileAsync = promisify(execFile);
const NODE_LOAD = join(import.meta.dirname, 'node-load.ts');

/** A pod spec's placement on the real node (where pods go anyway: it pins them, as tests want). */
export const ON_REAL_NODE = { nodeSelector: { type: 'real' } };

/**
 * A client pod on the real node that meets Pod Security `restricted` and holds no token: the runtime image, idle, for
 * tests to run `kubectl exec <name> -- node -e …` requests from inside the cluster.
 */
export function clientPod(name = 'client') {
  return {
    metadata: { name },
    spec: {
      ...ON_REAL_NODE,
      automountServiceAccountToken: false,
      securityContext: { runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        {
          name: 'client',
          image: `modelship/runtime:${SERVER_VERSION}`,
          imagePullPolicy: 'Never',
          command: ['node', '-e', 'setInterval(() => {}, 3600000)'],
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
        },
      ],
    },
  };
}

function inNode(info: EnvInfo, args: string[]): string[] {
  if (!info.realNode) throw new Error('the environment has no real node (started with MODELSHIP_REAL_NODE=0?): env:down, then env:up');
  return [`--net=/run/netns/${info.realNode.netns}`, '--', process.execPath, NODE_LOAD, ...args];
}

/** One request from the node: its status, body (text) and x-request-id; with `token`, as its bearer. */
export async function fromNode(
  info: EnvInfo,
  url: string,
  body?: string,
  requestId?: string,
  token?: string,
): Promise<{ status: number; body: string; requestId?: string }> {
  const args = ['once', url, ...(body === undefined ? [] : [body]), ...(requestId ? [requestId] : [])];
  const { stdout } = await execFileAsync('nsenter', inNode(info, args), {
    timeout: 30_000,
    env: { ...process.env, NODE_LOAD_TOKEN: token ?? '' },
  });
  return JSON.parse(stdout);
}

export interface LoadCounts {
  ok: number;
  failed: number;
  errors: string[];
}

/** A load from the node: `connections` loops until stop() (or `maxMs`); stop() resolves with the counts. */
export function nodeLoad(info: EnvInfo, url: string, body: string, connections: number, maxMs: number): { stop(): Promise<LoadCounts> } {
  const run = execFileAsync('nsenter', inNode(info, ['load', url, body, String(connections), String(maxMs)]), { timeout: maxMs + 30_000 });
  return {
    async stop() {
      run.child.kill('SIGTERM'); // nsenter execs node: this load's own process
      return JSON.parse((await run).stdout) as LoadCounts;
    },
  };
}

/** `helm install` of the chart with the operator image built here, on the real node; resolves with its uninstall. */

/** Puts the environment's Kafka credentials for pods into each namespace's KAFKA_SASL_SECRET (idempotent). */
export function applyKafkaSaslSecret(info: EnvInfo, namespaces: string[]): void {
  const sasl = info.realNode?.kafkaSasl;
  if (!sasl) return;
  for (const namespace of namespaces) {
    execFileSync(info.binaries.kubectl, ['--kubeconfig', info.kubeconfig, 'apply', '-n', namespace, '-f', '-'], {
      input: JSON.stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: KAFKA_SASL_SECRET },
        stringData: { username: sasl.username, password: sasl.password },
      }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }
}

/** The chart's Kafka values for the environment: its Service name, and SASL when pods need it. */
export function kafkaValues(info: EnvInfo): Record<string, unknown> {
  return {
    bootstrapServers: [info.realNode?.kafkaBootstrap],
    ...(info.realNode?.kafkaSasl ? { sasl: { mechanism: info.realNode.kafkaSasl.mechanism, secret: KAFKA_SASL_SECRET } } : {}),
  };
}

export function installOperator(
  info: EnvInfo,
  release: string,
  namespace: string,
  watch: string[],
  extra: Record<string, unknown> = {},
): () => void {
  const values = {
    image: { repository: 'modelship/operator', tag: SERVER_VERSION, pullPolicy: 'Never' },
    watchNamespaces: watch,
    kafka: kafkaValues(info),
    ...ON_REAL_NODE,
    ...extra,
  };
  // The operator's own (its topic admin) and each model namespace's (its pods' recorders).
  applyKafkaSaslSecret(info, [namespace, ...watch]);
  const helm = (args: string[], input?: string) =>
    execFileSync(info.binaries.helm, [...args, '-n', namespace, '--kubeconfig', info.kubeconfig], {
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  const chart = join(import.meta.dirname, '..', 'charts', 'modelship');
  helm(['install', release, chart, '--skip-crds', '-f', '-', '--wait', '--timeout', '120s'], JSON.stringify(values));
  return () => {
    try {
      helm(['uninstall', release]);
    } catch {}
  };
}

/** Runs `command` (a kubectl port-forward) and resolves with the local port it reports, and a way to stop it. */
export function portForward(command: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ port: number; close: () => void }> {
  const pf: ChildProcess = spawn(command[0] as string, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      pf.kill();
      reject(new Error(`no port-forward after 20 s: ${text}`));
    }, 20_000);
    pf.stdout?.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /Forwarding from 127\.0\.0\.1:(\d+)/.exec(text);
      if (m) {
        clearTimeout(timer);
        resolve({ port: Number(m[1]), close: () => pf.kill() });
      }
    });
    pf.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`kubectl port-forward exited with ${code}: ${text}`));
    });
  });
}
