// Labels, selectors and owner references shared by every object a ModelServing owns. Pure.
import type { V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION, KIND, type ModelServing } from '../../../crds/modelserving.schema.ts';

export const FIELD_MANAGER = 'modelship-operator';
export const MODEL_LABEL = 'modelship.dev/model';
export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const BUNDLE_HASH_ANNOTATION = 'modelship.dev/bundle-hash';
/**
 * A namespace label naming the one operator (its Helm release) that reconciles the namespace's ModelServings:
 * an operator watching every namespace leaves a namespace claimed by another alone. An operator given its
 * namespaces (watchNamespaces) takes those whatever the label says.
 */
export const OPERATOR_LABEL = 'modelship.dev/operator';

/** Whether an operator named `operator`, watching every namespace, must leave a namespace with these labels alone. */
export function claimedByAnother(namespaceLabels: Record<string, string> | undefined, operator: string): boolean {
  const claim = namespaceLabels?.[OPERATOR_LABEL];
  return claim !== undefined && claim !== operator;
}

/** The pod selector: one stable label (selectors are immutable on Deployments). */
export function selectorLabels(ms: ModelServing): Record<string, string> {
  return { [MODEL_LABEL]: ms.metadata.name };
}

export function commonLabels(ms: ModelServing): Record<string, string> {
  return {
    ...selectorLabels(ms),
    'app.kubernetes.io/name': 'modelship-runtime',
    'app.kubernetes.io/instance': ms.metadata.name,
    'app.kubernetes.io/component': 'model-server',
    'app.kubernetes.io/part-of': 'modelship',
    [MANAGED_BY]: FIELD_MANAGER,
  };
}

export function ownerReference(ms: ModelServing): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: ms.metadata.name,
    uid: ms.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

export function objectMeta(ms: ModelServing) {
  return {
    name: ms.metadata.name,
    namespace: ms.metadata.namespace,
    labels: commonLabels(ms),
    ownerReferences: [ownerReference(ms)],
  };
}
