// What a BatchPrediction asks for, as its pods take it. Pure:
// - batchJobSpec: the plan and shard containers' ENV.batchSpec (the model's identity, where the rows are and go, the
//   columns, the sizes; credentials only as the directory their Secret is mounted at);
// - storageVolumes / storageMounts: the input's and the output's Secret (accessKey, secretKey as files), for the plan
//   and driver containers only;
// - batchModel: the ModelServing the model container runs, the referenced one's with the BatchPrediction's settings
//   over it (or one made of the BatchPrediction's bundle).
import type { V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import type { BatchPrediction, BatchStorage } from '../../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { BATCH, type BatchJobSpec, type BatchLocation } from '../../../runtime/contract.ts';

const INPUT_SECRET_VOLUME = 'batch-input';
const OUTPUT_SECRET_VOLUME = 'batch-output';

/** The output's store: its own, else the input's (with the input's Secret). */
function outputStorage(bp: BatchPrediction): BatchStorage | undefined {
  return bp.spec.output.storage ?? bp.spec.input.storage;
}

function location(uri: string, format: BatchLocation['format'], storage: BatchStorage | undefined, credentialsDir: string): BatchLocation {
  return {
    uri,
    ...(format ? { format } : {}),
    ...(storage
      ? {
          storage: {
            endpoint: storage.endpoint,
            ...(storage.region ? { region: storage.region } : {}),
            ...(storage.secretRef ? { credentialsDir } : {}),
          },
        }
      : {}),
  };
}

/** The model's identity in the plan's fingerprint: its bundle's URI, with its sha256 when the spec pins one. */
export function modelIdentity(model: ModelServing): string {
  const { uri, sha256 } = model.spec.bundle;
  return sha256 ? `${uri}@sha256:${sha256}` : uri;
}

/** The batch spec of a BatchPrediction run by `model` (batchModel's). */
export function batchJobSpec(bp: BatchPrediction, model: ModelServing): BatchJobSpec {
  const { input, output, columns, keyColumns } = bp.spec;
  return {
    // An output holding another model's finished shards is refused, not taken as this run's.
    model: modelIdentity(model),
    input: location(input.uri, input.format, input.storage, BATCH.inputSecretDir),
    output: location(output.uri, output.format ?? input.format, outputStorage(bp), BATCH.outputSecretDir),
    // One column: its value; several: a vector of them, in order.
    ...(columns
      ? { columns: Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, v.length === 1 ? (v[0] as string) : v])) }
      : {}),
    ...(keyColumns?.length ? { keyColumns } : {}),
    batchSize: bp.spec.batchSize,
    maxRowErrors: bp.spec.maxRowErrors,
    rowsPerShard: bp.spec.rowsPerShard,
    parallelism: bp.spec.parallelism,
  };
}

/** A Secret's two keys as the files `accessKey` and `secretKey` (its other keys are not projected). */
function secretVolume(name: string, ref: NonNullable<BatchStorage['secretRef']>): V1Volume {
  return {
    name,
    secret: {
      secretName: ref.name,
      defaultMode: 0o440,
      items: [
        { key: ref.accessKeyKey ?? 'accessKey', path: 'accessKey' },
        { key: ref.secretKeyKey ?? 'secretKey', path: 'secretKey' },
      ],
    },
  };
}

export function storageVolumes(bp: BatchPrediction): V1Volume[] {
  const input = bp.spec.input.storage?.secretRef;
  const output = outputStorage(bp)?.secretRef;
  return [...(input ? [secretVolume(INPUT_SECRET_VOLUME, input)] : []), ...(output ? [secretVolume(OUTPUT_SECRET_VOLUME, output)] : [])];
}

export function storageMounts(bp: BatchPrediction): V1VolumeMount[] {
  return [
    ...(bp.spec.input.storage?.secretRef ? [{ name: INPUT_SECRET_VOLUME, mountPath: BATCH.inputSecretDir, readOnly: true }] : []),
    ...(outputStorage(bp)?.secretRef ? [{ name: OUTPUT_SECRET_VOLUME, mountPath: BATCH.outputSecretDir, readOnly: true }] : []),
  ];
}

type Runtime = NonNullable<ModelServing['spec']['runtime']>;

/**
 * The model's runtime settings: the ModelServing's, each one the BatchPrediction sets taken from it instead (env by
 * name). Admission control is left out: it sheds a flood of callers, and the driver is one caller that waits.
 */
function batchRuntime(base: Runtime | undefined, over: BatchPrediction['spec']['runtime']): Runtime | undefined {
  const { admission: _serving, env: baseEnv, ...rest } = base ?? ({} as Partial<Runtime>);
  const { env: overEnv, ...set } = over ?? {};
  const env = [...(baseEnv ?? []).filter((e) => !overEnv?.some((o) => o.name === e.name)), ...(overEnv ?? [])];
  const merged = { ...rest, ...Object.fromEntries(Object.entries(set).filter(([, v]) => v !== undefined)), ...(env.length ? { env } : {}) };
  return Object.keys(merged).length ? (merged as Runtime) : undefined;
}

/**
 * The model the shard pods run, as a ModelServing the pod builders take: the referenced ModelServing's bundle,
 * runtime, resources, dependencies and placement (its name, so the model answers as it does online), with the
 * BatchPrediction's runtime and resources over them; or the BatchPrediction's own bundle, under its name. No
 * inference logging, auth or adaptive batching: the driver sends fixed-size batches over a socket. Undefined when
 * the BatchPrediction names a ModelServing and `ms` (the one found) is undefined.
 */
export function batchModel(bp: BatchPrediction, ms: ModelServing | undefined): ModelServing | undefined {
  const base = ms?.spec;
  const bundle = bp.spec.model.bundle ?? base?.bundle;
  if (!bundle) return undefined;
  const runtime = batchRuntime(base?.runtime, bp.spec.runtime);
  const resources = bp.spec.resources ?? base?.resources;
  return {
    apiVersion: 'modelship.dev/v1alpha1',
    kind: 'ModelServing',
    metadata: { name: ms?.metadata.name ?? bp.metadata.name, namespace: bp.metadata.namespace },
    spec: {
      bundle,
      replicas: 1,
      ...(runtime ? { runtime } : {}),
      ...(resources ? { resources } : {}),
      ...(base?.dependencies?.length ? { dependencies: base.dependencies } : {}),
      ...(base?.nodeSelector ? { nodeSelector: base.nodeSelector } : {}),
      ...(base?.tolerations?.length ? { tolerations: base.tolerations } : {}),
    },
  };
}
