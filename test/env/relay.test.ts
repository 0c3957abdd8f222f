import { describe, expect, it } from 'vitest';
import { hostPort, parsePairs } from '../../env/relay.ts';

describe('relay arguments', () => {
  it('splits name=target pairs at the first =', () => {
    expect(parsePairs(['apiserver=127.0.0.1:6443', '10.250.0.2:9000=minio'])).toEqual([
      ['apiserver', '127.0.0.1:6443'],
      ['10.250.0.2:9000', 'minio'],
    ]);
    expect(() => parsePairs(['nothing'])).toThrow(/name=value/);
    expect(() => parsePairs(['=x'])).toThrow(/name=value/);
  });

  it('reads host:port and refuses a port out of range', () => {
    expect(hostPort('10.250.0.2:6443')).toEqual({ host: '10.250.0.2', port: 6443 });
    expect(() => hostPort('10.250.0.2:70000')).toThrow(/host:port/);
    expect(() => hostPort('6443')).toThrow(/host:port/);
  });
});
