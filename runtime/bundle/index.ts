// Preparing a bundle for serving: fetch → verify sha256 → unpack safely → read the manifest. In a pod the prepare
// init container does it (it alone holds the storage keys) and leaves a record of it beside the bundle; the
// serving container reads the record and the unpacked bundle from the same volume, mounted read-only.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { msError } from '../errors.ts';
import { type FetchOptions, fetchBundle } from './fetch.ts';
import type { RequirementsEnv } from '../engines/python/deps.ts';
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
  /** Prepared by the init container: a Python bundle's environment (null: it has none); undefined: build it here. */
  pythonEnv?: RequirementsEnv | null | undefined;
  sha256: string | undefined;
  bytes: number;
  /** Redacted URI, safe to log and report. */
  display: string;
}

/** The record a prepared bundle leaves in the work directory. */
export const PREPARED_FILE = 'prepared.json';

interface PreparedRecord {
  dir: string;
  /** A Python bundle's requirements environment (null: none). */
  pythonEnv?: RequirementsEnv | null;
  sha256: string | undefined;
  bytes: number;
  display: string;
  downloadSeconds: number;
  unpackSeconds: number;
}

/** Writes the record of a prepared bundle (the prepare init container's last step). */
export async function recordPrepared(
  workDir: string,
  bundle: PreparedBundle,
  timings: { downloadSeconds: number; unpackSeconds: number },
): Promise<void> {
  const record: PreparedRecord = { dir: bundle.dir, sha256: bundle.sha256, bytes: bundle.bytes, display: bundle.display, ...timings };
  await writeFile(join(workDir, PREPARED_FILE), `${JSON.stringify(record)}\n`);
}

/** Adds the Python environment the install step built (null: none) to the record. */
export async function recordPythonEnv(workDir: string, pythonEnv: RequirementsEnv | null): Promise<void> {
  const file = join(workDir, PREPARED_FILE);
  const record = JSON.parse(await readFile(file, 'utf8')) as PreparedRecord;
  await writeFile(file, `${JSON.stringify({ ...record, pythonEnv })}\n`);
}

/** The bundle the prepare init container left: read only, no fetch, no credentials. */
export async function loadPrepared(opts: { workDir: string; onTimings?: PrepareOptions['onTimings'] }): Promise<PreparedBundle> {
  let record: PreparedRecord;
  try {
    record = JSON.parse(await readFile(join(opts.workDir, PREPARED_FILE), 'utf8')) as PreparedRecord;
  } catch (err) {
    throw msError('MS_ERR_CONFIG_INVALID', {
      detail: `the bundle was to be prepared before this process (MODELSHIP_BUNDLE_PREPARED) but ${join(opts.workDir, PREPARED_FILE)} cannot be read: ${(err as Error).message}`,
    });
  }
  opts.onTimings?.({ downloadSeconds: record.downloadSeconds, unpackSeconds: record.unpackSeconds, bytes: record.bytes });
  const resolved = await resolveBundle(record.dir);
  return {
    ...resolved,
    sha256: record.sha256,
    bytes: record.bytes,
    display: record.display,
    ...(resolved.format === 'python' ? { pythonEnv: record.pythonEnv ?? null } : {}),
  };
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
