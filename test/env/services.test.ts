import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ENDPOINTS_MANAGER, hostServiceManifests } from '../../env/services.ts';

describe('hostServiceManifests', () => {
  it('gives each host service a namespace, a selector-less Service and an EndpointSlice of its own, ports matched by name', () => {
    const docs = parseAllDocuments(
      hostServiceManifests([{ name: 'minio', port: 9000, portName: 's3', address: '10.250.0.2', targetPort: 40123 }]),
    ).map((d) => d.toJS());
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'Service', 'EndpointSlice']);
    const [, service, slice] = docs;
    expect(service.metadata).toMatchObject({ name: 'minio', namespace: 'minio' });
    expect(service.spec.selector).toBeUndefined();
    expect(service.spec.ports).toEqual([{ name: 's3', port: 9000, targetPort: 40123, protocol: 'TCP' }]);
    expect(slice.metadata.labels).toEqual({
      'kubernetes.io/service-name': 'minio',
      'endpointslice.kubernetes.io/managed-by': ENDPOINTS_MANAGER,
    });
    expect(slice.endpoints).toEqual([{ addresses: ['10.250.0.2'], conditions: { ready: true } }]);
    expect(slice.ports).toEqual([{ name: 's3', port: 40123, protocol: 'TCP' }]);
  });
});
