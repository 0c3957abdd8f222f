// ModelServing → its Service: port 80 to the runtime's http port. Pure.
import type { V1Service } from '@kubernetes/client-node';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { objectMeta, selectorLabels } from './labels.ts';

export function desiredService(ms: ModelServing): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: objectMeta(ms),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(ms),
      ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }],
    },
  };
}

/** The in-cluster URL of the model's OIP v2 endpoint. */
export function serviceUrl(ms: ModelServing): string {
  return `http://${ms.metadata.name}.${ms.metadata.namespace}.svc/v2/models/${ms.metadata.name}`;
}
