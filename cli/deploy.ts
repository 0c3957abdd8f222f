// `modelship deploy|status|delete`: from a bundle directory or zip to a Ready ModelServing in one call.
// The bundle goes to the object store under a key named by its sha256 (never uploaded twice), the
// storage credentials into a Secret, and a ModelServing pinned to that sha256 is server-side applied with
// the field manager `modelship-cli`, so kubectl or a GitOps tool can take the object over cleanly later.
// A deploy that would change nothing writes nothing. The cluster comes from the kubeconfig's current
// context, the object store from a profile (~/.config/modelship/config.yaml) or the environment.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CoreV1Api, CustomObjectsApi, KubeConfig, Log, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { Writable } from 'node:stream';
import YAML from 'yaml';
import { API_VERSION, GROUP, type ModelServing, PLURAL, VERSION } from '../crds/modelserving.schema.ts';
import { minioClientFor, type S3Settings } from '../runtime/bundle/fetch.ts';
import { ENV } from '../runtime/contract.ts';
import { packBundle } from './pack.ts';
import { pushBundle } from './push.ts';

export const CLI_FIELD_MANAGER = 'modelship-cli';

/** The CLI's exit code when the ModelServing asked for does not exist (the Python client's `exists`). */
export const EXIT_NOT_FOUND = 4;

/** No such ModelServing: exits with EXIT_NOT_FOUND. */
export class NotFoundError extends Error {
  readonly exitCode = EXIT_NOT_FOUND;
}
/** The Secret a deploy keeps the object store's credentials in, in the ModelServing's namespace. */
export const STORAGE_SECRET = 'modelship-storage';
export const PROFILE_FILE = join(homedir(), '.config', 'modelship', 'config.yaml');

/** Where bundles go: the client's endpoint, the one pods use (often an in-cluster name), a bucket, keys. */
export interface StorageProfile {
  endpoint?: string;
  /** The endpoint as the pods reach it (default: `endpoint`). */
  clusterEndpoint?: string;
  region?: string;
  bucket: string;
  accessKey?: string;
  secretKey?: string;
}

/** The profile: the file's `storage:` map, each field overridden by the environment. Pure but for the read. */
export async function loadProfile(
  env: NodeJS.ProcessEnv = process.env,
  file = env.MODELSHIP_CONFIG ?? PROFILE_FILE,
): Promise<StorageProfile> {
  let fromFile: Partial<StorageProfile> = {};
  try {
    const doc = YAML.parse(await readFile(file, 'utf8')) as { storage?: Partial<StorageProfile> } | null;
    fromFile = doc?.storage ?? {};
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`${file}: ${(err as Error).message}`);
  }
  const pick = (...v: (string | undefined)[]) => v.find((x) => x !== undefined && x !== '');
  const bucket = pick(env.MODELSHIP_BUCKET, fromFile.bucket);
  if (!bucket) {
    throw new Error(`no bucket for bundles: set storage.bucket in ${file} or $MODELSHIP_BUCKET`);
  }
  const profile: StorageProfile = { bucket };
  const set = (k: keyof StorageProfile, v: string | undefined) => {
    if (v !== undefined) profile[k] = v;
  };
  set('endpoint', pick(env[ENV.s3Endpoint], env.AWS_ENDPOINT_URL_S3, env.AWS_ENDPOINT_URL, fromFile.endpoint));
  set('clusterEndpoint', pick(env.MODELSHIP_S3_CLUSTER_ENDPOINT, fromFile.clusterEndpoint));
  set('region', pick(env[ENV.s3Region], env.AWS_REGION, fromFile.region));
  set('accessKey', pick(env[ENV.s3AccessKey], env.AWS_ACCESS_KEY_ID, fromFile.accessKey));
  set('secretKey', pick(env[ENV.s3SecretKey], env.AWS_SECRET_ACCESS_KEY, fromFile.secretKey));
  return profile;
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
  o: DeployOptions & { namespace: string; uri: string; sha256: string; storage: StorageProfile; secret: boolean },
): ModelServing {
  const endpoint = o.storage.clusterEndpoint ?? o.storage.endpoint;
  const spec: Record<string, unknown> = {
    bundle: {
      uri: o.uri,
      sha256: o.sha256,
      ...(o.format ? { format: o.format } : {}),
      ...(endpoint || o.storage.region || o.secret
        ? {
            storage: {
              ...(endpoint ? { endpoint } : {}),
              ...(o.storage.region ? { region: o.storage.region } : {}),
              ...(o.secret ? { secretRef: { name: STORAGE_SECRET } } : {}),
            },
          }
        : {}),
    },
  };
  if (o.replicas !== undefined) spec.replicas = o.replicas;
  if (o.cpu || o.memory) {
    const list = { ...(o.cpu ? { cpu: o.cpu } : {}), ...(o.memory ? { memory: o.memory } : {}) };
    spec.resources = { requests: list, ...(o.memory ? { limits: { memory: o.memory } } : {}) };
  }
  if (o.min !== undefined || o.max !== undefined) {
    spec.autoscaling = { minReplicas: o.min ?? 1, maxReplicas: o.max ?? Math.max(o.min ?? 1, 1) };
  }
  if (o.topic) spec.inferenceLogging = { topic: o.topic };
  if (o.env && Object.keys(o.env).length) spec.runtime = { env: Object.entries(o.env).map(([name, value]) => ({ name, value })) };
  if (o.nodeSelector && Object.keys(o.nodeSelector).length) spec.nodeSelector = o.nodeSelector;
  if (o.tolerate?.length) spec.tolerations = o.tolerate.map((key) => ({ key, operator: 'Exists' }));
  return { apiVersion: API_VERSION, kind: 'ModelServing', metadata: { name: o.name, namespace: o.namespace }, spec } as ModelServing;
}

/** Whether every field of `want` has the same value in `have` (arrays compared whole). Pure. */
export function contains(have: unknown, want: unknown): boolean {
  if (Array.isArray(want)) return JSON.stringify(have) === JSON.stringify(want);
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
    return Object.entries(want).every(([k, v]) => contains((have as Record<string, unknown>)[k], v));
  }
  return have === want;
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

export interface Cluster {
  kc: KubeConfig;
  core: CoreV1Api;
  custom: CustomObjectsApi;
  namespace: string;
  server: string;
  context: string;
}

/** The kubeconfig's current context, checked reachable: an unreachable cluster says which and where. */
export async function connect(namespace?: string): Promise<Cluster> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const context = kc.getCurrentContext();
  const server = kc.getCurrentCluster()?.server ?? '(no cluster)';
  const ns = namespace ?? kc.getContextObject(context)?.namespace ?? 'default';
  const core = kc.makeApiClient(CoreV1Api);
  try {
    await core.listNamespacedConfigMap({ namespace: ns, limit: 1 });
  } catch (err) {
    const e = err as { code?: number; message: string };
    const why = typeof e.code === 'number' ? `HTTP ${e.code}` : (causeCode(err) ?? e.message.split('\n')[0]);
    throw new Error(
      `cannot reach the cluster of kubeconfig context "${context}" at ${server} (${why}); check $KUBECONFIG or \`kubectl config current-context\``,
    );
  }
  return { kc, core, custom: kc.makeApiClient(CustomObjectsApi), namespace: ns, server, context };
}

/** The first system error code (ECONNREFUSED, ENOTFOUND, …) in an error's chain of causes, else the innermost message. */
function causeCode(err: unknown): string | undefined {
  let message: string | undefined;
  for (
    let e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0;
    e && depth < 8;
    e = e.cause as typeof e, depth++
  ) {
    if (typeof e.code === 'string') return e.code;
    if (typeof e.message === 'string' && e.message) message = e.message;
  }
  return message;
}

const s3Of = (p: StorageProfile): S3Settings => ({
  region: p.region ?? 'us-east-1',
  ...(p.endpoint ? { endpoint: p.endpoint } : {}),
  ...(p.accessKey ? { accessKey: p.accessKey } : {}),
  ...(p.secretKey ? { secretKey: p.secretKey } : {}),
});

/** The object store's answer to a first call, as an error naming what to fix. */
function storageError(err: unknown, p: StorageProfile): Error {
  const e = err as { code?: string; message: string };
  const where = p.endpoint ?? 'AWS S3';
  if (e.code === 'InvalidAccessKeyId' || e.code === 'SignatureDoesNotMatch' || e.code === 'AccessDenied') {
    return new Error(
      `the object store at ${where} refused the credentials (${e.code}): set ${ENV.s3AccessKey}/${ENV.s3SecretKey} or storage.accessKey/secretKey in the profile`,
    );
  }
  if (e.code === 'ECONNREFUSED' || e.code === 'ENOTFOUND') {
    return new Error(`cannot reach the object store at ${where} (${e.code}): set ${ENV.s3Endpoint} or storage.endpoint in the profile`);
  }
  return new Error(`the object store at ${where}: ${e.code ?? ''} ${e.message}`.trim());
}

export interface Uploaded {
  uri: string;
  sha256: string;
  uploaded: boolean;
  bytes: number;
}

/** Packs a directory (a zip is taken as it is) and uploads it as bundles/<sha256>.zip unless already there. */
export async function uploadBundle(path: string, profile: StorageProfile, log: (m: string) => void): Promise<Uploaded> {
  const tmp = await mkdtemp(join(tmpdir(), 'modelship-deploy-'));
  try {
    const zip = (await stat(path)).isDirectory() ? (await packBundle(path, join(tmp, 'bundle.zip'))).file : path;
    const sha256 = createHash('sha256')
      .update(await readFile(zip))
      .digest('hex');
    const client = minioClientFor(s3Of(profile));
    let exists: boolean;
    try {
      exists = await client.bucketExists(profile.bucket);
    } catch (err) {
      throw storageError(err, profile);
    }
    if (!exists) {
      throw new Error(
        `bucket ${profile.bucket} does not exist at ${profile.endpoint ?? 'AWS S3'}: create it (modelship push --create-bucket) or set storage.bucket / $MODELSHIP_BUCKET`,
      );
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
async function ensureSecret(c: Cluster, p: StorageProfile): Promise<boolean> {
  const data = {
    accessKey: Buffer.from(p.accessKey ?? '').toString('base64'),
    secretKey: Buffer.from(p.secretKey ?? '').toString('base64'),
  };
  const existing = await c.core.readNamespacedSecret({ name: STORAGE_SECRET, namespace: c.namespace }).catch(() => undefined);
  if (existing && contains(existing.data, data)) return false;
  await c.core.patchNamespacedSecret(
    {
      name: STORAGE_SECRET,
      namespace: c.namespace,
      fieldManager: CLI_FIELD_MANAGER,
      force: true,
      body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: STORAGE_SECRET, namespace: c.namespace }, type: 'Opaque', data },
    },
    applyOptions(),
  );
  return true;
}

export async function getModelServing(c: Cluster, name: string): Promise<ModelServing | undefined> {
  try {
    return (await c.custom.getNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: c.namespace,
      plural: PLURAL,
      name,
    })) as ModelServing;
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

/** Applies the ModelServing unless the cluster already has every field of it; true when it wrote. */
export async function applyModelServing(c: Cluster, desired: ModelServing): Promise<boolean> {
  const name = desired.metadata.name as string;
  const existing = await getModelServing(c, name);
  if (existing && contains(existing.spec, desired.spec)) return false;
  await c.custom.patchNamespacedCustomObject(
    {
      group: GROUP,
      version: VERSION,
      namespace: c.namespace,
      plural: PLURAL,
      name,
      body: desired,
      fieldManager: CLI_FIELD_MANAGER,
      force: true,
    },
    applyOptions(),
  );
  return true;
}

const condition = (m: ModelServing, type: string) => m.status?.conditions?.find((x) => x.type === type);

/** One line of where a ModelServing stands. Pure. */
export function describeState(m: ModelServing): string {
  const ready = condition(m, 'Ready');
  const replicas = `${m.status?.readyReplicas ?? 0}/${m.status?.replicas ?? m.spec.replicas ?? '?'} replicas ready`;
  return `Ready=${ready?.status ?? 'Unknown'} (${ready?.reason ?? 'waiting for the operator'}): ${replicas}${ready?.status === 'True' ? '' : ready?.message ? `; ${ready.message}` : ''}`;
}

/** Whether the operator has seen this generation and found it failed (a reason of ours, not a wait). Pure. */
export function failedReason(m: ModelServing): string | undefined {
  const ready = condition(m, 'Ready');
  const seen = (m.status?.observedGeneration ?? 0) >= (m.metadata.generation ?? 0);
  if (!seen || ready?.status !== 'False') return undefined;
  return ready.reason?.startsWith('MS_ERR_') ? `${ready.reason}: ${ready.message ?? ''}` : undefined;
}

/** Waits for Ready (this generation), printing each new state; a failure or the timeout is an error. */
export async function waitReady(c: Cluster, name: string, timeoutMs: number, log: (m: string) => void): Promise<ModelServing> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    const m = await getModelServing(c, name);
    if (!m) throw new NotFoundError(`no ModelServing ${c.namespace}/${name}`);
    const state = describeState(m);
    if (state !== last) {
      log(state);
      last = state;
    }
    const ready = condition(m, 'Ready');
    if (ready?.status === 'True' && (m.status?.observedGeneration ?? 0) >= (m.metadata.generation ?? 0)) return m;
    const failed = failedReason(m);
    if (failed) throw new Error(`ModelServing ${c.namespace}/${name} failed: ${failed}`);
    if (Date.now() > deadline) throw new Error(`ModelServing ${c.namespace}/${name} not Ready after ${timeoutMs / 1000} s: ${state}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

export interface DeployResult {
  modelServing: ModelServing;
  uploaded: boolean;
  wrote: boolean;
  yaml: string;
}

/** The whole deploy; with `dryRun`, uploads but writes nothing to the cluster and returns the YAML. */
export async function deploy(
  path: string,
  opts: DeployOptions & { dryRun?: boolean; wait?: boolean; timeoutMs?: number; log?: (m: string) => void },
): Promise<DeployResult> {
  const log = opts.log ?? ((m: string) => console.error(m));
  const profile = await loadProfile();
  const cluster = opts.dryRun ? undefined : await connect(opts.namespace);
  const namespace = cluster?.namespace ?? opts.namespace ?? 'default';
  const up = await uploadBundle(path, profile, log);
  const secret = profile.accessKey !== undefined && profile.secretKey !== undefined;
  const desired = desiredModelServing({ ...opts, namespace, uri: up.uri, sha256: up.sha256, storage: profile, secret });
  const yaml = YAML.stringify(desired);
  if (!cluster) return { modelServing: desired, uploaded: up.uploaded, wrote: false, yaml };
  const secretWrote = secret ? await ensureSecret(cluster, profile) : false;
  const wrote = await applyModelServing(cluster, desired);
  log(wrote ? `applied ModelServing ${namespace}/${opts.name}` : `ModelServing ${namespace}/${opts.name} is unchanged: no write`);
  const final = opts.wait
    ? await waitReady(cluster, opts.name, opts.timeoutMs ?? 300_000, log)
    : ((await getModelServing(cluster, opts.name)) ?? desired);
  return { modelServing: final, uploaded: up.uploaded, wrote: wrote || secretWrote, yaml };
}

/**
 * POSTs JSON to a path of a ModelServing's Service through the API server's service proxy (port `http`),
 * with the kubeconfig's credentials: no pod address, no port-forward.
 */
export async function postThroughApiServer(
  c: Cluster,
  service: string,
  path: string,
  body: unknown,
): Promise<{ status: number; headers: Record<string, unknown>; text: string }> {
  const url = new URL(
    `${c.server.replace(/\/+$/, '')}/api/v1/namespaces/${encodeURIComponent(c.namespace)}/services/${encodeURIComponent(service)}:http/proxy${path}`,
  );
  const payload = Buffer.from(JSON.stringify(body));
  const options: import('node:https').RequestOptions = {
    method: 'POST',
    hostname: url.hostname,
    port: url.port,
    path: url.pathname,
    headers: { 'content-type': 'application/json', 'content-length': payload.length },
    timeout: 60_000,
  };
  await c.kc.applyToHTTPSOptions(options);
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 60 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** The runtime container of the operator's Deployments (operator/controller/desired/deployment.ts). */
const RUNTIME_CONTAINER = 'runtime';

/**
 * The logs of a ModelServing's pods through the API server (which asks each pod's kubelet), each line
 * prefixed with its pod; `follow` keeps streaming. A pod whose logs cannot be read says why and the others go on.
 */
export async function podLogs(
  c: Cluster,
  name: string,
  opts: { tail?: number | undefined; follow?: boolean | undefined },
  write: (line: string) => void,
): Promise<{ pods: string[]; failed: string[] }> {
  const pods = (await c.core.listNamespacedPod({ namespace: c.namespace, labelSelector: `app.kubernetes.io/instance=${name}` })).items;
  if (!pods.length) {
    if (!(await getModelServing(c, name))) throw new NotFoundError(`no ModelServing ${c.namespace}/${name}`);
    throw new Error(`ModelServing ${c.namespace}/${name} has no pods (replicas 0, or not yet reconciled)`);
  }
  const names = pods.map((p) => p.metadata?.name ?? '?');
  const failed: string[] = [];
  await Promise.all(
    names.map(async (pod) => {
      let rest = '';
      const sink = new Writable({
        write(chunk: Buffer, _enc, cb) {
          const text = rest + chunk.toString();
          const lines = text.split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) write(`${pod} ${line}`);
          cb();
        },
      });
      try {
        const ctl = await new Log(c.kc).log(c.namespace, pod, RUNTIME_CONTAINER, sink, {
          follow: opts.follow === true,
          ...(opts.tail !== undefined ? { tailLines: opts.tail } : {}),
        });
        await new Promise<void>((resolve) => {
          if (sink.writableFinished) resolve();
          sink.once('finish', () => resolve());
          sink.once('close', () => resolve());
          ctl.signal.addEventListener('abort', () => resolve());
        });
        if (rest) write(`${pod} ${rest}`);
      } catch (err) {
        // The API server's Status message (it names the kubelet it could not reach), else the error's first line.
        const e = err as { body?: unknown; message: string };
        let status: { message?: string } | undefined;
        if (e.body && typeof e.body === 'object') status = e.body as { message?: string };
        else if (typeof e.body === 'string')
          status = (() => {
            try {
              return JSON.parse(e.body as string);
            } catch {
              return undefined;
            }
          })();
        const why = status?.message ?? e.message.split('\n')[0];
        failed.push(pod);
        write(`${pod}: cannot read its logs through the API server: ${why}`);
      }
    }),
  );
  return { pods: names, failed };
}
