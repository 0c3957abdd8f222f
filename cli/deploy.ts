// `modelship deploy`: from a bundle directory or zip to a Ready ModelServing in one call. The bundle goes to
// the object store under a key named by its sha256 (never uploaded twice), the store's credentials into a
// Secret named by them, and a ModelServing pinned to that sha256 is server-side applied with the field
// manager `modelship-cli`, so kubectl or a GitOps tool can take the object over later. Before writing, the
// apply is tried as a server-side dry run: when it would change nothing, nothing is written.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import YAML from 'yaml';
import { API_VERSION, GROUP, type ModelServing, PLURAL, VERSION } from '../crds/modelserving.schema.ts';
import { apiError } from '../operator/kube/errors.ts';
import { minioClientFor, type S3Settings } from '../runtime/bundle/fetch.ts';
import { ENV } from '../runtime/contract.ts';
import { type ErrorCode, ModelshipError, msError } from '../runtime/errors.ts';
import { type Cluster, causeOf, connect, contextNamespace, getModelServing } from './cluster.ts';
import { packBundle } from './pack.ts';
import { envFile, KAFKA_SASL_SECRET, LOCAL_BUCKET } from '../env/info.ts';
import { loadProfile, localEnvironment, type StorageProfile } from './profile.ts';
import { pushBundle } from './push.ts';

export const CLI_FIELD_MANAGER = 'modelship-cli';
/** The storage Secret's name: one per endpoint and access key, so two profiles in a namespace never share one. */
export const storageSecretName = (p: StorageProfile) =>
  `modelship-storage-${createHash('sha256')
    .update(`${p.clusterEndpoint ?? p.endpoint ?? ''}\0${p.clusterAccessKey ?? ''}`)
    .digest('hex')
    .slice(0, 10)}`;

/**
 * A ModelServing name from a bundle path when neither --name nor the manifest gives one: the directory or zip
 * name as a DNS-1123 label (lower case, [a-z0-9-], at most 63, starting and ending alphanumeric).
 */
export function resourceName(path: string): string {
  const base = basename(path.replace(/[/\\]+$/, '')).replace(/\.zip$/i, '');
  const name = base
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 63)
    .replace(/[^a-z0-9]+$/, '');
  return name || 'model';
}

export interface DeployOptions {
  name: string;
  namespace?: string | undefined;
  replicas?: number | undefined;
  cpu?: string | undefined;
  memory?: string | undefined;
  min?: number | undefined;
  max?: number | undefined;
  /** CREATE, NONE or an existing topic. */
  topic?: string | undefined;
  env?: Record<string, string> | undefined;
  format?: string | undefined;
  nodeSelector?: Record<string, string> | undefined;
  /** Taint keys the pods tolerate (operator Exists). */
  tolerate?: string[] | undefined;
}

/** The ModelServing a deploy applies: only the fields the CLI sets (the API server defaults the rest). Pure. */
export function desiredModelServing(
  opts: DeployOptions & { namespace: string; uri: string; sha256: string; storage: StorageProfile; secret: string | undefined },
): ModelServing {
  const endpoint = opts.storage.clusterEndpoint ?? opts.storage.endpoint;
  const spec: Record<string, unknown> = {
    bundle: {
      uri: opts.uri,
      sha256: opts.sha256,
      ...(opts.format ? { format: opts.format } : {}),
      ...(endpoint || opts.storage.region || opts.secret
        ? {
            storage: {
              ...(endpoint ? { endpoint } : {}),
              ...(opts.storage.region ? { region: opts.storage.region } : {}),
              ...(opts.secret ? { secretRef: { name: opts.secret } } : {}),
            },
          }
        : {}),
    },
  };
  if (opts.replicas !== undefined) spec.replicas = opts.replicas;
  if (opts.cpu || opts.memory) {
    const list = { ...(opts.cpu ? { cpu: opts.cpu } : {}), ...(opts.memory ? { memory: opts.memory } : {}) };
    spec.resources = { requests: list, ...(opts.memory ? { limits: { memory: opts.memory } } : {}) };
  }
  if (opts.min !== undefined || opts.max !== undefined) {
    spec.autoscaling = { minReplicas: opts.min ?? 1, maxReplicas: opts.max ?? Math.max(opts.min ?? 1, 1) };
  }
  if (opts.topic) spec.inferenceLogging = { topic: opts.topic };
  if (opts.env && Object.keys(opts.env).length) spec.runtime = { env: Object.entries(opts.env).map(([name, value]) => ({ name, value })) };
  if (opts.nodeSelector && Object.keys(opts.nodeSelector).length) spec.nodeSelector = opts.nodeSelector;
  if (opts.tolerate?.length) spec.tolerations = opts.tolerate.map((key) => ({ key, operator: 'Exists' }));
  return { apiVersion: API_VERSION, kind: 'ModelServing', metadata: { name: opts.name, namespace: opts.namespace }, spec } as ModelServing;
}

/** `k=v` options into a map; a malformed one names itself. Pure. */
export function keyValues(list: readonly string[] | undefined, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const i = item.indexOf('=');
    if (i <= 0) throw new Error(`${flag} ${item}: expected KEY=VALUE`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** Canonical JSON (keys sorted): two values equal as data compare equal as strings. Pure. */
export function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

const s3Of = (p: StorageProfile): S3Settings => ({
  region: p.region ?? 'us-east-1',
  ...(p.endpoint ? { endpoint: p.endpoint } : {}),
  ...(p.accessKey ? { accessKey: p.accessKey } : {}),
  ...(p.secretKey ? { secretKey: p.secretKey } : {}),
});

const DENIED = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied']);

/** The object store's answer to a call, as an error naming what to fix. */
function storageError(err: unknown, p: StorageProfile): Error {
  const code = (err as { code?: string }).code;
  const endpoint = p.endpoint ?? 'AWS S3';
  if (code && DENIED.has(code)) {
    return msError('MS_ERR_CLI_STORAGE_DENIED', {
      endpoint,
      detail: code,
      fix: `set ${ENV.s3AccessKey}/${ENV.s3SecretKey} or storage.accessKey/secretKey in the profile`,
    });
  }
  return msError('MS_ERR_CLI_STORAGE_UNREACHABLE', {
    endpoint,
    detail: causeOf(err) ?? 'no answer',
    fix: `set ${ENV.s3Endpoint} or storage.endpoint in the profile`,
  });
}

export interface Uploaded {
  uri: string;
  sha256: string;
  uploaded: boolean;
  bytes: number;
}

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Packs a directory (a zip is taken as it is) and uploads it as bundles/<sha256>.zip unless already there. */
export async function uploadBundle(path: string, profile: StorageProfile, log: (m: string) => void): Promise<Uploaded> {
  const tmp = await mkdtemp(join(tmpdir(), 'modelship-deploy-'));
  try {
    const zip = (await stat(path)).isDirectory() ? (await packBundle(path, join(tmp, 'bundle.zip'))).file : path;
    const sha256 = await sha256Of(zip);
    const client = minioClientFor(s3Of(profile));
    const exists = await client.bucketExists(profile.bucket).catch((err: unknown) => {
      throw storageError(err, profile);
    });
    if (!exists) {
      throw msError('MS_ERR_CLI_BUCKET_MISSING', {
        bucket: profile.bucket,
        endpoint: profile.endpoint ?? 'AWS S3',
        fix: 'create it (modelship push --create-bucket) or set storage.bucket / $MODELSHIP_BUCKET',
      });
    }
    const key = `bundles/${sha256}.zip`;
    const uri = `s3://${profile.bucket}/${key}`;
    const { size } = await stat(zip);
    const there = await client.statObject(profile.bucket, key).then(
      () => true,
      (err: { code?: string }) => {
        if (err.code === 'NotFound' || err.code === 'NoSuchKey') return false;
        throw storageError(err, profile);
      },
    );
    if (there) {
      log(`bundle ${sha256.slice(0, 12)} is already in ${uri}: no upload`);
      return { uri, sha256, uploaded: false, bytes: size };
    }
    const pushed = await pushBundle(zip, uri, s3Of(profile), { onProgress: log });
    log(`uploaded ${pushed.bytes} bytes to ${uri}`);
    return { uri, sha256, uploaded: true, bytes: size };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

const applyOptions = () => setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/** The storage Secret, applied only when its keys differ (a second deploy writes nothing). Never printed. */
function ensureSecret(c: Cluster, p: StorageProfile, name: string): Promise<boolean> {
  return applySecret(c, name, { accessKey: p.clusterAccessKey ?? '', secretKey: p.clusterSecretKey ?? '' });
}

/** Creates a Secret unless one of that name exists (whoever made it). Never printed. */
async function createSecretIfMissing(c: Cluster, name: string, values: Record<string, string>): Promise<void> {
  try {
    await c.core.createNamespacedSecret({ namespace: c.namespace, body: { metadata: { name }, type: 'Opaque', stringData: values } });
  } catch (err) {
    if (apiError(err).code !== 409) throw err;
  }
}

/** A Secret of the CLI's, applied only when its data differ. Never printed. */
export async function applySecret(c: Cluster, name: string, values: Record<string, string>): Promise<boolean> {
  const data = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  let existing: { data?: Record<string, string> } | undefined;
  try {
    existing = await c.core.readNamespacedSecret({ name, namespace: c.namespace });
  } catch (err) {
    if (apiError(err).code !== 404) throw err;
  }
  if (existing && canonical(existing.data) === canonical(data)) return false;
  await c.core.patchNamespacedSecret(
    {
      name,
      namespace: c.namespace,
      fieldManager: CLI_FIELD_MANAGER,
      force: true,
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: c.namespace }, type: 'Opaque', data },
    },
    applyOptions(),
  );
  return true;
}

/**
 * Server-side applies the ModelServing, unless a dry run of that apply shows the same spec as the cluster's
 * (a field the CLI set before and not now is then removed, as apply removes it). True when it wrote.
 */
export async function applyModelServing(c: Cluster, desired: ModelServing): Promise<boolean> {
  const name = desired.metadata.name as string;
  const params = {
    group: GROUP,
    version: VERSION,
    namespace: c.namespace,
    plural: PLURAL,
    name,
    body: desired,
    fieldManager: CLI_FIELD_MANAGER,
    force: true,
  };
  const existing = await getModelServing(c, name);
  if (existing) {
    const after = (await c.custom.patchNamespacedCustomObject({ ...params, dryRun: 'All' }, applyOptions())) as ModelServing;
    if (canonical(after.spec) === canonical(existing.spec)) return false;
  }
  await c.custom.patchNamespacedCustomObject(params, applyOptions());
  return true;
}

const condition = (m: ModelServing, type: string) => m.status?.conditions?.find((x) => x.type === type);

/** One line of where a ModelServing stands. Pure. */
export function describeState(m: ModelServing): string {
  const ready = condition(m, 'Ready');
  const replicas = `${m.status?.readyReplicas ?? 0}/${m.status?.replicas ?? m.spec.replicas ?? '?'} replicas ready`;
  return `Ready=${ready?.status ?? 'Unknown'} (${ready?.reason ?? 'waiting for the operator'}): ${replicas}${ready?.status === 'True' ? '' : ready?.message ? `; ${ready.message}` : ''}`;
}

/** The Ready reason (one of our codes) and message when the operator found this generation failed. Pure. */
export function failure(m: ModelServing): { code: string; message: string } | undefined {
  const ready = condition(m, 'Ready');
  const seen = (m.status?.observedGeneration ?? 0) >= (m.metadata.generation ?? 0);
  if (!seen || ready?.status !== 'False' || !ready.reason?.startsWith('MS_ERR_')) return undefined;
  return { code: ready.reason, message: ready.message ?? '' };
}

/** How long a ModelServing may go without any operator's status before `--wait` says that none seems to work there. */
export const NO_OPERATOR_AFTER_MS = 10_000;

/**
 * Why no operator may have picked a ModelServing up, from what the CLI can see: the namespace's claim label
 * (another release's), or the usual causes. Pure.
 */
export function noOperatorHint(namespace: string, name: string, seconds: number, claim: string | undefined): string {
  const why = claim
    ? `namespace ${namespace} is claimed by the operator of release "${claim}" (label modelship.dev/operator): is that release installed and running?`
    : `is a modelship operator installed, and does it watch namespace ${namespace}? (helm value watchNamespaces; kubectl get deploy -A -l app.kubernetes.io/name=modelship-operator)`;
  return `no operator has picked up ModelServing ${namespace}/${name} after ${seconds} s: ${why}`;
}

/** Waits for Ready (this generation), printing each new state; a failure or the timeout is an error. */
export async function waitReady(c: Cluster, name: string, timeoutMs: number, log: (m: string) => void): Promise<ModelServing> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last = '';
  let hint: string | undefined;
  for (;;) {
    const m = await getModelServing(c, name);
    if (!m) throw msError('MS_ERR_CLI_NOT_FOUND', { namespace: c.namespace, name });
    let state = describeState(m);
    // Nothing has written a status (not even a finalizer) for a while: no operator works here.
    if (!m.status?.observedGeneration && Date.now() - started > NO_OPERATOR_AFTER_MS) {
      hint ??= noOperatorHint(c.namespace, name, NO_OPERATOR_AFTER_MS / 1000, await namespaceClaim(c));
      state = `${state}; ${hint}`;
    }
    if (state !== last) {
      log(state);
      last = state;
    }
    if (condition(m, 'Ready')?.status === 'True' && (m.status?.observedGeneration ?? 0) >= (m.metadata.generation ?? 0)) return m;
    const failed = failure(m);
    if (failed) throw ModelshipError.restore(failed.code as ErrorCode, `ModelServing ${c.namespace}/${name} failed: ${failed.message}`);
    if (Date.now() > deadline) {
      throw msError('MS_ERR_CLI_WAIT_TIMEOUT', { namespace: c.namespace, name, seconds: timeoutMs / 1000, state });
    }
    await delay(1000);
  }
}

/** The operator that claims the cluster's namespace (label modelship.dev/operator), if the CLI may read it. */
async function namespaceClaim(c: Cluster): Promise<string | undefined> {
  try {
    return (await c.core.readNamespace({ name: c.namespace })).metadata?.labels?.['modelship.dev/operator'];
  } catch {
    return undefined;
  }
}

/** Creates the namespace when it does not exist (as `helm install --create-namespace` would); says so. */
async function ensureNamespace(c: Cluster, log: (m: string) => void): Promise<void> {
  try {
    await c.core.readNamespace({ name: c.namespace });
  } catch (err) {
    if (apiError(err).code !== 404) return; // not ours to read: the apply will say what is wrong
    await c.core.createNamespace({ body: { metadata: { name: c.namespace } } });
    log(`created namespace ${c.namespace}`);
  }
}

export interface DeployResult {
  modelServing: ModelServing;
  uploaded: boolean;
  wrote: boolean;
  yaml: string;
  /** The storage Secret the ModelServing refers to, if any (with --dry-run: to be created by whoever applies). */
  secret: string | undefined;
}

/** The whole deploy; with `dryRun`, uploads but writes nothing to the cluster and returns the YAML. */
export async function deploy(
  path: string,
  opts: DeployOptions & { dryRun?: boolean; wait?: boolean; timeoutMs?: number; log?: (m: string) => void },
): Promise<DeployResult> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const local = await localEnvironment();
  if (local) log(`using the local environment (${envFile()}): its cluster and its MinIO, bucket ${LOCAL_BUCKET}`);
  const profile = await loadProfile();
  const cluster = opts.dryRun ? undefined : await connect(opts.namespace);
  // A dry run asks nothing of the cluster, but its YAML names the namespace a deploy would use.
  const namespace = cluster?.namespace ?? opts.namespace ?? (await contextNamespace());
  const up = await uploadBundle(path, profile, log);
  // Only the profile's cluster (read-only) keys go into the cluster, never the uploader's own.
  const secret = profile.clusterAccessKey && profile.clusterSecretKey ? storageSecretName(profile) : undefined;
  if (!secret && profile.accessKey) {
    log(
      'the profile has no cluster keys (storage.clusterAccessKey/clusterSecretKey, read-only): the ModelServing gets none, so its pods read the bucket without keys (your own keys stay here)',
    );
  }
  const desired = desiredModelServing({ ...opts, namespace, uri: up.uri, sha256: up.sha256, storage: profile, secret });
  const yaml = YAML.stringify(desired);
  if (!cluster) return { modelServing: desired, uploaded: up.uploaded, wrote: false, yaml, secret };
  await ensureNamespace(cluster, log);
  const secretWrote = secret ? await ensureSecret(cluster, profile, secret) : false;
  // The local environment's Kafka takes pods only with its credentials: a model namespace has them, as the
  // platform team of a shared cluster would provision them (docs/security.md).
  // Only into the environment's own cluster (not one $KUBECONFIG names), and never over a Secret already there.
  const sasl = local && !process.env.KUBECONFIG ? local.realNode?.kafkaSasl : undefined;
  if (sasl) await createSecretIfMissing(cluster, KAFKA_SASL_SECRET, { username: sasl.username, password: sasl.password });
  const wrote = await applyModelServing(cluster, desired);
  log(
    wrote
      ? `applied ModelServing ${namespace}/${opts.name}`
      : `ModelServing ${namespace}/${opts.name} is unchanged: no write${secretWrote ? ` (its storage Secret ${secret} was updated)` : ''}`,
  );
  const final = opts.wait
    ? await waitReady(cluster, opts.name, opts.timeoutMs ?? 300_000, log)
    : ((await getModelServing(cluster, opts.name)) ?? desired);
  return { modelServing: final, uploaded: up.uploaded, wrote: wrote || secretWrote, yaml, secret };
}
