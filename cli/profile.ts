// Where `modelship deploy` puts bundles: a profile (~/.config/modelship/config.yaml, or $MODELSHIP_CONFIG)
// with a `storage:` map, each field overridden by the environment. Its secrets are never printed, not
// even in a parse error (which names the line and column only).
//
// With no profile at all (no file, no $MODELSHIP_CONFIG, no $MODELSHIP_BUCKET), the checkout's local
// environment is the profile while it is up (`.modelship/env.json`, written by `npm run env:up` and removed by
// env:down): its MinIO and bucket for bundles, the Service name its pods reach MinIO at, and its cluster. So
// the CLI works right after `npm run demo` with no flags, and nothing is written into the user's own config
// (where it would outlive the environment, and shadow or clobber a real profile).
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import YAML from 'yaml';
import { type EnvInfo, envFile, LOCAL_BUCKET, readEnv } from '../env/info.ts';
import { ENV } from '../runtime/contract.ts';
import { msError } from '../runtime/errors.ts';

export const PROFILE_FILE = join(homedir(), '.config', 'modelship', 'config.yaml');

/** The object store: the client's endpoint, the one pods use (often an in-cluster name), a bucket, keys. */
export interface StorageProfile {
  endpoint?: string;
  /** The endpoint as the pods reach it (default: `endpoint`). */
  clusterEndpoint?: string;
  region?: string;
  bucket: string;
  /** The uploader's keys: they write bundles, and never leave this machine. */
  accessKey?: string;
  secretKey?: string;
  /**
   * The keys the cluster gets (the storage Secret the pods' prepare step reads): read-only ones. Without them a
   * deploy puts no keys in the cluster (the pods then need a public bucket or an identity of their own).
   */
  clusterAccessKey?: string;
  clusterSecretKey?: string;
}

/**
 * The local environment, when it stands in for the profile: no $MODELSHIP_CONFIG, no profile file, no
 * $MODELSHIP_BUCKET, and the checkout's environment is up. Otherwise undefined.
 */
export async function localEnvironment(env: NodeJS.ProcessEnv = process.env): Promise<EnvInfo | undefined> {
  if (env.MODELSHIP_CONFIG || env.MODELSHIP_BUCKET || existsSync(PROFILE_FILE)) return undefined;
  return readEnv(envFile());
}

/** The storage profile of the local environment: its MinIO from here, by Service name from its pods. */
export function localStorageProfile(info: EnvInfo): StorageProfile {
  return {
    bucket: LOCAL_BUCKET,
    endpoint: info.s3.endpoint,
    ...(info.realNode ? { clusterEndpoint: info.realNode.s3Endpoint } : {}),
    region: info.s3.region,
    accessKey: info.s3.accessKey,
    secretKey: info.s3.secretKey,
    // The environment's read-only user: pods read bundles and write nothing.
    ...(info.s3.readOnly ? { clusterAccessKey: info.s3.readOnly.accessKey, clusterSecretKey: info.s3.readOnly.secretKey } : {}),
  };
}

/** The profile: the file's `storage:` map, each field overridden by the environment; else the local environment. */
export async function loadProfile(env: NodeJS.ProcessEnv = process.env, profileFile?: string): Promise<StorageProfile> {
  // A file named by the caller is the profile, present or not.
  const local = profileFile === undefined ? await localEnvironment(env) : undefined;
  if (local) return localStorageProfile(local);
  const file = profileFile ?? env.MODELSHIP_CONFIG ?? PROFILE_FILE;
  let fromFile: Partial<StorageProfile> = {};
  let text: string | undefined;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw msError('MS_ERR_CLI_PROFILE_INVALID', { file, detail: (err as NodeJS.ErrnoException).code ?? 'unreadable' });
    }
  }
  if (text !== undefined) {
    try {
      const doc = YAML.parse(text) as { storage?: Partial<StorageProfile> } | null;
      fromFile = doc?.storage ?? {};
    } catch (err) {
      // The parser's message quotes the offending line, which may hold a key: its position only.
      const pos = (err as { linePos?: { line: number; col: number }[] }).linePos?.[0];
      throw msError('MS_ERR_CLI_PROFILE_INVALID', {
        file,
        detail: pos ? `not valid YAML at line ${pos.line}, column ${pos.col}` : 'not valid YAML',
      });
    }
  }
  const pick = (...v: (string | undefined)[]) => v.find((x) => x !== undefined && x !== '');
  const bucket = pick(env.MODELSHIP_BUCKET, fromFile.bucket);
  if (!bucket && text === undefined) throw msError('MS_ERR_CLI_PROFILE_MISSING', { file, envFile: envFile() });
  if (!bucket)
    throw msError('MS_ERR_CLI_PROFILE_INVALID', { file, detail: 'no bucket for bundles: set storage.bucket in it, or $MODELSHIP_BUCKET' });
  const profile: StorageProfile = { bucket };
  const set = (k: keyof StorageProfile, v: string | undefined) => {
    if (v !== undefined) profile[k] = v;
  };
  set('endpoint', pick(env[ENV.s3Endpoint], env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL, fromFile.endpoint));
  set('clusterEndpoint', pick(env.MODELSHIP_S3_CLUSTER_ENDPOINT, fromFile.clusterEndpoint));
  set('region', pick(env[ENV.s3Region], env.AWS_REGION, fromFile.region));
  set('accessKey', pick(env[ENV.s3AccessKey], env.AWS_ACCESS_KEY_ID, fromFile.accessKey));
  set('secretKey', pick(env[ENV.s3SecretKey], env.AWS_SECRET_ACCESS_KEY, fromFile.secretKey));
  set('clusterAccessKey', pick(env.MODELSHIP_S3_CLUSTER_ACCESS_KEY, fromFile.clusterAccessKey));
  set('clusterSecretKey', pick(env.MODELSHIP_S3_CLUSTER_SECRET_KEY, fromFile.clusterSecretKey));
  return profile;
}
