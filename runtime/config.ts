// The runtime's configuration, read from the environment (names in contract.ts). Pure apart from reading
// credential files; errors are MS_ERR_CONFIG_INVALID naming the variable (never its value when secret).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULTS, ENV, INFERENCE_LOG_MODES, type InferenceLogMode, PATHS } from './contract.ts';
import { bool, type Env, int, type KafkaSettings, kafkaSettings, list } from '../common/settings.ts';
import { msError } from './errors.ts';
import type { BatchingSettings } from './batching.ts';
import type { S3Settings } from './bundle/fetch.ts';
import type { PythonSettings } from './engines/python/index.ts';
import type { DependencyTarget } from './contract.ts';
import type { AdmissionConfig } from './dataplane.ts';
import { parseDependencies } from './dependencies.ts';

export interface RuntimeConfig {
  modelName: string;
  modelVersion: string | undefined;
  namespace: string | undefined;
  bundleUri: string;
  bundleSha256: string | undefined;
  /** The prepare init container has fetched and unpacked the bundle (and built its environment). */
  bundlePrepared: boolean;
  s3: S3Settings;
  host: string;
  port: number;
  grpcPort: number;
  healthPort: number;
  /** Admission control's bounds (0: from the engine / by the wait bound). */
  admission: AdmissionConfig;
  /** Workers the server's own timeout may kill per minute. */
  timeoutKillsPerMinute: number;
  workDir: string;
  logLevel: string;
  workers: number;
  requestTimeoutMs: number;
  initTimeoutMs: number;
  drainTimeoutMs: number;
  bodyLimitBytes: number;
  fetchTimeoutMs: number;
  maxBundleBytes: number;
  maxBundleEntries: number;
  maxCompressionRatio: number;
  terminationLog: string;
  /** Unset when no Kafka is configured. */
  kafka: KafkaSettings | undefined;
  /** The recorder sidecar's socket: records and events go there (it holds the Kafka credentials), not to Kafka. */
  recorderSocket: string | undefined;
  /** spec.auth is on: the auth sidecar's socket, which every inference request is checked with. */
  authSocket: string | undefined;
  /** A BatchPrediction's model sidecar: listen on this Unix socket (the batch protocol), not on ports. */
  batchSocket: string | undefined;
  inferenceLog: InferenceLogSettings;
  /** Topics the plugin may publish events to. */
  eventTopics: string[];
  /** Adaptive batching from the ModelServing; unset: the manifest's. */
  batching: BatchingSettings | undefined;
  /** Whole CPUs of the container's limit, when the operator passes it. */
  cpuLimit: number | undefined;
  python: PythonSettings;
  /** spec.dependencies as the operator resolved them: name → the Service to call. */
  dependencies: Record<string, DependencyTarget>;
}

export interface InferenceLogSettings {
  /** Unset: inference logging is off. */
  topic: string | undefined;
  mode: InferenceLogMode;
  sampleRate: number;
  bufferBytes: number;
  flushTimeoutMs: number;
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);
const NAME = /^[a-z0-9]([-a-z0-9_.]{0,61}[a-z0-9])?$/;

function secret(env: Env, name: string, fileVar: string): string | undefined {
  const direct = env[name];
  if (direct) return direct.trim();
  const file = env[fileVar];
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw msError('MS_ERR_CONFIG_INVALID', {
      detail: `${fileVar} points at ${file}, which cannot be read (${(err as NodeJS.ErrnoException).code})`,
    });
  }
}

const TOPIC = /^[a-zA-Z0-9._-]{1,249}$/;

function topicName(name: string, value: string): string {
  if (!TOPIC.test(value) || value === '.' || value === '..') {
    throw msError('MS_ERR_CONFIG_INVALID', {
      detail: `${name}: ${JSON.stringify(value)} is not a Kafka topic name (letters, digits, ".", "_", "-"; at most 249)`,
    });
  }
  return value;
}

function inferenceLogSettings(env: Env): InferenceLogSettings {
  const topic = env[ENV.inferenceLogTopic] || undefined;
  const mode = env[ENV.inferenceLogMode] || DEFAULTS.inferenceLogMode;
  if (!(INFERENCE_LOG_MODES as readonly string[]).includes(mode)) {
    throw msError('MS_ERR_CONFIG_INVALID', {
      detail: `${ENV.inferenceLogMode} must be one of ${INFERENCE_LOG_MODES.join(', ')}, got ${JSON.stringify(mode)}`,
    });
  }
  const rawRate = env[ENV.inferenceLogSampleRate];
  const sampleRate = rawRate === undefined || rawRate === '' ? DEFAULTS.inferenceLogSampleRate : Number(rawRate);
  if (!Number.isFinite(sampleRate) || sampleRate < 0 || sampleRate > 1) {
    throw msError('MS_ERR_CONFIG_INVALID', {
      detail: `${ENV.inferenceLogSampleRate} must be a number in [0, 1], got ${JSON.stringify(rawRate)}`,
    });
  }
  return {
    topic: topic === undefined ? undefined : topicName(ENV.inferenceLogTopic, topic),
    mode: mode as InferenceLogMode,
    sampleRate,
    bufferBytes: int(env, ENV.inferenceLogBufferBytes, DEFAULTS.inferenceLogBufferBytes, 64 * 1024),
    flushTimeoutMs: int(env, ENV.inferenceLogFlushTimeoutMs, DEFAULTS.inferenceLogFlushTimeoutMs, 0),
  };
}

export function loadConfig(env: Env = process.env, overrides: Partial<RuntimeConfig> = {}): RuntimeConfig {
  const bundleUri = overrides.bundleUri ?? env[ENV.bundleUri];
  if (!bundleUri) throw msError('MS_ERR_CONFIG_INVALID', { detail: `${ENV.bundleUri} is not set` });
  const modelName = overrides.modelName ?? env[ENV.modelName] ?? 'model';
  if (!NAME.test(modelName)) {
    throw msError('MS_ERR_CONFIG_INVALID', {
      detail: `${ENV.modelName} ${JSON.stringify(modelName)} must be lower-case letters, digits, '-', '_' or '.'`,
    });
  }
  const sha = (overrides.bundleSha256 ?? env[ENV.bundleSha256])?.toLowerCase() || undefined;
  if (sha !== undefined && !/^[0-9a-f]{64}$/.test(sha)) {
    throw msError('MS_ERR_CONFIG_INVALID', { detail: `${ENV.bundleSha256} must be 64 hex digits` });
  }
  const logLevel = env[ENV.logLevel] ?? DEFAULTS.logLevel;
  if (!LEVELS.has(logLevel)) {
    throw msError('MS_ERR_CONFIG_INVALID', { detail: `${ENV.logLevel} must be one of ${[...LEVELS].join(', ')}` });
  }
  const endpoint = env[ENV.s3Endpoint] || undefined;
  if (endpoint !== undefined) {
    let u: URL | undefined;
    try {
      u = new URL(endpoint);
    } catch {
      u = undefined;
    }
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) {
      throw msError('MS_ERR_CONFIG_INVALID', { detail: `${ENV.s3Endpoint} must be an http:// or https:// URL` });
    }
  }
  const s3: S3Settings = {
    region: env[ENV.s3Region] || DEFAULTS.s3Region,
    ...(endpoint ? { endpoint } : {}),
  };
  const accessKey = secret(env, ENV.s3AccessKey, ENV.s3AccessKeyFile);
  const secretKey = secret(env, ENV.s3SecretKey, ENV.s3SecretKeyFile);
  if (accessKey) s3.accessKey = accessKey;
  if (secretKey) s3.secretKey = secretKey;

  const port = overrides.port ?? int(env, ENV.port, DEFAULTS.port, 0, 65535);
  return {
    modelName,
    modelVersion: overrides.modelVersion ?? (env[ENV.modelVersion] || undefined),
    namespace: env[ENV.namespace] || undefined,
    bundleUri,
    bundleSha256: sha,
    bundlePrepared: bool(env, ENV.bundlePrepared),
    s3,
    host: overrides.host ?? env[ENV.host] ?? DEFAULTS.host,
    port,
    grpcPort: overrides.grpcPort ?? int(env, ENV.grpcPort, 0, 0, 65535),
    healthPort: overrides.healthPort ?? int(env, ENV.healthPort, 0, 0, 65535),
    admission: {
      maxConcurrency: int(env, ENV.maxConcurrency, 0, 0, 1_000_000),
      maxQueue: int(env, ENV.maxQueue, DEFAULTS.maxQueue, 0, 1_000_000),
      maxQueueWaitMs: int(env, ENV.maxQueueWaitMs, DEFAULTS.maxQueueWaitMs, 1, 3_600_000),
    },
    timeoutKillsPerMinute: int(env, ENV.timeoutKillsPerMinute, DEFAULTS.timeoutKillsPerMinute, 0, 10_000),
    workDir: overrides.workDir ?? env[ENV.workDir] ?? PATHS.workDir,
    logLevel,
    workers: overrides.workers ?? int(env, ENV.workers, DEFAULTS.workers, 0, 256),
    requestTimeoutMs: int(env, ENV.requestTimeoutMs, DEFAULTS.requestTimeoutMs, 1),
    initTimeoutMs: int(env, ENV.initTimeoutMs, DEFAULTS.initTimeoutMs, 1),
    drainTimeoutMs: int(env, ENV.drainTimeoutMs, DEFAULTS.drainTimeoutMs, 0),
    bodyLimitBytes: int(env, ENV.bodyLimitBytes, DEFAULTS.bodyLimitBytes, 1024),
    fetchTimeoutMs: int(env, ENV.fetchTimeoutMs, DEFAULTS.fetchTimeoutMs, 1),
    maxBundleBytes: int(env, ENV.maxBundleBytes, DEFAULTS.maxBundleBytes, 1),
    maxBundleEntries: int(env, ENV.maxBundleEntries, DEFAULTS.maxBundleEntries, 1),
    maxCompressionRatio: int(env, ENV.maxCompressionRatio, DEFAULTS.maxCompressionRatio, 1),
    terminationLog: env[ENV.terminationLog] ?? PATHS.terminationLog,
    kafka: kafkaSettings(env),
    recorderSocket: env[ENV.recorderSocket] || undefined,
    authSocket: authSocket(env),
    batchSocket: env[ENV.batchSocket] || undefined,
    inferenceLog: inferenceLogSettings(env),
    eventTopics: list(env[ENV.eventTopics]).map((t) => topicName(ENV.eventTopics, t)),
    // "0": the kubelet's answer for a native sidecar (an init container) without a CPU limit: no limit known.
    cpuLimit: env[ENV.cpuLimit] && env[ENV.cpuLimit] !== '0' ? int(env, ENV.cpuLimit, 1, 1, 1024) : undefined,
    batching: env[ENV.batchMaxSize]
      ? { maxBatchSize: int(env, ENV.batchMaxSize, 1, 1, 65536), maxLatencyMs: int(env, ENV.batchMaxLatencyMs, 5, 0, 60_000) }
      : undefined,
    python: pythonSettings(env, overrides.workDir ?? env[ENV.workDir] ?? PATHS.workDir),
    dependencies: parseDependencies(env[ENV.dependencies]),
    ...pick(overrides, [
      'requestTimeoutMs',
      'initTimeoutMs',
      'drainTimeoutMs',
      'logLevel',
      's3',
      'kafka',
      'inferenceLog',
      'eventTopics',
      'admission',
      'timeoutKillsPerMinute',
    ]),
  };
}

/** With MODELSHIP_AUTH_MODE set, the auth sidecar's socket (required then). */
function authSocket(env: Env): string | undefined {
  if (!env[ENV.authMode]) return undefined;
  const socket = env[ENV.authSocket];
  if (!socket) throw msError('MS_ERR_CONFIG_INVALID', { detail: `${ENV.authMode} is set but ${ENV.authSocket} is not` });
  return socket;
}

/** Python settings from the environment; `pythonSettings({}, dir)` gives the defaults. */
export function pythonSettings(env: Env, workDir: string): PythonSettings {
  const indexUrl = env[ENV.pythonIndexUrl] || undefined;
  if (indexUrl && !/^(https?|file):\/\//.test(indexUrl)) {
    throw msError('MS_ERR_CONFIG_INVALID', { detail: `${ENV.pythonIndexUrl} must be an http(s):// or file:// URL` });
  }
  return {
    python: env[ENV.python] || DEFAULTS.python,
    uv: env[ENV.uv] || DEFAULTS.uv,
    envDir: env[ENV.pythonEnvDir] || join(workDir, 'python-envs'),
    indexUrl,
    installTimeoutMs: int(env, ENV.pythonInstallTimeoutMs, DEFAULTS.pythonInstallTimeoutMs, 1000),
    allowIndexOptions: bool(env, ENV.pythonAllowIndexOptions),
    noBuild: bool(env, ENV.pythonNoBuild),
    scratchDir: join(workDir, 'python-scratch'),
  };
}

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<T> {
  const out: Partial<T> = {};
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k];
  return out;
}
