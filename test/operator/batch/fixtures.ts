// BatchPredictions and ModelServings for the batch controller's unit tests.
import type { BatchPrediction } from '../../../crds/batchprediction.schema.ts';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { batchModel } from '../../../operator/controller/batch/spec.ts';

type Spec = BatchPrediction['spec'];

/** A BatchPrediction as the API server holds it (defaults filled in). */
export function batch(spec: Partial<Spec> = {}, status?: BatchPrediction['status']): BatchPrediction {
  return {
    apiVersion: 'modelship.dev/v1alpha1',
    kind: 'BatchPrediction',
    metadata: { name: 'score', namespace: 'ml', uid: 'bp-uid', generation: 1 },
    spec: {
      model: { modelServing: 'iris' },
      input: {
        uri: 's3://data/iris/',
        storage: { endpoint: 'http://minio:9000', secretRef: { name: 'in-keys', accessKeyKey: 'accessKey', secretKeyKey: 'secretKey' } },
      },
      output: { uri: 's3://out/scored' },
      parallelism: 2,
      batchSize: 1024,
      maxRowErrors: 100,
      rowsPerShard: 250_000,
      backoffLimitPerIndex: 3,
      ...spec,
    },
    ...(status ? { status } : {}),
  };
}

export function modelServing(spec: Partial<ModelServing['spec']> = {}): ModelServing {
  return {
    apiVersion: 'modelship.dev/v1alpha1',
    kind: 'ModelServing',
    metadata: { name: 'iris', namespace: 'ml', uid: 'ms-uid', generation: 1 },
    spec: {
      bundle: {
        uri: 's3://models/iris.zip',
        storage: {
          endpoint: 'http://minio:9000',
          secretRef: { name: 'bundle-keys', accessKeyKey: 'accessKey', secretKeyKey: 'secretKey' },
        },
      },
      replicas: 2,
      ...spec,
    },
  };
}

/** The model a BatchPrediction runs (its ModelServing given): batchModel, known to be there. */
export function modelOf(bp: BatchPrediction, ms: ModelServing | undefined): ModelServing {
  const model = batchModel(bp, ms);
  if (!model) throw new Error(`no model for ${bp.metadata.name}`);
  return model;
}
