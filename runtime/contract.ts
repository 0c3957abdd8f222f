// The runtime's contract with whoever starts it (the operator, the CLI, a test): environment variable names,
// their defaults and the ports. The operator imports this module to build pod specs; this module imports
// nothing from the operator.

/** Bundle formats, one engine each. */
export const BUNDLE_FORMATS = ['js', 'onnx', 'python'] as const;
export type BundleFormat = (typeof BUNDLE_FORMATS)[number];

/** The uid and gid the runtime runs as in pods (the images' nonroot user); volumes a pod writes are owned by it. */
export const RUNTIME_UID = 65532;
/** The recorder sidecar's uid (in the runtime's group, which may use its socket): not the runtime's, so bundle code
 * cannot read its environment (the Kafka credentials). */
export const RECORDER_UID = 65533;
/** The auth sidecar's uid: it alone reads the token (or keys) it checks callers with. */
export const AUTH_UID = 65531;
/** The HTTP port for inference, health and metrics. */
export const HTTP_PORT = 8080;
/** The OIP gRPC port (inference.GRPCInferenceService and grpc.health.v1). */
export const GRPC_PORT = 8081;
/**
 * The health and metrics port: liveness, readiness and /metrics on a listener of their own, so a flood of
 * inference requests (or their authentication) never stands between the kubelet or Prometheus and an answer.
 */
export const HEALTH_PORT = 8082;

/** Paths inside the runtime container. The operator mounts an emptyDir at WORK_DIR (root FS is read-only). */
export const PATHS = {
  workDir: '/var/lib/modelship',
  /** The volume the runtime and the recorder sidecar share, and the socket in it. */
  recorderDir: '/var/run/modelship',
  recorderSocket: '/var/run/modelship/recorder.sock',
  authSocket: '/var/run/modelship/auth.sock',
  /** The API keys' Secret, in the auth sidecar only. */
  authKeysDir: '/var/run/secrets/modelship/api-keys',
  terminationLog: '/dev/termination-log',
  s3SecretDir: '/var/run/secrets/modelship/storage',
  /** Requirements environments of Python bundles, keyed by content; the operator mounts a volume here. */
  pythonEnvDir: '/var/cache/modelship/python-envs',
} as const;

/** What an `x-request-id` (and a feedback `id`) may be; anything else gets a generated id. */
export const REQUEST_ID_PATTERN = '^[A-Za-z0-9._:@/+=-]{1,128}$';

/**
 * The caller's remaining time in milliseconds (an HTTP header, or gRPC metadata). It bounds how long the request
 * waits and whether its answer is still wanted; it never cuts short work already running (that is the server's own
 * timeout). Composing models send it to their dependencies.
 */
export const TIMEOUT_HEADER = 'x-modelship-timeout-ms';

/**
 * A model's bearer token (spec.auth) for callers whose Authorization header a proxy keeps for itself (the API
 * server's service proxy): `x-modelship-authorization: Bearer <token>`.
 */
export const FORWARDED_AUTH_HEADER = 'x-modelship-authorization';

/** Where a dependency (spec.dependencies) is served: its Service's base URL and the name its runtime serves. */
export interface DependencyTarget {
  url: string;
  model: string;
  /** The ModelServing (same namespace), for messages. */
  modelServing: string;
}

/** HTTP endpoints the operator points its probes at. */
export const PROBES = {
  live: '/v2/health/live',
  ready: '/v2/health/ready',
} as const;

/** Environment variables the runtime reads. */
export const ENV = {
  modelName: 'MODELSHIP_MODEL_NAME',
  modelVersion: 'MODELSHIP_MODEL_VERSION',
  namespace: 'MODELSHIP_NAMESPACE',
  bundleUri: 'MODELSHIP_BUNDLE_URI',
  bundleSha256: 'MODELSHIP_BUNDLE_SHA256',
  s3Endpoint: 'MODELSHIP_S3_ENDPOINT',
  s3Region: 'MODELSHIP_S3_REGION',
  s3AccessKey: 'MODELSHIP_S3_ACCESS_KEY',
  s3SecretKey: 'MODELSHIP_S3_SECRET_KEY',
  /** Files holding the keys (a Secret mounted as a volume); used when the plain variables are unset. */
  s3AccessKeyFile: 'MODELSHIP_S3_ACCESS_KEY_FILE',
  s3SecretKeyFile: 'MODELSHIP_S3_SECRET_KEY_FILE',
  /** JSON: dependency name → {url, model, modelServing} (spec.dependencies, resolved by the operator). */
  dependencies: 'MODELSHIP_DEPENDENCIES',
  host: 'MODELSHIP_HOST',
  port: 'MODELSHIP_PORT',
  /** The gRPC port (the images and the operator set GRPC_PORT); unset: an ephemeral port, logged. */
  grpcPort: 'MODELSHIP_GRPC_PORT',
  /** The health and metrics listener's port (the operator sets HEALTH_PORT); unset: an ephemeral port, logged. */
  healthPort: 'MODELSHIP_HEALTH_PORT',
  // Admission control (spec.runtime.admission; unset: derived from the engine)
  /** Requests the engine runs at once; beyond it they wait. 0: from the engine (workers, threads, pipeline). */
  maxConcurrency: 'MODELSHIP_MAX_CONCURRENCY',
  /** Most requests waiting for the engine; beyond it (or past the expected-wait bound) a request gets 503 at once. */
  maxQueue: 'MODELSHIP_MAX_QUEUE',
  /** Longest a request waits for the engine before it gets 503 (and what the queue is sized to). */
  maxQueueWaitMs: 'MODELSHIP_MAX_QUEUE_WAIT_MS',
  /** Workers the server's own timeout may kill per minute; beyond it a timed-out call runs on, its answer dropped. */
  timeoutKillsPerMinute: 'MODELSHIP_TIMEOUT_KILLS_PER_MINUTE',
  workDir: 'MODELSHIP_WORK_DIR',
  logLevel: 'MODELSHIP_LOG_LEVEL',
  workers: 'MODELSHIP_WORKERS',
  requestTimeoutMs: 'MODELSHIP_REQUEST_TIMEOUT_MS',
  initTimeoutMs: 'MODELSHIP_INIT_TIMEOUT_MS',
  drainTimeoutMs: 'MODELSHIP_DRAIN_TIMEOUT_MS',
  bodyLimitBytes: 'MODELSHIP_BODY_LIMIT_BYTES',
  fetchTimeoutMs: 'MODELSHIP_FETCH_TIMEOUT_MS',
  maxBundleBytes: 'MODELSHIP_MAX_BUNDLE_BYTES',
  maxBundleEntries: 'MODELSHIP_MAX_BUNDLE_ENTRIES',
  maxCompressionRatio: 'MODELSHIP_MAX_COMPRESSION_RATIO',
  terminationLog: 'MODELSHIP_TERMINATION_LOG',
  // Inference logging, feedback records and plugin events (Kafka)
  /** Comma-separated host:port list; unset: no Kafka (records and events are not produced). */
  kafkaBootstrapServers: 'MODELSHIP_KAFKA_BOOTSTRAP_SERVERS',
  /** "true": connect with TLS. */
  kafkaTls: 'MODELSHIP_KAFKA_TLS',
  /** PEM CA bundle for TLS (content, usually from a Secret or ConfigMap key); unset: the system CAs. */
  kafkaTlsCa: 'MODELSHIP_KAFKA_TLS_CA',
  /** PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512; unset: no SASL. */
  kafkaSaslMechanism: 'MODELSHIP_KAFKA_SASL_MECHANISM',
  kafkaSaslUsername: 'MODELSHIP_KAFKA_SASL_USERNAME',
  kafkaSaslPassword: 'MODELSHIP_KAFKA_SASL_PASSWORD',
  /** The resolved inference-logging topic; unset: no inference or feedback records. */
  inferenceLogTopic: 'MODELSHIP_INFERENCE_LOG_TOPIC',
  /** all | predictions | inputs */
  inferenceLogMode: 'MODELSHIP_INFERENCE_LOG_MODE',
  /** 0..1: the share of requests that get a record. */
  inferenceLogSampleRate: 'MODELSHIP_INFERENCE_LOG_SAMPLE_RATE',
  /** Bound on the bytes of records waiting for Kafka; beyond it new records are dropped (and counted). */
  inferenceLogBufferBytes: 'MODELSHIP_INFERENCE_LOG_BUFFER_BYTES',
  /** Bound on flushing waiting records at shutdown. */
  inferenceLogFlushTimeoutMs: 'MODELSHIP_INFERENCE_LOG_FLUSH_TIMEOUT_MS',
  /** Comma-separated topics the plugin may publish events to; no others. */
  eventTopics: 'MODELSHIP_EVENT_TOPICS',
  // Adaptive batching (set from spec.batching; unset: the manifest's batching, if any)
  /** Most rows per engine call; 1 turns batching off. */
  batchMaxSize: 'MODELSHIP_BATCH_MAX_SIZE',
  /** How long a request waits for others to join its batch. */
  batchMaxLatencyMs: 'MODELSHIP_BATCH_MAX_LATENCY_MS',
  // Python bundles
  /** The interpreter that runs Python workers (default: python3 on PATH). */
  python: 'MODELSHIP_PYTHON',
  /** The uv binary that installs a bundle's requirements.txt (default: uv on PATH). */
  uv: 'MODELSHIP_UV',
  /** Cache of requirements environments, keyed by sha256(python, platform, index, requirements). */
  pythonEnvDir: 'MODELSHIP_PYTHON_ENV_DIR',
  /** The package index requirements are installed from (default: uv's, PyPI); `wheels/` in a bundle needs none. */
  pythonIndexUrl: 'MODELSHIP_PYTHON_INDEX_URL',
  /** Bound on installing one bundle's requirements. */
  pythonInstallTimeoutMs: 'MODELSHIP_PYTHON_INSTALL_TIMEOUT_MS',
  /** `true`: requirements.txt may name its own index, find-links and URLs (an administrator's choice). */
  pythonAllowIndexOptions: 'MODELSHIP_PYTHON_ALLOW_INDEX_OPTIONS',
  /** `true`: install wheels only, never build from source (a cache shared by pods: no build script runs with it). */
  pythonNoBuild: 'MODELSHIP_PYTHON_NO_BUILD',
  /**
   * The recorder sidecar's Unix socket: the runtime hands it inference records and events there instead of holding
   * Kafka credentials itself (runtime/inference-log/recorder-sidecar.ts). The sidecar listens on it.
   */
  recorderSocket: 'MODELSHIP_RECORDER_SOCKET',
  /** spec.auth: kubernetes | apiKeys; unset: no authentication. The runtime and the auth sidecar read it. */
  authMode: 'MODELSHIP_AUTH_MODE',
  /** The auth sidecar's Unix socket (runtime/auth/sidecar.ts): the runtime asks it whether a caller may go on. */
  authSocket: 'MODELSHIP_AUTH_SOCKET',
  /** apiKeys: the directory of the mounted Secret whose values are the keys (the auth sidecar only). */
  authKeysDir: 'MODELSHIP_AUTH_KEYS_DIR',
  /**
   * `true`: the prepare init container has fetched, verified and unpacked the bundle into the work directory and
   * built its Python environment; this process only loads them (and holds no storage credentials).
   */
  bundlePrepared: 'MODELSHIP_BUNDLE_PREPARED',
  /** The container's CPU limit in whole CPUs (rounded up), set by the operator; the default worker count. */
  cpuLimit: 'MODELSHIP_CPU_LIMIT',
  // Batch prediction (a BatchPrediction's plan Job and shard Job)
  /** JSON, a BatchJobSpec: the input, the output, the column mapping and the sizes (never credentials). */
  batchSpec: 'MODELSHIP_BATCH_SPEC',
  /** The model's Unix socket in a shard pod: the runtime in batch mode listens there, the batch driver calls it. */
  batchSocket: 'MODELSHIP_BATCH_SOCKET',
  /** The shard this pod runs: the Indexed Job's completion index (Kubernetes sets it in every container). */
  jobCompletionIndex: 'JOB_COMPLETION_INDEX',
} as const;

export type EnvName = (typeof ENV)[keyof typeof ENV];

/** Defaults the runtime applies when a variable is unset. */
export const DEFAULTS = {
  host: '0.0.0.0',
  port: HTTP_PORT,
  logLevel: 'info',
  workers: 0,
  requestTimeoutMs: 30_000,
  initTimeoutMs: 300_000,
  drainTimeoutMs: 25_000,
  bodyLimitBytes: 16 * 1024 * 1024,
  fetchTimeoutMs: 300_000,
  /** Requests in flight for engines that run calls in the server's own thread (no capacity of their own). */
  inProcessConcurrency: 64,
  maxQueueWaitMs: 1_000,
  /** 0: sized by the wait bound alone (a request is let in to wait only if its expected wait fits), at most 1024. */
  maxQueue: 0,
  timeoutKillsPerMinute: 6,
  maxBundleBytes: 4 * 1024 * 1024 * 1024,
  maxBundleEntries: 10_000,
  maxCompressionRatio: 200,
  s3Region: 'us-east-1',
  inferenceLogMode: 'all',
  inferenceLogSampleRate: 1,
  inferenceLogBufferBytes: 16 * 1024 * 1024,
  inferenceLogFlushTimeoutMs: 5_000,
  python: 'python3',
  uv: 'uv',
  pythonInstallTimeoutMs: 600_000,
} as const;

/**
 * Batch prediction. A BatchPrediction runs as two Jobs of the runtime image:
 * - the plan Job (one pod, container `plan`, `main.ts batch-plan`): lists the input, reads Parquet footers, cuts the
 *   rows into shards and writes the plan under the output (`<output>/_modelship/plan.json`); its termination message
 *   is a BatchPlanReport;
 * - the shard Job (Indexed, completions = the plan's shards): an init container fetches the bundle (`prepare`, as
 *   for serving); the model runs as a native sidecar (`model`, `main.ts batch-model`, no storage credentials,
 *   listening on BATCH.socket); the driver (`driver`, `main.ts batch-run`) holds the input and output
 *   credentials, reads its shard, sends fixed-size batches to the model and writes the parts. Its termination
 *   message is a BatchShardReport.
 */
export const BATCH = {
  /** The volume the driver and the model share (an emptyDir) and the model's socket in it. */
  socketDir: '/var/run/modelship-batch',
  socket: '/var/run/modelship-batch/model.sock',
  /** Input and output credentials (a Secret's accessKey/secretKey mounted as files), in the driver and plan only. */
  inputSecretDir: '/var/run/secrets/modelship/batch-input',
  outputSecretDir: '/var/run/secrets/modelship/batch-output',
  /** The driver's exit code when its shard cannot succeed by retrying (a malformed file, too many refused rows). */
  terminalExitCode: 3,
  /** Under the output prefix: the plan and each finished shard's marker. */
  metaDir: '_modelship',
  containers: { plan: 'plan', model: 'model', driver: 'driver' },
} as const;

export const BATCH_FORMATS = ['parquet', 'csv', 'jsonl'] as const;
export type BatchFormat = (typeof BATCH_FORMATS)[number];

/** Where batch data lives: an object-store URI (s3://bucket/prefix, a glob in the last part allowed) or a local path. */
export interface BatchLocation {
  uri: string;
  /** Unset: from the files' extension (input), the input's (output). */
  format?: BatchFormat | undefined;
  /** S3-compatible storage; the keys are files in `credentialsDir` (accessKey, secretKey), never in this JSON. */
  storage?: { endpoint: string; region?: string | undefined; credentialsDir?: string | undefined } | undefined;
}

/** What the plan and shard containers are given (ENV.batchSpec). */
export interface BatchJobSpec {
  /**
   * What scores the rows, as an identity (the bundle's URI and sha256): part of the plan's fingerprint, so an output
   * holding another model's finished shards is never taken as this run's.
   */
  model?: string | undefined;
  input: BatchLocation;
  output: BatchLocation;
  /** Model input → the column (or columns, in order, for a vector input) it takes; unset: inputs named as columns. */
  columns?: Record<string, string | string[]> | undefined;
  /** Input columns copied onto every output row; unset: the row's index in its file (`_file`, `_row`). */
  keyColumns?: string[] | undefined;
  /** Rows per model call. */
  batchSize: number;
  /** Rows a shard may have refused (written to its errors part) before the shard fails. */
  maxRowErrors: number;
  /** The most rows in a shard: a Parquet file with more is split into shards of whole row groups. */
  rowsPerShard: number;
  /**
   * Shards run at once: the rows are cut into at least this many shards where they allow (each at most
   * rowsPerShard), so every pod starts once rather than in waves.
   */
  parallelism?: number | undefined;
}

/** The plan container's termination message (one JSON line). */
export interface BatchPlanReport {
  shards: number;
  rows: number;
  files: number;
  code?: string;
  message?: string;
}

/** A shard's termination message (one JSON line): what it wrote, or why it failed (a coded reason). */
export interface BatchShardReport {
  shard: number;
  rows: number;
  errorRows: number;
  seconds: number;
  /** The shard had finished in an earlier run (its marker was there): nothing was redone. */
  skipped?: boolean;
  code?: string;
  message?: string;
}

export const INFERENCE_LOG_MODES = ['all', 'predictions', 'inputs'] as const;
export type InferenceLogMode = (typeof INFERENCE_LOG_MODES)[number];
export const KAFKA_SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const;
export type KafkaSaslMechanism = (typeof KAFKA_SASL_MECHANISMS)[number];
