// The operator's configuration (Helm values → environment). Pure.
import { int as envInt, type KafkaSettings, kafkaSettings, list } from '../common/settings.ts';
import { SERVER_VERSION } from '../common/version.ts';

/**
 * Where Python bundles' requirements environments live: a pod's own emptyDir (the default), or a
 * PersistentVolumeClaim of that name in each model namespace (ReadWriteMany, shared by the pods of the
 * node or the cluster, so a second pod starts without installing). A hostPath is not offered: Pod
 * Security `restricted` forbids it.
 */
export type PythonEnvCache =
  | { kind: 'emptyDir'; sizeLimit: string }
  /** With `create`, the operator makes the claim in a model namespace that has none (never deletes it). */
  | {
      kind: 'pvc';
      claimName: string;
      create?: { storageClassName: string; size: string };
      /** Source builds (package build scripts) allowed with the shared cache writable; off by default. */
      allowBuilds?: boolean;
    };

export interface OperatorConfig {
  /** Default runtime image; a ModelServing may override it. */
  runtimeImage: string;
  /** The runtime image for `spec.bundle.format: python` (the runtime plus CPython, uv and the base stack). */
  runtimePythonImage: string;
  pythonEnvCache: PythonEnvCache;
  /** The package index Python bundles' requirements.txt install from; unset: the runtime's default (PyPI). */
  pythonIndexUrl: string | undefined;
  /** requirements.txt may name its own index, find-links and URLs (refused by default). */
  pythonAllowIndexOptions: boolean;
  /** A Secret (key `url`) in each model namespace with the index URL (credentials in it): prepare reads it. */
  pythonIndexUrlSecret: string | undefined;
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  /**
   * This operator's name (the Helm release). Watching all namespaces, it leaves alone a namespace labeled
   * modelship.dev/operator=<another name>: that namespace belongs to another operator (a second release).
   */
  name: string;
  /**
   * Size limit of the emptyDir the bundle is fetched and unpacked into. It also sets the largest bundle the prepare
   * step takes (about half of it: the archive and its files are both there while it unpacks), so a bundle too large
   * is refused with its error instead of the pod being evicted (desired/deployment.ts maxBundleBytes).
   */
  bundleVolumeSize: string;
  /** Seconds the pod waits after SIGTERM is due before the runtime drains (endpoints propagation). */
  preStopSeconds: number;
  /** Bound on the runtime's drain after SIGTERM. */
  drainSeconds: number;
  workers: number;
  leaderElection: boolean;
  leaseNamespace: string;
  leaseName: string;
  metricsPort: number;
  /** The operator's own connection to Kafka (topic management); unset: no Kafka. */
  kafka: KafkaSettings | undefined;
  /** Secret (keys username, password) the runtime pods read SASL credentials from, in their own namespace. */
  kafkaSaslSecret: string | undefined;
  /**
   * The ClusterRoleBinding (to system:auth-delegator) the operator adds each namespace's modelship-auth ServiceAccount
   * to, for models with spec.auth mode kubernetes (chart: auth.kubernetes); unset: such models are refused.
   */
  authBinding: string | undefined;
  /** Secret (key ca.crt) the runtime pods read the Kafka CA from, in their own namespace. */
  kafkaTlsCaSecret: string | undefined;
  /** Partitions and replication factor of topics made for `topic: CREATE`. */
  topicPartitions: number;
  topicReplicationFactor: number;
  /** How long a finalizer keeps trying to delete a topic before it gives up (with an Event) and lets go. */
  topicDeleteTimeoutSeconds: number;
  /** While inference logging is not ready (topic missing, Kafka down), how often to look again. */
  loggingRecheckSeconds: number;
}

export const DEFAULT_CONFIG: OperatorConfig = {
  runtimeImage: `modelship/runtime:${SERVER_VERSION}`,
  runtimePythonImage: `modelship/runtime-python:${SERVER_VERSION}`,
  pythonEnvCache: { kind: 'emptyDir', sizeLimit: '4Gi' },
  pythonIndexUrl: undefined,
  pythonAllowIndexOptions: false,
  pythonIndexUrlSecret: undefined,
  namespaces: [],
  name: 'modelship',
  bundleVolumeSize: '2Gi',
  preStopSeconds: 5,
  drainSeconds: 25,
  workers: 4,
  leaderElection: true,
  leaseNamespace: 'modelship-system',
  leaseName: 'modelship-operator',
  metricsPort: 8081,
  kafka: undefined,
  kafkaSaslSecret: undefined,
  authBinding: undefined,
  kafkaTlsCaSecret: undefined,
  topicPartitions: 3,
  topicReplicationFactor: 1,
  topicDeleteTimeoutSeconds: 120,
  loggingRecheckSeconds: 30,
};

export function loadOperatorConfig(env: Record<string, string | undefined> = process.env): OperatorConfig {
  const int = (name: string, fallback: number, min: number, max: number) => envInt(env, name, fallback, min, max);
  const kafka = kafkaSettings(env);
  const kafkaSaslSecret = env.MODELSHIP_KAFKA_SASL_SECRET || undefined;
  // The operator's own credentials never go into pod specs: the pods need a Secret of their own to refer to.
  if (kafka?.sasl && !kafkaSaslSecret) {
    throw new Error('MODELSHIP_KAFKA_SASL_MECHANISM is set but MODELSHIP_KAFKA_SASL_SECRET (the Secret runtime pods read) is not');
  }
  return {
    runtimeImage: env.MODELSHIP_RUNTIME_IMAGE || DEFAULT_CONFIG.runtimeImage,
    runtimePythonImage: env.MODELSHIP_RUNTIME_PYTHON_IMAGE || DEFAULT_CONFIG.runtimePythonImage,
    pythonEnvCache: pythonEnvCache(env),
    pythonIndexUrl: env.MODELSHIP_PYTHON_INDEX_URL || undefined,
    pythonAllowIndexOptions: env.MODELSHIP_PYTHON_ALLOW_INDEX_OPTIONS === 'true',
    pythonIndexUrlSecret: env.MODELSHIP_PYTHON_INDEX_URL_SECRET || undefined,
    namespaces: list(env.MODELSHIP_WATCH_NAMESPACES),
    name: env.MODELSHIP_OPERATOR_NAME || DEFAULT_CONFIG.name,
    bundleVolumeSize: bundleVolumeSize(env.MODELSHIP_BUNDLE_VOLUME_SIZE || DEFAULT_CONFIG.bundleVolumeSize),
    preStopSeconds: int('MODELSHIP_PRESTOP_SECONDS', DEFAULT_CONFIG.preStopSeconds, 0, 300),
    drainSeconds: int('MODELSHIP_DRAIN_SECONDS', DEFAULT_CONFIG.drainSeconds, 1, 3600),
    workers: int('MODELSHIP_OPERATOR_WORKERS', DEFAULT_CONFIG.workers, 1, 64),
    leaderElection: env.MODELSHIP_LEADER_ELECTION !== 'false',
    leaseNamespace: env.MODELSHIP_LEASE_NAMESPACE || env.POD_NAMESPACE || DEFAULT_CONFIG.leaseNamespace,
    leaseName: env.MODELSHIP_LEASE_NAME || DEFAULT_CONFIG.leaseName,
    metricsPort: int('MODELSHIP_OPERATOR_METRICS_PORT', DEFAULT_CONFIG.metricsPort, 0, 65535),
    kafka,
    kafkaSaslSecret,
    authBinding: env.MODELSHIP_AUTH_BINDING || undefined,
    kafkaTlsCaSecret: env.MODELSHIP_KAFKA_TLS_CA_SECRET || undefined,
    topicPartitions: int('MODELSHIP_KAFKA_TOPIC_PARTITIONS', DEFAULT_CONFIG.topicPartitions, 1, 10_000),
    topicReplicationFactor: int('MODELSHIP_KAFKA_TOPIC_REPLICATION_FACTOR', DEFAULT_CONFIG.topicReplicationFactor, 1, 32),
    topicDeleteTimeoutSeconds: int('MODELSHIP_TOPIC_DELETE_TIMEOUT_SECONDS', DEFAULT_CONFIG.topicDeleteTimeoutSeconds, 0, 86_400),
    loggingRecheckSeconds: int('MODELSHIP_LOGGING_RECHECK_SECONDS', DEFAULT_CONFIG.loggingRecheckSeconds, 1, 3600),
  };
}

const QUANTITY = /^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$/;
const QUANTITY_UNITS: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** Bytes of a storage quantity (`2Gi`, `500M`, `1.5Gi`), whole; NaN when it is not one of the forms QUANTITY takes. */
export function quantityBytes(quantity: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(quantity);
  if (!m) return Number.NaN;
  return Math.floor(Number(m[1]) * (QUANTITY_UNITS[m[2] ?? ''] as number));
}

/** The smallest work volume: room for the reserve and a bundle of a few MiB (deployment.ts WORK_VOLUME_RESERVE_BYTES). */
export const MIN_BUNDLE_VOLUME_BYTES = 256 * 2 ** 20;

function bundleVolumeSize(raw: string): string {
  const bytes = quantityBytes(raw);
  if (!(bytes >= MIN_BUNDLE_VOLUME_BYTES)) {
    throw new Error(`MODELSHIP_BUNDLE_VOLUME_SIZE must be a quantity of at least 256Mi such as 2Gi, got ${JSON.stringify(raw)}`);
  }
  return raw;
}
const DNS_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * MODELSHIP_PYTHON_ENV_CACHE: `emptyDir` (with MODELSHIP_PYTHON_ENV_CACHE_SIZE) or `pvc:<claim name>`; with a
 * claim, MODELSHIP_PYTHON_ENV_CACHE_STORAGE_CLASS has the operator create it where missing, of
 * MODELSHIP_PYTHON_ENV_CACHE_SIZE (default 20Gi).
 */
function pythonEnvCache(env: Record<string, string | undefined>): PythonEnvCache {
  const raw = env.MODELSHIP_PYTHON_ENV_CACHE || 'emptyDir';
  if (raw === 'emptyDir') {
    const sizeLimit = env.MODELSHIP_PYTHON_ENV_CACHE_SIZE || '4Gi';
    if (!QUANTITY.test(sizeLimit))
      throw new Error(`MODELSHIP_PYTHON_ENV_CACHE_SIZE must be a quantity such as 4Gi, got ${JSON.stringify(sizeLimit)}`);
    return { kind: 'emptyDir', sizeLimit };
  }
  const claimName = raw.startsWith('pvc:') ? raw.slice(4) : '';
  if (!DNS_NAME.test(claimName)) {
    throw new Error(`MODELSHIP_PYTHON_ENV_CACHE must be emptyDir or pvc:<claim name>, got ${JSON.stringify(raw)}`);
  }
  const builds = env.MODELSHIP_PYTHON_ENV_CACHE_ALLOW_BUILDS === 'true' ? { allowBuilds: true } : {};
  const storageClassName = env.MODELSHIP_PYTHON_ENV_CACHE_STORAGE_CLASS;
  if (!storageClassName) return { kind: 'pvc', claimName, ...builds };
  if (!DNS_NAME.test(storageClassName)) {
    throw new Error(`MODELSHIP_PYTHON_ENV_CACHE_STORAGE_CLASS must be a storage class name, got ${JSON.stringify(storageClassName)}`);
  }
  const size = env.MODELSHIP_PYTHON_ENV_CACHE_SIZE || '20Gi';
  if (!QUANTITY.test(size)) throw new Error(`MODELSHIP_PYTHON_ENV_CACHE_SIZE must be a quantity such as 20Gi, got ${JSON.stringify(size)}`);
  return { kind: 'pvc', claimName, create: { storageClassName, size }, ...builds };
}
