import { describe, expect, it } from 'vitest';
import { parseBundleUri, redactUri } from '../../runtime/bundle/uri.ts';

describe('bundle URIs', () => {
  it('parses each supported kind', () => {
    expect(parseBundleUri('s3://models/iris/1/bundle.zip')).toMatchObject({ kind: 's3', bucket: 'models', key: 'iris/1/bundle.zip' });
    expect(parseBundleUri('https://example.com/b.zip')).toMatchObject({ kind: 'http' });
    expect(parseBundleUri('file:///srv/b.zip')).toMatchObject({ kind: 'file', path: '/srv/b.zip' });
    expect(parseBundleUri('/srv/bundle')).toMatchObject({ kind: 'file', path: '/srv/bundle' });
    expect(parseBundleUri('bundle')).toMatchObject({ kind: 'file' });
  });
  it('refuses what it cannot fetch, with the reason', () => {
    expect(() => parseBundleUri('gs://b/k')).toThrow(
      'bundle URI gs://b/k is not supported: scheme gs: (use s3://, https://, http:// or file://)',
    );
    expect(() => parseBundleUri('s3://bucket-only')).toThrow('expected s3://<bucket>/<key>');
    expect(() => parseBundleUri('')).toThrow(expect.objectContaining({ code: 'MS_ERR_BUNDLE_URI_INVALID' }));
  });
  it('redacts credentials and signed query strings', () => {
    expect(redactUri('https://user:pw@host.example/b.zip?X-Amz-Signature=abc')).toBe('https://host.example/b.zip?…');
    expect(redactUri('s3://bucket/key')).toBe('s3://bucket/key');
    expect(parseBundleUri('https://u:p@h.example/x.zip').display).toBe('https://h.example/x.zip');
  });
});
