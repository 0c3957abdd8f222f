// Unpacking an untrusted zip safely. Every entry is checked before anything is written: names that are
// absolute or escape the target, links and special files, too many entries, too many bytes, suspicious
// compression ratios. Refusals carry distinct MS_ERR_BUNDLE_* codes. Files are written into a staging
// directory that becomes the target only when the whole archive unpacked; on failure it is removed.
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, posix, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { describe, isModelshipError, msError } from '../errors.ts';

export interface UnzipLimits {
  maxEntries: number;
  maxTotalBytes: number;
  /** Largest uncompressed ÷ compressed size allowed for an entry (checked for entries over `ratioMinBytes`). */
  maxRatio: number;
  /** Entries smaller than this are exempt from the ratio check (small text compresses very well). */
  ratioMinBytes?: number;
}

export interface UnzipResult {
  entries: number;
  bytes: number;
}

const S_IFMT = 0o170000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;

interface CheckedEntry {
  name: string;
  isDirectory: boolean;
  entry: yauzl.Entry;
}

/** Validates one entry name; returns the normalized relative path. Pure. */
export function checkEntryName(raw: string): string {
  const shown = JSON.stringify(raw);
  if (raw.length === 0) throw msError('MS_ERR_BUNDLE_ENTRY_NAME', { entry: shown, detail: 'empty name' });
  if (raw.includes('\0')) throw msError('MS_ERR_BUNDLE_ENTRY_NAME', { entry: shown, detail: 'NUL character' });
  if (raw.startsWith('/') || raw.startsWith('\\') || /^[a-zA-Z]:/.test(raw)) {
    throw msError('MS_ERR_BUNDLE_ABSOLUTE_PATH', { entry: raw });
  }
  if (raw.includes('\\')) {
    throw msError('MS_ERR_BUNDLE_ENTRY_NAME', { entry: shown, detail: 'backslash in name (use / as separator)' });
  }
  if (raw.split('/').includes('..')) throw msError('MS_ERR_BUNDLE_PATH_ESCAPE', { entry: raw });
  const normalized = posix.normalize(raw).replace(/\/+$/, '');
  if (normalized === '.' || normalized === '') {
    throw msError('MS_ERR_BUNDLE_ENTRY_NAME', { entry: shown, detail: 'refers to the bundle root' });
  }
  return normalized;
}

/** File type from the entry's Unix mode (zero when the archiver recorded none). Pure. */
export function entryFileType(externalFileAttributes: number, versionMadeBy: number): number {
  const madeOnUnix = versionMadeBy >> 8 === 3;
  const mode = (externalFileAttributes >>> 16) & 0xffff;
  return madeOnUnix ? mode & S_IFMT : 0;
}

function openZip(path: string): Promise<yauzl.ZipFile> {
  return new Promise((resolvePromise, reject) => {
    yauzl.open(path, { lazyEntries: true, decodeStrings: false, validateEntrySizes: true, autoClose: false }, (err, zip) =>
      err || !zip ? reject(msError('MS_ERR_BUNDLE_CORRUPT', { detail: describe(err) }, err)) : resolvePromise(zip),
    );
  });
}

/** Reads and checks every entry of the central directory before anything is extracted. */
function readEntries(zip: yauzl.ZipFile, limits: UnzipLimits): Promise<CheckedEntry[]> {
  return new Promise((resolvePromise, reject) => {
    const entries: CheckedEntry[] = [];
    const seen = new Set<string>();
    let total = 0;
    zip.on('error', (err) => reject(isModelshipError(err) ? err : msError('MS_ERR_BUNDLE_CORRUPT', { detail: describe(err) }, err)));
    zip.on('end', () => resolvePromise(entries));
    zip.on('entry', (entry: yauzl.Entry) => {
      try {
        const raw = (
          yauzl as unknown as { getFileNameLowLevel: (f: number, b: Buffer, x: unknown, s: boolean) => string }
        ).getFileNameLowLevel(entry.generalPurposeBitFlag, entry.fileName as unknown as Buffer, entry.extraFields, false);
        const name = checkEntryName(raw);
        const type = entryFileType(entry.externalFileAttributes, entry.versionMadeBy);
        if (type === S_IFLNK) throw msError('MS_ERR_BUNDLE_SYMLINK', { entry: raw });
        const isDirectory = raw.endsWith('/') || type === S_IFDIR;
        if (type !== 0 && type !== S_IFREG && type !== S_IFDIR) throw msError('MS_ERR_BUNDLE_SPECIAL_FILE', { entry: raw });
        if (seen.has(name)) throw msError('MS_ERR_BUNDLE_DUPLICATE_ENTRY', { entry: raw });
        seen.add(name);
        if (!isDirectory) {
          total += entry.uncompressedSize;
          if (total > limits.maxTotalBytes) {
            throw msError('MS_ERR_BUNDLE_TOO_LARGE', { size: `more than ${limits.maxTotalBytes}`, limit: limits.maxTotalBytes });
          }
          const ratioMin = limits.ratioMinBytes ?? 1024 * 1024;
          if (entry.uncompressedSize > ratioMin) {
            const ratio = entry.uncompressedSize / Math.max(1, entry.compressedSize);
            if (ratio > limits.maxRatio) {
              throw msError('MS_ERR_BUNDLE_COMPRESSION_RATIO', { entry: raw, ratio: Math.round(ratio), limit: limits.maxRatio });
            }
          }
        }
        entries.push({ name, isDirectory, entry });
        zip.readEntry();
      } catch (err) {
        reject(err);
      }
    });
    zip.readEntry();
  });
}

function openEntryStream(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<NodeJS.ReadableStream> {
  return new Promise((resolvePromise, reject) => {
    zip.openReadStream(entry, (err, stream) =>
      err || !stream ? reject(msError('MS_ERR_BUNDLE_CORRUPT', { detail: describe(err) }, err)) : resolvePromise(stream),
    );
  });
}

/**
 * Unpacks `zipPath` into `targetDir` (which must not exist yet). All checks run on the central directory
 * first; sizes are then enforced again while streaming (yauzl's validateEntrySizes), so a lying header
 * cannot write more than it declared.
 */
export async function unzipSafely(zipPath: string, targetDir: string, limits: UnzipLimits): Promise<UnzipResult> {
  const zip = await openZip(zipPath);
  const staging = `${targetDir}.unpacking`;
  try {
    if (zip.entryCount > limits.maxEntries) {
      throw msError('MS_ERR_BUNDLE_TOO_MANY_ENTRIES', { count: zip.entryCount, limit: limits.maxEntries });
    }
    const entries = await readEntries(zip, limits);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true, mode: 0o755 });
    const root = resolve(staging);
    let bytes = 0;
    for (const { name, isDirectory, entry } of entries) {
      const dest = resolve(root, name);
      // Belt and braces: the name check already refused escapes.
      if (!dest.startsWith(root + sep)) throw msError('MS_ERR_BUNDLE_PATH_ESCAPE', { entry: name });
      if (isDirectory) {
        await mkdir(dest, { recursive: true, mode: 0o755 });
        continue;
      }
      await mkdir(dirname(dest), { recursive: true, mode: 0o755 });
      const stream = await openEntryStream(zip, entry);
      // 'wx': never follow or overwrite something already there.
      await pipeline(stream, createWriteStream(dest, { flags: 'wx', mode: 0o644 })).catch((err: unknown) => {
        throw isModelshipError(err) ? err : msError('MS_ERR_BUNDLE_CORRUPT', { detail: `${name}: ${describe(err)}` }, err);
      });
      bytes += entry.uncompressedSize;
    }
    await rm(targetDir, { recursive: true, force: true });
    await rename(staging, targetDir);
    return { entries: entries.length, bytes };
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    zip.close();
  }
}

/** One small entry's text (at most `maxBytes`), read without unpacking the archive; undefined if absent. */
export async function readZipEntry(path: string, name: string, maxBytes = 1 << 20): Promise<string | undefined> {
  const zip = await openZip(path);
  try {
    return await new Promise<string | undefined>((resolvePromise, reject) => {
      zip.on('error', reject);
      zip.on('end', () => resolvePromise(undefined));
      zip.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName.toString() !== name) {
          zip.readEntry();
          return;
        }
        if (entry.uncompressedSize > maxBytes) {
          reject(msError('MS_ERR_MANIFEST_INVALID', { detail: `${name} is larger than ${maxBytes} bytes` }));
          return;
        }
        zip.openReadStream(entry, (err, stream) => {
          if (err || !stream) {
            reject(err ?? new Error(`cannot read ${name}`));
            return;
          }
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => resolvePromise(Buffer.concat(chunks).toString('utf8')));
        });
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
}
