// Fetching a bundle to local disk: streamed (never held whole in memory), hashed while it streams, capped in
// size, retried with backoff on transient errors, bounded in time. Errors name the URI, never credentials.
import { setTimeout as delay } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Client as MinioClient } from 'minio';
import { describe, isModelshipError, type ModelshipError, msError } from '../errors.ts';
import type { BundleLocation } from './uri.ts';

export interface S3Settings {
  endpoint?: string;
  region: string;
  accessKey?: string;
  secretKey?: string;
}

export interface FetchOptions {
  s3?: S3Settings;
  /** Bound on the whole fetch, all attempts included. */
  timeoutMs: number;
  maxBytes: number;
  attempts?: number;
  /** First backoff delay; doubles per attempt (with jitter). */
  backoffMs?: number;
  onBytes?: (n: number) => void;
}

export interface Fetched {
  /** A zip file or, for a local directory bundle, the directory itself. */
  path: string;
  isDirectory: boolean;
  /** sha256 of the archive (undefined for a directory). */
  sha256?: string;
  bytes: number;
}

class TransientError extends Error {}

const S3_NOT_FOUND = new Set(['NoSuchKey', 'NoSuchBucket', 'NotFound']);
const S3_DENIED = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AllAccessDisabled', 'ExpiredToken']);

/** Counts and hashes bytes as they pass; fails once more than `maxBytes` have passed. */
function meter(maxBytes: number, display: string, onBytes?: (n: number) => void) {
  const hash = createHash('sha256');
  let bytes = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > maxBytes) {
        cb(msError('MS_ERR_BUNDLE_DOWNLOAD_TOO_LARGE', { uri: display, limit: maxBytes }));
        return;
      }
      hash.update(chunk);
      onBytes?.(chunk.length);
      cb(null, chunk);
    },
  });
  return { transform, result: () => ({ bytes, sha256: hash.digest('hex') }) };
}

async function sha256OfFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** A client for `s3`; with `agent`, its requests use that agent's sockets (so destroying it ends them). */
export function minioClientFor(s3: S3Settings, agent?: HttpAgent): MinioClient {
  const endpoint = new URL(s3.endpoint ?? 'https://s3.amazonaws.com');
  const useSSL = endpoint.protocol === 'https:';
  return new MinioClient({
    endPoint: endpoint.hostname,
    port: endpoint.port ? Number(endpoint.port) : useSSL ? 443 : 80,
    useSSL,
    region: s3.region,
    accessKey: s3.accessKey ?? '',
    secretKey: s3.secretKey ?? '',
    pathStyle: true,
    ...(agent ? { transportAgent: agent } : {}),
  });
}

/**
 * The object's body stream. The request itself is under the deadline too: the minio client takes no signal, so its
 * sockets come from an agent of this attempt's own, destroyed when the deadline passes (a server that accepts and
 * never answers would otherwise hold the fetch past it).
 */
async function openS3(loc: Extract<BundleLocation, { kind: 's3' }>, opts: FetchOptions, deadline: AbortSignal): Promise<Readable> {
  const s3 = opts.s3 ?? { region: 'us-east-1' };
  const agent = new URL(s3.endpoint ?? 'https://s3.amazonaws.com').protocol === 'https:' ? new HttpsAgent() : new HttpAgent();
  const client = minioClientFor(s3, agent);
  // Without keep-alive a socket ends with its response: nothing of the agent outlives this attempt.
  let onAbort: () => void = () => {};
  const timedOut = new Promise<never>((_, reject) => {
    onAbort = () => {
      agent.destroy();
      reject(new TransientError('timed out'));
    };
    if (deadline.aborted) onAbort();
    else deadline.addEventListener('abort', onAbort, { once: true });
  });
  const request = client.getObject(loc.bucket, loc.key);
  // Ended by the deadline, the request still fails on its own, later: that failure is the deadline's.
  request.catch(() => {});
  try {
    return await Promise.race([request, timedOut]);
  } catch (err) {
    if (deadline.aborted) throw new TransientError('timed out');
    throw classifyS3(err, loc.display);
  } finally {
    deadline.removeEventListener('abort', onAbort);
  }
}

function classifyS3(err: unknown, display: string): Error {
  const code = (err as { code?: string }).code ?? '';
  if (S3_NOT_FOUND.has(code)) return msError('MS_ERR_BUNDLE_NOT_FOUND', { uri: display, detail: ` (${code})` });
  if (S3_DENIED.has(code)) return msError('MS_ERR_BUNDLE_ACCESS_DENIED', { uri: display, detail: ` (${code})` });
  return new TransientError(`${code || 'error'}: ${describe(err)}`);
}

async function openHttp(loc: Extract<BundleLocation, { kind: 'http' }>, signal: AbortSignal): Promise<Readable> {
  let res: Response;
  try {
    res = await fetch(loc.url, { signal, redirect: 'follow' });
  } catch (err) {
    if (signal.aborted) throw err;
    const cause = (err as { cause?: { code?: string } }).cause;
    throw new TransientError(`${cause?.code ?? 'network error'}: ${describe(cause ?? err)}`);
  }
  if (res.ok && res.body) return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream);
  await res.body?.cancel();
  if (res.status === 404 || res.status === 410) {
    throw msError('MS_ERR_BUNDLE_NOT_FOUND', { uri: loc.display, detail: ` (HTTP ${res.status})` });
  }
  if (res.status === 401 || res.status === 403) {
    throw msError('MS_ERR_BUNDLE_ACCESS_DENIED', { uri: loc.display, detail: ` (HTTP ${res.status})` });
  }
  if (res.status === 408 || res.status === 429 || res.status >= 500) throw new TransientError(`HTTP ${res.status}`);
  throw msError('MS_ERR_BUNDLE_FETCH_FAILED', { uri: loc.display, attempts: 1, detail: `HTTP ${res.status}` });
}

/** Waits `ms`, or less if `signal` aborts first; never rejects. */
const sleep = (ms: number, signal: AbortSignal) => delay(ms, undefined, { signal }).catch(() => {});

/**
 * Fetches the bundle at `loc`. Remote archives are streamed to `destFile`; local ones are read in place.
 */
export async function fetchBundle(loc: BundleLocation, destFile: string, opts: FetchOptions): Promise<Fetched> {
  if (loc.kind === 'file') {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(loc.path);
    } catch {
      throw msError('MS_ERR_BUNDLE_NOT_FOUND', { uri: loc.display, detail: '' });
    }
    if (st.isDirectory()) return { path: loc.path, isDirectory: true, bytes: 0 };
    if (st.size > opts.maxBytes) throw msError('MS_ERR_BUNDLE_DOWNLOAD_TOO_LARGE', { uri: loc.display, limit: opts.maxBytes });
    const { sha256, bytes } = await sha256OfFile(loc.path);
    return { path: loc.path, isDirectory: false, sha256, bytes };
  }

  const attempts = opts.attempts ?? 4;
  const backoffMs = opts.backoffMs ?? 500;
  const deadline = AbortSignal.timeout(opts.timeoutMs);
  let lastError = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (deadline.aborted) break;
    let source: Readable | undefined;
    try {
      source = loc.kind === 's3' ? await openS3(loc, opts, deadline) : await openHttp(loc, deadline);
      const m = meter(opts.maxBytes, loc.display, opts.onBytes);
      const onAbort = () => source?.destroy(new TransientError('timed out'));
      deadline.addEventListener('abort', onAbort, { once: true });
      try {
        await pipeline(source, m.transform, createWriteStream(destFile));
      } finally {
        deadline.removeEventListener('abort', onAbort);
      }
      const { bytes, sha256 } = m.result();
      return { path: destFile, isDirectory: false, sha256, bytes };
    } catch (err) {
      await rm(destFile, { force: true });
      if (isModelshipError(err)) throw err as ModelshipError;
      if (deadline.aborted) break;
      lastError = describe(err);
      if (!(err instanceof TransientError) && loc.kind === 's3') {
        const classified = classifyS3(err, loc.display);
        if (isModelshipError(classified)) throw classified;
      }
      if (attempt < attempts) await sleep(backoffMs * 2 ** (attempt - 1) * (0.75 + Math.random() / 2), deadline);
    }
  }
  if (deadline.aborted) {
    throw msError('MS_ERR_BUNDLE_FETCH_TIMEOUT', { uri: loc.display, seconds: Math.round(opts.timeoutMs / 1000) });
  }
  throw msError('MS_ERR_BUNDLE_FETCH_FAILED', { uri: loc.display, attempts, detail: lastError });
}
