// Bundle URIs: parsing, and a redacted form for messages and logs (never credentials or signatures).
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { msError } from '../errors.ts';

export type BundleLocation =
  | { kind: 's3'; bucket: string; key: string; display: string }
  | { kind: 'http'; url: URL; display: string }
  | { kind: 'file'; path: string; display: string };

/** The URI with user info and query string removed (a presigned URL's query is a credential). */
export function redactUri(uri: string): string {
  try {
    const u = new URL(uri);
    if (u.protocol === 'http:' || u.protocol === 'https:' || u.protocol === 's3:') {
      const query = u.search ? '?…' : '';
      return `${u.protocol}//${u.host}${u.pathname}${query}`;
    }
    return uri;
  } catch {
    return uri.replace(/\/\/[^@/]*@/, '//');
  }
}

export function parseBundleUri(uri: string): BundleLocation {
  const display = redactUri(uri);
  if (!uri) throw msError('MS_ERR_BUNDLE_URI_INVALID', { uri: '""', detail: 'empty' });
  if (!/^[a-z][a-z0-9+.-]*:/i.test(uri) || /^[a-z]:[\\/]/i.test(uri)) {
    // A plain path (development): relative to the working directory.
    return { kind: 'file', path: isAbsolute(uri) ? uri : resolve(uri), display };
  }
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    throw msError('MS_ERR_BUNDLE_URI_INVALID', { uri: display, detail: 'not a valid URI' });
  }
  switch (u.protocol) {
    case 's3:': {
      const bucket = u.hostname;
      const key = decodeURIComponent(u.pathname.replace(/^\//, ''));
      if (!bucket || !key) {
        throw msError('MS_ERR_BUNDLE_URI_INVALID', { uri: display, detail: 'expected s3://<bucket>/<key>' });
      }
      return { kind: 's3', bucket, key, display };
    }
    case 'http:':
    case 'https:':
      return { kind: 'http', url: u, display };
    case 'file:':
      return { kind: 'file', path: fileURLToPath(u), display };
    default:
      throw msError('MS_ERR_BUNDLE_URI_INVALID', {
        uri: display,
        detail: `scheme ${u.protocol} (use s3://, https://, http:// or file://)`,
      });
  }
}
