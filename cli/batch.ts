// `modelship batch <model> --input … --output …`: batch prediction from the command line. A local input (a path,
// not s3://) runs here without a cluster (cli/batch-local.ts). Otherwise a BatchPrediction is created: the model
// is a ModelServing (`ms/NAME`) or a bundle directory or zip (uploaded as `modelship deploy` does); with --wait the
// CLI follows its status (a progress bar on a terminal, a line per change elsewhere) to the end.
import { setTimeout as delay } from 'node:timers/promises';
import { SingleBar } from 'cli-progress';
import { API_VERSION, type BatchPrediction, GROUP, KIND, PLURAL, VERSION } from '../crds/batchprediction.schema.ts';
import { LOCAL_BUCKET } from '../env/info.ts';
import { apiError } from '../operator/kube/errors.ts';
import type { BatchFormat } from '../runtime/contract.ts';
import { ERRORS, type ErrorCode, ModelshipError, msError } from '../runtime/errors.ts';
import { type Cluster, connect } from './cluster.ts';
import { applySecret, resourceName, storageSecretName, uploadBundle } from './deploy.ts';
import { loadProfile, localEnvironment } from './profile.ts';

/** The Secret the local environment's batch pods read and write its MinIO with (its root keys: a laptop's own store). */
export const LOCAL_BATCH_SECRET = 'modelship-batch-storage';

/** What a batch scores and how, wherever it runs (the flags both a local run and a BatchPrediction take). */
export interface BatchDataOptions {
  input: string;
  output: string;
  format?: BatchFormat | undefined;
  outputFormat?: BatchFormat | undefined;
  columns?: Record<string, string[]> | undefined;
  keyColumns?: string[] | undefined;
  batchSize?: number | undefined;
  maxRowErrors?: number | undefined;
  rowsPerShard?: number | undefined;
}

export interface BatchOptions extends BatchDataOptions {
  parallelism?: number | undefined;
  name?: string | undefined;
  namespace?: string | undefined;
  /** A Secret (accessKey, secretKey) that reads the input and writes the output. */
  storageSecret?: string | undefined;
}

/** `--columns input=colA,colB` (repeatable) → { input: [colA, colB] }. */
export function parseColumns(list: readonly string[] | undefined): Record<string, string[]> | undefined {
  if (!list?.length) return undefined;
  const out: Record<string, string[]> = {};
  for (const item of list) {
    const at = item.indexOf('=');
    const cols = item
      .slice(at + 1)
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean);
    if (at <= 0 || cols.length === 0) throw new Error(`--columns expects input=column[,column…], got "${item}"`);
    out[item.slice(0, at)] = cols;
  }
  return out;
}

/**
 * Where a batch runs (pure): paths (or file:// URIs) in and out run here; s3:// in and out make a BatchPrediction.
 * Anything else is refused, never taken for a path (`gs://b/x` would be a directory named `gs:`).
 */
export function batchWhere(input: string, output: string): 'local' | 'cluster' {
  const kind = (uri: string) =>
    /^s3:\/\//.test(uri) ? 's3' : /^file:\/\//.test(uri) || !/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) ? 'path' : 'other';
  for (const [flag, uri] of [
    ['--input', input],
    ['--output', output],
  ] as const) {
    if (kind(uri) === 'other') throw new Error(`${flag} ${uri}: use a local path or an s3://bucket/prefix URI`);
  }
  if (kind(input) !== kind(output)) {
    throw new Error(
      kind(input) === 'path'
        ? `a local input is scored here and written to a local --output, not ${output}`
        : `an s3:// input runs as a BatchPrediction, whose --output is s3:// too, not ${output}`,
    );
  }
  return kind(input) === 'path' ? 'local' : 'cluster';
}

/** The BatchPrediction the CLI creates (pure): only what the flags set; the API server defaults the rest. */
export function desiredBatchPrediction(
  o: BatchOptions & {
    namespace: string;
    model: { modelServing: string } | { bundle: Record<string, unknown> };
    storage: { endpoint?: string | undefined; region?: string | undefined; secret?: string | undefined };
  },
): BatchPrediction {
  const storage = o.storage.endpoint
    ? {
        storage: {
          endpoint: o.storage.endpoint,
          ...(o.storage.region ? { region: o.storage.region } : {}),
          ...(o.storage.secret ? { secretRef: { name: o.storage.secret } } : {}),
        },
      }
    : {};
  const base = 'modelServing' in o.model ? o.model.modelServing : resourceName(String(o.model.bundle.uri));
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      namespace: o.namespace,
      ...(o.name ? { name: o.name } : { generateName: `${base.slice(0, 40)}-batch-` }),
    },
    spec: {
      model: o.model,
      input: { uri: o.input, ...(o.format ? { format: o.format } : {}), ...storage },
      output: { uri: o.output, ...(o.outputFormat ? { format: o.outputFormat } : {}) },
      ...(o.columns ? { columns: o.columns } : {}),
      ...(o.keyColumns?.length ? { keyColumns: o.keyColumns } : {}),
      ...(o.parallelism ? { parallelism: o.parallelism } : {}),
      ...(o.batchSize ? { batchSize: o.batchSize } : {}),
      ...(o.maxRowErrors !== undefined ? { maxRowErrors: o.maxRowErrors } : {}),
      ...(o.rowsPerShard ? { rowsPerShard: o.rowsPerShard } : {}),
    },
  } as BatchPrediction;
}

/** Creates the BatchPrediction (uploading the bundle first when the model is one); returns it as created. */
export async function submitBatch(model: string, o: BatchOptions, log: (m: string) => void): Promise<{ c: Cluster; bp: BatchPrediction }> {
  const c = await connect(o.namespace);
  const profile = await loadProfile();
  const local = await localEnvironment();
  const endpoint = profile.clusterEndpoint ?? profile.endpoint;
  let secret = o.storageSecret;
  if (!secret && local && !process.env.KUBECONFIG) {
    // The local environment only: its MinIO's root keys, so its batch pods can write their output.
    secret = LOCAL_BATCH_SECRET;
    await applySecret(c, secret, { accessKey: profile.accessKey ?? '', secretKey: profile.secretKey ?? '' });
  }
  if (!secret) log('no --storage-secret: the batch pods read and write the object store without keys');
  let spec: { modelServing: string } | { bundle: Record<string, unknown> };
  if (model.startsWith('ms/')) {
    spec = { modelServing: model.slice(3) };
  } else {
    const up = await uploadBundle(model, profile, log);
    const bundleSecret = profile.clusterAccessKey && profile.clusterSecretKey ? storageSecretName(profile) : undefined;
    if (bundleSecret) {
      await applySecret(c, bundleSecret, { accessKey: profile.clusterAccessKey ?? '', secretKey: profile.clusterSecretKey ?? '' });
    }
    spec = {
      bundle: {
        uri: up.uri,
        sha256: up.sha256,
        ...(endpoint ? { storage: { endpoint, ...(bundleSecret ? { secretRef: { name: bundleSecret } } : {}) } } : {}),
      },
    };
  }
  const body = desiredBatchPrediction({
    ...o,
    namespace: c.namespace,
    model: spec,
    storage: { endpoint, region: profile.region, secret },
  });
  try {
    const bp = (await c.custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      namespace: c.namespace,
      plural: PLURAL,
      body,
    })) as BatchPrediction;
    log(`created BatchPrediction ${c.namespace}/${bp.metadata?.name}${local ? ` (local environment, bucket ${LOCAL_BUCKET})` : ''}`);
    return { c, bp };
  } catch (err) {
    const e = apiError(err);
    if (e.code === 409)
      throw new Error(`BatchPrediction ${c.namespace}/${o.name} exists: a BatchPrediction is one run; choose another --name`);
    if (e.code === 422) throw new Error(`the API server refused the BatchPrediction: ${e.message}`);
    throw err;
  }
}

const finished = (bp: BatchPrediction) => bp.status?.phase === 'Succeeded' || bp.status?.phase === 'Failed';

/** One line of a BatchPrediction's progress (pure). */
export function describeBatch(bp: BatchPrediction): string {
  const s = bp.status;
  if (!s?.phase) return 'pending';
  const rows = s.rows ? `${s.rows.done ?? 0}/${s.rows.total ?? '?'} rows` : '';
  const shards = s.shards ? `${s.shards.succeeded ?? 0}/${s.shards.total ?? '?'} shards` : '';
  const rate = s.rowsPerSecond ? `${Math.round(s.rowsPerSecond)} rows/s` : '';
  return [s.phase, rows, shards, rate].filter(Boolean).join(', ');
}

/** Follows the BatchPrediction to Succeeded or Failed (or the timeout); a failure throws its coded reason. */
export async function waitBatch(c: Cluster, name: string, timeoutMs: number, log: (m: string) => void): Promise<BatchPrediction> {
  const until = Date.now() + timeoutMs;
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: 'batch [{bar}] {value}/{total} rows {state}', stream: process.stderr })
    : undefined;
  let last = '';
  let started = false;
  try {
    for (;;) {
      const bp = (await c.custom.getNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace: c.namespace,
        plural: PLURAL,
        name,
      })) as BatchPrediction;
      const line = describeBatch(bp);
      const total = bp.status?.rows?.total;
      if (bar && total) {
        if (!started) bar.start(total, 0, { state: '' });
        started = true;
        bar.update(bp.status?.rows?.done ?? 0, { state: bp.status?.phase ?? '' });
      } else if (line !== last) {
        log(`${name}: ${line}`);
      }
      last = line;
      if (finished(bp)) {
        if (bp.status?.phase === 'Failed') {
          const failed = bp.status.conditions?.find((x) => x.type === 'Failed');
          const text = `BatchPrediction ${c.namespace}/${name} failed: ${failed?.message ?? line}`;
          throw failed?.reason && failed.reason in ERRORS ? ModelshipError.restore(failed.reason as ErrorCode, text) : new Error(text);
        }
        return bp;
      }
      if (Date.now() > until)
        throw msError('MS_ERR_CLI_BATCH_WAIT_TIMEOUT', {
          namespace: c.namespace,
          name,
          seconds: Math.round(timeoutMs / 1000),
          state: line,
        });
      await delay(1000);
    }
  } finally {
    bar?.stop();
  }
}
