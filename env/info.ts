// What a running local environment is, for whoever uses it (the demo, the CLI, the tests, the benches): the
// record `env:up` writes to `.modelship/env.json` and removes on `env:down`. Light on purpose: the CLI reads
// it without loading the environment's machinery.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Binaries } from './build.ts';
import type { ProcessRecord } from './process.ts';

/** The bucket the environment's MinIO starts with. */
export const LOCAL_BUCKET = 'models';
/** The Secret (keys username, password) with the pods' Kafka credentials, as the chart's kafka.sasl.secret names it. */
export const KAFKA_SASL_SECRET = 'kafka-sasl';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Everything a test, the demo or a person needs to reach the environment. Written to `.modelship/env.json`. */
export interface EnvInfo {
  schemaVersion: 1;
  startedAt: string;
  root: string;
  kubernetesVersion: string;
  kubeconfig: string;
  apiServer: string;
  pki: { ca: string; adminCert: string; adminKey: string };
  /** Root keys (uploads), and `readOnly`: the keys pods get, which read every bucket and write none. */
  s3: { endpoint: string; region: string; accessKey: string; secretKey: string; readOnly?: { accessKey: string; secretKey: string } };
  kafka: { bootstrapServers: string[]; version: string };
  nodes: string[];
  /** The node whose pods are real runtime processes (taint modelship.dev/process-node=true:NoSchedule). */
  processNode: string;
  /**
   * The real node (kubelet + containerd; label type=real, no taint: pods go there unless they ask for another
   * node), in network namespace `netns`; absent when started with MODELSHIP_REAL_NODE=0. Pods reach MinIO,
   * Kafka and the package index by their Service names, and the API server at the node's address.
   */
  realNode?: {
    name: string;
    /** Kept for readers of an older env.json (the Python client's Client.local): the node has no taint now. */
    taint?: string;
    netns: string;
    nodeIp: string;
    podCidr: string;
    clusterDns: string;
    containerdSocket: string;
    /** MinIO, Kafka and the package index proxy as the node's pods reach them: by Service name. */
    s3Endpoint: string;
    kafkaBootstrap: string;
    /** Pods' Kafka needs these (SASL PLAIN); the host's loopback listener does not. */
    kafkaSasl?: { mechanism: 'PLAIN'; username: string; password: string };
    pythonIndexUrl: string;
    /** The StorageClass of the node's persistent volumes (env/volumes.ts). */
    storageClass: string;
    images: Record<string, string>;
  };
  /** The package index proxy (devpi-server) on loopback: its simple index URL. With the real node only. */
  pypi?: { indexUrl: string };
  binaries: Binaries;
  processes: Record<string, ProcessRecord>;
}

/** The in-cluster names of the environment's services (env/services.ts), as `examples/*.yaml` write them. */
export const CLUSTER_SERVICES = {
  minio: { name: 'minio', port: 9000, portName: 's3' },
  kafka: { name: 'kafka', port: 9092, portName: 'kafka' },
  pypi: { name: 'pypi', port: 80, portName: 'http' },
} as const;

export function envFile(): string {
  return process.env.MODELSHIP_ENV_FILE || join(REPO_ROOT, '.modelship', 'env.json');
}

export async function readEnv(file = envFile()): Promise<EnvInfo | undefined> {
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, 'utf8')) as EnvInfo;
}

export async function writeEnv(info: EnvInfo, file = envFile()): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  // Holds the S3 secret and paths to private keys: readable by the owner only.
  await writeFile(file, `${JSON.stringify(info, null, 2)}\n`, { mode: 0o600 });
}
