import { describe, expect, it } from 'vitest';
import { readyEndpointUrls } from '../../env/endpoints.ts';

describe('readyEndpointUrls', () => {
  it('keeps only ready endpoints, with the slice port, sorted across slices', () => {
    const urls = readyEndpointUrls([
      {
        ports: [{ port: 9000 }],
        endpoints: [
          { addresses: ['10.245.1.2'], conditions: { ready: true } },
          { addresses: ['10.245.1.3'], conditions: { ready: false } },
        ],
      },
      { endpoints: [{ addresses: ['10.245.1.1'], conditions: { ready: true } }, { addresses: ['10.245.1.4'] }] },
      {},
    ]);
    expect(urls).toEqual(['http://10.245.1.1:8080', 'http://10.245.1.2:9000']);
  });
});

describe('readyEndpointUrls by port name', () => {
  it('takes the port named http (or the one asked for), whatever the slice order', () => {
    const slices = [
      {
        ports: [
          { name: 'grpc', port: 8081 },
          { name: 'http', port: 8080 },
        ],
        endpoints: [{ addresses: ['10.245.1.2'], conditions: { ready: true } }],
      },
    ];
    expect(readyEndpointUrls(slices)).toEqual(['http://10.245.1.2:8080']);
    expect(readyEndpointUrls(slices, 'grpc')).toEqual(['http://10.245.1.2:8081']);
  });
});
