import { describe, expect, it } from 'vitest';
import { readyEndpointUrls } from './endpoints.ts';

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
