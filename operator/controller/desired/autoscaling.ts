// ModelServing → HorizontalPodAutoscaler (autoscaling/v2) and PodDisruptionBudget. Pure; undefined means
// the object must not exist.
import type { V1PodDisruptionBudget, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { objectMeta, selectorLabels } from './labels.ts';

export function desiredHpa(ms: ModelServing): V2HorizontalPodAutoscaler | undefined {
  const a = ms.spec.autoscaling;
  if (!a) return undefined;
  return {
    apiVersion: 'autoscaling/v2',
    kind: 'HorizontalPodAutoscaler',
    metadata: objectMeta(ms),
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: ms.metadata.name },
      minReplicas: a.minReplicas ?? 1,
      maxReplicas: a.maxReplicas,
      metrics: [
        {
          type: 'Resource',
          resource: { name: a.metric ?? 'cpu', target: { type: 'Utilization', averageUtilization: a.target ?? 70 } },
        },
      ],
      ...(a.scaleDownStabilizationSeconds !== undefined
        ? { behavior: { scaleDown: { stabilizationWindowSeconds: a.scaleDownStabilizationSeconds } } }
        : {}),
    },
  };
}

/** A PodDisruptionBudget when more than one replica is wanted: voluntary evictions take one pod at a time. */
export function desiredPdb(ms: ModelServing): V1PodDisruptionBudget | undefined {
  const floor = ms.spec.autoscaling ? (ms.spec.autoscaling.minReplicas ?? 1) : (ms.spec.replicas ?? 1);
  const ceiling = ms.spec.autoscaling ? ms.spec.autoscaling.maxReplicas : floor;
  if (Math.max(floor, ceiling) <= 1) return undefined;
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: objectMeta(ms),
    spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels(ms) } },
  };
}
