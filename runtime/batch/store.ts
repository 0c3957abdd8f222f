// Where batch data lives, behind one small interface: S3-compatible storage (the minio client, as the bundle
// fetcher uses it) or the local filesystem (`modelship batch` on a laptop). Names are relative to the location's
// directory; a failure becomes MS_ERR_BATCH_STORAGE (transient S3 failures are retried a few times first).
//
// A location's URI is a directory and a selector, split at its last '/':
//   s3://data/iris/            everything under iris/ (recursive)
//   s3://data/iris/*.parquet   the names in iris/ that match the glob (* and ?; not recursive)
//   s3://data/iris             the object iris, or everything under iris/
// Listing skips names with a part starting with '_' or '.' (our `_modelship/`, Spark's `_SUCCESS`, `.crc` files:
// Hadoop's rule for hidden files) and S3's empty "directory" objects.
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { Client as MinioClient } from 'minio';
import { CopyDestinationOptions, CopySourceOptions } from 'minio';
import { minioClientFor } from '../bundle/fetch.ts';
import { redactUri } from '../bundle/uri.ts';
import { BATCH, type BatchLocation, DEFAULTS } from '../contract.ts';
import { describe, isModelshipError, msError } from '../errors.ts';

/** One file of a location: its name relative to the location's directory, size, and a version (etag or mtime). */
export interface StoredFile {
  name: string;
  size: number;
  version: string;
}

/** hyparquet's AsyncBuffer: random access to a file by byte ranges (ranged GETs on S3). */
export interface RandomAccess {
  byteLength: number;
  slice(start: number, end?: number): Promise<ArrayBuffer>;
}

export interface Store {
  /** The location's directory, redacted, for messages (`s3://bucket/prefix/`, a path). */
  readonly display: string;
  /** The files the location selects, sorted by name. */
  list(): Promise<StoredFile[]>;
  /** Random access to one file; `version` (from a listing) is checked, so a file replaced since fails. */
  reader(name: string): Promise<RandomAccess & { version: string }>;
  /** The file's bytes as a stream; a failure while streaming is MS_ERR_BATCH_STORAGE too. */
  stream(name: string): Promise<Readable>;
  exists(name: string): Promise<boolean>;
  /** A small file whole (a plan, a marker); undefined when there is none. */
  get(name: string): Promise<Buffer | undefined>;
  /** Writes a file atomically: a temporary object (or file) under `_modelship/tmp/`, then the final name. */
  put(name: string, bytes: Uint8Array): Promise<void>;
  /** Removes a file; none there is fine. */
  remove(name: string): Promise<void>;
}

export interface StoreOptions {
  /** The URI is a directory (an output prefix): no selector. */
  directory?: boolean;
  /** Bound on one S3 request (a ranged GET, a PUT, a list page); past it the attempt counts as failed. */
  requestTimeoutMs?: number;
  attempts?: number;
  /** First backoff delay, doubled per attempt (with jitter). */
  backoffMs?: number;
}

const TMP_DIR = `${BATCH.metaDir}/tmp`;

/** The directory and selector of a URI's path (pure). */
export function splitSelector(path: string, directory: boolean): { dir: string; selector: string } {
  if (directory) return { dir: path === '' || path.endsWith('/') ? path : `${path}/`, selector: '' };
  const cut = path.lastIndexOf('/');
  return { dir: path.slice(0, cut + 1), selector: path.slice(cut + 1) };
}

export function isGlob(selector: string): boolean {
  return /[*?]/.test(selector);
}

/** `*` any run of characters and `?` one character, within one path part (pure). */
export function globMatcher(glob: string): (name: string) => boolean {
  const source = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  const re = new RegExp(`^${source}$`);
  return (name) => re.test(name);
}

/** Names a listing leaves out: any part hidden by Hadoop's rule ('_' or '.' first), and directory markers. */
export function isHiddenName(name: string): boolean {
  return name === '' || name.endsWith('/') || name.split('/').some((part) => part.startsWith('_') || part.startsWith('.'));
}

/** Keeps what the selector picks out of a directory's names (relative to it), sorted (pure). */
export function selectNames<T extends { name: string }>(items: T[], selector: string): T[] {
  let picked: T[];
  if (selector === '') picked = items;
  else if (isGlob(selector)) {
    const match = globMatcher(selector);
    picked = items.filter((i) => !i.name.includes('/') && match(i.name));
  } else picked = items.filter((i) => i.name === selector || i.name.startsWith(`${selector}/`));
  return picked.filter((i) => !isHiddenName(i.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function tmpName(): string {
  return `${TMP_DIR}/${Date.now().toString(36)}-${randomBytes(6).toString('hex')}`;
}

/** A Store for the location: S3 for s3:// URIs, the filesystem for paths and file:// URIs. */
export async function storeFor(location: BatchLocation, opts: StoreOptions = {}): Promise<Store> {
  const uri = location.uri;
  if (/^s3:\/\//i.test(uri)) return s3Store(location, opts);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri) && !/^file:\/\//i.test(uri)) {
    throw msError('MS_ERR_BATCH_SPEC_INVALID', { detail: `${redactUri(uri)}: use s3://, file:// or a path` });
  }
  const path = /^file:\/\//i.test(uri) ? fileURLToPath(uri) : isAbsolute(uri) ? uri : resolve(uri);
  return localStore(path + (uri.endsWith('/') && !path.endsWith('/') ? '/' : ''), opts);
}

/**
 * A plain selector (no glob) names a file, or else a directory: then the store is rooted in it, so names (and the
 * `_file` keys made of them) are relative to the directory the user named.
 */
async function rooted(
  path: string,
  opts: StoreOptions,
  isFile: (path: string) => Promise<boolean>,
): Promise<StoreOptions & { split: { dir: string; selector: string } }> {
  const split = splitSelector(path, opts.directory ?? false);
  if (split.selector === '' || isGlob(split.selector) || (await isFile(path))) return { ...opts, split };
  return { ...opts, split: { dir: `${path}/`, selector: '' } };
}

// ---- local filesystem -------------------------------------------------------------------------------------------

async function localStore(path: string, opts: StoreOptions): Promise<Store> {
  const isFile = (p: string) =>
    stat(p).then(
      (st) => st.isFile(),
      () => false,
    );
  const { dir, selector } = (await rooted(path, opts, isFile)).split;
  const display = dir;
  const fail = (operation: string, name: string, err: unknown) =>
    isModelshipError(err)
      ? err
      : msError('MS_ERR_BATCH_STORAGE', { endpoint: 'local', operation, key: join(dir, name), detail: describe(err) }, err);
  const full = (name: string) => join(dir, name);
  const versionOf = (st: { mtimeMs: number; size: number }) => `${Math.trunc(st.mtimeMs)}-${st.size}`;

  return {
    display,
    async list() {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { recursive: !isGlob(selector), withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
        throw fail('list', '', err);
      }
      const names = entries
        .filter((e) => e.isFile())
        .map((e) => ({ name: join(e.parentPath, e.name).slice(dir.length).replaceAll('\\', '/') }));
      const files: StoredFile[] = [];
      for (const { name } of selectNames(names, selector)) {
        try {
          const st = await stat(full(name));
          files.push({ name, size: st.size, version: versionOf(st) });
        } catch (err) {
          throw fail('stat', name, err);
        }
      }
      return files;
    },
    async reader(name) {
      let size: number;
      let version: string;
      try {
        const st = await stat(full(name));
        size = st.size;
        version = versionOf(st);
      } catch (err) {
        throw fail('stat', name, err);
      }
      return {
        byteLength: size,
        version,
        async slice(start, end = size) {
          const length = Math.max(0, Math.min(end, size) - start);
          const bytes = new Uint8Array(length);
          try {
            const fh = await open(full(name), 'r');
            try {
              let done = 0;
              while (done < length) {
                const { bytesRead } = await fh.read(bytes, done, length - done, start + done);
                if (bytesRead === 0) throw new Error(`the file ended at ${start + done} bytes (expected ${end})`);
                done += bytesRead;
              }
            } finally {
              await fh.close();
            }
          } catch (err) {
            throw fail('read', name, err);
          }
          return bytes.buffer;
        },
      };
    },
    async stream(name) {
      const source = createReadStream(full(name));
      await new Promise<void>((ok, ko) => {
        source.once('open', () => ok());
        source.once('error', (err) => ko(fail('read', name, err)));
      });
      return guarded(source, (err) => fail('read', name, err));
    },
    async exists(name) {
      try {
        return (await stat(full(name))).isFile();
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return false;
        throw fail('stat', name, err);
      }
    },
    async get(name) {
      try {
        return await readFile(full(name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw fail('read', name, err);
      }
    },
    async put(name, bytes) {
      // Written and synced beside the output (same filesystem), then renamed: a reader sees the whole file or none.
      const tmp = full(tmpName());
      try {
        await mkdir(dirname(tmp), { recursive: true });
        const fh = await open(tmp, 'w');
        try {
          await fh.writeFile(bytes);
          await fh.datasync();
        } finally {
          await fh.close();
        }
        await mkdir(dirname(full(name)), { recursive: true });
        await rename(tmp, full(name));
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => {});
        throw fail('write', name, err);
      }
    },
    async remove(name) {
      try {
        await rm(full(name), { force: true });
      } catch (err) {
        throw fail('remove', name, err);
      }
    },
  };
}

// ---- S3-compatible storage -------------------------------------------------------------------------------------

const S3_MISSING = new Set(['NoSuchKey', 'NotFound']);
/** Failures that another attempt will not mend. */
const S3_PERMANENT = new Set([
  'NoSuchBucket',
  'AccessDenied',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AllAccessDisabled',
  'ExpiredToken',
  'InvalidBucketName',
  'InvalidObjectName',
  'InvalidArgument',
  'InvalidRange',
]);

class Missing extends Error {}

async function readKey(dir: string | undefined, file: string): Promise<string> {
  if (!dir) return '';
  return (await readFile(join(dir, file), 'utf8')).trim();
}

async function s3Store(location: BatchLocation, opts: StoreOptions): Promise<Store> {
  const u = new URL(location.uri);
  const bucket = u.hostname;
  const path = decodeURIComponent(u.pathname.replace(/^\//, ''));
  let { dir, selector } = splitSelector(path, opts.directory ?? false);
  let display = redactUri(`s3://${bucket}/${dir}`);
  const storage = location.storage;
  if (!bucket) throw msError('MS_ERR_BATCH_SPEC_INVALID', { detail: `${redactUri(location.uri)}: expected s3://<bucket>/<prefix>` });
  if (!storage?.endpoint) {
    throw msError('MS_ERR_BATCH_SPEC_INVALID', { detail: `${display} needs storage.endpoint (an S3-compatible endpoint)` });
  }
  const endpoint = storage.endpoint;
  const fail = (operation: string, name: string, detail: string, cause?: unknown) =>
    msError('MS_ERR_BATCH_STORAGE', { endpoint, operation, key: `s3://${bucket}/${dir}${name}`, detail }, cause);
  let accessKey: string;
  let secretKey: string;
  try {
    accessKey = await readKey(storage.credentialsDir, 'accessKey');
    secretKey = await readKey(storage.credentialsDir, 'secretKey');
  } catch (err) {
    throw fail('read credentials for', '', `${storage.credentialsDir}: ${(err as NodeJS.ErrnoException).code ?? describe(err)}`, err);
  }
  const client: MinioClient = minioClientFor({ endpoint, region: storage.region ?? DEFAULTS.s3Region, accessKey, secretKey });
  const attempts = opts.attempts ?? 4;
  const backoffMs = opts.backoffMs ?? 250;
  const timeoutMs = opts.requestTimeoutMs ?? 60_000;
  const key = (name: string) => `${dir}${name}`;

  /**
   * One S3 operation with retries. A missing object is `Missing` (callers decide what that means); a permanent
   * failure (denied, no bucket) fails at once; others are retried with backoff. The minio client takes no signal:
   * an attempt past its bound is abandoned (its socket is left to the server) and counted as failed.
   */
  async function attempt<T>(operation: string, name: string, run: () => Promise<T>, boundMs = timeoutMs): Promise<T> {
    let last = '';
    for (let n = 1; n <= attempts; n++) {
      let timer: NodeJS.Timeout | undefined;
      try {
        const bounded = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${boundMs} ms`)), boundMs);
        });
        const running = run();
        running.catch(() => {});
        return await Promise.race([running, bounded]);
      } catch (err) {
        if (isModelshipError(err)) throw err;
        const code = (err as { code?: string }).code ?? '';
        if (S3_MISSING.has(code)) throw new Missing(code);
        last = code ? `${code}: ${describe(err)}` : describe(err);
        if (S3_PERMANENT.has(code)) throw fail(operation, name, last, err);
        if (n < attempts) await delay(backoffMs * 2 ** (n - 1) * (0.75 + Math.random() / 2));
      } finally {
        clearTimeout(timer);
      }
    }
    throw fail(operation, name, `${last} (after ${attempts} attempts)`);
  }

  const statOf = (name: string) => attempt('stat', name, () => client.statObject(bucket, key(name)));
  const isObject = (name: string) =>
    statOf(name).then(
      () => true,
      (err) => {
        if (err instanceof Missing) return false;
        throw err;
      },
    );

  ({ dir, selector } = (await rooted(path, opts, () => isObject(selector))).split);
  display = redactUri(`s3://${bucket}/${dir}`);

  async function bytesOf(stream: Readable): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  return {
    display,
    async list() {
      // A glob looks at one level; otherwise everything under the directory (or under the selector's prefix).
      const prefix = isGlob(selector) ? dir : dir + selector;
      // A listing is many pages (1000 keys each): its bound grows with them.
      const items = await attempt(
        'list',
        selector,
        async () => {
          const found: StoredFile[] = [];
          for await (const item of client.listObjectsV2(bucket, prefix, !isGlob(selector))) {
            if (item.name === undefined) continue;
            found.push({ name: item.name.slice(dir.length), size: item.size, version: item.etag });
          }
          return found;
        },
        timeoutMs * 10,
      ).catch((err) => {
        if (err instanceof Missing) return [];
        throw err;
      });
      return selectNames(
        items.filter((i) => i.size > 0 || !i.name.endsWith('/')),
        selector,
      );
    },
    async reader(name) {
      let size: number;
      let version: string;
      try {
        const st = await statOf(name);
        size = st.size;
        version = st.etag;
      } catch (err) {
        if (err instanceof Missing) throw fail('stat', name, 'no such object');
        throw err;
      }
      return {
        byteLength: size,
        version,
        async slice(start, end = size) {
          const length = Math.min(end, size) - start;
          if (length <= 0) return new ArrayBuffer(0);
          const buf = await attempt('read', name, async () =>
            bytesOf(await client.getPartialObject(bucket, key(name), start, length)),
          ).catch((err) => {
            if (err instanceof Missing) throw fail('read', name, 'no such object (removed while read)');
            throw err;
          });
          if (buf.length !== length) throw fail('read', name, `got ${buf.length} of ${length} bytes at ${start}`);
          return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
        },
      };
    },
    async stream(name) {
      const source = await attempt('read', name, () => client.getObject(bucket, key(name))).catch((err) => {
        if (err instanceof Missing) throw fail('read', name, 'no such object');
        throw err;
      });
      return guarded(source, (err) => fail('read', name, describe(err), err));
    },
    exists: isObject,
    async get(name) {
      try {
        return await attempt('read', name, async () => bytesOf(await client.getObject(bucket, key(name))));
      } catch (err) {
        if (err instanceof Missing) return undefined;
        throw err;
      }
    },
    async put(name, bytes) {
      // S3 has no rename: the object is written under a temporary name, copied to its own (server side), and the
      // temporary one removed. A pod killed on the way leaves at most a temporary object, never a partial part.
      const tmp = tmpName();
      const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      await attempt('write', tmp, () => client.putObject(bucket, key(tmp), body, body.length));
      try {
        await attempt('copy', name, () =>
          client.copyObject(
            new CopySourceOptions({ Bucket: bucket, Object: key(tmp) }),
            new CopyDestinationOptions({ Bucket: bucket, Object: key(name) }),
          ),
        );
      } catch (err) {
        if (err instanceof Missing) throw fail('copy', name, `the temporary object ${tmp} vanished`);
        throw err;
      } finally {
        await attempt('remove', tmp, () => client.removeObject(bucket, key(tmp))).catch(() => {});
      }
    },
    async remove(name) {
      await attempt('remove', name, () => client.removeObject(bucket, key(name))).catch((err) => {
        if (!(err instanceof Missing)) throw err;
      });
    },
  };
}

/** The stream, with a failure while it flows turned into a coded error (the reader never sees a bare ECONNRESET). */
function guarded(source: Readable, wrap: (err: unknown) => Error): Readable {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  source.on('error', (err) => out.destroy(wrap(err)));
  out.on('close', () => source.destroy());
  source.pipe(out);
  return out;
}
