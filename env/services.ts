// The environment's own services (MinIO, Kafka, the package index proxy) under stable in-cluster names, as a
// user's cluster has them: `minio.minio.svc:9000`, `kafka.kafka.svc:9092`, `pypi.pypi.svc:80`. They run on the
// machine's loopback and reach the node through its relay (NODE_IP:<port>); each gets a Service without a
// selector and an EndpointSlice of our own pointing at that address, which kube-proxy routes like any other.
import { execFileSync } from 'node:child_process';
import { stringify } from 'yaml';

export interface HostService {
  /** Service name and namespace (the same: `minio` → minio.minio.svc). */
  name: string;
  /** The port the Service offers, e.g. 9000. */
  port: number;
  /** Where the node reaches it (its relay): NODE_IP and the relayed port. */
  address: string;
  targetPort: number;
  /** The port's name (the Service's and the EndpointSlice's must agree). */
  portName: string;
}

export const ENDPOINTS_MANAGER = 'modelship-env';

/** The namespace, Service and EndpointSlice of each host service, as one YAML stream. Pure. */
export function hostServiceManifests(services: HostService[]): string {
  const docs = services.flatMap((s) => [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: s.name } },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: s.name, namespace: s.name, labels: { 'app.kubernetes.io/part-of': 'modelship-env' } },
      spec: { ports: [{ name: s.portName, port: s.port, targetPort: s.targetPort, protocol: 'TCP' }] },
    },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: s.name,
        namespace: s.name,
        labels: {
          'kubernetes.io/service-name': s.name,
          // The EndpointSlice controller leaves slices managed by someone else alone.
          'endpointslice.kubernetes.io/managed-by': ENDPOINTS_MANAGER,
        },
      },
      addressType: 'IPv4',
      endpoints: [{ addresses: [s.address], conditions: { ready: true } }],
      ports: [{ name: s.portName, port: s.targetPort, protocol: 'TCP' }],
    },
  ]);
  return docs.map((d) => stringify(d)).join('---\n');
}

/** Applies them (server-side, idempotent). */
export function applyHostServices(kubectl: string, kubeconfig: string, services: HostService[]): void {
  execFileSync(kubectl, ['--kubeconfig', kubeconfig, 'apply', '--server-side', '--field-manager', ENDPOINTS_MANAGER, '-f', '-'], {
    input: hostServiceManifests(services),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
