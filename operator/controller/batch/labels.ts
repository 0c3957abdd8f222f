// Names, labels and the owner reference of what a BatchPrediction owns: its plan Job `<name>-plan`, its shard Job
// `<name>`, and their pods (labelled modelship.dev/batch=<name>, which is how their changes find it). Pure.
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION, type BatchPrediction, KIND } from '../../../crds/batchprediction.schema.ts';
import { FIELD_MANAGER, MANAGED_BY } from '../desired/labels.ts';

export const BATCH_LABEL = 'modelship.dev/batch';
export type BatchComponent = 'batch-plan' | 'batch-shard';

export const planJobName = (bp: BatchPrediction) => `${bp.metadata.name}-plan`;
export const shardJobName = (bp: BatchPrediction) => bp.metadata.name;

export function batchLabels(bp: BatchPrediction, component: BatchComponent): Record<string, string> {
  return {
    [BATCH_LABEL]: bp.metadata.name,
    'app.kubernetes.io/name': 'modelship-batch',
    'app.kubernetes.io/instance': bp.metadata.name,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'modelship',
    [MANAGED_BY]: FIELD_MANAGER,
  };
}

export function ownerReference(bp: BatchPrediction): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: bp.metadata.name,
    uid: bp.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function jobMeta(bp: BatchPrediction, name: string, component: BatchComponent): V1ObjectMeta {
  return { name, namespace: bp.metadata.namespace, labels: batchLabels(bp, component), ownerReferences: [ownerReference(bp)] };
}

/** Whether `obj` is owned (as its controller) by the object with this uid. */
export function ownedBy(obj: { metadata?: V1ObjectMeta } | undefined, uid: string | undefined): boolean {
  return !!uid && !!obj?.metadata?.ownerReferences?.some((r) => r.uid === uid && r.controller);
}
