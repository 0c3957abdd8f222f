// ModelServing → its Service: port 80 to the runtime's http port, and its OIP gRPC port (HTTP/2 in clear,
// so meshes and ingresses speak h2c to it). Pure.
import type { V1Service } from '@kubernetes/client-node';
import type { ModelServing } from '../../../crds/modelserving.schema.ts';
import { GRPC_PORT } from '../../../runtime/contract.ts';
import { objectMeta, selectorLabels } from './labels.ts';

export function desiredService(ms: ModelServing): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: objectMeta(ms),
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(ms),
      ports: [
        { name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' },
        { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
      ],
    },
  };
}

/** The in-cluster URL of the model's OIP v2 endpoint. */
export function serviceUrl(ms: ModelServing): string {
  return `http://${ms.metadata.name}.${ms.metadata.namespace}.svc/v2/models/${ms.metadata.name}`;
}
