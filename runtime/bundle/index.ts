// Preparing a bundle for serving: fetch → verify sha256 → unpack safely → read the manifest.
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { msError } from '../errors.ts';
import { type FetchOptions, fetchBundle } from './fetch.ts';
import { type ResolvedBundle, resolveBundle } from './manifest.ts';
import { type UnzipLimits, unzipSafely } from './unzip.ts';
import { parseBundleUri } from './uri.ts';

export interface PrepareOptions {
  uri: string;
  sha256?: string | undefined;
  workDir: string;
  fetch: Omit<FetchOptions, 'maxBytes'>;
  limits: UnzipLimits;
  onStep?: (step: string) => void;
  onTimings?: (t: { downloadSeconds: number; unpackSeconds: number; bytes: number }) => void;
}

export interface PreparedBundle extends ResolvedBundle {
  sha256: string | undefined;
  bytes: number;
  /** Redacted URI, safe to log and report. */
  display: string;
}

export async function prepareBundle(opts: PrepareOptions): Promise<PreparedBundle> {
  const loc = parseBundleUri(opts.uri);
  await mkdir(opts.workDir, { recursive: true });
  const archive = join(opts.workDir, 'bundle.zip');
  opts.onStep?.(`fetching ${loc.display}`);
  const t0 = performance.now();
  const fetched = await fetchBundle(loc, archive, { ...opts.fetch, maxBytes: opts.limits.maxTotalBytes });
  const t1 = performance.now();
  if (fetched.isDirectory) {
    if (opts.sha256) {
      throw msError('MS_ERR_BUNDLE_URI_INVALID', { uri: loc.display, detail: 'a sha256 pin needs a zip archive, not a directory' });
    }
    opts.onTimings?.({ downloadSeconds: 0, unpackSeconds: 0, bytes: 0 });
    return { ...(await resolveBundle(fetched.path)), sha256: undefined, bytes: 0, display: loc.display };
  }
  if (opts.sha256 && fetched.sha256 !== opts.sha256) {
    if (fetched.path === archive) await rm(archive, { force: true });
    throw msError('MS_ERR_BUNDLE_SHA256_MISMATCH', { uri: loc.display, expected: opts.sha256, actual: fetched.sha256 ?? '?' });
  }
  opts.onStep?.('unpacking the bundle');
  const dir = join(opts.workDir, 'bundle');
  await unzipSafely(fetched.path, dir, opts.limits);
  if (fetched.path === archive) await rm(archive, { force: true });
  const t2 = performance.now();
  opts.onTimings?.({ downloadSeconds: (t1 - t0) / 1000, unpackSeconds: (t2 - t1) / 1000, bytes: fetched.bytes });
  return { ...(await resolveBundle(dir)), sha256: fetched.sha256, bytes: fetched.bytes, display: loc.display };
}
