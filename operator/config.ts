// The operator's configuration (Helm values → environment). Pure.
export interface OperatorConfig {
  /** Default runtime image; a ModelServing may override it. */
  runtimeImage: string;
  /** Namespaces to watch; empty: all. */
  namespaces: string[];
  /** Size limit of the emptyDir the bundle is unpacked into. */
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
  kafkaBootstrapServers: string[];
}

export const DEFAULT_CONFIG: OperatorConfig = {
  runtimeImage: 'modelship/runtime:0.1.0',
  namespaces: [],
  bundleVolumeSize: '2Gi',
  preStopSeconds: 5,
  drainSeconds: 25,
  workers: 4,
  leaderElection: true,
  leaseNamespace: 'modelship-system',
  leaseName: 'modelship-operator',
  metricsPort: 8081,
  kafkaBootstrapServers: [],
};

export function loadOperatorConfig(env: Record<string, string | undefined> = process.env): OperatorConfig {
  const list = (v: string | undefined) =>
    v
      ? v
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : [];
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new Error(`${name} must be a whole number in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    return n;
  };
  return {
    runtimeImage: env.MODELSHIP_RUNTIME_IMAGE || DEFAULT_CONFIG.runtimeImage,
    namespaces: list(env.MODELSHIP_WATCH_NAMESPACES),
    bundleVolumeSize: env.MODELSHIP_BUNDLE_VOLUME_SIZE || DEFAULT_CONFIG.bundleVolumeSize,
    preStopSeconds: int('MODELSHIP_PRESTOP_SECONDS', DEFAULT_CONFIG.preStopSeconds, 0, 300),
    drainSeconds: int('MODELSHIP_DRAIN_SECONDS', DEFAULT_CONFIG.drainSeconds, 1, 3600),
    workers: int('MODELSHIP_OPERATOR_WORKERS', DEFAULT_CONFIG.workers, 1, 64),
    leaderElection: env.MODELSHIP_LEADER_ELECTION !== 'false',
    leaseNamespace: env.MODELSHIP_LEASE_NAMESPACE || env.POD_NAMESPACE || DEFAULT_CONFIG.leaseNamespace,
    leaseName: env.MODELSHIP_LEASE_NAME || DEFAULT_CONFIG.leaseName,
    metricsPort: int('MODELSHIP_OPERATOR_METRICS_PORT', DEFAULT_CONFIG.metricsPort, 0, 65535),
    kafkaBootstrapServers: list(env.MODELSHIP_KAFKA_BOOTSTRAP_SERVERS),
  };
}
